/* proto.h — the control protocol, shared by the daemon (ctl/ctl.c) and
 * guardctl: the one home of its framing and limits.
 *
 * A Unix-domain SOCK_STREAM socket. Each request and each reply is a frame:
 * a 4-byte big-endian length, then that many bytes of UTF-8 JSON holding one
 * object. A request is {"cmd": "list", "args": {...}} (at most
 * CTL_REQUEST_MAX bytes); a reply is {"ok": true, ...} or {"ok": false,
 * "error": "human message", "code": "EUNKNOWN_NODE"|...}. Replies may be
 * longer than requests (a list of a thousand nodes) but never longer than
 * CTL_REPLY_MAX. `log -f` turns a connection into a stream: after its reply,
 * one {"line": "..."} frame per new log line of the node (and {"dropped": N}
 * when the client fell behind) until the client closes, or until the node
 * stops running (stopped, destroyed or removed by a reload; a restart goes
 * on): then one {"end": "why"} frame, and the daemon closes the connection.
 *
 * `watch` (guardctl list -w, status -w) subscribes a connection to changes:
 * after its reply, one {"changed": true} frame whenever what list or status
 * shows may have changed (of the nodes it names, or of any node; a node
 * started, stopped, quarantined, enabled... counts for every watcher), at
 * most CTL_WATCH_RATE a second (ctl.h): changes in between are coalesced
 * into one frame, and a client that does not read is owed one frame, never
 * more, so it costs no memory. The client then asks for what it shows
 * again. The frames go on until the client closes.
 *
 * Header only, with no dependencies: guardctl includes it without the
 * daemon.
 */
#ifndef GUARDIAND_CTL_PROTO_H
#define GUARDIAND_CTL_PROTO_H

#include <stdint.h>

#define CTL_FRAME_HEADER 4                 /* bytes of the big-endian length */
#define CTL_REQUEST_MAX (64 * 1024)        /* bytes of a request's JSON */
#define CTL_REPLY_MAX (16 * 1024 * 1024)   /* bytes of a reply's JSON */
#define CTL_DEFAULT_SOCKET "/run/guardiand/guardiand.sock"

/* Error codes a client acts on (others only say what went wrong). */
#define CTL_EPERM "EPERM"                  /* the peer may not do that: guardctl exits 4 */
#define CTL_EINVAL "EINVAL"                /* a bad argument: guardctl exits 2 */
#define CTL_EUNKNOWN_CMD "EUNKNOWN_CMD"    /* no such command: guardctl exits 2 */

static inline uint32_t ctl_frame_len(const unsigned char h[CTL_FRAME_HEADER])
{
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

static inline void ctl_frame_put_len(unsigned char h[CTL_FRAME_HEADER], uint32_t len)
{
    h[0] = (unsigned char)(len >> 24);
    h[1] = (unsigned char)(len >> 16);
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
}

#endif
