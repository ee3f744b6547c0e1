/* ctl.h — the control socket guardctl talks to, served on the daemon's loop.
 *
 * The protocol (frames of JSON) is in ctl/proto.h, shared with guardctl.
 *
 * Every request is checked against the peer's credentials, taken once when
 * the connection is accepted: its uid and gid (SO_PEERCRED) and its
 * process's real supplementary groups (SO_PEERGROUPS, else the Groups line
 * of /proc/<pid>/status), never the group file's idea of the user. Root may
 * do everything, operator_group members (effective or supplementary group)
 * read and change, anyone else who can connect (the socket's mode and group
 * decide who can) reads only.
 *
 * Slots: at most CTL_MAX_CONNECTIONS connections; the last
 * CTL_RESERVED_CONNECTIONS free ones are kept for root and the operator
 * group, and a peer outside them holds at most CTL_MAX_CONNECTIONS_PER_UID
 * per uid. A connection refused for want of a slot gets one error frame
 * ({"ok":false,"code":"EBUSY",...}) and is closed. A connection is closed
 * once control_idle_timeout has passed since its last complete request (or
 * the last of its reply written) unless it follows a log: sending a byte
 * now and then does not keep a slot.
 *
 * Files: ctl.c (the socket, framing, connections, credentials, log
 * following), commands.c (the command table, permissions and the handlers).
 */
#ifndef GUARDIAND_CTL_H
#define GUARDIAND_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ctl/proto.h"
#include "supervisor/sup.h"

#define CTL_MAX_CONNECTIONS 64
/* Of CTL_MAX_CONNECTIONS, the last free ones: only root and operator_group
 * members get them, so that everyone else together (read-only users who may
 * connect, `log -f` included) can never lock the operators out. */
#define CTL_RESERVED_CONNECTIONS 8
/* Connections one uid outside root and the operator group may hold: one
 * such user cannot take every unreserved slot from the others either. */
#define CTL_MAX_CONNECTIONS_PER_UID 16
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

/* ---- between ctl.c and commands.c ---- */

/* Who sent a request: the socket's credentials, read at accept. */
struct ctl_peer {
    struct ctl *ctl;
    uid_t uid;
    gid_t gid;               /* effective gid at connect() */
    pid_t pid;
    bool operator_member;    /* operator_group is its gid or a supplementary group */
    char user[64];           /* "" until a command needs the name (ctl_user_name) */
    char follow[64];         /* set by a `log -f` request: the node to follow */
    bool watch;              /* set by a `watch` request: send change frames */
    json_t *watch_nodes;     /* ... of these nodes (owned), or of all (NULL) */
};

/* The user name of uid for audit records and log lines, into out
 * ("uid<N>" when it has none). Names are cached per uid (see ctl.c): a
 * name-service lookup may block the loop, so it happens at most once an
 * hour per uid, and only for peers that change things. */
void ctl_user_name(struct ctl *c, uid_t uid, char *out, size_t len);
/* A refusal (permission, slots) on stderr: at most one line per 10 s, the
 * rest counted and the count logged, so a client that knocks in a loop
 * cannot flood the journal. */
void ctl_log_refusal(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run one request (already a JSON object); returns the reply object. */
json_t *ctlcmd_run(sup *s, struct ctl_peer *peer, json_t *request);
/* An error reply. */
json_t *ctl_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string of text that may not be UTF-8 (node log lines, messages):
 * invalid bytes become '?'. Never NULL unless out of memory. */
json_t *ctl_string(const char *text);

#endif
