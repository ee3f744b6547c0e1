/* node_priv.h — what the files of node/ share; nothing outside node/ uses it.
 *
 * Files: system.c (loading and validation), graph.c (edges and cheapest
 * paths), node.c (a node's life, operator controls, what it shows),
 * engine.c (the execution cycle), notify.c (notifications: what USERMSG shows
 * and for how long), api.c (the grd_* functions for state code),
 * chan.c (plant channels: names, reads, writes), timer.c (state-code
 * timers), ramp.c (ramps and switch bits), log.c (log lines and the per-node
 * ring), manage.c (a manager's subordinates, through their node channels).
 *
 * Words used throughout:
 *   position   a state's place in its system's state table (0..n_states-1);
 *              the node keeps positions, never grd_state pointers, so a
 *              reload only has to map names to new positions.
 *   entered    the current state's main has been called since the node moved
 *              there (or restarted it); a state moved to but not entered is
 *              "pending": its main runs on the next executing cycle.
 *   done       the last main/run of the current state returned DONE.
 *   react      a request has been made that the engine has not acted on yet.
 *
 * Invariants: cur, req and target are valid positions in sys; when !entered,
 * !in_run and !done; error implies no state code runs.
 */
#ifndef GUARDIAND_NODE_PRIV_H
#define GUARDIAND_NODE_PRIV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "node/names.h"
#include "node/node.h"

#define NODE_MAGIC 0x4752444eu     /* "GRDN": a live node */
#define NODE_NAME_MAX NAME_NODE_MAX /* node names (names.h) */
#define NODE_IFO_MAX NAME_IFO_MAX
#define NODE_ARGS_MAX 64
#define NODE_ARG_MAX 1024          /* one "key=value" */
#define NODE_TIMERS_MAX 32
#define NODE_RAMPS_MAX 32          /* ramps running at once per node (guardian.h) */
#define NODE_CHANS_MAX 4096        /* distinct interned channel names */
#define NODE_CHAN_MAX 255          /* longest channel name */
#define NODE_MSG_MAX 1024          /* longest log message (before the stamp) */
#define NODE_USERMSG_MAX 39        /* USERMSG is an EPICS string */

struct node_system {
    const grd_system *def;
    void *handle;          /* dlopen handle; NULL for wrapped systems */
    char *path;            /* "" for wrapped systems */
    dev_t dev;             /* the module file when loaded (see system.c) */
    ino_t ino;
    /* Its file's content when loaded and as last seen (node_systems_check):
     * the hash is read again only when the mtime or size moved. */
    struct module_file {
        struct timespec mtime;
        uint64_t size, hash;
        ino_t ino;
        bool valid;        /* seen: looked at and readable (else MISSING) */
    } loaded_file, seen_file;
    enum node_module_state module_state;
    node_system *next_loaded;
    unsigned refs;
    unsigned n_states, n_edges;
    int init, request, nominal; /* positions; request/nominal -1 if unset */
    /* The graph, explicit edges first (in edge order), then the implicit
     * edges to goto states (in state order): adj[adj_start[s]..adj_start[s+1]),
     * the implicit ones from adj_goto[s]; adj_cost[k] is the weight of edge
     * adj[k] in GRAPH_UNITs. */
    unsigned *adj_start;
    unsigned *adj_goto;
    unsigned *adj;
    uint64_t *adj_cost;
};

/* Paths add weights as integers, GRD_WEIGHT_MIN being 1: exact, so "equally
 * cheap" is exact too; GRD_MAX_STATES * GRD_WEIGHT_MAX of them fit easily. */
#define GRAPH_UNIT ((uint64_t)(1 / GRD_WEIGHT_MIN + 0.5)) /* a weight of 1 */

enum node_ctx { CTX_NONE, CTX_MAIN, CTX_RUN, CTX_CHECK, CTX_INIT, CTX_FINI };

struct node_arg {
    char *key, *value;
    bool read; /* grd_arg asked for it (node_unread_args) */
};

struct node_timer {
    char name[GRD_NAME_MAX + 1]; /* "" = free slot */
    double expiry;               /* host->now seconds */
    bool reported;               /* "done" has been logged */
};

struct node_chan; /* chan.c */

/* A notification (notify.c). */
#define NODE_NOTICE_SEEN 4  /* texts remembered so that repeating one is logged once */
struct node_notice {
    bool on;
    uint32_t hash;    /* of the full text: the same notification again? */
    double since;     /* node_now() when this text appeared */
    uint64_t seq;     /* the order notifications appeared in: newer is larger */
    char usermsg[NODE_USERMSG_MAX + 1];
};
struct node_notice_seen {
    uint32_t hash;
    double at; /* node_now() when last posted; 0: unused */
};

struct node_ramp {
    const char *chan;  /* the interned name (chan.c); NULL = free slot */
    double from, to, seconds;
    double elapsed;    /* seconds executed since the start: PAUSE stops this clock */
    double last_at;    /* node_now() at the last step */
    double value;      /* the last value written (from, before the first step) */
};

/* The values a node shows; compared after each change to bump generation. */
struct node_shown {
    int cur, target, req;
    int op, mode, status, error, load_status;
    bool connected, ok, active, notification, stalled;
    unsigned spm_total, spm_changed;
    double exectime_last, load_time;
    const node_system *sys;
    char usermsg[NODE_USERMSG_MAX + 1];
    char manager[NODE_NAME_MAX + 1];
    unsigned subs_total, subs_not_ok;
};

struct node {
    unsigned magic;
    char name[NODE_NAME_MAX + 1];
    char ifo[NODE_IFO_MAX + 1];
    node_host host;
    node_system *sys;
    struct node_arg *args;
    unsigned n_args;
    void *priv;

    /* execution (engine.c) */
    int cur, req, target;
    bool entered, in_run, done;
    bool stalled, nopath, error, connected, stopped;
    bool stepped;          /* node_step has run (node_start_with is too late) */
    enum node_op op;
    enum node_mode mode;
    enum node_status status;
    enum node_load_status load_status;
    double entered_at, exectime_last, load_time;
    int logged_from, logged_to, logged_target; /* -1: not logged yet */

    /* operator controls waiting for the next cycle (node.c) */
    bool react;
    bool req_pending;
    int req_next;
    bool op_pending, stop_seen;
    enum node_op op_next;
    bool mode_pending;
    enum node_mode mode_next;

    /* the state code being run */
    bool in_code;
    enum node_ctx ctx;
    int jump_to;           /* set by grd_jump, -1 if none */
    bool err_set;          /* grd_error (or a bad grd_jump) was called */
    bool err_conn;         /* ... and it is a write a lost connection stopped */
    bool conn_error;       /* the ERROR held is such one: it clears itself (below) */
    char err_msg[NODE_MSG_MAX];
    bool conn_fail;        /* a read found a channel not connected (this cycle) */
    bool notified;         /* grd_notify this cycle */

    /* what operators see */
    enum node_status trail[NODE_STATUS_TRAIL]; /* STATUS values of this step (the last = status) */
    unsigned n_trail;
    bool notification;     /* USERMSG and NOTIFICATION as shown (notify.c) */
    char usermsg[NODE_USERMSG_MAX + 1];
    struct node_notice lasting, passing; /* from main(); from anywhere else */
    bool passing_posted;   /* ... posted during this cycle */
    uint64_t notice_seq;
    struct node_notice_seen notice_seen[NODE_NOTICE_SEEN];
    char priority_msg[NODE_MSG_MAX]; /* shown instead of state code's (manage.c), "" none */
    /* USERMSG while LOAD_STATUS=ERROR: why the last LOAD failed. It is shown over
     * every notification of the (old) code still running, so that a failed LOAD
     * stays visible until a LOAD succeeds (issue 13). */
    char load_msg[NODE_USERMSG_MAX + 1];
    char manager[NODE_NAME_MAX + 1]; /* the claim's holder, "" for none */
    double manager_until;            /* node_now() when the claim lapses unless renewed */

    /* subordinates, when the node is a manager (manage.c) */
    struct node_sub *subs;
    unsigned n_subs, subs_cap, subs_not_ok;
    uint64_t generation;
    struct node_shown shown;

    /* resources of the state code */
    struct node_timer timers[NODE_TIMERS_MAX];
    struct node_ramp ramps[NODE_RAMPS_MAX];
    unsigned n_ramps;        /* active slots of ramps: 0 costs the engine one test */
    struct node_chan *chans; /* uthash, by name */
    struct node_chan *chans_by_ptr; /* the same entries, by the address of the name */
    unsigned n_chans;
    unsigned chans_down;     /* open channels not connected */
    bool chans_full_logged;
    bool conn_logged;        /* the log named the channels not connected */
    double conn_grace_until; /* when it may (0: nothing down) */
    double chans_sweep_at;   /* release unused channels then (0: no reload pending) */
    unsigned spm_total;      /* channels the set-point monitor watches for this node */
    unsigned spm_changed;    /* ... that differ from what the node wrote */
    char spm_text[NODE_MSG_MAX]; /* the newest difference, for the notification */

    /* log ring (log.c) */
    char *ring[NODE_LOG_RING];
    size_t ring_cap[NODE_LOG_RING];
    unsigned ring_next, ring_count;

    /* transitions not yet taken (node.c) */
    struct node_transition_info trans[NODE_TRANSITIONS_MAX];
    unsigned trans_first, trans_count;
};

/* system.c */
int node_system_pos(const node_system *s, const char *name); /* -1 if unknown */
const grd_state *node_system_at(const node_system *s, int pos);

/* graph.c: build the adjacency of a validated system, every edge weighing
 * 1; 0 or NODE_ENOMEM. */
int graph_build(node_system *s);
/* The index in s->adj of the edge from->to (positions), -1 if none. */
int graph_edge(const node_system *s, int from, int to);
/* The cheapest path from `from` to `to` (both included; ties: GRD_WEIGHTS
 * in guardian.h) into path[], at most GRD_MAX_STATES entries; returns its
 * length, 0 if there is none. */
unsigned graph_path(const node_system *s, int from, int to, int *path);

/* node.c */
const char *node_state_name_at(const node *n, int pos);
void node_publish(node *n);    /* bump generation if anything shown changed */
void node_record(node *n, const char *from, int to, enum node_transition how);
node *node_live(const grd_node *g); /* NULL unless g is a live node */
double node_now(const node *n);

void node_claim_check(node *n); /* each cycle: a claim not renewed lapses */

/* manage.c */
void manage_cycle(node *n);  /* each executing cycle, before state code: read, claim, renew */
/* text cut to fit USERMSG (NODE_USERMSG_MAX bytes), never inside a UTF-8 character */
void node_usermsg_cut(char dst[NODE_USERMSG_MAX + 1], const char *text);
void manage_notify(node *n); /* after state code: the manager's notification, if any */

/* notify.c: post a notification (from main() when n->ctx is CTX_MAIN), and at
 * the end of an executing cycle work out what USERMSG shows. */
void engine_notify(node *n, const char *text);
void notify_cycle_end(node *n);
void notify_state_left(node *n); /* the state was left or started again */
void notify_clear(node *n);      /* a fresh start: no notification */
void manage_stop(node *n);   /* OP=STOP: release the claims held */
void manage_free(node *n);   /* release, close, free */
bool manage_write_failed(node *n, const char *chan, bool lost, const char *why);
void manage_lost(node *n, const char *chan); /* the host lost a channel: a subordinate's? */

/* engine.c */
void engine_repath(node *n);
void engine_restart_init(node *n, const char *from, int pos, enum node_status status);
void engine_set_status(node *n, enum node_status status); /* and add it to the trail */

/* log.c */
void node_vlog(node *n, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
const char *node_ctx_name(enum node_ctx ctx); /* "main", "run", ... */
/* 1..max characters of A-Z a-z 0-9 _ (state and node names). */
bool node_valid_word(const char *name, size_t max);
/* Publish (and clear) what system code runs now: see node_executing. */
void node_exec_enter(const node *n, enum node_ctx ctx);
void node_exec_leave(void);
/* "[STATE.main] " for the code being run, "[STATE] " outside state code. */
void node_code_prefix(const node *n, char *buf, size_t len);
void node_log_free(node *n);
/* printf into buf; control characters become '?' (tabs spaces). */
void node_format(char *buf, size_t len, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* timer.c */
void node_timers_clear(node *n);

/* chan.c */
/* An error of the state code being run (the first one wins), or, outside
 * state code, of the node itself. conn: a lost connection is the cause, so
 * the error ends by itself when the channels are back (node_fail_connection). */
void node_error_as(node *n, bool conn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void node_chans_free(node *n);
void node_chans_check(node *n);    /* each cycle: log channels that stay down */
void node_chans_reloaded(node *n); /* new code: start telling used from unused */
void node_chans_sweep(node *n);    /* each cycle: release what the new code left */
/* The name interned and opened (valid as long as the node), or NULL for a bad
 * name (or a node error: too many names). */
const char *node_chan_intern(node *n, const char *chan);
/* grd_get_double without the argument checks. */
int node_chan_get(node *n, const char *chan, double *out);
/* Write chan (str, or num when str is NULL); echo logs "ezca: CHAN => value"
 * on success (a failure is always logged and is a node error). Ramps are not
 * touched: grd_put cancels a ramp of the channel, a ramp's own steps do not. */
int node_chan_write(node *n, const char *chan, double num, const char *str, bool echo);

/* ramp.c */
void node_ramps_step(node *n); /* each cycle with n_ramps: step, freeze or abandon */
/* End the ramp of chan (if any) or every ramp, logged with why ("cancelled by a write"). */
void node_ramp_cancel(node *n, const char *chan, const char *why);
void node_ramps_clear(node *n, const char *why);

#endif
