/* queue.c — what running nodes produce, queued in memory and committed by a
 * timer in one transaction per flush; degraded mode; pruning; checkpoints.
 *
 * The queue has two parts:
 *   - node controls: one entry per node (uthash by name), latest value wins;
 *     changed entries are on the dirty list, in the order they changed.
 *   - history: a FIFO of records, each one allocation. Bounded by
 *     opt.max_queued: a full queue drops its oldest record (counted).
 *   - node log lines: a FIFO of their own, bounded by opt.max_log_queued, so
 *     that a chatty node drops its oldest lines, never history.
 * A flush writes a prefix of the dirty list, then a prefix of the history
 * FIFO, then (when history is all written) a prefix of the log FIFO, with
 * reused statements, and removes exactly what it wrote only after
 * COMMIT succeeded: a failed flush loses nothing. A timer flush stops adding
 * rows once it has spent flush_budget (what is left goes a few milliseconds
 * later), so one flush never holds the loop long; store_flush() writes all.
 *
 * Checkpoints: SQLite's automatic checkpoint would run inside the COMMIT that
 * crosses the threshold and add its cost (writing back and syncing the WAL)
 * to that flush. Our WAL hook (open.c) replaces it; when the WAL has grown
 * past checkpoint_pages, a PASSIVE checkpoint runs from its own zero-delay
 * timer, in a later loop iteration than the flush, and is timed separately.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define CONTINUE_DELAY 0.01  /* seconds before a flush that ran out of budget goes on */
#define PRUNE_CHUNK 256      /* rows deleted per statement when pruning */
#define PRUNE_PERIOD 3600.0  /* seconds between prunings */
#define SEEN_PERIOD 10.0     /* seconds between updates of boots.last_seen */
#define BUDGET_CHECK 32      /* rows written between looks at the clock */

static const char *const statement_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* Only for registered nodes; a NULL field keeps the saved value. */
    [ST_STATE] = "INSERT INTO node_state (name, request, mode, op, state, updated) "
                 "SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM nodes WHERE name = ?1) "
                 "ON CONFLICT (name) DO UPDATE SET request = coalesce(excluded.request, request), "
                 "mode = coalesce(excluded.mode, mode), op = coalesce(excluded.op, op), "
                 "state = coalesce(excluded.state, state), updated = excluded.updated",
    /* Chained to the node's previous transition (schema/001_initial.sql). */
    [ST_TRANSITION] = "INSERT INTO transitions (node, time, from_state, to_state, request, how, prev_id) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT last_transition FROM node_state WHERE name = ?1))",
    [ST_FAULT] = "INSERT INTO faults (node, time, state, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_AUDIT] = "INSERT INTO audit (node, time, channel, old_value, new_value, host, user, accepted) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_PRUNE_TRANSITIONS] = "DELETE FROM transitions WHERE id IN "
                             "(SELECT id FROM transitions WHERE time < ?1 ORDER BY time LIMIT ?2)",
    [ST_PRUNE_FAULTS] = "DELETE FROM faults WHERE id IN "
                        "(SELECT id FROM faults WHERE time < ?1 ORDER BY time LIMIT ?2)",
    [ST_PRUNE_AUDIT] = "DELETE FROM audit WHERE id IN "
                       "(SELECT id FROM audit WHERE time < ?1 ORDER BY time LIMIT ?2)",
    /* Chained to the node's previous line by node_log_heads (schema/004_node_log.sql). */
    [ST_LOG] = "INSERT INTO node_log (node, time, line, prev_id) VALUES (?1, ?2, ?3, ?4)",
    [ST_LOG_HEAD_GET] = "SELECT last_id FROM node_log_heads WHERE node = ?1",
    [ST_LOG_HEAD_SET] = "INSERT INTO node_log_heads (node, last_id) VALUES (?1, ?2) "
                        "ON CONFLICT (node) DO UPDATE SET last_id = excluded.last_id",
    /* No time index: lines come in time order, so the oldest by rowid go
     * first, and pruning stops at the first chunk that is not all old (a
     * wall clock set back keeps lines at most that much longer). */
    [ST_PRUNE_LOG] = "DELETE FROM node_log WHERE id IN (SELECT id FROM node_log ORDER BY id LIMIT ?2) "
                     "AND time < ?1",
    /* Nodes whose lines are all pruned: their head would point at nothing
     * (or, once rowids are reused in an emptied table, at another's line). */
    [ST_PRUNE_LOG_HEADS] = "DELETE FROM node_log_heads WHERE last_id < "
                           "coalesce((SELECT min(id) FROM node_log), 9223372036854775807)",
    [ST_SEEN] = "UPDATE boots SET last_seen = ?1 WHERE id = ?2",
};

int store_queue_prepare(store *s)
{
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* ---- queueing ---- */

static struct node_entry *entry_for(store *s, const char *name)
{
    struct node_entry *e;
    HASH_FIND_STR(s->nodes, name, e);
    if (e)
        return e;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->name, sizeof(e->name), "%s", name);
    HASH_ADD_STR(s->nodes, name, e);
    return e;
}

int store_node_state(store *s, const char *name, const char *request, const char *mode, const char *op,
                     const char *state)
{
    const char *v[4] = {request, mode, op, state};
    if (!store_valid_name(name))
        return STORE_EINVAL;
    for (int i = 0; i < 4; i++)
        if (v[i] && !store_valid_text(v[i], STORE_TEXT_MAX))
            return STORE_EINVAL;
    struct node_entry *e = entry_for(s, name);
    if (!e)
        return STORE_ENOMEM;
    for (int i = 0; i < 4; i++) {
        if (v[i]) {
            snprintf(e->field[i], sizeof(e->field[i]), "%s", v[i]);
            e->set |= 1u << i;
        }
    }
    e->updated = store_wall();
    if (!e->dirty) {
        e->dirty = true;
        e->dirty_next = NULL;
        *s->dirty_tail = e;
        s->dirty_tail = &e->dirty_next;
        s->n_dirty++;
    }
    return STORE_OK;
}

void store_forget_node(store *s, const char *name)
{
    struct node_entry *e;
    HASH_FIND_STR(s->nodes, name, e);
    if (!e)
        return;
    if (e->dirty) {
        struct node_entry **pp = &s->dirty;
        while (*pp != e)
            pp = &(*pp)->dirty_next;
        *pp = e->dirty_next;
        if (s->dirty_tail == &e->dirty_next)
            s->dirty_tail = pp;
        s->n_dirty--;
    }
    HASH_DEL(s->nodes, e);
    free(e);
}

/* Copy at most max characters, control characters shown as '?'. */
static char *copy_text(char *o, const char **dst, const char *src, size_t max)
{
    if (!src) {
        *dst = NULL;
        return o;
    }
    *dst = o;
    size_t n = strnlen(src, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        *o++ = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    *o++ = 0;
    return o;
}

/* A record of kind with n strings (each cut at its max), or NULL. */
static struct record *record_new(enum record_kind kind, double time, int flag, const char *const *str,
                                 const size_t *max, unsigned n)
{
    size_t len = 0;
    for (unsigned i = 0; i < n; i++)
        len += str[i] ? strnlen(str[i], max[i]) + 1 : 0;
    struct record *r = malloc(sizeof(*r) + len);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->time = time;
    r->flag = flag;
    char *o = r->text;
    for (unsigned i = 0; i < n; i++)
        o = copy_text(o, &r->str[i], str[i], max[i]);
    return r;
}

static void record_pop(struct fifo *q)
{
    struct record *r = q->head;
    q->head = r->next;
    if (!q->head)
        q->tail = &q->head;
    q->n--;
    free(r);
}

static int enqueue(struct fifo *q, struct record *r)
{
    if (!r)
        return STORE_ENOMEM;
    while (q->n >= q->max) {
        record_pop(q);
        q->dropped++;
    }
    *q->tail = r;
    q->tail = &r->next;
    q->n++;
    return STORE_OK;
}

static bool valid_time(double t) { return isfinite(t) && t >= 0; }

int store_transition(store *s, const struct store_transition *t)
{
    if (!t || !store_valid_name(t->node) || !valid_time(t->time) || !t->to || !t->to[0] ||
        (unsigned)t->how > STORE_HOW_REDIRECT)
        return STORE_EINVAL;
    const char *from = t->from && t->from[0] ? t->from : NULL;
    const char *str[] = {t->node, from, t->to, t->request};
    const size_t max[] = {STORE_NAME_MAX, STORE_TEXT_MAX, STORE_TEXT_MAX, STORE_TEXT_MAX};
    return enqueue(&s->history, record_new(REC_TRANSITION, t->time, (int)t->how, str, max, 4));
}

int store_fault(store *s, const struct store_fault *f)
{
    if (!f || !store_valid_name(f->node) || !valid_time(f->time) || !f->kind || !f->kind[0])
        return STORE_EINVAL;
    const char *str[] = {f->node, f->state, f->kind, f->message ? f->message : ""};
    const size_t max[] = {STORE_NAME_MAX, STORE_TEXT_MAX, STORE_TEXT_MAX, STORE_MESSAGE_MAX};
    return enqueue(&s->history, record_new(REC_FAULT, f->time, 0, str, max, 4));
}

int store_audit(store *s, const struct store_audit *a)
{
    if (!a || !store_valid_name(a->node) || !valid_time(a->time) || !a->channel || !a->channel[0])
        return STORE_EINVAL;
    const char *str[] = {a->node, a->channel, a->old_value, a->new_value, a->host, a->user};
    const size_t max[] = {STORE_NAME_MAX, STORE_CHANNEL_MAX, STORE_TEXT_MAX, STORE_TEXT_MAX, STORE_TEXT_MAX,
                          STORE_TEXT_MAX};
    return enqueue(&s->history, record_new(REC_AUDIT, a->time, a->accepted, str, max, 6));
}

int store_log_line(store *s, const char *node, double time, const char *line)
{
    if (!store_valid_name(node) || !valid_time(time) || !line || !line[0])
        return STORE_EINVAL;
    const char *str[] = {node, line};
    const size_t max[] = {STORE_NAME_MAX, STORE_LINE_MAX};
    return enqueue(&s->logs, record_new(REC_LOG, time, 0, str, max, 2));
}

const char *store_how_name(enum store_how how)
{
    static const char *const names[] = {"init", "edge", "jump", "redirect"};
    return (unsigned)how <= STORE_HOW_REDIRECT ? names[how] : "?";
}

/* ---- writing ---- */

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_state(store *s, const struct node_entry *e)
{
    sqlite3_stmt *st = s->st[ST_STATE];
    bind_text(st, 1, e->name);
    for (int i = 0; i < 4; i++)
        bind_text(st, 2 + i, e->set & (1u << i) ? e->field[i] : NULL);
    sqlite3_bind_double(st, 6, e->updated);
    return step_reset(st);
}

/* A node's log chain during one flush (struct store.log_heads). */
struct log_head {
    int64_t last_id; /* 0: the node has no line yet */
    UT_hash_handle hh;
    char node[];
};

static void log_heads_forget(store *s)
{
    struct log_head *h, *tmp;
    HASH_ITER(hh, s->log_heads, h, tmp) {
        HASH_DEL(s->log_heads, h);
        free(h);
    }
}

/* The node's head: from this flush, else from node_log_heads. */
static int log_head(store *s, const char *node, struct log_head **out)
{
    struct log_head *h = NULL;
    HASH_FIND_STR(s->log_heads, node, h);
    if (!h) {
        size_t len = strlen(node);
        if (!(h = calloc(1, sizeof(*h) + len + 1)))
            return SQLITE_NOMEM;
        memcpy(h->node, node, len + 1);
        sqlite3_stmt *st = s->st[ST_LOG_HEAD_GET];
        bind_text(st, 1, node);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            h->last_id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            free(h);
            return rc;
        }
        HASH_ADD_STR(s->log_heads, node, h);
    }
    *out = h;
    return SQLITE_OK;
}

/* The heads this flush moved, once per node; then they are forgotten (a
 * rollback forgets them too: the next flush reads them again). */
static int log_heads_write(store *s)
{
    int rc = SQLITE_OK;
    struct log_head *h, *tmp;
    HASH_ITER(hh, s->log_heads, h, tmp) {
        if (rc == SQLITE_OK && h->last_id > 0) {
            sqlite3_stmt *st = s->st[ST_LOG_HEAD_SET];
            bind_text(st, 1, h->node);
            sqlite3_bind_int64(st, 2, h->last_id);
            rc = step_reset(st);
        }
    }
    log_heads_forget(s);
    return rc;
}

static int write_log_line(store *s, const struct record *r)
{
    struct log_head *h = NULL;
    int rc = log_head(s, r->str[0], &h);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = s->st[ST_LOG];
    bind_text(st, 1, r->str[0]);
    sqlite3_bind_double(st, 2, r->time);
    bind_text(st, 3, r->str[1]);
    if (h->last_id > 0)
        sqlite3_bind_int64(st, 4, h->last_id);
    else
        sqlite3_bind_null(st, 4);
    if ((rc = step_reset(st)) == SQLITE_OK)
        h->last_id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int write_record(store *s, const struct record *r)
{
    sqlite3_stmt *st;
    switch (r->kind) {
    case REC_TRANSITION:
        st = s->st[ST_TRANSITION];
        bind_text(st, 1, r->str[0]);
        sqlite3_bind_double(st, 2, r->time);
        bind_text(st, 3, r->str[1]);
        bind_text(st, 4, r->str[2]);
        bind_text(st, 5, r->str[3]);
        bind_text(st, 6, store_how_name((enum store_how)r->flag));
        break;
    case REC_LOG:
        return write_log_line(s, r);
    case REC_FAULT:
        st = s->st[ST_FAULT];
        bind_text(st, 1, r->str[0]);
        sqlite3_bind_double(st, 2, r->time);
        for (int i = 1; i < 4; i++)
            bind_text(st, 2 + i, r->str[i]);
        break;
    default:
        st = s->st[ST_AUDIT];
        bind_text(st, 1, r->str[0]);
        sqlite3_bind_double(st, 2, r->time);
        for (int i = 1; i < 6; i++)
            bind_text(st, 2 + i, r->str[i]);
        sqlite3_bind_int(st, 8, r->flag ? 1 : 0);
        break;
    }
    return step_reset(st);
}

bool store_prunes(const store *s) { return s->opt.retention_days > 0 || s->opt.log_retention_days > 0; }

/* Delete history and log lines older than their retention, a chunk at a
 * time, until `deadline` (monotonic; at least one chunk per table). Sets
 * *done when nothing older is left. Runs inside the caller's transaction. */
static int prune_chunks(store *s, double deadline, bool *done)
{
    double now = store_wall();
    const struct {
        int statement;
        double days;
    } tables[] = {{ST_PRUNE_TRANSITIONS, s->opt.retention_days}, {ST_PRUNE_FAULTS, s->opt.retention_days},
                  {ST_PRUNE_AUDIT, s->opt.retention_days}, {ST_PRUNE_LOG, s->opt.log_retention_days}};
    *done = false;
    for (unsigned t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        if (tables[t].days <= 0)
            continue; /* kept for ever */
        sqlite3_stmt *st = s->st[tables[t].statement];
        for (;;) {
            sqlite3_bind_double(st, 1, now - tables[t].days * 86400.0);
            sqlite3_bind_int(st, 2, PRUNE_CHUNK);
            int rc = step_reset(st);
            if (rc != SQLITE_OK)
                return rc;
            if (sqlite3_changes(s->db) < PRUNE_CHUNK)
                break; /* this table is done */
            if (store_mono() > deadline)
                return SQLITE_OK;
        }
        /* In the transaction that deleted the last old lines: a head never
         * outlives its node's lines. */
        if (tables[t].statement == ST_PRUNE_LOG) {
            int rc = step_reset(s->st[ST_PRUNE_LOG_HEADS]);
            if (rc != SQLITE_OK)
                return rc;
        }
    }
    *done = true;
    return SQLITE_OK;
}

bool store_prune(store *s, double budget)
{
    double deadline = store_mono() + budget;
    bool done = false;
    while (!done) {
        int rc = store_begin(s);
        if (rc == SQLITE_OK)
            rc = prune_chunks(s, store_mono() + 0.05, &done);
        if (rc == SQLITE_OK)
            rc = store_commit(s);
        if (rc != SQLITE_OK) {
            store_fail(s, rc, "pruning history");
            store_rollback(s);
            return false;
        }
        if (store_mono() > deadline)
            break;
    }
    return done;
}

static bool seen_due(store *s, double now) { return s->boot_id > 0 && now - s->seen_written >= SEEN_PERIOD; }

/* What a successful commit wrote comes off the queue. */
static void release(store *s, size_t n_states, size_t n_records, size_t n_logs)
{
    for (size_t i = 0; i < n_states; i++) {
        struct node_entry *e = s->dirty;
        s->dirty = e->dirty_next;
        e->dirty = false;
        e->dirty_next = NULL;
    }
    if (!s->dirty)
        s->dirty_tail = &s->dirty;
    s->n_dirty -= n_states;
    for (size_t i = 0; i < n_records; i++)
        record_pop(&s->history);
    for (size_t i = 0; i < n_logs; i++)
        record_pop(&s->logs);
}

/* Write the records of a queue from *r on until deadline (looked at every
 * BUDGET_CHECK rows; *rows counts those of all queues in this flush), the
 * last written leaving *r at the next. *n counts those written; a record the
 * database refuses is counted in *rejected (it cannot happen for validated
 * records: never block the queue on one). An SQLite result code. */
static int write_records(store *s, struct record **r, size_t *n, size_t *rejected, size_t *rows, double deadline)
{
    for (; *r; *r = (*r)->next, (*n)++, (*rows)++) {
        if (*rows && *rows % BUDGET_CHECK == 0 && store_mono() > deadline)
            break;
        int rc = write_record(s, *r);
        if ((rc & 0xff) == SQLITE_CONSTRAINT)
            (*rejected)++;
        else if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* One attempt, in one transaction. budget > 0 bounds the time spent adding
 * rows (at least BUDGET_CHECK rows of history go in, so that it cannot
 * starve; log lines go in when history is all written). Node states are latest-wins: while history is backlogged they are
 * written once per flush_interval, not in every catch-up flush, so a node
 * that changes every cycle costs one row per interval. *more: work is left
 * for a catch-up flush. Returns an SQLite result code; the error text is in
 * s->error. */
static int flush_attempt(store *s, double budget, bool *more)
{
    double now = store_mono();
    double deadline = budget > 0 ? now + budget : INFINITY;
    bool backlog = s->history.head || s->logs.head;
    bool states_due = budget <= 0 || !backlog || now - s->states_written >= s->opt.flush_interval;
    struct node_entry *e = states_due ? s->dirty : NULL;
    struct record *r = s->history.head, *l = s->logs.head;
    size_t n_states = 0, n_records = 0, n_logs = 0, rows = 0, rejected = 0, rejected_logs = 0;
    const char *what = "BEGIN";
    int rc = store_begin(s);
    if (rc != SQLITE_OK)
        goto fail;
    if (s->inject_failures) {
        s->inject_failures--;
        rc = SQLITE_IOERR;
        snprintf(s->error, sizeof(s->error), "database write failed: injected failure (%s)", sqlite3_errstr(rc));
        store_rollback(s);
        return rc;
    }
    what = "saving node state";
    for (; e; e = e->dirty_next, n_states++) {
        if (n_states && n_states % BUDGET_CHECK == 0 && store_mono() > deadline)
            break;
        if ((rc = write_state(s, e)) != SQLITE_OK)
            goto fail;
    }
    what = "saving history";
    if ((rc = write_records(s, &r, &n_records, &rejected, &rows, deadline)) != SQLITE_OK)
        goto fail;
    what = "saving node log lines";
    if (!r && (rc = write_records(s, &l, &n_logs, &rejected_logs, &rows, deadline)) != SQLITE_OK)
        goto fail;
    if ((rc = log_heads_write(s)) != SQLITE_OK)
        goto fail;
    if (!e && !r && !l) {
        what = "pruning history";
        bool done;
        if (s->prune_pending && (rc = prune_chunks(s, deadline, &done)) != SQLITE_OK)
            goto fail;
        if (s->prune_pending && done)
            s->prune_pending = false;
        what = "updating the boot";
        if (seen_due(s, now)) {
            sqlite3_bind_double(s->st[ST_SEEN], 1, store_wall());
            sqlite3_bind_int64(s->st[ST_SEEN], 2, s->boot_id);
            if ((rc = step_reset(s->st[ST_SEEN])) != SQLITE_OK)
                goto fail;
            s->seen_written = now;
        }
    }
    what = "COMMIT";
    if ((rc = store_commit(s)) != SQLITE_OK)
        goto fail;
    release(s, n_states, n_records, n_logs);
    if (states_due && !e)
        s->states_written = now;
    s->committed_total += n_states + n_records + n_logs - rejected - rejected_logs;
    s->history.dropped += rejected;
    s->logs.dropped += rejected_logs;
    *more = e || r || l;
    return SQLITE_OK;
fail:
    snprintf(s->error, sizeof(s->error), "database write failed (%s): %s", what, sqlite3_errmsg(s->db));
    if (strcmp(sqlite3_errmsg(s->db), sqlite3_errstr(rc)) != 0)
        snprintf(s->error + strlen(s->error), sizeof(s->error) - strlen(s->error), " (%s)", sqlite3_errstr(rc));
    log_heads_forget(s);
    store_rollback(s);
    return rc;
}

static bool work_queued(store *s, double now)
{
    if (!s->prune_pending && store_prunes(s) && now >= s->next_prune) {
        s->prune_pending = true;
        s->next_prune = now + PRUNE_PERIOD;
    }
    return s->dirty || s->history.head || s->logs.head || s->prune_pending || seen_due(s, now);
}

/* A flush with the bookkeeping of degraded mode. */
static int flush(store *s, double budget, bool *more)
{
    double t0 = store_mono();
    *more = false;
    if (!work_queued(s, t0) && !s->failing)
        return STORE_OK;
    int rc = flush_attempt(s, budget, more);
    double dt = store_mono() - t0;
    if (rc != SQLITE_OK) {
        s->failed_flushes++;
        s->fail_streak++;
        double backoff = s->opt.flush_interval * pow(2.0, fmin(s->fail_streak, 30));
        s->retry_at = store_mono() + fmin(backoff, s->opt.max_backoff);
        snprintf(s->errmsg, sizeof(s->errmsg), "%s", s->error);
        if (!s->failing)
            store_log(s, "%s: %s; keeping %zu records and %zu log lines queued and retrying", s->path,
                      s->error, s->history.n + s->n_dirty, s->logs.n);
        s->failing = true;
        return store_err_of(rc) == STORE_ENOMEM ? STORE_ENOMEM : STORE_EIO;
    }
    s->flushes++;
    s->last_flush = dt;
    if (dt > s->max_flush)
        s->max_flush = dt;
    if (s->failing)
        store_log(s, "%s: writes work again after %u failed flushes; %zu records and %zu log lines still queued",
                  s->path, s->fail_streak, s->history.n + s->n_dirty, s->logs.n);
    s->failing = false;
    s->fail_streak = 0;
    s->error[0] = 0;
    return STORE_OK;
}

/* ---- checkpoints ---- */

static void checkpoint(store *s)
{
    double t0 = store_mono();
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    double dt = store_mono() - t0;
    s->checkpoint_due = false;
    if (rc != SQLITE_OK) {
        store_fail(s, rc, "WAL checkpoint");
        return; /* the WAL keeps growing until one works; flushes tell of real trouble */
    }
    s->checkpoints++;
    s->last_checkpoint = dt;
    if (dt > s->max_checkpoint)
        s->max_checkpoint = dt;
}

/* Whether timed work of about `needs` seconds should wait for a quiet gap in
 * the caller's loop; if so, *delay is how long. */
static bool defer(store *s, double needs, double *delay)
{
    if (!s->opt.next_busy)
        return false;
    double now = store_mono();
    double slack = s->opt.next_busy(s->opt.busy_arg) - now;
    if (slack >= needs) {
        s->deferred_since = 0;
        return false;
    }
    if (s->deferred_since == 0)
        s->deferred_since = now;
    else if (now - s->deferred_since >= s->opt.max_defer) {
        s->deferred_since = 0; /* no gap comes: do it anyway */
        return false;
    }
    *delay = (slack > 0 ? slack : 0) + 0.0003; /* just after the busy moment starts */
    return true;
}

/* Room a timed flush needs besides adding rows: the commit. And the least
 * time worth spending on adding rows. */
#define COMMIT_ALLOWANCE 0.0012
#define MIN_BUDGET 0.0008

static void checkpoint_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    store *s = w->data;
    double delay;
    if (defer(s, 0.004, &delay)) {
        ev_timer_set(&s->checkpoint_timer, delay, 0.0);
        ev_timer_start(loop, &s->checkpoint_timer);
        return;
    }
    checkpoint(s);
}

/* ---- the timer ---- */

static void arm(store *s, double delay)
{
    ev_timer_stop(s->loop, &s->flush_timer);
    ev_timer_set(&s->flush_timer, delay, 0.0);
    ev_timer_start(s->loop, &s->flush_timer);
}

static void flush_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    store *s = w->data;
    bool more = false;
    double delay_gap;
    /* With a caller's schedule: use the gap before its next busy moment,
     * up to flush_budget, if at least MIN_BUDGET of it is free. */
    if (defer(s, MIN_BUDGET + COMMIT_ALLOWANCE, &delay_gap)) {
        arm(s, delay_gap);
        return;
    }
    double budget = s->opt.flush_budget;
    if (s->opt.next_busy) {
        double usable = s->opt.next_busy(s->opt.busy_arg) - store_mono() - COMMIT_ALLOWANCE;
        budget = fmax(MIN_BUDGET, fmin(budget, usable));
    }
    if (!s->failing || store_mono() >= s->retry_at)
        flush(s, budget, &more);
    double delay = s->opt.flush_interval;
    if (s->failing)
        delay = fmax(s->retry_at - store_mono(), 0.001);
    else if (more)
        delay = CONTINUE_DELAY;
    arm(s, delay);
    if (s->checkpoint_due && !ev_is_active(&s->checkpoint_timer)) {
        ev_timer_set(&s->checkpoint_timer, 0.0, 0.0);
        ev_timer_start(loop, &s->checkpoint_timer);
    }
}

void store_queue_start(store *s)
{
    if (!s->loop)
        return;
    ev_timer_init(&s->flush_timer, flush_cb, s->opt.flush_interval, 0.0);
    s->flush_timer.data = s;
    ev_timer_start(s->loop, &s->flush_timer);
    ev_timer_init(&s->checkpoint_timer, checkpoint_cb, 0.0, 0.0);
    s->checkpoint_timer.data = s;
}

void store_queue_stop(store *s)
{
    if (!s->loop)
        return;
    ev_timer_stop(s->loop, &s->flush_timer);
    ev_timer_stop(s->loop, &s->checkpoint_timer);
}

void store_queue_free(store *s)
{
    while (s->history.head)
        record_pop(&s->history);
    while (s->logs.head)
        record_pop(&s->logs);
    struct node_entry *e, *tmp;
    HASH_ITER(hh, s->nodes, e, tmp) {
        HASH_DEL(s->nodes, e);
        free(e);
    }
    s->dirty = NULL;
    s->dirty_tail = &s->dirty;
    s->n_dirty = 0;
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
}

int store_flush(store *s)
{
    STORE_ASSERT_IDLE(s);
    bool more;
    int code = flush(s, 0, &more);
    if (s->checkpoint_due && (!s->loop || !ev_is_active(&s->checkpoint_timer)))
        checkpoint(s);
    return code;
}

void store_fail_next_flushes(store *s, unsigned n) { s->inject_failures = n; }

int store_set_size_limit(store *s, int64_t bytes)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL);
    int64_t page = 4096;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        page = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "size limit");
    int64_t pages = bytes > 0 ? (bytes + page - 1) / page : 1073741823; /* SQLite's default maximum */
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages);
    rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL); /* returns a row: not for exec */
    if (rc == SQLITE_OK) {
        sqlite3_step(st);
        rc = sqlite3_finalize(st);
    }
    return rc == SQLITE_OK ? STORE_OK : store_fail(s, rc, "size limit");
}

void store_status(const store *s, struct store_status *out)
{
    memset(out, 0, sizeof(*out));
    out->ok = !s->failing;
    snprintf(out->error, sizeof(out->error), "%s", s->failing ? s->error : "");
    out->queued = s->history.n + s->n_dirty;
    out->dropped = s->history.dropped;
    out->log_queued = s->logs.n;
    out->log_dropped = s->logs.dropped;
    out->committed_total = s->committed_total;
    out->flushes = s->flushes;
    out->failed_flushes = s->failed_flushes;
    out->last_flush = s->last_flush;
    out->max_flush = s->max_flush;
    out->checkpoints = s->checkpoints;
    out->last_checkpoint = s->last_checkpoint;
    out->max_checkpoint = s->max_checkpoint;
    out->boot_id = s->boot_id;
    out->prev_unclean = s->prev_unclean;
}
