/* node.h — the node runtime: systems, nodes and the execution cycle.
 *
 * This is the interface the supervisor uses. A node is driven one cycle at a
 * time by node_step(); nothing here knows of sockets, PVs or the loop. What
 * the runtime needs from outside (the time, where log lines go, plant
 * channels, other nodes) comes through a node_host table, so the engine can
 * be driven cycle by cycle in tests with a fake clock.
 *
 * Requests, mode and op changes are validated when they are made (so that a
 * bad CA put can be refused) and take effect at the start of the next cycle;
 * they may be called at any time, even from inside a host callback made by
 * state code. node_reload, node_start_at and node_claim act at once (the
 * first two refuse to run from inside the node's own state code).
 * docs/systems.md gives the execution semantics in full.
 *
 * Lifetimes: the grd_state pointers returned below point into the node's
 * system; they stay valid until the node is reloaded or freed. Strings
 * returned by accessors stay valid until the next call on the node.
 */
#ifndef GUARDIAND_NODE_H
#define GUARDIAND_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "node/guardian.h"

/* The name of a node's channel, from the IFO, the node's name and the
 * channel's suffix: "X1:GRD-SUS_ETMX_STATE" (guardian.md Part A). The one
 * home of that format: everything else calls node_channel_name. Returns
 * the length, like snprintf (>= len: cut). */
#define NODE_CHANNEL_FMT "%s:GRD-%s_%s"
int node_channel_name(char *out, size_t len, const char *ifo, const char *node,
                      const char *suffix);
/* What every node channel name starts with: "X1:GRD-". */
int node_channel_prefix(char *out, size_t len, const char *ifo);

/* Enum values are those of the node channels (guardian.md Part A). */
enum node_op { NODE_OP_STOP = 0, NODE_OP_PAUSE = 1, NODE_OP_EXEC = 2 };
enum node_mode { NODE_MODE_AUTO = 0, NODE_MODE_MANAGED = 1, NODE_MODE_MANUAL = 2 };
enum node_status {
    NODE_STATUS_ENTER = 0,
    NODE_STATUS_MAIN = 1,
    NODE_STATUS_RUN = 2,
    NODE_STATUS_DONE = 3,
    NODE_STATUS_JUMP = 4,
    NODE_STATUS_REDIRECT = 5,
    NODE_STATUS_EDGE = 6,
    NODE_STATUS_INIT = 7,
};
/* The names of those values, as the node channels' enum strings show them:
 * the one table of each (channels, guardctl, the store and the log use
 * them). node_*_name gives NULL for a value out of range (read from
 * outside); node_*_value -1 for a name that is none. */
#define NODE_OPS 3
#define NODE_MODES 3
#define NODE_STATUSES 8
extern const char *const node_op_names[NODE_OPS];
extern const char *const node_mode_names[NODE_MODES];
extern const char *const node_status_names[NODE_STATUSES];
const char *node_op_name(long v);
const char *node_mode_name(long v);
int node_op_value(const char *name);
int node_mode_value(const char *name);
enum node_error { NODE_ERROR_NONE = 0, NODE_ERROR_TRUE = 1, NODE_ERROR_CONNECT = 3 };
enum node_load_status {
    NODE_LOAD_DONE = 0,
    NODE_LOAD_REQUEST = 1,
    NODE_LOAD_SET = 2,
    NODE_LOAD_INPROGRESS = 3,
    NODE_LOAD_ERROR = 4,
};
/* How the node came to its current state (for history and the log). */
enum node_transition { NODE_TRANS_INIT, NODE_TRANS_EDGE, NODE_TRANS_JUMP, NODE_TRANS_REDIRECT };

enum node_err {
    NODE_OK = 0,
    NODE_ENOMEM = -1,
    NODE_ENOSTATE = -2,   /* no state of that name */
    NODE_EINVAL = -3,
    NODE_ENOSYS = -4,     /* system module missing or unusable */
    NODE_EBUSY = -5,      /* claimed by another manager */
    NODE_ENOPATH = -6,    /* no path between the two states */
    NODE_EREFUSED = -7,   /* a LOAD the preflight refuses (node_reload_check) */
};

/* ---- systems ---- */

typedef struct node_system node_system;

/* Load `name` from the first directory of the ':'-separated search path that
 * has <dir>/<name>.so, and validate it. On failure returns NULL and says why
 * in err (missing, wrong API version, duplicate or unknown state names, edges
 * to unknown states, bad weights, no INIT, bad request or nominal), naming the module path
 * and the state or edge. The caller owns one reference.
 *
 * Loading a module again after its file was replaced (a rebuild, or
 * `install`) gives the new code even while nodes still run the old one. Replace
 * module files, never rewrite them in place: running code is mapped from them. */
node_system *node_system_load(const char *name, const char *search_path, char *err, size_t errlen);
/* Validate a system that is already in memory (built into a program); *sys
 * must outlive the returned object. The caller owns one reference. */
node_system *node_system_wrap(const grd_system *sys, char *err, size_t errlen);
/* References: a node holds its own; the last unref frees (and dlcloses). */
void node_system_ref(node_system *s);
void node_system_unref(node_system *s);
const grd_system *node_system_def(const node_system *s);
const char *node_system_path(const node_system *s); /* "" for wrapped systems */
/* State lookup by name; NULL if unknown. */
const grd_state *node_system_state(const node_system *s, const char *name);
/* The requestable states in index order (for REQUEST_ENUM), at most max. */
unsigned node_system_requestable(const node_system *s, const grd_state **out, unsigned max);
/* The explicit edges (GRD_EDGES) leaving `from`, a state of s: their
 * targets in the system's order, each once, at most max; returns how many.
 * Goto states are reachable from every state besides (grd_state.goto_).
 * For listing (guardctl states): O(edges), not for the cycle. */
unsigned node_system_edges(const node_system *s, const grd_state *from, const grd_state **out,
                           unsigned max);
/* The edges leaving `from` whose weight is not 1 (GRD_WEIGHTS), listed or
 * to a goto state: their targets into to[] and weights into weight[], in the
 * graph's order, at most max; returns how many. For listing, not the cycle. */
unsigned node_system_weighted(const node_system *s, const grd_state *from, const grd_state **to,
                              double *weight, unsigned max);
/* Whether the graph (edges and goto states) has a path from state `from` to
 * state `to`, both by name; false if either is not a state of s. */
bool node_system_has_path(const node_system *s, const char *from, const char *to);

/* The module file a system was loaded from, and whether the file on disk
 * still holds that code (issue 13, "modified, not loaded"): its path, mtime
 * and size when loaded, and a 64-bit FNV-1a hash of its content read once at
 * load. node_systems_check() looks at each loaded module file: one stat() per
 * distinct path, and a new hash only when its inode, mtime or size moved since the
 * last look, so a touch costs one read and a changed file one read per change.
 * A file whose content differs is CHANGED, one that is gone MISSING; wrapped
 * systems have no file (NONE). Meant for a slow timer on the loop (a local
 * stat, and rarely a read of a local .so). */
enum node_module_state {
    NODE_MODULE_NONE,    /* no file: a wrapped system */
    NODE_MODULE_SAME,    /* the file holds the code that runs */
    NODE_MODULE_CHANGED, /* the file's content changed since it was loaded */
    NODE_MODULE_MISSING, /* the file is gone (or not a readable file) */
};
/* "none", "same", "changed", "missing" (guardctl's JSON). */
extern const char *const node_module_state_names[NODE_MODULE_MISSING + 1];
/* "module changed on disk since it was loaded", "module missing", "" for the others. */
const char *node_module_state_text(enum node_module_state st);
struct node_module {
    const char *path;          /* "" for wrapped systems */
    double mtime;              /* when loaded: the file's mtime (wall seconds) */
    uint64_t size, hash;       /* ... its size, and the hash of its content */
    enum node_module_state state; /* as of the last node_systems_check() */
};
void node_system_module(const node_system *s, struct node_module *out);
/* Look at every loaded module file again; returns how many systems' states
 * changed (0: nothing for a caller to show). */
unsigned node_systems_check(void);
/* FNV-1a, 64 bits, of a regular file's content, and the file's mtime, size
 * and inode (ino may be NULL) from the descriptor read; -1 with errno if it
 * cannot be read. */
int node_file_hash(const char *path, uint64_t *hash, struct timespec *mtime, uint64_t *size,
                   ino_t *ino);

/* What a LOAD would change: node_system_compare(old, new) lists, by name, the
 * states added and removed, the edges added and removed, the states whose
 * index changed and those whose requestable flag changed. The edges compared
 * are the explicit ones (GRD_EDGES) and those with a weight that is not 1,
 * shown as "A->B" or "A->B (weight 5)": a weight changed is the edge removed
 * with the old weight and added with the new.
 * Each list keeps its first NODE_DIFF_MAX entries; its count is the full one
 * (a preflight prints them, it need not hold a whole graph). */
#define NODE_DIFF_MAX 32
#define NODE_DIFF_TEXT (2 * GRD_NAME_MAX + 32)
struct node_diff_list {
    unsigned count;
    char text[NODE_DIFF_MAX][NODE_DIFF_TEXT]; /* "X", "A->B (weight 5)", "X 10->20", "+X"/"-X" */
};
struct node_system_diff {
    struct node_diff_list added, removed, edges_added, edges_removed, index, requestable;
};
void node_system_compare(const node_system *old, const node_system *new_,
                         struct node_system_diff *d);

/* ---- what a node needs from its host ---- */

typedef struct node node;

typedef struct node_host {
    void *arg;
    double (*now)(void *arg);                         /* seconds, monotonic */
    double (*wall)(void *arg);                        /* seconds since 1970, for log stamps */
    void (*log)(void *arg, node *n, double wall, const char *line); /* a complete log line, stamped wall */
    /* Plant channels. open (optional) gives the host's reference to a
     * channel the node names, or NULL with a reason in err (a name the host
     * refuses: a node error); *up says whether it can be read now, and later
     * changes come through node_chan_connection. close releases it. Without
     * open, the handle is NULL and names are taken as they are.
     * get fills num (when non-NULL) with the value as a number, or str (when
     * non-NULL, len > 0) with it as a string; put writes str when non-NULL,
     * else num, and says why it failed in why. Both return a grd_chan_status;
     * NULL means "not connected" for everything. A write that fails later
     * comes back through node_fail. */
    void *(*open)(void *arg, node *n, const char *chan, bool *up, char *err, size_t errlen);
    void (*close)(void *arg, node *n, void *handle);
    int (*get)(void *arg, node *n, const char *chan, void *handle, double *num, char *str,
               size_t len);
    int (*put)(void *arg, node *n, const char *chan, void *handle, double num, const char *str,
               char *why, size_t whylen);
    /* Leave the channel out of the set-point monitor (optional). */
    void (*spm_ignore)(void *arg, node *n, void *handle);
    /* Optional: a number that changes whenever what get returns may have,
     * 0 while it cannot be read (a reader skips reading what it has). */
    uint64_t (*version)(void *arg, node *n, void *handle);
    /* Another node by name (managers, monitors); NULL if unknown. */
    node *(*find)(void *arg, const char *name);
} node_host;

/* ---- nodes ---- */

/* A node named `name` (1-63 characters of A-Z a-z 0-9 _) running sys, with
 * key=value arguments (args may be NULL; n_args pairs as "key=value"
 * strings, keys unique). It starts in INIT with REQUEST = the system's
 * request, MODE AUTO, OP EXEC. It takes its own reference on sys; now and
 * wall must be set in host, which is copied. */
node *node_new(const char *name, const char *ifo, node_system *sys, const char *const *args,
               unsigned n_args, const node_host *host, char *err, size_t errlen);
void node_free(node *n);

/* One execution cycle (Guardian's semantics; see guardian.h). */
void node_step(node *n);

/* Operator controls: validated now, applied at the start of the next cycle.
 * node_request returns NODE_ENOSTATE for an unknown state name. */
int node_request(node *n, const char *state);
int node_set_mode(node *n, enum node_mode mode);
int node_set_op(node *n, enum node_op op);
/* The controls a node starts with (a restart's saved ones), in force at
 * once rather than at the next cycle: only before its first step, as if it
 * had been created with them, so that its channels show them from the start
 * and a stop before that step keeps them (a quarantined node never steps).
 * request NULL, mode or op -1: that default stays. NODE_ENOSTATE for an
 * unknown state, NODE_EINVAL for a bad mode or op or a node that has run;
 * either way nothing changes. */
int node_start_with(node *n, const char *request, int mode, int op);
/* Switch to another (reloaded) system without leaving the current state if
 * it still exists; otherwise start again from INIT. Clears ERROR. Takes its
 * own reference on sys and drops the one on the old system. Errors (sys NULL:
 * NODE_ENOSYS) leave the node as it was and set LOAD_STATUS=ERROR. */
int node_reload(node *n, node_system *sys, char *err, size_t errlen);
/* A LOAD's preflight, before switching (issue 13): NODE_EREFUSED, with which
 * in `why`, if the node's current state, its request or its nominal state is
 * not in `sys`, or `sys` has no path from the current state to the request;
 * NODE_OK if the switch strands nothing. It changes nothing: the caller
 * refuses (node_load_failed) unless an operator forced the LOAD. */
int node_reload_check(const node *n, const node_system *sys, char *why, size_t whylen);
/* A LOAD under way shows LOAD_STATUS REQUEST (asked), SET (accepted), then
 * INPROGRESS (loading, comparing, switching) before DONE (node_reload) or
 * ERROR (node_load_failed). NODE_EINVAL for any other phase. A failure shown
 * before (USERMSG, ACTIVE=False) holds until a LOAD succeeds. */
int node_load_phase(node *n, enum node_load_status phase);
/* The supervisor could not load the new code: LOAD_STATUS=ERROR, `why` goes
 * to the node's log; the old code keeps running. */
void node_load_failed(node *n, const char *why);
#define NODE_CONNECT_GRACE 2.0 /* s a channel may take to connect before the log names it */
#define NODE_CHAN_SWEEP 30.0   /* s after a reload: references the new code did not use go */

/* The host's news about a channel the node holds: connected (up) or lost.
 * The node shows CONNECT=ERROR while any is down, and logs the changes. */
void node_chan_connection(node *n, const char *chan, bool up);
/* The set-point monitor's news about a channel the node holds (the plant
 * says; plant.h): what the node wrote is watched (tracked) or no longer,
 * the channel differs from it (text: "X1:CHAN is 0, set 1") or matches
 * again. While any differs, the node notifies the newest difference. */
enum node_spm { NODE_SPM_TRACKED, NODE_SPM_UNTRACKED, NODE_SPM_DIFFERS, NODE_SPM_MATCHES };
void node_spm(node *n, const char *chan, enum node_spm ev, const char *text);
unsigned node_spm_total(const node *n);
unsigned node_spm_changed(const node *n);
/* Each channel the node holds, with the host's handle (NULL when not
 * open); for listing (guardctl spm). */
void node_chan_foreach(node *n, void (*fn)(void *arg, const char *chan, void *handle), void *arg);
/* An error found outside the node's code (a write the plant refused later):
 * ERROR=True with this message, held until a request or a reload, as an
 * error of state code is. */
void node_fail(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a write a lost (or never made) connection stopped: ERROR=Connect,
 * which ends by itself when every channel of the node is connected again,
 * and the state is entered again (Guardian retries). */
void node_fail_connection(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A manager's claim on this node (what its MANAGER channel shows). Managers
 * may run in other daemons, so a claim is a lease: the holder renews it by
 * claiming again (a manager does every NODE_CLAIM_RENEW s), and a claim not renewed
 * for NODE_CLAIM_LEASE s lapses, whatever stopped the holder (stopped,
 * destroyed, quarantined, unreachable). A lapse only frees the claim: REQUEST
 * and MODE stay as the holder left them. "" releases; the holder's name
 * renews; another name takes a node that no live claim holds, and otherwise
 * gets NODE_EBUSY (the holder is node_manager()). A name must be a node name
 * (NODE_EINVAL). */
#define NODE_CLAIM_LEASE 5.0
#define NODE_CLAIM_RENEW 1.0
int node_claim(node *n, const char *manager);
/* An operator takes the claim back: MANAGER empties (logged as the
 * operator's). The manager sees its live claim emptied and does not claim
 * the node again until its code asks anew (guardian.h, grd_set_managed). */
int node_release_manager(node *n);

/* A write the node made failed later (the plant says): a subordinate's
 * channel goes to the manager code; any other is an error of the node
 * (lost: ERROR=Connect, node_fail_connection; otherwise node_fail). */
void node_write_failed(node *n, const char *chan, bool lost, const char *why);

/* A manager's subordinates (guardian.h): how many, and how many are at fault
 * (SUBNODES_TOTAL and SUBNODES_NOT_OK), and what it knows of the i-th. */
unsigned node_subnodes(const node *n, unsigned *not_ok);
const char *node_subnode(const node *n, unsigned i, struct grd_sub *out);

/* ---- what a node shows (the node channels read these) ---- */

const char *node_name(const node *n);
const node_system *node_system_of(const node *n);
const grd_state *node_state(const node *n);   /* current */
const grd_state *node_target(const node *n);  /* next on the path (or current) */
const grd_state *node_requested(const node *n);
const grd_state *node_nominal(const node *n); /* NULL if the system has none */
/* The path the node works out from its current state to its request (the
 * cheapest; TARGET is its second state): current first, request last, at
 * most max states; 1 at the request, 0 when there is none (or max is too
 * small). The graph's path, whatever the mode: a MANUAL or stalled node
 * does not follow it. Computed afresh, O(states + edges): for operators
 * (guardctl status), not every cycle. */
unsigned node_path(const node *n, const grd_state **out, unsigned max);
enum node_op node_op(const node *n);
enum node_mode node_mode(const node *n);
enum node_status node_status(const node *n);
/* The STATUS values the node passed through since this was last called (in
 * its last step: ENTER, MAIN, DONE, EDGE, say), oldest first, at most max;
 * the last is node_status(). Publishing each in turn lets a monitor see every
 * phase, even those that began and ended within one cycle. */
unsigned node_take_status_trail(node *n, enum node_status *out, unsigned max);
/* As many as the CA server queues per subscription before it coalesces
 * (CAS_SUB_QUEUE): more in one step would be coalesced anyway. */
#define NODE_STATUS_TRAIL 4
enum node_error node_error(const node *n);
enum node_load_status node_load_status(const node *n);
bool node_connected(const node *n);
/* Jumped while MANAGED or MANUAL and waiting for a new request. */
bool node_stalled(const node *n);
bool node_ok(const node *n);
bool node_active(const node *n);
/* A notification from a state's main() stays until the state is left; any
 * other stays while it is posted again each cycle, and at least this long. */
#define NODE_NOTICE_MIN 1.0 /* seconds */
const char *node_usermsg(const node *n);      /* "" when there is no notification */
const char *node_error_message(const node *n); /* why ERROR is set; "" when it is not */
bool node_notification(const node *n);
double node_exectime(const node *n);           /* seconds in the current state */
double node_exectime_last(const node *n);      /* seconds the previous state took */
const char *node_manager(const node *n);
double node_load_time(const node *n);          /* wall time the system was loaded */
/* Incremented whenever anything above changes except exectime: lets the
 * channel layer skip nodes that did nothing this cycle. */
uint64_t node_generation(const node *n);

/* A transition, for history: from, to and how. The names are copies, so they
 * outlive reloads ("" for `from` when the node starts). */
struct node_transition_info {
    char from[GRD_NAME_MAX + 1], to[GRD_NAME_MAX + 1], request[GRD_NAME_MAX + 1];
    enum node_transition how;
    double wall;
};
/* A node queues at most this many; when the caller takes none, the oldest go. */
#define NODE_TRANSITIONS_MAX 64
/* Transitions since the last call (at most max), oldest first. */
unsigned node_take_transitions(node *n, struct node_transition_info *out, unsigned max);

/* ---- what is executing, for the crash handler ---- */

/* Set around every call into a system's code (state functions, checks,
 * init/fini hooks) and cleared after it, so that a crash handler can say
 * which node, state and phase it interrupted. Plain stores of pointers to
 * strings that live as long as the node and its system; NULL outside system
 * code. Read it only from a signal handler or after the fact. */
struct node_exec {
    const char *volatile node;
    const char *volatile state;
    const char *volatile phase; /* "main", "run", "check", "init", "fini" */
};
extern struct node_exec node_executing;

/* The keys of the node's arguments its system has not read (grd_arg) so
 * far, at most max; returns how many. Right after node_new, an argument
 * node_init did not read is likely a mistyped key: the host warns. */
unsigned node_unread_args(const node *n, const char **keys, unsigned max);

/* ---- the node's log ---- */

/* A line in the node's log (and to host->log), formatted as its own: the
 * host's "stopped by ..." lines read with the node's. */
void node_log(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define NODE_LOG_RING 128 /* ~18 MB for 1000 busy nodes; the full log goes to stdout */
/* The last at most max lines, oldest first; returns how many. The pointers
 * stay valid until the node logs again. */
unsigned node_log_lines(const node *n, const char **out, unsigned max);
/* Lines of an earlier run of the node (oldest first), put into its ring
 * before its own, without going to host->log: a restart keeps the log. */
void node_log_adopt(node *n, const char *const *lines, unsigned count);

/* ---- running a system from the command line (guardian MODULE STATE [REQUEST]) ---- */

/* Start `n` in `state` instead of INIT, heading for `request` (NULL: stay in
 * state), at once. NODE_ENOSTATE if either is unknown, NODE_ENOPATH if the
 * graph has no path from state to request (nothing changes either way).
 * Private data of the state code and its arguments are those of a normal
 * node; the caller steps it with node_step() until it is done. */
int node_start_at(node *n, const char *state, const char *request);
bool node_done(const node *n); /* at the requested state with status DONE, no error */

#endif
