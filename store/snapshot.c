/* snapshot.c — site snapshots (schema/005_snapshots.sql): saved, listed, read
 * back and deleted in single short transactions, as operator actions are. */
#include <string.h>

#include "store/internal.h"

static const char *text(sqlite3_stmt *st, int col) { return (const char *)sqlite3_column_text(st, col); }

static void bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static bool valid_opt(const char *v) { return !v || store_valid_text(v, STORE_TEXT_MAX); }

int store_snapshot_save(store *s, const struct store_snapshot *snap,
                        const struct store_snapshot_node *nodes, unsigned n, bool replace)
{
    STORE_ASSERT_IDLE(s);
    if (!snap || !snap->name || !name_valid_snapshot(snap->name) || !valid_opt(snap->user))
        return STORE_EINVAL;
    for (unsigned i = 0; i < n; i++)
        if (!store_valid_name(nodes[i].node) || !nodes[i].system ||
            !store_valid_text(nodes[i].system, STORE_TEXT_MAX) || !valid_opt(nodes[i].request) ||
            !valid_opt(nodes[i].mode) || !valid_opt(nodes[i].op))
            return STORE_EINVAL;
    sqlite3_stmt *find = NULL, *del = NULL, *head = NULL, *row = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id FROM snapshots WHERE name = ?1", -1, &find, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "DELETE FROM snapshots WHERE name = ?1", -1, &del, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "INSERT INTO snapshots (name, time, user, nodes) "
                                "VALUES (?1, ?2, ?3, ?4)", -1, &head, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "INSERT INTO snapshot_nodes (snapshot, node, system, "
                                "enabled, running, request, mode, op) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &row, NULL);
    int code = STORE_OK;
    if (rc == SQLITE_OK)
        rc = store_begin(s);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(find, 1, snap->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(find);
        if (rc == SQLITE_ROW && !replace) {
            code = STORE_EEXIST;
        } else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
            sqlite3_bind_text(del, 1, snap->name, -1, SQLITE_STATIC);
            rc = sqlite3_step(del) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            if (rc == SQLITE_OK) {
                sqlite3_bind_text(head, 1, snap->name, -1, SQLITE_STATIC);
                sqlite3_bind_double(head, 2, snap->time);
                bind_opt(head, 3, snap->user);
                sqlite3_bind_int64(head, 4, n);
                rc = sqlite3_step(head) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(s->db);
            }
            sqlite3_int64 id = sqlite3_last_insert_rowid(s->db);
            for (unsigned i = 0; i < n && rc == SQLITE_OK; i++) {
                const struct store_snapshot_node *x = &nodes[i];
                sqlite3_bind_int64(row, 1, id);
                sqlite3_bind_text(row, 2, x->node, -1, SQLITE_STATIC);
                sqlite3_bind_text(row, 3, x->system, -1, SQLITE_STATIC);
                sqlite3_bind_int(row, 4, x->enabled);
                sqlite3_bind_int(row, 5, x->running);
                bind_opt(row, 6, x->request);
                bind_opt(row, 7, x->mode);
                bind_opt(row, 8, x->op);
                rc = sqlite3_step(row);
                sqlite3_reset(row);
                /* a node given twice is the caller's mistake */
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
                if ((rc & 0xff) == SQLITE_CONSTRAINT)
                    code = STORE_EINVAL;
            }
        }
        if (code == STORE_OK && rc == SQLITE_OK)
            rc = store_commit(s);
        if (code != STORE_OK || rc != SQLITE_OK)
            store_rollback(s);
    }
    sqlite3_finalize(find);
    sqlite3_finalize(del);
    sqlite3_finalize(head);
    sqlite3_finalize(row);
    if (code != STORE_OK)
        return code;
    return rc == SQLITE_OK ? STORE_OK : store_fail(s, rc, "saving a snapshot");
}

int store_snapshot_list(store *s, store_snapshot_fn fn, void *arg)
{
    STORE_ASSERT_IDLE(s);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT name, time, user, nodes FROM snapshots "
                                "ORDER BY time DESC, id DESC", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "listing snapshots");
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_snapshot snap = {.name = text(st, 0), .time = sqlite3_column_double(st, 1),
                                      .user = text(st, 2),
                                      .nodes = (unsigned)sqlite3_column_int64(st, 3)};
        n++;
        if (fn(arg, &snap))
            break;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return store_fail(s, rc, "listing snapshots");
    return n;
}

int store_snapshot_get(store *s, const char *name, store_snapshot_fn head,
                       store_snapshot_node_fn fn, void *arg)
{
    STORE_ASSERT_IDLE(s);
    if (!name || !name_valid_snapshot(name))
        return STORE_EINVAL;
    sqlite3_stmt *h = NULL, *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT id, name, time, user, nodes FROM snapshots "
                                "WHERE name = ?1", -1, &h, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "SELECT node, system, enabled, running, request, mode, op "
                                "FROM snapshot_nodes WHERE snapshot = ?1 ORDER BY node", -1, &st,
                                NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(h);
        return store_fail(s, rc, "reading a snapshot");
    }
    int code = STORE_OK;
    /* Both reads in one transaction: a snapshot replaced in between is not mixed. */
    rc = store_exec(s, "BEGIN");
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(h, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(h);
        if (rc == SQLITE_DONE) {
            code = STORE_ENOENT;
            rc = SQLITE_OK;
        } else if (rc == SQLITE_ROW) {
            struct store_snapshot snap = {.name = text(h, 1), .time = sqlite3_column_double(h, 2),
                                          .user = text(h, 3),
                                          .nodes = (unsigned)sqlite3_column_int64(h, 4)};
            sqlite3_bind_int64(st, 1, sqlite3_column_int64(h, 0));
            rc = SQLITE_OK;
            if (!head || !head(arg, &snap)) {
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                    struct store_snapshot_node x = {
                        .node = text(st, 0), .system = text(st, 1),
                        .enabled = sqlite3_column_int(st, 2) != 0,
                        .running = sqlite3_column_int(st, 3) != 0,
                        .request = text(st, 4), .mode = text(st, 5), .op = text(st, 6)};
                    if (fn && fn(arg, &x))
                        break;
                }
                rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
            }
        }
        sqlite3_reset(h);
        sqlite3_reset(st);
        int end = store_exec(s, rc == SQLITE_OK ? "COMMIT" : "ROLLBACK");
        rc = rc == SQLITE_OK ? end : rc;
    }
    sqlite3_finalize(h);
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "reading a snapshot");
    return code;
}

int store_snapshot_delete(store *s, const char *name)
{
    STORE_ASSERT_IDLE(s);
    if (!name || !name_valid_snapshot(name))
        return STORE_EINVAL;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "DELETE FROM snapshots WHERE name = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "deleting a snapshot");
    return sqlite3_changes(s->db) ? STORE_OK : STORE_ENOENT;
}
