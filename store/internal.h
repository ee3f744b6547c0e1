/* internal.h — private to store/: the store object and what its files share.
 *
 * Files: open.c (checking, opening, migrating, closing), queue.c (the
 * in-memory queue, the flush, degraded mode, pruning, checkpoints, status),
 * registry.c (the node registry and boots), snapshot.c (site snapshots),
 * crash.c (the crash journal and the quarantine counts), query.c (history
 * queries for the control socket).
 *
 * Invariants: no transaction is open between two calls into the store (each
 * call that begins one commits or rolls back before it returns); every queued
 * record has been validated, so a flush fails only for reasons of the
 * database, not of the data.
 */
#ifndef GUARDIAND_STORE_INTERNAL_H
#define GUARDIAND_STORE_INTERNAL_H

#include <assert.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <uthash.h>

#include "node/names.h"
#include "store/store.h"

/* The first invariant above, checked where the calls into the store begin
 * (a transaction left open by the call before would show here). */
#define STORE_ASSERT_IDLE(s) assert(!(s)->db || sqlite3_get_autocommit((s)->db))

/* ---- the queue ---- */

enum record_kind { REC_TRANSITION = 0, REC_FAULT = 1, REC_AUDIT = 2, REC_LOG = 3 };
#define REC_NKINDS 4
#define REC_NSTR 6

/* A queued history record: one allocation, its strings packed after it.
 * str[] by kind: transition node, from, to, request; fault node, state, kind,
 * message; audit node, channel, old, new, host, user; log node, line. NULL
 * where absent. */
struct record {
    struct record *next;
    enum record_kind kind;
    int flag;              /* transition: enum store_how; audit: accepted */
    double time;
    const char *str[REC_NSTR];
    char text[];
};

/* Records oldest first, at most max (the oldest are dropped, counted). */
struct fifo {
    struct record *head, **tail;
    size_t n, max;
    uint64_t dropped;
};

/* A node's latest controls. The entry outlives flushes (the latest value is
 * what store_nodes reports); `set` says which fields were ever given. */
enum { SET_REQUEST = 1, SET_MODE = 2, SET_OP = 4, SET_STATE = 8 };
struct node_entry {
    char name[STORE_NAME_MAX + 1];
    char field[4][STORE_TEXT_MAX + 1]; /* request, mode, op, state */
    unsigned set;
    double updated;
    bool dirty;
    struct node_entry *dirty_next;
    UT_hash_handle hh;
};

/* Statements a flush reuses. */
enum {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_STATE, ST_TRANSITION, ST_FAULT, ST_AUDIT,
    ST_PRUNE_TRANSITIONS, ST_PRUNE_FAULTS, ST_PRUNE_AUDIT, ST_LOG, ST_LOG_HEAD_GET, ST_LOG_HEAD_SET,
    ST_PRUNE_LOG, ST_PRUNE_LOG_HEADS, ST_SEEN, ST_COUNT
};

struct store {
    sqlite3 *db;
    char *path;
    struct store_options opt;          /* defaults applied; opt.path is path */
    struct ev_loop *loop;              /* NULL: flushes only on request */
    ev_timer flush_timer;
    double deferred_since;             /* a timed flush or checkpoint waiting for a quiet gap; 0: none */
    ev_timer checkpoint_timer;
    sqlite3_stmt *st[ST_COUNT];
    /* During one flush: each node's newest log line written so far (the
     * chain's head), so that a line costs one insert; the heads are
     * written once per node at the end of the flush (queue.c). */
    struct log_head *log_heads;        /* uthash by node */

    struct node_entry *nodes;          /* uthash by name */
    struct node_entry *dirty;          /* changed since the last commit, in order */
    struct node_entry **dirty_tail;
    size_t n_dirty;
    struct fifo history;               /* transitions, faults, audit */
    struct fifo logs;                  /* node log lines: written after history */

    /* degraded mode */
    bool failing;
    unsigned fail_streak;
    double retry_at;                   /* monotonic */
    unsigned inject_failures;
    char error[256];                   /* why flushes fail */
    char errmsg[256];                  /* the last failing call */

    /* pruning (history), checkpoints and boots */
    bool prune_pending;
    double next_prune;                 /* monotonic */
    bool checkpoint_due;
    double seen_written;               /* monotonic time of the last boots.last_seen */
    double states_written;             /* monotonic time the dirty list was last emptied */
    int64_t boot_id;
    bool prev_unclean;

    /* figures */
    uint64_t committed_total, flushes, failed_flushes, checkpoints;
    double last_flush, max_flush, last_checkpoint, max_checkpoint;
};

/* Clocks: wall (seconds since 1970) and monotonic seconds. */
double store_wall(void);
double store_mono(void);

void store_log(store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remember the failure of the current call in errmsg; returns the store_err
 * for an SQLite result code. */
int store_fail(store *s, int rc, const char *what);
int store_err_of(int rc);

/* A node name (node/names.h: the one rule). */
static inline bool store_valid_name(const char *name) { return name_valid_node(name); }
/* Text up to max characters with no control characters. */
bool store_valid_text(const char *text, size_t max);

/* One statement without results (BEGIN, COMMIT, PRAGMA ... = ...). */
int store_exec(store *s, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (ROLLBACK only if a transaction is open). */
int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);

/* Forget the in-memory controls of a node (destroyed or deleted). */
void store_forget_node(store *s, const char *name);
/* Start the flush timer (queue.c) and stop both timers. */
void store_queue_start(store *s);
void store_queue_stop(store *s);
void store_queue_free(store *s);
/* Prepare the flush statements. SQLite result code. */
int store_queue_prepare(store *s);
/* Whether anything is ever pruned (a retention > 0). */
bool store_prunes(const store *s);
/* Prune history for at most `budget` seconds of work; returns whether done. */
bool store_prune(store *s, double budget);

#endif
