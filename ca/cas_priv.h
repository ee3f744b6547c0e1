/* cas_priv.h — the CA server's private structures, shared by the files of ca/.
 *
 * Words used in ca/:
 *   client    one TCP circuit (cas_client).
 *   channel   a client's connection to one PV: sid (ours) and cid (the client's).
 *   sub       a subscription (EVENT_ADD) on a channel, named by the client's subid.
 *   update    an encoded monitor payload (cas_msg), shared by every sub that
 *             wants the same PV in the same type and count after one post.
 *
 * Invariants:
 *   - a channel whose PV was deleted is freed at once (after SERVER_DISCONN);
 *   - a sub is on its client's pending list iff its queue is not empty;
 *   - a client is on the server's dirty list iff it may have output to send;
 *   - a client marked dead is freed only by client_reap(), never in the middle
 *     of handling its own input.
 */
#ifndef GUARDIAND_CAS_PRIV_H
#define GUARDIAND_CAS_PRIV_H

#include <ev.h>
#include <netinet/in.h>
#include <uthash.h>

#include "ca/cas.h"
#include "ca/caproto.h"

#define CAS_SUB_QUEUE 4      /* pending updates per subscription before coalescing */
#define CAS_NAME_MAX 512     /* host and user names, with the NUL */
#define CAS_CACHE_SLOTS 8    /* encodings remembered within one post */
#define CAS_MAX_UDP_SOCKS (2 * CAS_MAX_ADDRS)

typedef struct cas_client cas_client;
typedef struct cas_channel cas_channel;
typedef struct cas_sub cas_sub;

/* A reference-counted monitor payload: status and the aligned DBR bytes. */
typedef struct cas_msg {
    unsigned refs;
    uint32_t status;  /* ECA status for m_cid */
    uint32_t count;   /* element count for m_count */
    uint32_t size;    /* payload bytes, a multiple of 8 */
    uint8_t data[];
} cas_msg;

struct cas_sub {
    uint32_t subid;
    uint16_t type;
    uint32_t count;            /* as requested; 0 = whatever is available */
    unsigned mask;
    cas_channel *ch;
    cas_msg *queue[CAS_SUB_QUEUE];
    unsigned queued;
    cas_sub *pend_prev, *pend_next;
    UT_hash_handle hh;
};

struct cas_channel {
    uint32_t sid, cid;
    cas_client *client;
    pv *pv;
    pv_watch watch;
    unsigned rights;
    cas_sub *subs;             /* uthash by subid */
    UT_hash_handle hh;
};

struct cas_client {
    cas *srv;
    int fd;
    ev_io rio, wio;
    ev_timer linger;           /* after EOF: how long we wait to send what is queued */
    struct sockaddr_in peer;
    char peer_text[32];
    char *host, *user;
    uint16_t minor;
    bool events_off;
    bool reading;              /* rio started */
    bool eof;                  /* no more input: close once the output is sent */
    bool halt;                 /* a fatal protocol error: handle no more requests */
    bool dead;                 /* close at the next reap */
    bool dirty;
    uint8_t *in;
    size_t in_len, in_cap;
    uint64_t discard;          /* bytes of a refused oversize message still to skip */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    cas_channel *channels;     /* uthash by sid */
    uint32_t next_sid;
    size_t n_subs;
    cas_sub *pend_head, *pend_tail;
    cas_client *prev, *next;
    cas_client *dirty_next;
};

struct cas_cache_slot {
    const pv *pv;
    uint64_t gen;
    uint16_t type;
    uint32_t count;
    cas_msg *msg;
};

struct cas {
    struct ev_loop *loop;
    pvdb *db;
    struct cas_config cfg;
    uint16_t tcp_port;
    int tcp_fd[CAS_MAX_ADDRS];
    ev_io tcp_io[CAS_MAX_ADDRS];
    unsigned n_tcp;
    ev_timer accept_retry;     /* listeners pause when we run out of descriptors */
    int udp_fd[CAS_MAX_UDP_SOCKS];
    ev_io udp_io[CAS_MAX_UDP_SOCKS];
    unsigned n_udp;
    int beacon_fd;
    ev_timer beacon_timer;
    double beacon_delay;
    uint32_t beacon_id;
    struct sockaddr_in beacon_dst[2 * CAS_MAX_ADDRS];
    unsigned n_beacon_dst;
    ev_prepare flush;
    cas_client *clients;
    cas_client *dirty;
    size_t n_clients;
    cas_access_fn access;
    void *access_arg;
    struct cas_cache_slot cache[CAS_CACHE_SLOTS];
    unsigned cache_next;
    uint8_t *scratch;          /* decoded write values */
    size_t scratch_cap;
    size_t max_payload;        /* largest request payload we accept */
    struct cas_stats stats;
    ev_tstamp log_window;      /* rate limit of cas_log() */
    unsigned log_lines, log_suppressed;
    uint8_t udp_buf[CA_MAX_UDP_RECV]; /* one datagram at a time */
};

/* cas.c */
void cas_log(cas *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
unsigned cas_rights(cas *s, const pv *pv, const cas_client *c);

/* udp.c: name service and beacons */
int cas_udp_open(cas *s, char *err, size_t errlen);
void cas_udp_close(cas *s);

/* circuit.c: TCP circuits */
void cas_client_accept(cas *s, int fd, const struct sockaddr_in *peer);
void cas_client_close(cas_client *c);
void cas_client_mark_dirty(cas_client *c);
void cas_client_flush(cas_client *c);
void cas_client_reap(cas *s);
uint8_t *cas_out_reserve(cas_client *c, size_t n);
/* Append a header (extended when needed); returns where its size payload
 * bytes go, or NULL if the client is closing. */
uint8_t *cas_put_hdr(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                     uint32_t p1, uint32_t p2);
void cas_send_hdr(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                  uint32_t p1, uint32_t p2);
void cas_send_error(cas_client *c, const uint8_t *req_hdr, size_t req_len, uint32_t cid,
                    uint32_t status, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void cas_send_access_rights(cas_channel *ch);
void cas_channel_free(cas_channel *ch);
bool cas_needs_ext(uint32_t size, uint32_t count);

/* monitor.c: subscriptions and their queues */
cas_sub *cas_sub_new(cas_channel *ch, uint32_t subid, uint16_t type, uint32_t count,
                     unsigned mask);
void cas_sub_free(cas_sub *sub);
void cas_sub_post(cas_sub *sub);
void cas_channel_on_event(pv *pv, unsigned events, void *arg);
void cas_client_drain_subs(cas_client *c);
void cas_msg_unref(cas_msg *m);
void cas_cache_clear(cas *s);
/* Encode a reply's count: the requested count, or for count 0 what is valid. */
uint32_t cas_reply_count(const pv *pv, uint32_t requested);

#endif
