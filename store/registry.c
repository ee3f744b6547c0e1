/* registry.c — the node registry: seeding from the configuration file,
 * runtime changes, listing the nodes to run; and the boots table.
 *
 * The rule is in store.h (store_seed). A node definition has a canonical
 * text form: its arguments sorted, one "key=value" per line (nodes.args),
 * and config_digest = system + "\n" + args. Comparing digests as text is
 * exact; the order of the arguments in the file does not matter.
 *
 * Every function here is one short synchronous transaction: they run at
 * start-up and on rare operator actions, never per cycle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"

#define ARG_MAX 65535   /* characters of one "key=value" argument */
#define ARGS_MAX 4096   /* arguments of one node */

/* ---- canonical definitions ---- */

struct canon {
    const struct store_node_def *def;
    char *args;   /* sorted, '\n'-separated */
    char *digest; /* system "\n" args */
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t key_len(const char *arg) { return (size_t)(strchr(arg, '=') - arg); }

static void canon_free(struct canon *c)
{
    free(c->args);
    free(c->digest);
    c->args = c->digest = NULL;
}

static int canon_make(const struct store_node_def *d, struct canon *c)
{
    memset(c, 0, sizeof(*c));
    c->def = d;
    if (!d || !store_valid_name(d->name) || !store_valid_text(d->system, STORE_TEXT_MAX) || !d->system[0] ||
        d->n_args > ARGS_MAX || (d->n_args && !d->args))
        return STORE_EINVAL;
    size_t len = 1;
    for (unsigned i = 0; i < d->n_args; i++) {
        const char *a = d->args[i];
        if (!store_valid_text(a, ARG_MAX) || !strchr(a, '=') || a[0] == '=')
            return STORE_EINVAL;
        len += strlen(a) + 1;
    }
    const char **sorted = malloc((d->n_args + 1) * sizeof(*sorted));
    c->args = malloc(len);
    c->digest = malloc(strlen(d->system) + 1 + len);
    if (!sorted || !c->args || !c->digest) {
        free(sorted);
        canon_free(c);
        return STORE_ENOMEM;
    }
    if (d->n_args) {
        memcpy(sorted, d->args, d->n_args * sizeof(*sorted));
        qsort(sorted, d->n_args, sizeof(*sorted), cmp_str);
    }
    char *o = c->args;
    int code = STORE_OK;
    for (unsigned i = 0; i < d->n_args; i++) {
        if (i && key_len(sorted[i]) == key_len(sorted[i - 1]) &&
            strncmp(sorted[i], sorted[i - 1], key_len(sorted[i])) == 0)
            code = STORE_EINVAL; /* a key given twice */
        o += sprintf(o, "%s%s", i ? "\n" : "", sorted[i]);
    }
    *o = 0;
    free(sorted);
    sprintf(c->digest, "%s\n%s", d->system, c->args);
    if (code != STORE_OK)
        canon_free(c);
    return code;
}

static int cmp_canon(const void *a, const void *b)
{
    return strcmp(((const struct canon *)a)->def->name, ((const struct canon *)b)->def->name);
}

/* ---- statements ---- */

static int prep(store *s, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
}

/* Step a statement without results; SQLite result code (SQLITE_OK when done). */
static int done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* ---- seeding ---- */

struct seed {
    sqlite3_stmt *sel, *ins, *upd, *list, *del, *prune;
    unsigned inserted, updated, removed, back;
};

static const char SQL_INSERT[] =
    "INSERT INTO nodes (name, system, args, enabled, origin, config_digest, destroyed, created, updated) "
    "VALUES (?1, ?2, ?3, 1, ?4, ?5, 0, ?6, ?6)";

static int seed_one(store *s, struct seed *sd, const struct canon *c, double now)
{
    sqlite3_bind_text(sd->sel, 1, c->def->name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(sd->sel);
    bool found = rc == SQLITE_ROW;
    bool same = found && sqlite3_column_type(sd->sel, 0) != SQLITE_NULL &&
                strcmp((const char *)sqlite3_column_text(sd->sel, 0), c->digest) == 0;
    bool back = found && sqlite3_column_type(sd->sel, 1) != SQLITE_NULL; /* 003_removed.sql */
    sqlite3_reset(sd->sel);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (same && !back)
        return SQLITE_OK; /* the file did not change: the registry wins */
    sqlite3_stmt *st = found ? sd->upd : sd->ins;
    bind_text(st, 1, c->def->name);
    bind_text(st, 2, c->def->system);
    bind_text(st, 3, c->args);
    bind_text(st, 4, "config");
    bind_text(st, 5, c->digest);
    sqlite3_bind_double(st, 6, now);
    if ((rc = done(st)) != SQLITE_OK)
        return rc;
    if (back) {
        sd->back++;
        store_log(s, "registry: node %s is in the configuration file again: back with its saved "
                  "controls", c->def->name);
    } else if (found) {
        sd->updated++;
        store_log(s, "registry: node %s changed in the configuration file: taken from the file", c->def->name);
    } else {
        sd->inserted++;
    }
    return SQLITE_OK;
}

/* Mark the config nodes the file no longer has (003_removed.sql): they stop
 * running and their saved controls stay, for a mistaken edit to be undone. */
static int seed_remove(store *s, struct seed *sd, const struct canon *items, unsigned n,
                       double now)
{
    char **gone = NULL;
    size_t n_gone = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(sd->list)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(sd->list, 0);
        struct store_node_def key = {.name = name};
        struct canon k = {.def = &key};
        if (!name || bsearch(&k, items, n, sizeof(*items), cmp_canon))
            continue;
        if (n_gone == cap) {
            cap = cap ? cap * 2 : 16;
            char **g = realloc(gone, cap * sizeof(*g));
            if (!g) {
                rc = SQLITE_NOMEM;
                break;
            }
            gone = g;
        }
        if (!(gone[n_gone] = strdup(name))) {
            rc = SQLITE_NOMEM;
            break;
        }
        n_gone++;
    }
    sqlite3_reset(sd->list);
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < n_gone; i++) {
        bind_text(sd->del, 1, gone[i]);
        sqlite3_bind_double(sd->del, 2, now);
        if ((rc = done(sd->del)) == SQLITE_OK) {
            store_log(s, "registry: node %s is no longer in the configuration file: removed (its "
                      "saved controls are kept; naming it again brings them back)", gone[i]);
            sd->removed++;
        }
    }
    for (size_t i = 0; i < n_gone; i++)
        free(gone[i]);
    free(gone);
    return rc;
}

int store_seed(store *s, const struct store_node_def *nodes, unsigned n)
{
    STORE_ASSERT_IDLE(s);
    if (n && !nodes)
        return STORE_EINVAL;
    struct canon *items = calloc(n ? n : 1, sizeof(*items));
    if (!items)
        return STORE_ENOMEM;
    int code = STORE_OK;
    for (unsigned i = 0; i < n && code == STORE_OK; i++)
        code = canon_make(&nodes[i], &items[i]);
    if (code == STORE_OK) {
        qsort(items, n, sizeof(*items), cmp_canon);
        for (unsigned i = 1; i < n; i++)
            if (strcmp(items[i].def->name, items[i - 1].def->name) == 0)
                code = STORE_EINVAL; /* a node given twice */
    }
    if (code != STORE_OK) {
        snprintf(s->errmsg, sizeof(s->errmsg), "seeding the registry: %s", store_strerror(code));
        goto out;
    }

    struct seed sd = {0};
    double now = store_wall();
    /* Rows removed longer ago than the history is kept go for good. */
    int rc = prep(s, "DELETE FROM nodes WHERE removed IS NOT NULL AND removed < ?1", &sd.prune);
    if (rc == SQLITE_OK && s->opt.retention_days > 0) {
        sqlite3_bind_double(sd.prune, 1, now - s->opt.retention_days * 86400.0);
        rc = done(sd.prune);
    }
    if (rc == SQLITE_OK)
        rc = prep(s, "SELECT config_digest, removed FROM nodes WHERE name = ?1", &sd.sel);
    if (rc == SQLITE_OK)
        rc = prep(s, SQL_INSERT, &sd.ins);
    if (rc == SQLITE_OK)
        rc = prep(s,
                  "UPDATE nodes SET system = ?2, args = ?3, enabled = 1, origin = ?4, config_digest = ?5, "
                  "destroyed = 0, removed = NULL, updated = ?6 WHERE name = ?1",
                  &sd.upd);
    if (rc == SQLITE_OK)
        rc = prep(s, "SELECT name FROM nodes WHERE origin = 'config' AND removed IS NULL", &sd.list);
    if (rc == SQLITE_OK)
        rc = prep(s, "UPDATE nodes SET removed = ?2, updated = ?2 WHERE name = ?1", &sd.del);
    if (rc == SQLITE_OK)
        rc = store_begin(s);
    for (unsigned i = 0; rc == SQLITE_OK && i < n; i++)
        rc = seed_one(s, &sd, &items[i], now);
    if (rc == SQLITE_OK)
        rc = seed_remove(s, &sd, items, n, now);
    if (rc == SQLITE_OK)
        rc = store_commit(s);
    if (rc != SQLITE_OK) {
        code = store_fail(s, rc, "seeding the registry");
        store_rollback(s);
    } else if (sd.inserted || sd.updated || sd.removed || sd.back) {
        store_log(s, "registry: %u nodes in the configuration file: %u new, %u changed, %u removed, "
                  "%u back", n, sd.inserted, sd.updated, sd.removed, sd.back);
    }
    sqlite3_finalize(sd.sel);
    sqlite3_finalize(sd.ins);
    sqlite3_finalize(sd.upd);
    sqlite3_finalize(sd.list);
    sqlite3_finalize(sd.del);
    sqlite3_finalize(sd.prune);
out:
    for (unsigned i = 0; i < n; i++)
        canon_free(&items[i]);
    free(items);
    return code;
}

/* ---- listing ---- */

/* Split a copy of '\n'-separated args into out[] (at most ARGS_MAX). */
static unsigned split_args(char *text, const char **out)
{
    unsigned n = 0;
    if (!text[0])
        return 0;
    for (char *p = text; p && n < ARGS_MAX;) {
        out[n++] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = 0;
    }
    return n;
}

static const char *column(sqlite3_stmt *st, int i) { return (const char *)sqlite3_column_text(st, i); }

int store_nodes(store *s, store_node_fn fn, void *arg)
{
    STORE_ASSERT_IDLE(s);
    sqlite3_stmt *st;
    int rc = prep(s,
                  "SELECT n.name, n.system, n.args, n.enabled, n.origin, s.request, s.mode, s.op, s.state "
                  "FROM nodes n LEFT JOIN node_state s ON s.name = n.name "
                  "WHERE n.destroyed = 0 AND n.removed IS NULL ORDER BY n.name",
                  &st);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "listing nodes");
    const char **args = malloc(ARGS_MAX * sizeof(*args));
    if (!args) {
        sqlite3_finalize(st);
        return STORE_ENOMEM;
    }
    int count = 0, code = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *text = strdup(column(st, 2) ? column(st, 2) : "");
        if (!text) {
            code = STORE_ENOMEM;
            break;
        }
        struct store_node nd = {
            .name = column(st, 0),
            .system = column(st, 1),
            .args = args,
            .n_args = split_args(text, args),
            .enabled = sqlite3_column_int(st, 3) != 0,
            .runtime = column(st, 4) && strcmp(column(st, 4), "runtime") == 0,
            .request = column(st, 5),
            .mode = column(st, 6),
            .op = column(st, 7),
            .state = column(st, 8),
        };
        /* Values queued but not committed are newer. */
        struct node_entry *e = NULL;
        if (nd.name)
            HASH_FIND_STR(s->nodes, nd.name, e);
        const char **field[4] = {&nd.request, &nd.mode, &nd.op, &nd.state};
        for (int i = 0; e && i < 4; i++)
            if (e->set & (1u << i))
                *field[i] = e->field[i];
        count++;
        int stop = nd.name && nd.system ? fn(arg, &nd) : 0;
        free(text);
        if (stop)
            break;
    }
    if (code == STORE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        code = store_fail(s, rc, "listing nodes");
    free(args);
    sqlite3_finalize(st);
    return code == STORE_OK ? count : code;
}

/* ---- runtime changes ---- */

/* The row of name: *exists, *destroyed, *config. */
static int lookup(store *s, const char *name, bool *exists, bool *destroyed, bool *config)
{
    sqlite3_stmt *st;
    /* A row the file removed (003_removed.sql) is not a node any more. */
    int rc = prep(s, "SELECT destroyed, origin FROM nodes WHERE name = ?1 AND removed IS NULL", &st);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    if (*exists) {
        *destroyed = sqlite3_column_int(st, 0) != 0;
        *config = column(st, 1) && strcmp(column(st, 1), "config") == 0;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Run sql with ?1 = name, ?2 = now, ?3 = num and texts ?4.. (NULL-terminated);
 * parameters the statement does not have are not bound. */
static int run_sql(store *s, const char *sql, const char *name, double now, int64_t num, const char *const *texts)
{
    sqlite3_stmt *st;
    int rc = prep(s, sql, &st);
    if (rc != SQLITE_OK)
        return rc;
    int n = sqlite3_bind_parameter_count(st);
    bind_text(st, 1, name);
    if (n >= 2)
        sqlite3_bind_double(st, 2, now);
    if (n >= 3)
        sqlite3_bind_int64(st, 3, num);
    for (int i = 0; texts && texts[i] && 4 + i <= n; i++)
        bind_text(st, 4 + i, texts[i]);
    rc = done(st);
    sqlite3_finalize(st);
    return rc;
}

int store_node_create(store *s, const struct store_node_def *def)
{
    STORE_ASSERT_IDLE(s);
    struct canon c;
    int code = canon_make(def, &c);
    if (code != STORE_OK)
        return code;
    bool exists = false, destroyed = false, config = false;
    double now = store_wall();
    int rc = store_begin(s);
    /* A node the file removed (003_removed.sql) gives way to the new one. */
    if (rc == SQLITE_OK)
        rc = run_sql(s, "DELETE FROM nodes WHERE name = ?1 AND removed IS NOT NULL", def->name, now,
                     0, NULL);
    if (rc == SQLITE_OK)
        rc = lookup(s, def->name, &exists, &destroyed, &config);
    if (rc == SQLITE_OK && exists && !destroyed) {
        store_rollback(s);
        canon_free(&c);
        return STORE_EEXIST;
    }
    if (rc == SQLITE_OK && exists) {
        /* Over a destroyed config node: it stays a config node (the file
         * still names it), so it survives restarts until the file changes. */
        const char *t[] = {def->system, c.args, NULL};
        rc = run_sql(s, "DELETE FROM node_state WHERE name = ?1", def->name, now, 0, NULL);
        if (rc == SQLITE_OK)
            rc = run_sql(s, "UPDATE nodes SET system = ?4, args = ?5, enabled = 1, destroyed = 0, updated = ?2 "
                            "WHERE name = ?1", def->name, now, 0, t);
    } else if (rc == SQLITE_OK) {
        const char *t[] = {def->system, c.args, NULL};
        rc = run_sql(s, "INSERT INTO nodes (name, updated, destroyed, system, args, enabled, origin, created) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, 1, 'runtime', ?2)", def->name, now, 0, t);
    }
    if (rc == SQLITE_OK)
        rc = store_commit(s);
    if (rc != SQLITE_OK) {
        code = store_fail(s, rc, "creating a node");
        store_rollback(s);
    }
    canon_free(&c);
    return code;
}

int store_node_destroy(store *s, const char *name)
{
    STORE_ASSERT_IDLE(s);
    if (!store_valid_name(name))
        return STORE_EINVAL;
    bool exists = false, destroyed = false, config = false;
    int rc = store_begin(s);
    if (rc == SQLITE_OK)
        rc = lookup(s, name, &exists, &destroyed, &config);
    if (rc == SQLITE_OK && (!exists || destroyed)) {
        store_rollback(s);
        return STORE_ENOENT;
    }
    double now = store_wall();
    if (rc == SQLITE_OK && config) /* kept, so that the file does not bring it back */
        rc = run_sql(s, "UPDATE nodes SET destroyed = 1, updated = ?2 WHERE name = ?1", name, now, 0, NULL);
    if (rc == SQLITE_OK)
        rc = run_sql(s, config ? "DELETE FROM node_state WHERE name = ?1" : "DELETE FROM nodes WHERE name = ?1",
                     name, now, 0, NULL);
    if (rc == SQLITE_OK)
        rc = store_commit(s);
    if (rc != SQLITE_OK) {
        store_rollback(s);
        return store_fail(s, rc, "destroying a node");
    }
    store_forget_node(s, name);
    return STORE_OK;
}

int store_node_set_enabled(store *s, const char *name, bool enabled)
{
    STORE_ASSERT_IDLE(s);
    if (!store_valid_name(name))
        return STORE_EINVAL;
    int rc = run_sql(s, "UPDATE nodes SET enabled = ?3, updated = ?2 WHERE name = ?1 AND destroyed = 0 "
                     "AND removed IS NULL", name,
                     store_wall(), enabled, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "enabling a node");
    return sqlite3_changes(s->db) ? STORE_OK : STORE_ENOENT;
}

/* ---- boots ---- */

static void format_time(double t, char *out, size_t len)
{
    time_t sec = (time_t)t;
    struct tm tm;
    if (t <= 0 || !localtime_r(&sec, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S %Z", &tm))
        snprintf(out, len, "unknown");
}

int64_t store_boot_begin(store *s, const char *version, int pid, bool *prev_unclean)
{
    STORE_ASSERT_IDLE(s);
    if (s->boot_id > 0 || (version && !store_valid_text(version, STORE_TEXT_MAX)))
        return STORE_EINVAL;
    sqlite3_stmt *last = NULL, *ins = NULL;
    int64_t prev_id = 0;
    double prev_started = 0, prev_seen = 0;
    bool unclean = false;
    double now = store_wall();
    int rc = prep(s, "SELECT id, started, clean, last_seen FROM boots ORDER BY id DESC LIMIT 1", &last);
    if (rc == SQLITE_OK)
        rc = prep(s, "INSERT INTO boots (started, last_seen, version, pid) VALUES (?1, ?1, ?2, ?3)", &ins);
    if (rc == SQLITE_OK)
        rc = store_begin(s);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(last);
        if (rc == SQLITE_ROW) {
            prev_id = sqlite3_column_int64(last, 0);
            prev_started = sqlite3_column_double(last, 1);
            unclean = sqlite3_column_type(last, 2) == SQLITE_NULL || sqlite3_column_int(last, 2) != 1;
            prev_seen = sqlite3_column_double(last, 3);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    if (rc == SQLITE_OK)
        rc = store_exec(s, "UPDATE boots SET clean = 0 WHERE clean IS NULL");
    if (rc == SQLITE_OK) {
        sqlite3_bind_double(ins, 1, now);
        bind_text(ins, 2, version ? version : "");
        sqlite3_bind_int(ins, 3, pid);
        rc = done(ins);
    }
    int64_t id = sqlite3_last_insert_rowid(s->db);
    if (rc == SQLITE_OK)
        rc = store_commit(s);
    sqlite3_finalize(last);
    sqlite3_finalize(ins);
    if (rc != SQLITE_OK) {
        store_rollback(s);
        return store_fail(s, rc, "recording the boot");
    }
    s->boot_id = id;
    s->seen_written = store_mono();
    s->prev_unclean = unclean;
    if (prev_unclean)
        *prev_unclean = unclean;
    if (unclean) {
        char started[32], seen[32];
        format_time(prev_started, started, sizeof(started));
        format_time(prev_seen, seen, sizeof(seen));
        store_log(s, "previous boot %lld (started %s, last seen %s) did not end cleanly", (long long)prev_id,
                  started, seen);
    }
    return id;
}

int store_boot_end(store *s, bool clean)
{
    STORE_ASSERT_IDLE(s);
    if (s->boot_id <= 0)
        return STORE_EINVAL;
    int code = store_flush(s);
    if (code != STORE_OK)
        return code;
    sqlite3_stmt *st;
    int rc = prep(s, "UPDATE boots SET ended = ?1, last_seen = ?1, clean = ?2 WHERE id = ?3", &st);
    if (rc == SQLITE_OK) {
        sqlite3_bind_double(st, 1, store_wall());
        sqlite3_bind_int(st, 2, clean);
        sqlite3_bind_int64(st, 3, s->boot_id);
        rc = done(st);
        sqlite3_finalize(st);
    }
    return rc == SQLITE_OK ? STORE_OK : store_fail(s, rc, "recording the end of the boot");
}
