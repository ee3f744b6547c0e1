/* query.c — history for the control socket: crashes, transitions, audit,
 * node log lines.
 *
 * Synchronous and small: each query is one SELECT, newest first, with a
 * LIMIT, served by the (node, time) and time indexes, or a walk along a
 * node's chain (transitions, log lines). They read committed rows only; what
 * is still queued shows after the next flush.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

#define DEFAULT_LIMIT 100

static const char *text(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Prepare sql and bind ?1 node, ?2 since (or channel), ?3 limit. */
static int start(store *s, const char *sql, sqlite3_stmt **st, const char *node, unsigned limit)
{
    STORE_ASSERT_IDLE(s);
    if (node && !store_valid_name(node))
        return STORE_EINVAL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "query");
    bind_opt(*st, 1, node);
    sqlite3_bind_int(*st, 3, (int)(limit ? (limit > STORE_ROWS_MAX ? STORE_ROWS_MAX : limit) : DEFAULT_LIMIT));
    return STORE_OK;
}

static int finish(store *s, sqlite3_stmt *st, int rc, int n)
{
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return store_fail(s, rc, "query");
    return n;
}

int store_crashes(store *s, const char *node, double since, unsigned limit, store_crash_fn fn, void *arg)
{
    sqlite3_stmt *st;
    int code = start(s,
                     "SELECT id, boot_id, seq, time, signal, code, addr, node, state, phase, uptime, "
                     "since_prev_crash, backtrace, complete FROM crashes "
                     "WHERE (?1 IS NULL OR node = ?1) AND time > ?2 ORDER BY time DESC, id DESC LIMIT ?3",
                     &st, node, limit);
    if (code != STORE_OK)
        return code;
    sqlite3_bind_double(st, 2, isfinite(since) ? since : 0);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_crash c = {
            .id = sqlite3_column_int64(st, 0),
            .boot_id = sqlite3_column_int64(st, 1),
            .seq = sqlite3_column_int64(st, 2),
            .time = sqlite3_column_double(st, 3),
            .signal = sqlite3_column_int(st, 4),
            .code = sqlite3_column_int(st, 5),
            .addr = text(st, 6),
            .node = text(st, 7),
            .state = text(st, 8),
            .phase = text(st, 9),
            .uptime = sqlite3_column_double(st, 10),
            .since_prev = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 : sqlite3_column_double(st, 11),
            .backtrace = text(st, 12) ? text(st, 12) : "",
            .complete = sqlite3_column_int(st, 13) != 0,
        };
        n++;
        if (fn(arg, &c))
            break;
    }
    return finish(s, st, rc, n);
}

static enum store_how how_of(const char *name)
{
    for (int h = STORE_HOW_INIT; h <= STORE_HOW_REDIRECT; h++)
        if (name && strcmp(name, store_how_name((enum store_how)h)) == 0)
            return (enum store_how)h;
    return STORE_HOW_INIT;
}

/* Whether node has a chain head (node_state.last_transition). */
static bool has_chain(store *s, const char *node)
{
    sqlite3_stmt *st;
    bool yes = false;
    if (sqlite3_prepare_v2(s->db, "SELECT last_transition IS NOT NULL FROM node_state WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        yes = sqlite3_column_int(st, 0) != 0;
    sqlite3_finalize(st);
    return yes;
}

/* A registered node's history follows its chain from the newest transition
 * back (O(limit)); anything else (all nodes, a node no longer registered)
 * scans the time index from the newest end. */
int store_history(store *s, const char *node, double since, unsigned limit, store_transition_fn fn, void *arg)
{
    sqlite3_stmt *st;
    bool chain = node && store_valid_name(node) && has_chain(s, node);
    int code = start(s,
                     chain ? "WITH RECURSIVE chain (id, n) AS ("
                             "  SELECT last_transition, 1 FROM node_state WHERE name = ?1"
                             "  UNION ALL"
                             "  SELECT t.prev_id, c.n + 1 FROM chain c JOIN transitions t ON t.id = c.id"
                             "  WHERE t.time > ?2 AND c.n < ?3) "
                             "SELECT t.node, t.time, t.from_state, t.to_state, t.request, t.how "
                             "FROM chain c JOIN transitions t ON t.id = c.id WHERE t.time > ?2 "
                             "ORDER BY c.n LIMIT ?3"
                           : "SELECT node, time, from_state, to_state, request, how FROM transitions "
                             "WHERE (?1 IS NULL OR node = ?1) AND time > ?2 ORDER BY time DESC, id DESC LIMIT ?3",
                     &st, node, limit);
    if (code != STORE_OK)
        return code;
    sqlite3_bind_double(st, 2, isfinite(since) ? since : 0);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_transition t = {
            .node = text(st, 0),
            .time = sqlite3_column_double(st, 1),
            .from = text(st, 2),
            .to = text(st, 3),
            .request = text(st, 4),
            .how = how_of(text(st, 5)),
        };
        n++;
        if (fn(arg, &t))
            break;
    }
    return finish(s, st, rc, n);
}

/* The rows of an audit SELECT (the columns of store_audit, in order). */
static int audit_rows(store *s, sqlite3_stmt *st, store_audit_fn fn, void *arg)
{
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_audit a = {
            .node = text(st, 0),
            .time = sqlite3_column_double(st, 1),
            .channel = text(st, 2),
            .old_value = text(st, 3),
            .new_value = text(st, 4),
            .host = text(st, 5),
            .user = text(st, 6),
            .accepted = sqlite3_column_int(st, 7) != 0,
        };
        n++;
        if (fn(arg, &a))
            break;
    }
    return finish(s, st, rc, n);
}

int store_audit_list(store *s, const char *node, const char *channel, double since, unsigned limit,
                     store_audit_fn fn, void *arg)
{
    sqlite3_stmt *st;
    int code = start(s,
                     "SELECT node, time, channel, old_value, new_value, host, user, accepted FROM audit "
                     "WHERE (?1 IS NULL OR node = ?1) AND (?4 IS NULL OR channel = ?4) AND time > ?2 "
                     "ORDER BY time DESC, id DESC LIMIT ?3",
                     &st, node, limit);
    if (code != STORE_OK)
        return code;
    sqlite3_bind_double(st, 2, isfinite(since) ? since : 0);
    bind_opt(st, 4, channel);
    return audit_rows(s, st, fn, arg);
}

int store_count(store *s, enum store_rows what, const char *node, const char *channel,
                double since, unsigned cap)
{
    /* Each counts the rows its list query would walk, through the same
     * index, and stops at cap: an operator's query never scans without end. */
    static const char *const sql[] = {
        [STORE_ROWS_CRASHES] = "SELECT count(*) FROM (SELECT 1 FROM crashes WHERE (?1 IS NULL OR node = ?1) "
                               "AND time > ?2 LIMIT ?3)",
        [STORE_ROWS_HISTORY] = "SELECT count(*) FROM (SELECT 1 FROM transitions WHERE (?1 IS NULL OR node = ?1) "
                               "AND time > ?2 LIMIT ?3)",
        [STORE_ROWS_AUDIT] = "SELECT count(*) FROM (SELECT 1 FROM audit WHERE (?1 IS NULL OR node = ?1) "
                             "AND (?4 IS NULL OR channel = ?4) AND time > ?2 LIMIT ?3)",
    };
    static const char chain[] =
        "WITH RECURSIVE chain (id, n) AS ("
        "  SELECT last_transition, 1 FROM node_state WHERE name = ?1"
        "  UNION ALL"
        "  SELECT t.prev_id, c.n + 1 FROM chain c JOIN transitions t ON t.id = c.id"
        "  WHERE t.time > ?2 AND c.n < ?3) "
        "SELECT count(*) FROM chain c JOIN transitions t ON t.id = c.id WHERE t.time > ?2";
    if ((unsigned)what > STORE_ROWS_AUDIT)
        return STORE_EINVAL;
    bool by_chain = what == STORE_ROWS_HISTORY && node && store_valid_name(node) && has_chain(s, node);
    sqlite3_stmt *st;
    int code = start(s, by_chain ? chain : sql[what], &st, node, cap);
    if (code != STORE_OK)
        return code;
    sqlite3_bind_double(st, 2, isfinite(since) ? since : 0);
    if (what == STORE_ROWS_AUDIT)
        bind_opt(st, 4, channel);
    int rc = sqlite3_step(st), n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    return finish(s, st, rc, n);
}

/* The chain is walked here, one rowid lookup a line with one reused
 * statement, rather than in a recursive query: the caller sees each line as
 * it is read (and may stop, e.g. on a deadline). A link is followed only to
 * a smaller id of the same node, so a walk ends even if rowids of an emptied
 * table were reused. */
int store_log_lines(store *s, const char *node, double since, unsigned limit, store_line_fn fn, void *arg)
{
    if (!store_valid_name(node) || !fn)
        return STORE_EINVAL;
    if (!limit)
        limit = DEFAULT_LIMIT;
    if (limit > STORE_ROWS_MAX)
        limit = STORE_ROWS_MAX;
    if (!isfinite(since))
        since = 0;
    sqlite3_stmt *head, *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT last_id FROM node_log_heads WHERE node = ?1", -1, &head, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "query");
    sqlite3_bind_text(head, 1, node, -1, SQLITE_STATIC);
    int64_t id = 0;
    rc = sqlite3_step(head);
    if (rc == SQLITE_ROW)
        id = sqlite3_column_int64(head, 0);
    sqlite3_finalize(head);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? 0 : store_fail(s, rc, "query");
    rc = sqlite3_prepare_v2(s->db, "SELECT node, time, line, prev_id FROM node_log WHERE id = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "query");
    int n = 0;
    while (id > 0 && (unsigned)n < limit) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break; /* pruned: the chain ends */
        double time = sqlite3_column_double(st, 1);
        const char *line = text(st, 2);
        if (!text(st, 0) || strcmp(text(st, 0), node) != 0 || time <= since || !line)
            break;
        int64_t prev = sqlite3_column_type(st, 3) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 3);
        n++;
        if (fn(arg, time, line))
            break;
        id = prev < id ? prev : 0;
        sqlite3_reset(st);
    }
    return finish(s, st, rc, n);
}

int store_audit_newest(store *s, const char *node, const char *channel, store_audit_fn fn,
                       void *arg)
{
    if (!node || !channel)
        return STORE_EINVAL;
    sqlite3_stmt *st;
    /* Equalities on (node, channel) and the order by time: the audit_node
     * index from its newest end, whatever the size of the table. */
    int code = start(s,
                     "SELECT node, time, channel, old_value, new_value, host, user, accepted FROM audit "
                     "WHERE node = ?1 AND channel = ?2 AND accepted = 1 ORDER BY time DESC LIMIT ?3",
                     &st, node, 1);
    if (code != STORE_OK)
        return code;
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    return audit_rows(s, st, fn, arg);
}
