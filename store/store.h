/* store.h — persistence: the node registry, node state, history, boots and
 * crashes in one SQLite file (schema/ holds the tables and their migrations).
 *
 * The store must never stall the loop. Everything a running node produces
 * (store_node_state, store_transition, store_fault, store_audit,
 * store_log_line) is only queued in memory; an ev_timer commits the queue every flush_interval in ONE
 * transaction with reused prepared statements, spending at most flush_budget
 * of loop time per flush (what does not fit follows 10 ms later; node states,
 * latest value wins, are then written once per interval). SQLite's automatic
 * checkpoints are off: a PASSIVE checkpoint runs in its own loop iteration
 * whenever the WAL passes checkpoint_pages, so its cost is not added to a
 * flush and stays small. The synchronous calls below (open, seed, registry
 * changes, journal import, queries) are single short transactions meant for
 * start-up, operator actions and the control socket.
 *
 * Degraded mode: when a flush fails (disk full, read-only, locked, I/O error,
 * corruption) the store logs one line, keeps the queue, shows the error in
 * store_status(), and retries with a backoff (up to max_backoff); when a flush
 * works again it logs one line and commits everything still queued. It never
 * aborts. The queue is bounded: past max_queued history records the oldest
 * are dropped and counted. Node log lines have a queue of their own
 * (max_log_queued, its drops counted apart), written after history, so that
 * a chatty node never pushes out transitions or audit records. The latest
 * REQUEST/MODE/OP/STATE of each node is never dropped (one slot per node,
 * latest value wins).
 *
 * A database the store cannot trust is never written: an existing file is
 * first checked without modifying it (its header read by hand, then SQLite
 * read-only: user_version, application_id and PRAGMA quick_check), and
 * refused if it is not an SQLite database, another program's database or
 * damaged (STORE_ECORRUPT), unreadable (STORE_EIO), or of a schema newer than
 * this binary (STORE_ENEWER). Only then is it opened read-write and migrated,
 * one transaction per migration.
 *
 * The registry rule (store_seed): the configuration file seeds the registry,
 * and the registry then wins for what was changed at run time.
 *   - A node of the file that is not registered is inserted (origin config).
 *   - A node of the file whose system or arguments differ from what the file
 *     said last time (config_digest) is updated from the file: the file
 *     changed, so the file wins (its system and arguments, enabled, a runtime
 *     destroy forgotten; a runtime node of that name becomes a config node).
 *     Its saved REQUEST/MODE/OP stay: the caller checks them against the
 *     system it loads.
 *   - Otherwise the registry wins: a runtime disable or destroy of a config
 *     node, and nodes created at run time, survive restarts.
 *   - A config node that is no longer in the file is removed from the
 *     registry (it is not listed and does not run) but its saved state is
 *     kept for retention_days: when the file names it again it comes back
 *     with its saved REQUEST/MODE/OP, so a mistaken edit can be undone. A
 *     runtime create of that name replaces it. Runtime nodes are never
 *     removed by the file. History rows are never deleted with a node.
 * Registry changes (seed, create, destroy, enable, release) are written at
 * once, not queued: they are rare operator actions whose caller must know
 * whether they were saved. In degraded mode they fail with STORE_EIO.
 *
 * Words used here:
 *   node name   1..STORE_NAME_MAX characters of A-Z 0-9 _ (node/names.h; others:
 *               STORE_EINVAL).
 *   time        wall-clock seconds since 1970 (double).
 *   history     transitions, faults and audit records: queued, pruned after
 *               retention_days. Crashes are never pruned.
 *   log line    one line of a node's log as node/log.c formats it (stamp, node,
 *               message), with its stamp as a time: queued, pruned after
 *               log_retention_days. Kept with no tie to the registry.
 *
 * Single threaded: every call runs on the caller's loop.
 */
#ifndef GUARDIAND_STORE_H
#define GUARDIAND_STORE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_NAME_MAX 63      /* node names */
#define STORE_TEXT_MAX 255     /* system and state names, modes, ops: longer ones are refused;
                                * in history records (hosts, users, values, kinds) they are cut */
#define STORE_CHANNEL_MAX 511  /* channel names in audit records: longer ones are cut */
#define STORE_MESSAGE_MAX 1023 /* fault messages: longer ones are cut */
#define STORE_LINE_MAX 2047    /* node log lines: longer ones are cut */
#define STORE_ROWS_MAX 100000  /* rows one query gives at most */

enum store_err {
    STORE_OK = 0,
    STORE_ENOMEM = -1,
    STORE_EINVAL = -2,   /* a bad argument: node name, args, options */
    STORE_EIO = -3,      /* cannot open, read or write the database (or the journal) */
    STORE_ECORRUPT = -4, /* not an SQLite database, or damaged */
    STORE_ENEWER = -5,   /* its schema is newer than this binary */
    STORE_ENOENT = -6,   /* no such node */
    STORE_EEXIST = -7,   /* a node of that name is registered */
};
const char *store_strerror(int err);

typedef struct store store;

/* One log line, without a newline. */
typedef void (*store_log_fn)(void *arg, const char *line);

/* Zero-initialise and set what you need; 0 means the default. */
struct store_options {
    const char *path;        /* required; relative to the working directory */
    double flush_interval;   /* seconds between flushes (0.25) */
    double flush_budget;     /* loop time one timer flush may take, seconds (0.002) */
    double max_backoff;      /* longest wait between retries of a failing flush (5 s) */
    double retention_days;   /* history older than this is pruned (90); < 0: never */
    double log_retention_days; /* node log lines older than this are pruned (14); < 0: never */
    size_t max_queued;       /* history records kept in memory (200000) */
    size_t max_log_queued;   /* node log lines kept in memory (100000) */
    int busy_timeout_ms;     /* how long SQLite waits for another writer's lock (50) */
    unsigned checkpoint_pages; /* WAL pages that trigger a PASSIVE checkpoint (128 = 512 KiB) */
    bool skip_check;         /* skip PRAGMA quick_check at open (a large file takes long) */
    store_log_fn log;        /* NULL: "store: <line>" on stderr */
    /* When the caller's loop is next busy (CLOCK_MONOTONIC seconds; NULL:
     * never). A timed flush or checkpoint that would not end before then is
     * put off until just after it, for at most max_defer (0.05 s), so that
     * the disk does not make the caller's next deadline late. */
    double (*next_busy)(void *arg);
    void *busy_arg;
    double max_defer;
    void *log_arg;
};

/* Open (or create) the database and start flushing on loop. loop may be NULL:
 * then nothing runs by itself and the caller calls store_flush(). On failure
 * returns NULL, sets *code (when code is not NULL) to a store_err and says
 * why in err, naming the file (and both versions for STORE_ENEWER). History
 * older than the retention is pruned here (bounded in time; the rest goes in
 * later flushes), and then hourly. */
store *store_open(struct ev_loop *loop, const struct store_options *opt, int *code, char *err,
                  size_t errlen);
/* Flush what is queued (one attempt), stop the timer, close the file. */
void store_close(store *s);

/* ---- the node registry ---- */

/* A node as the configuration file defines it. args are "key=value" strings
 * with unique keys, no newline (the order does not matter). */
struct store_node_def {
    const char *name;
    const char *system;
    const char *const *args;
    unsigned n_args;
};

/* Apply the registry rule above to the file's nodes, in one transaction.
 * Returns 0, or STORE_EINVAL (a bad or duplicate name or argument: nothing is
 * changed) or STORE_EIO. */
int store_seed(store *s, const struct store_node_def *nodes, unsigned n);

/* A registered node, as store_nodes() reports it. Pointers are valid during
 * the callback only. request, mode, op and state are NULL when nothing was
 * saved for the node. */
struct store_node {
    const char *name;
    const char *system;
    const char *const *args;
    unsigned n_args;
    bool enabled;
    bool runtime;            /* created at run time (not from the file) */
    const char *request, *mode, *op, *state;
};
/* Return non-zero to stop the listing. */
typedef int (*store_node_fn)(void *arg, const struct store_node *node);
/* The nodes to run (not destroyed, enabled or not), by name, with their saved
 * controls; values queued but not yet committed are reported. The callback
 * may queue (store_node_state, ...) but not call the synchronous functions.
 * Returns the number listed, or a negative store_err. */
int store_nodes(store *s, store_node_fn fn, void *arg);

/* Runtime changes, written at once. create: STORE_EEXIST if a node of that
 * name is registered and not destroyed; a destroyed config node is replaced
 * (its saved state dropped) and stays a config node whose file entry did not
 * change, so it survives restarts until that entry changes. destroy: a runtime node is deleted, a config node
 * is kept as destroyed so that the file does not bring it back (until its
 * entry in the file changes). STORE_ENOENT when there is no such node. */
int store_node_create(store *s, const struct store_node_def *def);
int store_node_destroy(store *s, const char *name);
int store_node_set_enabled(store *s, const char *name, bool enabled);

/* ---- what running nodes produce (queued; never blocks) ---- */

/* The node's current controls and state: latest value wins. NULL leaves a
 * field as it was. Saved only for registered nodes (others are ignored at
 * flush). Returns 0 or STORE_EINVAL / STORE_ENOMEM. */
int store_node_state(store *s, const char *name, const char *request, const char *mode,
                     const char *op, const char *state);

enum store_how { STORE_HOW_INIT = 0, STORE_HOW_EDGE, STORE_HOW_JUMP, STORE_HOW_REDIRECT };
const char *store_how_name(enum store_how how); /* "init", "edge", ... */

struct store_transition {
    const char *node;
    double time;
    const char *from;        /* NULL or "" when the node started */
    const char *to;
    const char *request;     /* may be NULL */
    enum store_how how;
};
struct store_fault {
    const char *node;
    double time;
    const char *state;       /* may be NULL */
    const char *kind;        /* e.g. "error", "connect" */
    const char *message;
};
struct store_audit {
    const char *node;
    double time;
    const char *channel;
    const char *old_value, *new_value; /* as text; may be NULL */
    const char *host, *user;           /* the CA client's; may be NULL */
    bool accepted;
};
/* Queue one history record (strings are copied). 0, STORE_EINVAL or
 * STORE_ENOMEM. A full queue drops its oldest record (counted). */
int store_transition(store *s, const struct store_transition *t);
int store_fault(store *s, const struct store_fault *f);
int store_audit(store *s, const struct store_audit *a);
/* Queue one line of node's log (copied; cut at STORE_LINE_MAX, control
 * characters shown as '?'), time its stamp. 0, STORE_EINVAL (bad name or
 * time, no line) or STORE_ENOMEM. A full log queue drops its oldest line
 * (counted in log_dropped). */
int store_log_line(store *s, const char *node, double time, const char *line);

/* Commit everything queued now, in one transaction, with no time budget and
 * no backoff (shutdown, tests). 0 or STORE_EIO (the queue is kept). */
int store_flush(store *s);

/* ---- boots ---- */

/* Record this start; returns its id (> 0) or a negative store_err. A previous
 * boot that never ended is marked unclean (clean = 0), logged, and reported
 * in *prev_unclean (may be NULL) and store_status(). */
int64_t store_boot_begin(store *s, const char *version, int pid, bool *prev_unclean);
/* Flush, then record the end of this boot (clean or not). */
int store_boot_end(store *s, bool clean);

/* ---- crashes ---- */

/* Import the crash journal at path (the crash handler's text format, see
 * store/journal.c), exactly once: a record already imported (same boot and
 * seq) is skipped, and after the commit the journal is truncated. A record cut
 * short (no END) is imported with what it has. Each crashed boot is marked
 * unclean. Returns the number of crashes newly imported (0 when the file does
 * not exist), or STORE_EIO with err set (unreadable journal: left alone).
 * Call it before store_boot_begin(), so that the previous boot is known to
 * have crashed when the new one begins. */
int store_import_journal(store *s, const char *path, char *err, size_t errlen);

/* Crashes of node later than max(since, the node's last release): what the
 * quarantine rule counts. A negative store_err on failure. */
int store_crash_count(store *s, const char *node, double since);
/* Every crash of the node ever recorded (the CRASHES channel). */
int store_crash_total(store *s, const char *node);
/* Lift the quarantine: crashes up to `now` no longer count. STORE_ENOENT if
 * the node is not registered. */
int store_release(store *s, const char *node, double now);

/* ---- queries for the control socket (synchronous, committed rows only) ---- */

struct store_crash {
    int64_t id, boot_id, seq;
    double time;
    int signal, code;
    const char *addr, *node, *state, *phase; /* NULL when unknown */
    double uptime;
    double since_prev;                     /* < 0 for the first crash */
    const char *backtrace;                 /* lines separated by '\n' */
    bool complete;                         /* the record had its END */
};
typedef int (*store_crash_fn)(void *arg, const struct store_crash *c);
typedef int (*store_transition_fn)(void *arg, const struct store_transition *t);
typedef int (*store_audit_fn)(void *arg, const struct store_audit *a);
typedef int (*store_line_fn)(void *arg, double time, const char *line);

/* Newest first, at most limit rows (0: 100); only those with time > since. node (and channel) NULL: all. Pointers are valid during
 * the callback; return non-zero to stop. Return the number of rows given, or
 * a negative store_err. A registered node's history is read along its chain
 * of transitions (O(limit)); other queries walk the time index from the end. */
int store_crashes(store *s, const char *node, double since, unsigned limit, store_crash_fn fn,
                  void *arg);
int store_history(store *s, const char *node, double since, unsigned limit,
                  store_transition_fn fn, void *arg);
int store_audit_list(store *s, const char *node, const char *channel, double since,
                     unsigned limit, store_audit_fn fn, void *arg);

/* How many rows one of those queries gives without its limit (the same
 * node, channel and since), counting no further than cap (cap returned:
 * "at least"); a negative store_err. For "100 of 360 shown". */
enum store_rows { STORE_ROWS_CRASHES, STORE_ROWS_HISTORY, STORE_ROWS_AUDIT };
int store_count(store *s, enum store_rows what, const char *node, const char *channel,
                double since, unsigned cap);
/* node's log lines (required), newest first, at most limit (0: 100), those
 * with time > since; read along the node's chain, O(lines given), whether
 * the node is registered or not. */
int store_log_lines(store *s, const char *node, double since, unsigned limit, store_line_fn fn,
                    void *arg);
/* The newest accepted write of one channel of one node (fn called once, or
 * not at all): 1, 0 or a negative store_err. Through the (node, channel,
 * time) index, O(log rows) however long the audit: cheap enough for every
 * node of a status (who set its request). */
int store_audit_newest(store *s, const char *node, const char *channel, store_audit_fn fn,
                       void *arg);

/* ---- site snapshots (synchronous: operator actions) ---- */

/* A snapshot: every node's controls at one moment, kept until deleted (never
 * pruned). Names follow name_valid_snapshot (node/names.h). */
struct store_snapshot {
    const char *name;
    double time;
    const char *user;        /* who saved it; may be NULL */
    unsigned nodes;
};
/* One node in it: request, mode and op NULL when nothing was known. */
struct store_snapshot_node {
    const char *node;
    const char *system;
    bool enabled, running;
    const char *request, *mode, *op;
};
typedef int (*store_snapshot_fn)(void *arg, const struct store_snapshot *snap);
typedef int (*store_snapshot_node_fn)(void *arg, const struct store_snapshot_node *n);
/* Save nodes under name, in one transaction. An existing snapshot of that
 * name: STORE_EEXIST, unless replace. STORE_EINVAL for a bad name or node. */
int store_snapshot_save(store *s, const struct store_snapshot *snap,
                        const struct store_snapshot_node *nodes, unsigned n, bool replace);
/* Every snapshot, newest first; the number listed or a negative store_err. */
int store_snapshot_list(store *s, store_snapshot_fn fn, void *arg);
/* One snapshot: head once, then fn for each node by name. 0, STORE_ENOENT
 * or another negative store_err. Callbacks may stop it (non-zero). */
int store_snapshot_get(store *s, const char *name, store_snapshot_fn head,
                       store_snapshot_node_fn fn, void *arg);
/* STORE_OK or STORE_ENOENT. */
int store_snapshot_delete(store *s, const char *name);

/* ---- status ---- */

struct store_status {
    bool ok;                  /* false while flushes fail (degraded) */
    char error[256];          /* why, while !ok; "" otherwise */
    size_t queued;            /* history records and node states waiting */
    uint64_t dropped;         /* history records dropped: queue full */
    size_t log_queued;        /* node log lines waiting */
    uint64_t log_dropped;     /* node log lines dropped: their queue full */
    uint64_t committed_total; /* records committed since open (log lines included) */
    uint64_t flushes;         /* flushes that committed */
    uint64_t failed_flushes;
    double last_flush, max_flush; /* seconds one flush took */
    uint64_t checkpoints;
    double last_checkpoint, max_checkpoint;
    int64_t boot_id;          /* 0 before store_boot_begin */
    bool prev_unclean;
};
void store_status(const store *s, struct store_status *out);
/* What the last failing call said, SQLite's message included ("" if none). */
const char *store_errmsg(const store *s);

/* ---- for tests and operators ---- */

/* Cap the database file at about `bytes` (PRAGMA max_page_count; never below
 * its current size); 0 removes the cap. A flush that needs more fails with
 * "database or disk is full" and the store degrades as for a full disk. */
int store_set_size_limit(store *s, int64_t bytes);
/* Tests: the next n flush attempts fail as an I/O error would, after BEGIN
 * (so the rollback path runs). */
void store_fail_next_flushes(store *s, unsigned n);

#endif
