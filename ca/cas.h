/* cas.h — the Channel Access server (protocol 4.13), on one libev loop.
 *
 * The server answers UDP name searches for the PVs of a pvdb, sends beacons,
 * and serves TCP circuits: channels, reads, writes and monitors. It knows PVs,
 * never nodes. Every socket is non-blocking and every reply is queued per
 * client and flushed once per loop iteration (an ev_prepare watcher), so a
 * slow client never delays another. No threads.
 */
#ifndef GUARDIAND_CAS_H
#define GUARDIAND_CAS_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvdb/pvdb.h"

#define CAS_MAX_ADDRS 32

/* Default limits; each can be changed in cas_config (guardiand.ini: ca_*).
 * Why these numbers: libca shares one circuit per server and priority
 * among all channels of a process, so circuits count client processes — a
 * control room has hundreds — and the total stays well under the descriptor
 * limit the daemon raises at start-up. acctst opens 20 000 channels on one
 * circuit and an archiver of a 1000-node host about 40 000; acctst also puts
 * 1000 subscriptions on one channel. */
#define CAS_DEFAULT_MAX_CIRCUITS 4096
#define CAS_DEFAULT_MAX_CIRCUITS_PER_HOST 512
#define CAS_DEFAULT_MAX_CHANNELS_PER_CIRCUIT 100000
#define CAS_DEFAULT_MAX_SUBS_PER_CHANNEL 1024
#define CAS_DEFAULT_HANDSHAKE_TIMEOUT 10.0  /* seconds to the first CREATE_CHAN */
#define CAS_DEFAULT_MAX_REPLY (64u << 20)   /* bytes, with EPICS_CA_AUTO_ARRAY_BYTES=YES */

/* Server settings; cas_config_from_env() fills them from the EPICS_CAS_* and
 * EPICS_CA_* variables as rsrv does (see ca-protocol.md 1.3). */
struct cas_config {
    uint16_t port;                        /* UDP search port, preferred TCP port */
    struct in_addr intf[CAS_MAX_ADDRS];   /* interfaces to bind; none = 0.0.0.0 */
    unsigned n_intf;
    struct in_addr ignore[CAS_MAX_ADDRS]; /* UDP sources to ignore */
    unsigned n_ignore;
    struct sockaddr_in beacon[CAS_MAX_ADDRS]; /* explicit beacon destinations */
    unsigned n_beacon;
    bool auto_beacon;                     /* add interface broadcast addresses */
    uint16_t beacon_port;
    double beacon_period;                 /* the longest beacon interval, seconds */
    uint32_t max_array_bytes;             /* EPICS_CA_MAX_ARRAY_BYTES (>= 16384) */
    bool auto_array_bytes;                /* EPICS_CA_AUTO_ARRAY_BYTES */
    size_t client_backlog;                /* output bytes queued before a client is throttled */
    /* Beyond these, circuits get an ERROR (ECA_ALLOCMEM) and are closed,
     * channels get CREATE_CH_FAIL, subscriptions an ERROR; each is logged. */
    unsigned max_circuits;
    unsigned max_circuits_per_host;
    unsigned max_channels_per_circuit;
    unsigned max_subs_per_channel;
    double handshake_timeout;             /* close circuits that create no channel; 0 = never */
};

/* Fill cfg from the environment (and the limits with their defaults).
 * Returns 0, or -1 with a message in err for a setting that cannot be used
 * (an unparseable address, say). */
int cas_config_from_env(struct cas_config *cfg, char *err, size_t errlen);

typedef struct cas cas;

/* Start serving db on loop. Returns NULL with a message in err on failure
 * (no socket could be bound, say). */
cas *cas_new(struct ev_loop *loop, pvdb *db, const struct cas_config *cfg, char *err,
             size_t errlen);
/* Close every circuit and socket. The pvdb is left alone. */
void cas_free(cas *s);

uint16_t cas_tcp_port(const cas *s);
uint16_t cas_udp_port(const cas *s);

/* Access rights (CA_ACCESS_READ 1 | CA_ACCESS_WRITE 2) are the pvdb's policy
 * (pv_access) for the client as a pv_client: the user and host it sent
 * (CLIENT_NAME, HOST_NAME; "" if nothing) and its peer address. A write on a
 * channel without write rights is told to the policy (pv_write_refused) and
 * fails with ECA_NOWTACCESS. */
/* Re-evaluate every channel's rights (after the rules changed); clients whose
 * rights changed get ACCESS_RIGHTS and one update per subscription. */
void cas_access_changed(cas *s);

struct cas_stats {
    size_t clients, channels, subscriptions;
    uint64_t searches, search_hits, messages_in, bytes_out, updates_sent, updates_dropped;
    uint64_t protocol_errors;
};
void cas_get_stats(const cas *s, struct cas_stats *st);

/* The CA repeater (port 5065 or EPICS_CA_REPEATER_PORT), for hosts without
 * EPICS's caRepeater. Returns NULL with a message if the port is taken (then
 * another repeater serves this host, which is fine). */
typedef struct cas_repeater cas_repeater;
cas_repeater *cas_repeater_new(struct ev_loop *loop, uint16_t port, char *err, size_t errlen);
void cas_repeater_free(cas_repeater *r);
unsigned cas_repeater_clients(const cas_repeater *r);

#endif
