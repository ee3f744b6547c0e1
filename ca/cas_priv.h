/* cas_priv.h — the CA server's private structures, shared by the files of ca/.
 *
 * Words used in ca/:
 *   client    one TCP circuit (cas_client).
 *   channel   a client's connection to one PV: sid (ours) and cid (the client's).
 *   link      everything one client has on one PV: its channels to it and all
 *             their subscriptions. The link, not the channel, watches the PV.
 *   sub       a subscription (EVENT_ADD) on a channel, named by the client's subid.
 *   msg       an encoded value (cas_msg) of one PV in one DBR type after one
 *             post, shared by every reply and update that wants it, whatever
 *             their counts: each is a prefix of it, zero-filled past its end.
 *   behind    a client that asked for flow control (EVENTS_OFF), whose unsent
 *             output passed the monitor watermark, or that holds
 *             CAS_QUEUE_BUDGET undelivered updates: posts only mark its links
 *             stale, and it catches up with the latest values when it drains.
 *
 * Sizes: every size derived from a wire count is computed in 64 bits
 * (cas_payload_size) and checked against the limit before anything is
 * allocated or written; a reply never costs more memory than the PV holds,
 * since zero fill is queued as a count of zero bytes, not as bytes.
 *
 * Invariants:
 *   - a channel whose PV was deleted is freed at once (after SERVER_DISCONN);
 *   - a link exists while it has a channel, and is watched with the union of
 *     its subs' masks (0, costing posts nothing, when it has none);
 *   - a sub is on its client's pending list iff its queue is not empty;
 *   - a link is on its client's stale list iff link->stale is not 0;
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

#define CAS_SUB_QUEUE 4        /* pending updates per subscription before coalescing */
#define CAS_QUEUE_BUDGET 4096  /* undelivered updates a client may hold before it is behind */
/* Unsent output up to which monitor updates are added (the rest of
 * client_backlog is for replies to requests). Small, like rsrv's 16 KiB send
 * buffer: what a slow reader must read through before the reply to its next
 * request is what the kernel holds plus this. */
#define CAS_MONITOR_WATERMARK (64u << 10)
#define CAS_NAME_MAX 512       /* host and user names, with the NUL */
#define CAS_CACHE_SLOTS 8      /* encodings remembered within one loop iteration */
#define CAS_MAX_UDP_SOCKS (2 * CAS_MAX_ADDRS)

typedef struct cas_client cas_client;
typedef struct cas_channel cas_channel;
typedef struct cas_link cas_link;
typedef struct cas_sub cas_sub;

/* A reference-counted encoding: the DBR metadata and the first `elems`
 * elements of the PV's value in `type` (dbr_encode_prefix). */
typedef struct cas_msg {
    unsigned refs;
    uint16_t type;
    bool denied;      /* no read access: ECA_NORDACCESS and an all-zero payload */
    uint32_t valid;   /* elements the PV held when encoded (at least 1) */
    uint32_t elems;   /* elements encoded, at most valid */
    uint32_t good;    /* of those, converted before a failure (elems if none) */
    size_t len;       /* bytes of data: dbr_struct_size_n(type, elems) */
    uint8_t data[];
} cas_msg;

struct cas_sub {
    uint32_t subid;
    uint16_t type;
    uint32_t count;            /* as requested; 0 = what is valid at each update */
    unsigned mask;
    uint64_t gen;              /* the PV generation of the newest update queued */
    cas_channel *ch;
    cas_msg *queue[CAS_SUB_QUEUE];
    unsigned queued;
    cas_sub *pend_prev, *pend_next;   /* the client's pending list */
    cas_sub *link_prev, *link_next;   /* every sub of the link */
    UT_hash_handle hh;                /* the channel's subs by subid */
};

struct cas_channel {
    uint32_t sid, cid;
    cas_client *client;
    pv *pv;
    cas_link *link;
    unsigned rights;
    cas_sub *subs;                    /* uthash by subid */
    size_t n_subs;
    cas_channel *link_prev, *link_next;
    UT_hash_handle hh;                /* the client's channels by sid */
};

struct cas_link {
    cas_client *client;
    pv *pv;
    pv_watch watch;
    cas_channel *channels;            /* list through link_next */
    cas_sub *subs;                    /* list through link_next */
    unsigned mask_users[4];           /* subs wanting each event bit (VALUE, LOG, ALARM, PROPERTY) */
    unsigned stale;                   /* events posted while the client was behind */
    cas_sub *cursor;                  /* where catching up goes on */
    cas_link *stale_prev, *stale_next;
    UT_hash_handle hh;                /* the client's links by PV */
};

/* Zero bytes queued in the output stream before out[at]. */
struct cas_zero_run {
    size_t at;
    uint64_t len;
};

struct cas_client {
    cas *srv;
    int fd;
    ev_io rio, wio;
    ev_timer linger;           /* after EOF: how long we wait to send what is queued */
    ev_timer handshake;        /* closes a circuit that never creates a channel */
    struct sockaddr_in peer;
    char peer_text[32];
    char *host, *user;
    uint16_t minor;
    bool events_off;
    bool reading;              /* rio started */
    bool held;                 /* complete requests wait in `in` for a flush to go on */
    bool eof;                  /* no more input: close once the output is sent */
    bool halt;                 /* a fatal protocol error: handle no more requests */
    bool dead;                 /* close at the next reap */
    bool dirty;
    bool warned_channels;      /* the channel limit was logged for this circuit */
    uint8_t *in;
    size_t in_len, in_cap;
    uint64_t discard;          /* bytes of a refused oversize message still to skip */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    struct cas_zero_run *runs; /* zero fill queued in the output, oldest first */
    size_t run_head, n_runs, runs_cap;
    uint64_t zeros;            /* their total */
    cas_channel *channels;     /* uthash by sid */
    size_t n_channels;
    uint32_t next_sid;
    cas_link *links;           /* uthash by PV */
    size_t n_subs;
    size_t queued;             /* undelivered updates in its subs' queues */
    cas_sub *pend_head, *pend_tail;
    cas_link *stale_head, *stale_tail;
    cas_client *prev, *next;
    cas_client *dirty_next;
};

struct cas_cache_slot {
    const pv *pv;
    uint64_t gen;
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
    bool accept_paused;
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
    ev_idle again;             /* set while clients wait for the next flush */
    cas_client *clients;
    cas_client *dirty;
    size_t n_clients;
    struct cas_cache_slot cache[CAS_CACHE_SLOTS];
    unsigned cache_next;
    uint8_t *scratch;          /* decoded write values */
    size_t scratch_cap;
    uint64_t max_reply;        /* largest reply or update payload we build */
    struct cas_stats stats;
    ev_tstamp log_window;      /* rate limit of cas_log() */
    unsigned log_lines, log_suppressed;
    uint8_t udp_buf[CA_MAX_UDP_RECV]; /* one datagram at a time */
};

/* cas.c */
void cas_log(cas *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
unsigned cas_rights(cas *s, const pv *pv, const cas_client *c);
/* The client as pvdb sees a writer (valid while c lives and its names stay). */
pv_client cas_client_who(const cas_client *c);
/* The largest request payload we take in now: EPICS_CA_MAX_ARRAY_BYTES, or
 * with AUTO_ARRAY_BYTES what a write of the largest PV served can need. */
uint64_t cas_max_request(const cas *s);

/* udp.c: name service and beacons */
int cas_udp_open(cas *s, char *err, size_t errlen);
void cas_udp_close(cas *s);
/* One received datagram (VERSION and SEARCH messages); replies go through fd. */
void cas_udp_handle(cas *s, int fd, const uint8_t *buf, size_t len,
                    const struct sockaddr_in *from);

/* circuit.c: TCP circuits */
void cas_client_accept(cas *s, int fd, const struct sockaddr_in *peer);
void cas_client_close(cas_client *c);
void cas_client_mark_dirty(cas_client *c);
void cas_client_flush(cas_client *c);
void cas_client_reap(cas *s);
/* Unsent output, zero fill included. */
uint64_t cas_client_backlog(const cas_client *c);
/* Append a header (extended when needed) that announces `size` payload
 * bytes, and reserve `reserve` (<= size) of them; returns where they go, or
 * NULL if the client is closing. The caller appends the rest. */
uint8_t *cas_put_hdr_n(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                       uint32_t p1, uint32_t p2, size_t reserve);
/* The same, reserving the whole payload. */
uint8_t *cas_put_hdr(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                     uint32_t p1, uint32_t p2);
/* Append n zero bytes to the output (queued as a count when large). */
void cas_put_zeros(cas_client *c, uint64_t n);
void cas_send_hdr(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                  uint32_t p1, uint32_t p2);
void cas_send_error(cas_client *c, const uint8_t *req_hdr, size_t req_len, uint32_t cid,
                    uint32_t status, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void cas_send_access_rights(cas_channel *ch);
void cas_channel_free(cas_channel *ch);
bool cas_needs_ext(uint64_t size, uint32_t count);

/* monitor.c: links, subscriptions, encodings */
/* The payload size of count elements of type, padded to 8, in 64 bits. */
uint64_t cas_payload_size(uint16_t type, uint32_t count);
/* Attach a new channel to its client's link for the PV (made if needed). */
int cas_link_attach(cas_channel *ch);
void cas_link_detach(cas_channel *ch);
cas_sub *cas_sub_new(cas_channel *ch, uint32_t subid, uint16_t type, uint32_t count,
                     unsigned mask);
void cas_sub_free(cas_sub *sub);
/* Queue the PV's current value (or a denial) for this subscription. */
void cas_sub_post(cas_sub *sub);
void cas_client_drain_subs(cas_client *c);
/* The PV's current value encoded as `type` for a reply of `count` elements
 * (shared; cas_msg_unref it), or NULL when out of memory. */
cas_msg *cas_msg_current(cas *s, const pv *pv, uint16_t type, uint32_t count);
void cas_msg_unref(cas_msg *m);
/* The status a reply of count elements from m carries. */
uint32_t cas_msg_status(const cas_msg *m, uint32_t count);
/* Append a reply or update: header (p1 and p2 as given), then count elements
 * of m's type from m, all zero when the status is not ECA_NORMAL. The caller
 * has checked the size against the limits. */
void cas_put_msg(cas_client *c, uint16_t cmd, uint32_t count, uint32_t p1, uint32_t p2,
                 const cas_msg *m);
void cas_cache_clear(cas *s);
/* Encode a reply's count: the requested count, or for count 0 what is valid. */
uint32_t cas_reply_count(const pv *pv, uint32_t requested);

#endif
