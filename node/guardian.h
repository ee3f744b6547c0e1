/* guardian.h — the API for writing guardiand systems in C.
 *
 * A *system* is a shared object that defines a state graph with GRD_SYSTEM().
 * guardiand loads it with dlopen and runs it as any number of *nodes*, each
 * with its own name, arguments and private data (SUS_ETMX and SUS_ITMX both
 * run `sus`, with optic=ETMX and optic=ITMX).
 *
 * State code runs on the daemon's one loop, next to hundreds of other nodes:
 * it must never block. Wait with timers and return GRD_CONTINUE; you will be
 * called again next cycle (16 times a second by default).
 *
 * The semantics are Guardian's:
 *   - a state's main() runs once when the state is entered, then run() runs
 *     every cycle until one of them returns GRD_DONE;
 *   - a missing main or run counts as "done at once";
 *   - returning grd_jump(n, "X") moves to state X at once, edge or not;
 *   - checks (Guardian's decorators) run before every main() and run() of
 *     their state, in order: first .checks (both methods), then .main_checks
 *     before main() or .run_checks before run(), as Guardian decorates main
 *     and run separately; a check that returns a jump wins, GRD_CONTINUE
 *     (or GRD_DONE) lets the next check and then the state's own code run;
 *   - grd_error() puts the node in ERROR: it holds until a state is
 *     requested again or the system is reloaded. An error reported with
 *     grd_error() wins over whatever the function then returns.
 *
 * Every grd_* function checks its arguments: a NULL or unknown node, a NULL
 * name or an over-long string gives an error return (or NULL, or false),
 * never a crash; long strings are truncated.
 *
 * A complete example is systems/sus.c; docs/systems.md is the guide.
 */
#ifndef GUARDIAND_GUARDIAN_H
#define GUARDIAND_GUARDIAN_H

#include <stdbool.h>
#include <stddef.h>

/* Bumped whenever this header changes what a built system hands guardiand.
 * guardiand loads systems built against this version or GRD_API_OLDEST and
 * refuses any other (version 1 read with this header would give states the
 * wrong size). 2: grd_state gained main_checks and run_checks; 3: grd_system
 * gained weights, at its end, so a version 2 system is still loaded (its
 * grd_system ends before weights, which is never read for it: unweighted). */
#define GRD_API_VERSION 3
#define GRD_API_OLDEST 2

#define GRD_MAX_CHECKS 8
#define GRD_MAX_STATES 256
#define GRD_MAX_EDGES 4096         /* explicit edges; goto states need none */
#define GRD_MAX_WEIGHTS 4096       /* entries of GRD_WEIGHTS */
#define GRD_WEIGHT_MIN 1e-6        /* the range of an edge weight; paths add weights */
#define GRD_WEIGHT_MAX 1e6         /* in steps of GRD_WEIGHT_MIN (see GRD_WEIGHTS) */
#define GRD_NAME_MAX 39            /* longest state name: an EPICS string holds 39 */
#define GRD_MAX_PRIV (16u << 20)   /* largest priv_size */

typedef struct grd_node grd_node;

/* What state code returns. */
typedef enum grd_ret {
    GRD_CONTINUE = 0, /* not done: run() again next cycle */
    GRD_DONE = 1,     /* done: move on along the path, or hold here if requested */
    GRD_JUMP = 2,     /* use grd_jump(): go to the named state */
    GRD_ERROR = 3,    /* use grd_error(): report an error and hold */
} grd_ret;

typedef grd_ret (*grd_state_fn)(grd_node *n);

typedef struct grd_state {
    const char *name;      /* 1..GRD_NAME_MAX characters of A-Z a-z 0-9 _ */
    int index;             /* published in STATE_N; unique within the system */
    bool request;          /* requestable: offered in the REQUEST_ENUM menu */
    bool goto_;            /* reachable from every state (an implicit edge from each) */
    bool no_redirect;      /* a new request does not interrupt this state */
    grd_state_fn main;     /* once, on entry */
    grd_state_fn run;      /* every cycle after main, until done */
    const grd_state_fn *checks;      /* GRD_CHECKS(...): run before main and run */
    const grd_state_fn *main_checks; /* GRD_CHECKS(...): then before main only */
    const grd_state_fn *run_checks;  /* GRD_CHECKS(...): then before run only */
} grd_state;

typedef struct grd_edge {
    const char *from, *to;
} grd_edge;

/* The weight of an edge (GRD_WEIGHTS below); edges without one weigh 1. */
typedef struct grd_weight {
    const char *from, *to;
    double weight;
} grd_weight;

typedef struct grd_system {
    unsigned api_version;  /* GRD_API_VERSION, filled in by GRD_SYSTEM */
    const char *name;
    const char *request;   /* the initial REQUEST */
    const char *nominal;   /* the state in which the node is OK */
    const grd_state *states; /* GRD_STATES(...): must include INIT */
    const grd_edge *edges;   /* GRD_EDGES(...) */
    size_t priv_size;        /* bytes of zeroed private data per node (grd_priv) */
    /* Optional: called once when a node starts running this system (after
     * its private data is allocated) and when it stops or is reloaded. */
    void (*node_init)(grd_node *n);
    void (*node_fini)(grd_node *n);
    /* Optional: GRD_WEIGHTS(...), the edges that do not weigh 1. Last, so
     * that systems built for version 2 are still loaded (GRD_API_VERSION). */
    const grd_weight *weights;
} grd_system;

/* The symbol guardiand looks up in a system module. */
#define GRD_SYSTEM_SYMBOL "grd_system_entry"

/* Define the system of this module:
 *
 *   GRD_SYSTEM(sus,
 *       .request = "ALIGNED", .nominal = "ALIGNED",
 *       .states = GRD_STATES(
 *           GRD_STATE("INIT", 0, .goto_ = true, .main = init_main),
 *           GRD_STATE("SAFE", 10, .request = true, .goto_ = true, .main = safe_main),
 *           GRD_STATE("DAMPED", 100, .request = true, .main = damped_main,
 *                     .run = damped_run, .checks = GRD_CHECKS(watchdog_ok))),
 *       .edges = GRD_EDGES({"SAFE", "DAMPED"}, {"DAMPED", "SAFE"}));
 */
#define GRD_SYSTEM(sysname, ...)                                                                   \
    const grd_system grd_system_entry = {.api_version = GRD_API_VERSION, .name = #sysname,       \
                                         __VA_ARGS__}
#define GRD_STATE(NAME, INDEX, ...) {.name = (NAME), .index = (INDEX), __VA_ARGS__}
#define GRD_STATES(...) ((const grd_state[]){__VA_ARGS__, {.name = NULL}})
#define GRD_EDGES(...) ((const grd_edge[]){__VA_ARGS__, {NULL, NULL}})
#define GRD_CHECKS(...) ((const grd_state_fn[]){__VA_ARGS__, NULL})
/* Edge weights: .weights = GRD_WEIGHTS({"SAFE", "DAMPED", 5}, {"DAMPED", "SAFE", 0.5})
 *
 * The path a node takes to its request is the cheapest one: the least sum of
 * weights, an edge without an entry here weighing 1 (so with no weights it is
 * the shortest path, as before). Among equally cheap paths the one with the
 * fewest edges wins, and among those the one whose first edge comes earliest
 * in its state's edge order (explicit edges in the order GRD_EDGES lists
 * them, then the implicit ones to goto states in state order), then the
 * second, and so on: with every weight 1, exactly the path of version 2.
 *
 * Each entry names an edge that exists: one GRD_EDGES lists, or the implicit
 * edge from any other state to a goto state. A weight is from GRD_WEIGHT_MIN
 * to GRD_WEIGHT_MAX and counts to GRD_WEIGHT_MIN (finer differences are
 * rounded away, so 0.1 + 0.2 costs exactly 0.3). A system is refused, naming
 * the entry, for an unknown state, a missing edge, an edge from a state to
 * itself, a weight out of range (0, negative, NaN, infinite), an edge
 * weighted twice, or more than GRD_MAX_WEIGHTS entries. */
#define GRD_WEIGHTS(...) ((const grd_weight[]){__VA_ARGS__, {NULL, NULL, 0}})

/* ---- return helpers ---- */

/* Jump to a state by name: `return grd_jump(n, "TRIPPED");` An unknown name
 * is an error (the node goes to ERROR and says which name): then, and when
 * called outside main/run/check, it returns GRD_ERROR. */
grd_ret grd_jump(grd_node *n, const char *state);
/* Report an error: logged as "ERROR in [STATE.main]: text", ERROR=True, the
 * node holds. Returns GRD_ERROR. */
grd_ret grd_error(grd_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the node ---- */

const char *grd_name(const grd_node *n);       /* e.g. "SUS_ETMX" */
const char *grd_ifo(const grd_node *n);        /* e.g. "H1" */
const char *grd_state_name(const grd_node *n); /* the state being executed */
const char *grd_request(const grd_node *n);    /* the requested state */
/* A node argument (key=value in the node's configuration), or NULL. */
const char *grd_arg(const grd_node *n, const char *key);
double grd_arg_double(const grd_node *n, const char *key, double fallback);
/* The node's private data: priv_size zeroed bytes, kept across states. */
void *grd_priv(grd_node *n);
/* Seconds since the current state was entered. */
double grd_state_time(const grd_node *n);

/* ---- log and notifications ---- */

/* A line in the node's log: "[STATE.main] text" (.run, .check; .init and
 * .fini in node_init/node_fini). Control characters become '?'. */
void grd_log(grd_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An operator notification: logged when it appears, shown in USERMSG with
 * NOTIFICATION=True. Called from main(), it stays until the node leaves the
 * state (Guardian's notify() once on entry); from run() or a check, it stays
 * while it is called again each cycle (notify while the condition holds), and
 * at least 1 s. USERMSG shows the newest (docs/systems.md 4.7). */
void grd_notify(grd_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- timers ---- */

/* Start (or restart) the named countdown; logged as timer['name'] = seconds.
 * Timers belong to the node and live across states. Names are truncated to
 * GRD_NAME_MAX characters; at most 32 timers run at once (starting one more
 * is an error), expired ones are reused. 0, negative or NaN = expired. */
void grd_timer_start(grd_node *n, const char *name, double seconds);
/* True once the named timer has expired (or was never started). */
bool grd_timer_done(grd_node *n, const char *name);

/* ---- plant channels ----
 * Channel names are full EPICS names; grd_chan() builds "<IFO>:<suffix>".
 * Reads return the latest monitored value and never block; until a channel
 * has connected (and after a disconnect) they return GRD_ENOTCONN and the
 * node shows CONNECT=ERROR (not for a channel only read with grd_read_*,
 * below). Enum channels read and take their state names as
 * strings; char arrays read as strings; other arrays read their first
 * element. Writes are sent without waiting (a write before the channel has
 * first connected is sent when it does, for a few seconds); a write that
 * fails, now or when the server answers, puts the node in ERROR with the
 * channel and the reason, as an ezca exception would. Every channel written
 * is watched by the set-point monitor (SPM_TOTAL, SPM_CHANGED): a value that
 * later differs from what the node wrote, without the node writing it, is
 * notified ("SPM: CHAN is 0, set 1"). */
enum grd_chan_status {
    GRD_OK = 0,
    GRD_ENOTCONN = -1, /* not (yet) connected: the node shows CONNECT=ERROR */
    GRD_EBADCHAN = -2, /* no such channel (or node), or a NULL/over-long name */
    GRD_ETYPE = -3,    /* the value does not convert (e.g. NaN to long) */
    GRD_EINVAL = -4,   /* a NULL node or output argument */
    GRD_EBUSY = -5,    /* a subordinate another manager holds (below) */
};

/* "<IFO>:" + printf(fmt, ...), at most 255 characters. The string lives as
 * long as the node and identical names share one copy, so calling this every
 * cycle costs no memory. NULL if fmt is NULL or the node already holds 4096
 * distinct names (past that, or for a name that is not a valid EPICS name,
 * the node is in ERROR). Writes are echoed to the log: "[STATE.run] ezca: CHAN => 1". */
const char *grd_chan(grd_node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int grd_get_double(grd_node *n, const char *chan, double *out);
int grd_get_long(grd_node *n, const char *chan, long *out);
int grd_get_string(grd_node *n, const char *chan, char *out, size_t len);
int grd_put(grd_node *n, const char *chan, double value);
int grd_put_string(grd_node *n, const char *chan, const char *value);
/* Leave chan out of the set-point monitor (a channel other software also
 * drives). GRD_OK, or GRD_EBADCHAN for a name that cannot be taken. */
int grd_spm_ignore(grd_node *n, const char *chan);

/* Read with a default (ezca.read of an optional channel): the value, or
 * fallback when the channel is not connected, has no such value (a long of
 * NaN) or the name is bad. Unlike grd_get_*, a channel only ever read this
 * way does not put the node in CONNECT=ERROR while it is down (a channel
 * also read with grd_get_* or written does; one named with grd_chan counts
 * from then until its first grd_read_*). Never an error of the node,
 * except for a name past the 4096 (as grd_chan). */
double grd_read_double(grd_node *n, const char *chan, double fallback);
long grd_read_long(grd_node *n, const char *chan, long fallback);

/* ---- ramps and switch bits (ezca's LIGOFilter helpers, non-blocking) ----
 *
 * grd_ramp moves chan linearly from its current value to target over
 * `seconds`: the daemon writes one step each cycle, before state code runs
 * (start + (target - start) * elapsed / seconds), through the same path as
 * grd_put (the set-point monitor sees every step), and writes target exactly
 * at the end. The state waits: `return grd_ramping(n, ch) ? GRD_CONTINUE :
 * GRD_DONE;`. The log gets "ezca: CHAN => 1.5 (ramp 4 s from 0)" when it
 * starts and "ezca: CHAN => 1.5 (ramp done)" (or "cancelled by a write",
 * "abandoned: STOP", ...) when it ends, never a line per step.
 *
 * Returns GRD_OK; GRD_ENOTCONN (and CONNECT=ERROR, as grd_get_*) when the
 * channel has no value yet: no ramp; GRD_ETYPE for a target that is not
 * finite, an infinite time or a channel whose value is not a number;
 * GRD_EBADCHAN for a bad name; GRD_EBUSY with a node error when 32 ramps
 * already run. seconds <= 0 (or NaN) is grd_put(target). A ramp of a
 * channel already ramping starts again from where it is, to the new target
 * over the new time; grd_put, grd_put_string or grd_switch of a ramping
 * channel cancel its ramp (the write wins).
 *
 * Ramps belong to the node, like timers: they go on when the state is left
 * (the state moved to may wait on them) and across a reload that keeps the
 * state. Their time is execution time: PAUSE freezes them (no writes) and
 * EXEC resumes them where they were. STOP, ERROR (including a failed step
 * write) and a fresh start at INIT abandon them where they are. */
int grd_ramp(grd_node *n, const char *chan, double target, double seconds);
bool grd_ramping(grd_node *n, const char *chan);

/* Set (on) or clear the bits of mask in an integer switch channel such as a
 * front-end filter module's: reads the channel, writes only when a bit
 * changes, and logs the bits changed: "ezca: CHAN => ON: 0x0010".
 * GRD_OK (also when nothing changed); GRD_ENOTCONN as a read; GRD_ETYPE when
 * the value is not an integer 0..0xffffffff; GRD_EINVAL for a mask past 32
 * bits. The bits are the caller's (a filter module's SW1/SW2 layout is not
 * built in). */
int grd_switch(grd_node *n, const char *chan, unsigned long mask, bool on);

/* ---- other nodes (managers and monitors) ----
 * Read another node's status by name. Returns GRD_OK, or GRD_EBADCHAN if no
 * such node is known. The state name stays valid during this call of your
 * state code (not across cycles: the other node may be reloaded). */
int grd_node_ok(grd_node *n, const char *node, bool *ok);
int grd_node_state(grd_node *n, const char *node, const char **state);

/* ---- subordinates (managers: Guardian's NodeManager) ----
 * A manager declares the nodes it directs and reaches each through its
 * channels <IFO>:GRD-<SUB>_*: in-process when the subordinate runs in this
 * daemon, over Channel Access when it runs in another; the calls below behave
 * the same either way. What they read is the newest value the subordinate
 * published (in-process at once, over CA as its monitors arrive).
 *
 * Claims: grd_set_managed() writes this node's name into each subordinate's
 * MANAGER and, once the claim is held, puts it in MODE=MANAGED. The claim is
 * a lease renewed every NODE_CLAIM_RENEW s while this node executes (OP EXEC
 * or PAUSE) and lapses NODE_CLAIM_LEASE s after the renewals stop (this node
 * stopped, removed, quarantined or unreachable); STOP and removal release
 * it at once. A subordinate another manager holds refuses the claim
 * (ECA_PUTFAIL): it is reported as managed by that node (a fault, and this
 * node's notification, shown in place of any its state code makes), it is
 * not arrived, requests to it are not sent (GRD_EBUSY), and nothing is
 * written to it until the other claim lapses or is released; then this node
 * takes it within NODE_CLAIM_RENEW s. A claim an operator released (guardctl
 * release-manager) is not taken again until grd_set_managed() is called
 * again (this node notifies meanwhile).
 *
 * Someone else changing a subordinate's REQUEST or MODE is allowed (an
 * operator can always take over): this node then notifies, naming who did it
 * ("SUS_MC2 request changed by ops@host", shown in place of its state
 * code's notifications), and its own request does not overwrite theirs: a
 * grd_sub_request of the same state again is refused (GRD_EBUSY) until this
 * node requests another state, revives the subordinate (grd_revive: a
 * deliberate override), or the operator gives it back (requests this
 * manager's state). For MODE, until grd_set_managed is called again. Subordinates count in this node's
 * SUBNODES_TOTAL; SUBNODES_NOT_OK counts those not OK, with a notification
 * or set points changed (SPM), stalled, in ERROR, disconnected, or held by
 * another manager. */
#define GRD_SUBNODES_MAX 256

/* Declare subordinates: node names separated by commas and/or spaces
 * ("SUS_MC1, SUS_MC2"); NULL takes the node argument `nodes`. From node_init
 * or any state; a name declared again is the same subordinate. Returns how
 * many the node has, or GRD_EBADCHAN for a bad name or too many (the node
 * goes to ERROR, naming it; the names before it are declared). */
int grd_subnodes(grd_node *n, const char *names);
unsigned grd_subnode_count(const grd_node *n);
const char *grd_subnode(const grd_node *n, unsigned i); /* its name, or NULL */

/* Claim every subordinate and put it in MODE=MANAGED (see above). GRD_OK. */
int grd_set_managed(grd_node *n);
/* Give up the claims this node holds (MANAGER emptied; MODE and REQUEST stay). */
int grd_release(grd_node *n);

/* Request `state` of subordinate `sub`; remembered as this manager's request
 * (for arrived, revive, and to notice someone else's). GRD_OK when written or
 * to be written at the next connection; GRD_EBADCHAN if sub is not a
 * subordinate; GRD_EBUSY if another manager holds it, or if someone else's
 * request replaced this same request (above). A subordinate that
 * refuses the request (no such state) puts this node in ERROR, as a refused
 * write does. */
int grd_sub_request(grd_node *n, const char *sub, const char *state);
/* Request the manager's own last request again (Guardian's revive: a stalled
 * node moves on): of `sub`, or with sub NULL of every stalled subordinate
 * not revived yet during its stall (one in a state that cannot be
 * redirected stays stalled until that state completes). Returns how many
 * were requested again, or a grd_chan_status. */
int grd_revive(grd_node *n, const char *sub);

/* What a manager knows of a subordinate (strings "" while disconnected). */
struct grd_sub {
    char state[GRD_NAME_MAX + 1], request[GRD_NAME_MAX + 1], target[GRD_NAME_MAX + 1];
    char status[16], mode[16];    /* "DONE", "MANAGED"... */
    char manager[64];             /* its MANAGER: who holds its claim */
    char usermsg[40];             /* its notification, when it has one */
    char changed_by[40];          /* who last changed its REQUEST, MODE or OP */
    char requested[GRD_NAME_MAX + 1]; /* this manager's last request of it, "" none */
    char fault[160];              /* why it is at fault (grd_sub_faults), "" if not */
    bool connected;               /* its channels reach this node */
    bool plant_connected;         /* its CONNECT is OK: its own plant channels are connected */
    bool ok, error, notification, stalled;
    bool held;                    /* its MANAGER names this node */
    bool arrived;                 /* at this manager's request (or its own, if none) */
    bool done;                    /* arrived, and the state's code has completed */
    long spm_changed;
};
int grd_sub_status(grd_node *n, const char *sub, struct grd_sub *out);
/* Every subordinate arrived (grd_sub's arrived) / and completed (done).
 * False when any is disconnected; true with no subordinates. */
bool grd_arrived(grd_node *n);
bool grd_completed(grd_node *n);
bool grd_sub_stalled(grd_node *n, const char *sub);
/* The fault check: how many subordinates are at fault, which is what
 * SUBNODES_NOT_OK counts (above); text (when non-NULL) gets
 * "SUS_MC2 stalled, SUS_MC3 disconnected", cut to len. */
unsigned grd_sub_faults(grd_node *n, char *text, size_t len);

#endif
