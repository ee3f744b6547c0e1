/* ctl.h — the control socket guardctl talks to, served on the daemon's loop.
 *
 * Protocol: a Unix-domain SOCK_STREAM socket. Each request and each reply
 * is a frame: a 4-byte big-endian length, then that many bytes of UTF-8
 * JSON holding one object. A request is {"cmd": "list", "args": {...}}
 * (at most CTL_REQUEST_MAX bytes); a reply is {"ok": true, ...} or
 * {"ok": false, "error": "human message", "code": "EUNKNOWN_NODE"|...}.
 * Replies may be longer than requests (a list of a thousand nodes) but
 * never longer than CTL_REPLY_MAX. `log -f` turns a connection into a
 * stream: after its reply, one {"line": "..."} frame per new log line of
 * the node (and {"dropped": N} when the client fell behind) until the
 * client closes, or until the node stops running (stopped, destroyed or
 * removed by a SIGHUP; a restart goes on): then one {"end": "why"} frame,
 * and the daemon closes the connection.
 *
 * `watch` (guardctl list -w, status -w) subscribes a connection to changes:
 * after its reply, one {"changed": true} frame whenever what list or status
 * shows may have changed (of the nodes it names, or of any node; a node
 * started, stopped, quarantined, enabled... counts for every watcher), at
 * most CTL_WATCH_RATE a second: changes in between are coalesced into one
 * frame, and a client that does not read is owed one frame, never more, so
 * it costs no memory. The client then asks for what it shows again. The
 * frames go on until the client closes.
 *
 * Every request is checked against the peer's credentials (SO_PEERCRED):
 * root may do everything, members of operator_group read and change,
 * anyone else who can connect (the socket's mode and group decide who
 * can) reads only.
 *
 * Files: ctl.c (the socket, framing, connections, credentials, log
 * following), ctlcmd.c (the command table, permissions and the handlers).
 */
#ifndef GUARDIAND_CTL_H
#define GUARDIAND_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "supervisor/sup.h"

#define CTL_REQUEST_MAX (64 * 1024)
#define CTL_REPLY_MAX (16 * 1024 * 1024)
#define CTL_MAX_CONNECTIONS 64
#define CTL_DEFAULT_SOCKET "/run/guardiand/guardiand.sock"
#define CTL_WATCH_RATE 4        /* change frames a second, at most, per watcher */
#define CTL_WATCH_NODES 64      /* nodes a watch may name */

struct ctl;

/* Resolve the socket path (cfg.control_socket, else $RUNTIME_DIRECTORY/
 * guardiand.sock, else CTL_DEFAULT_SOCKET), create its directory if
 * missing, remove a stale socket file, bind and listen, set mode and group.
 * Connections are accepted only after ctl_start(). NULL with err set when
 * another daemon answers on the path, a group is unknown, or the socket
 * cannot be made: the daemon must not start then. */
struct ctl *ctl_new(sup *s, char *err, size_t errlen);
void ctl_start(struct ctl *c);
/* Close every connection and the socket; remove the socket file. */
void ctl_free(struct ctl *c);
const char *ctl_path(const struct ctl *c);
/* A node was removed: followers of a node that is not back by the next
 * loop iteration are told so and closed (see `log -f` above). */
void ctl_node_removed(struct ctl *c);

/* ---- between ctl.c and ctlcmd.c ---- */

/* Who sent a request. */
struct ctl_peer {
    struct ctl *ctl;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    int operator_member;     /* -1: not looked up yet, else 0/1 */
    char user[64];           /* "" until looked up */
    char follow[64];         /* set by a `log -f` request: the node to follow */
    bool watch;              /* set by a `watch` request: send change frames */
    json_t *watch_nodes;     /* ... of these nodes (owned), or of all (NULL) */
};

/* The operator group's gid; false when there is none. */
bool ctl_operator_gid(const struct ctl *c, gid_t *gid);
/* Run one request (already a JSON object); returns the reply object. */
json_t *ctlcmd_run(sup *s, struct ctl_peer *peer, json_t *request);
/* An error reply. */
json_t *ctl_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string of text that may not be UTF-8 (node log lines, messages):
 * invalid bytes become '?'. Never NULL unless out of memory. */
json_t *ctl_string(const char *text);

#endif
