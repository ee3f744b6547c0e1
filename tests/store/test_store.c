/* test_store.c — persistence through its public API, against real SQLite
 * files in a fresh temporary directory per test.
 *
 * Checks are made from a second, independent SQLite connection where the
 * question is "what is on disk", and through the store's own API where it is
 * "what does guardiand get back". Failures are made real where that works as
 * root (a size cap gives SQLITE_FULL, a second connection's exclusive lock
 * gives SQLITE_BUSY) and injected where it does not (read-only, I/O errors).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/migrations.h" /* the schema version this build writes */

static char dir[64];
static char path[128];
static char logbuf[16384];
static unsigned log_lines;
static store *st;
static struct ev_loop *loop;

static void test_log(void *arg, const char *line)
{
    (void)arg;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof(logbuf) - n, "%s\n", line);
    log_lines++;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/guardiand-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/guardiand.db", dir);
    logbuf[0] = 0;
    log_lines = 0;
    st = NULL;
    loop = NULL;
}

static void remove_tree(const char *p)
{
    DIR *d = opendir(p);
    if (!d) {
        unlink(p);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/%s", p, e->d_name);
        remove_tree(sub);
    }
    closedir(d);
    rmdir(p);
}

static void teardown(void)
{
    if (st)
        store_close(st);
    if (loop)
        ev_loop_destroy(loop);
    remove_tree(dir);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---- */

/* Forget what was logged so far (opening, seeding). */
static void clear_log(void)
{
    logbuf[0] = 0;
    log_lines = 0;
}

static struct store_options options(void)
{
    return (struct store_options){.path = path, .log = test_log};
}

static store *open_with(const struct store_options *o)
{
    char err[512];
    int code = 1;
    store *s = store_open(loop, o, &code, err, sizeof(err));
    cr_assert_not_null(s, "store_open: %s (%s)", err, store_strerror(code));
    cr_assert_eq(code, STORE_OK);
    return s;
}

static store *open_default(void)
{
    struct store_options o = options();
    return open_with(&o);
}

static void reopen(void)
{
    store_close(st);
    st = open_default();
}

/* The first column of the first row of sql, through a connection of our own. */
static long long sql_int(const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = -1;
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static char *sql_text(const char *sql, char *out, size_t len)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    out[0] = 0;
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(out, len, "%s", sqlite3_column_text(q, 0));
    else
        snprintf(out, len, "(null)");
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
}

/* Run sql on the file at p with a connection of our own (read-write). */
static void sql_exec_at(const char *p, const char *sql)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql, msg ? msg : "");
    sqlite3_close(db);
}

static char *read_file(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f, "%s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *p, const char *data, size_t len)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static bool exists(const char *p) { return access(p, F_OK) == 0; }

static bool side_files(void)
{
    char p[160];
    snprintf(p, sizeof(p), "%s-wal", path);
    bool any = exists(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    any |= exists(p);
    snprintf(p, sizeof(p), "%s-journal", path);
    return any || exists(p);
}

/* Opening path must fail with `code`, leaving its bytes as they were. */
static void expect_refused(int want, const char *say)
{
    size_t before_len, after_len;
    char *before = read_file(path, &before_len);
    struct store_options o = options();
    char err[512] = "";
    int code = 0;
    cr_assert_null(store_open(NULL, &o, &code, err, sizeof(err)));
    cr_assert_eq(code, want, "code %d (%s), err %s", code, store_strerror(code), err);
    cr_assert(strstr(err, path) != NULL, "the error names the file: %s", err);
    cr_assert(strstr(err, say) != NULL, "the error says '%s': %s", say, err);
    char *after = read_file(path, &after_len);
    cr_assert_eq(after_len, before_len);
    cr_assert(memcmp(before, after, before_len) == 0, "the file was modified");
    cr_assert_not(side_files(), "side files were created next to a refused database");
    free(before);
    free(after);
}

static double now(void) { return (double)time(NULL); }

static void transition(const char *node, double t, const char *from, const char *to)
{
    struct store_transition tr = {.node = node, .time = t, .from = from, .to = to, .request = "ALIGNED",
                                  .how = STORE_HOW_EDGE};
    cr_assert_eq(store_transition(st, &tr), 0);
}

/* store_nodes into a small table. */
struct listed {
    unsigned n;
    struct {
        char name[64], system[64], args[256], request[64], mode[16], op[16], state[64];
        bool enabled, runtime;
    } node[16];
};

static int collect(void *arg, const struct store_node *nd)
{
    struct listed *l = arg;
    cr_assert_lt(l->n, 16);
    typeof(l->node[0]) *o = &l->node[l->n++];
    snprintf(o->name, sizeof(o->name), "%s", nd->name);
    snprintf(o->system, sizeof(o->system), "%s", nd->system);
    o->args[0] = 0;
    for (unsigned i = 0; i < nd->n_args; i++)
        snprintf(o->args + strlen(o->args), sizeof(o->args) - strlen(o->args), "%s%s", i ? "," : "", nd->args[i]);
    snprintf(o->request, sizeof(o->request), "%s", nd->request ? nd->request : "-");
    snprintf(o->mode, sizeof(o->mode), "%s", nd->mode ? nd->mode : "-");
    snprintf(o->op, sizeof(o->op), "%s", nd->op ? nd->op : "-");
    snprintf(o->state, sizeof(o->state), "%s", nd->state ? nd->state : "-");
    o->enabled = nd->enabled;
    o->runtime = nd->runtime;
    return 0;
}

static struct listed list_nodes(void)
{
    struct listed l = {0};
    int n = store_nodes(st, collect, &l);
    cr_assert_eq(n, (int)l.n, "store_nodes returned %d", n);
    return l;
}

static int find(const struct listed *l, const char *name)
{
    for (unsigned i = 0; i < l->n; i++)
        if (strcmp(l->node[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *etmx_args[] = {"optic=ETMX", "gain=2"};
static const char *itmx_args[] = {"optic=ITMX"};

static void seed_three(void)
{
    struct store_node_def defs[] = {
        {"SUS_ETMX", "sus", etmx_args, 2},
        {"SUS_ITMX", "sus", itmx_args, 1},
        {"IFO", "ifo", NULL, 0},
    };
    cr_assert_eq(store_seed(st, defs, 3), 0, "%s", store_errmsg(st));
}

struct trail {
    int n;
    char text[512];
};

static int trail_add(void *arg, const struct store_transition *t)
{
    struct trail *tr = arg;
    tr->n++;
    size_t len = strlen(tr->text);
    snprintf(tr->text + len, sizeof(tr->text) - len, "%s%.0f", len ? "," : "", t->time);
    return 0;
}

/* ---- opening, schema, refusal ---- */

Test(store, fresh_create_and_reopen_restores_state)
{
    st = open_default();
    cr_assert(exists(path));
    cr_assert_eq(sql_int("PRAGMA user_version"), (int)store_n_migrations);
    char mode[16];
    cr_assert_str_eq(sql_text("PRAGMA journal_mode", mode, sizeof(mode)), "wal");
    cr_assert(strstr(logbuf, "created") != NULL, "%s", logbuf);
    seed_three();
    cr_assert_eq(store_node_state(st, "SUS_ETMX", "ALIGNED", "AUTO", "EXEC", "DAMPED"), 0);
    cr_assert_eq(store_node_state(st, "SUS_ETMX", NULL, "MANUAL", NULL, "ALIGNED"), 0); /* latest wins */
    cr_assert_eq(store_node_state(st, "IFO", "LOCKED", NULL, NULL, NULL), 0);
    cr_assert_eq(store_node_state(st, "NOT_REGISTERED", "X", NULL, NULL, NULL), 0); /* ignored at flush */
    reopen(); /* store_close flushes */
    struct listed l = list_nodes();
    cr_assert_eq(l.n, 3);
    int e = find(&l, "SUS_ETMX");
    cr_assert_geq(e, 0);
    cr_assert_str_eq(l.node[e].system, "sus");
    cr_assert_str_eq(l.node[e].args, "gain=2,optic=ETMX"); /* sorted by key */
    cr_assert_str_eq(l.node[e].request, "ALIGNED");
    cr_assert_str_eq(l.node[e].mode, "MANUAL");
    cr_assert_str_eq(l.node[e].op, "EXEC");
    cr_assert_str_eq(l.node[e].state, "ALIGNED");
    cr_assert(l.node[e].enabled);
    cr_assert_not(l.node[e].runtime);
    int i = find(&l, "IFO");
    cr_assert_str_eq(l.node[i].request, "LOCKED");
    cr_assert_str_eq(l.node[i].mode, "-"); /* never given: NULL */
    int x = find(&l, "SUS_ITMX");
    cr_assert_str_eq(l.node[x].request, "-");
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state"), 2);
}

Test(store, sigkill_after_a_flush_loses_nothing_flushed)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        st = open_default();
        seed_three();
        store_boot_begin(st, "v", (int)getpid(), NULL);
        store_node_state(st, "SUS_ETMX", "DAMPED", "MANUAL", "PAUSE", "SAFE");
        if (store_flush(st) != 0)
            _exit(1);
        store_node_state(st, "SUS_ETMX", "ALIGNED", NULL, NULL, NULL); /* queued only: lost */
        raise(SIGKILL);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    cr_assert(exists(wal), "the WAL is left behind, as after a real SIGKILL");
    st = open_default(); /* checked read-only with the WAL, then recovered */
    struct listed l = list_nodes();
    int e = find(&l, "SUS_ETMX");
    cr_assert_str_eq(l.node[e].request, "DAMPED");
    cr_assert_str_eq(l.node[e].mode, "MANUAL");
    cr_assert_str_eq(l.node[e].op, "PAUSE");
    cr_assert_str_eq(l.node[e].state, "SAFE");
    bool unclean = false;
    store_boot_begin(st, "v", 2, &unclean);
    cr_assert(unclean);
}

Test(store, queued_state_is_listed_before_it_is_committed)
{
    st = open_default();
    seed_three();
    cr_assert_eq(store_node_state(st, "SUS_ITMX", "DAMPED", "AUTO", "EXEC", "INIT"), 0);
    struct listed l = list_nodes();
    cr_assert_str_eq(l.node[find(&l, "SUS_ITMX")].request, "DAMPED");
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state"), 0);
}

Test(store, relative_path_and_odd_characters)
{
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_eq(chdir(dir), 0);
    struct store_options o = options();
    o.path = "odd name?#%.db";
    st = open_with(&o);
    store_close(st);
    st = open_with(&o); /* the read-only check goes through a file: URI */
    store_close(st);
    st = NULL;
    cr_assert(exists("odd name?#%.db"));
    cr_assert_eq(chdir(cwd), 0);
}

/* The v1 schema as the file in schema/ has it; tests run from the repository root. */
static char *v1_sql(void)
{
    size_t len;
    cr_assert(exists("schema/001_initial.sql"), "run the tests from the repository root");
    return read_file("schema/001_initial.sql", &len);
}

Test(store, migrates_a_version_1_database)
{
    char *sql = v1_sql();
    sql_exec_at(path, sql);
    free(sql);
    sql_exec_at(path, "INSERT INTO nodes (name, system, args, enabled, origin, config_digest, created, updated) "
                      "VALUES ('SUS_ETMX', 'sus', 'optic=ETMX', 0, 'config', 'sus\noptic=ETMX', 1, 1);"
                      "INSERT INTO node_state (name, request, mode, op, state, updated) "
                      "VALUES ('SUS_ETMX', 'DAMPED', 'AUTO', 'EXEC', 'SAFE', 1);"
                      "INSERT INTO crashes (boot_id, seq, time, node, imported) VALUES (1, 1, 1000, 'SUS_ETMX', 1);"
                      "PRAGMA user_version = 1;");
    st = open_default();
    cr_assert(strstr(logbuf, "migrated to version 2") != NULL, "%s", logbuf);
    cr_assert_eq(sql_int("PRAGMA user_version"), (int)store_n_migrations);
    struct listed l = list_nodes();
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.node[0].request, "DAMPED");
    cr_assert_not(l.node[0].enabled);
    cr_assert_eq(store_crash_total(st, "SUS_ETMX"), 1);
    cr_assert_eq(store_crash_count(st, "SUS_ETMX", 0), 1);
    cr_assert_eq(store_release(st, "SUS_ETMX", 2000), 0); /* the column 002 added */
    cr_assert_eq(store_crash_count(st, "SUS_ETMX", 0), 0);
    /* The unchanged file entry keeps the registry's disable. */
    struct store_node_def def = {"SUS_ETMX", "sus", (const char *[]){"optic=ETMX"}, 1};
    cr_assert_eq(store_seed(st, &def, 1), 0);
    l = list_nodes();
    cr_assert_not(l.node[0].enabled);
}

Test(store, refuses_a_newer_schema_and_leaves_it_alone)
{
    st = open_default();
    seed_three();
    store_close(st);
    st = NULL;
    sql_exec_at(path, "PRAGMA user_version = 99");
    cr_assert_not(side_files());
    expect_refused(STORE_ENEWER, "99");
    struct store_options o = options();
    char err[512];
    store_open(NULL, &o, NULL, err, sizeof(err));
    char want[64];
    snprintf(want, sizeof(want), "newer than this guardiand's (%u)", store_n_migrations);
    cr_assert(strstr(err, want) != NULL, "%s", err);
}

Test(store, refuses_garbage_and_leaves_it_alone)
{
    char junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7919 % 251);
    write_file(path, junk, sizeof(junk));
    expect_refused(STORE_ECORRUPT, "not an SQLite database");
    write_file(path, "SQLite format 3", 16); /* the magic, then nothing */
    expect_refused(STORE_ECORRUPT, "not an SQLite database");
}

Test(store, refuses_another_programs_database)
{
    sql_exec_at(path, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT); INSERT INTO accounts VALUES (1, 'x')");
    expect_refused(STORE_ECORRUPT, "not a guardiand database");
    sql_exec_at(path, "DROP TABLE accounts; PRAGMA application_id = 42; VACUUM");
    expect_refused(STORE_ECORRUPT, "application_id 42");
}

Test(store, refuses_a_damaged_database_and_leaves_it_alone)
{
    st = open_default();
    seed_three();
    for (int i = 0; i < 3000; i++) {
        struct store_fault f = {.node = "IFO", .time = 1000 + i, .kind = "error", .message = "a fault message"};
        cr_assert_eq(store_fault(st, &f), 0);
    }
    store_close(st);
    st = NULL;
    size_t len;
    char *db = read_file(path, &len);
    cr_assert_gt(len, 40 * 4096);
    memset(db + 20 * 4096, 0x5a, 3 * 4096); /* three pages in the middle */
    write_file(path, db, len);
    free(db);
    expect_refused(STORE_ECORRUPT, "damaged");
}

Test(store, reports_what_it_cannot_open)
{
    struct store_options o = options();
    char err[512];
    int code = 0;
    o.path = dir; /* a directory */
    cr_assert_null(store_open(NULL, &o, &code, err, sizeof(err)));
    cr_assert_eq(code, STORE_EIO);
    cr_assert(strstr(err, "not a regular file") != NULL, "%s", err);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/g.db", dir);
    o.path = missing;
    cr_assert_null(store_open(NULL, &o, &code, err, sizeof(err)));
    cr_assert_eq(code, STORE_EIO);
    cr_assert(strstr(err, missing) != NULL, "%s", err);
    o.path = NULL;
    cr_assert_null(store_open(NULL, &o, &code, err, sizeof(err)));
    cr_assert_eq(code, STORE_EINVAL);
}

/* ---- the registry ---- */

Test(store, registry_seeding_rules)
{
    st = open_default();
    seed_three();
    cr_assert_eq(list_nodes().n, 3);

    /* Runtime changes. */
    cr_assert_eq(store_node_destroy(st, "SUS_ITMX"), 0);
    cr_assert_eq(store_node_set_enabled(st, "SUS_ETMX", false), 0);
    struct store_node_def rt = {"RT_NODE", "bench", (const char *[]){"i=1"}, 1};
    cr_assert_eq(store_node_create(st, &rt), 0);
    cr_assert_eq(store_node_state(st, "SUS_ETMX", "ALIGNED", "AUTO", "EXEC", "ALIGNED"), 0);
    transition("IFO", now(), "DOWN", "LOCKED");
    reopen();

    /* The same file again: the registry wins. */
    seed_three();
    struct listed l = list_nodes();
    cr_assert_eq(l.n, 3);
    cr_assert_lt(find(&l, "SUS_ITMX"), 0, "a runtime destroy survives the restart");
    cr_assert_not(l.node[find(&l, "SUS_ETMX")].enabled, "a runtime disable survives the restart");
    cr_assert(l.node[find(&l, "RT_NODE")].runtime);

    /* The same arguments in another order are the same definition. */
    struct store_node_def reordered[] = {
        {"SUS_ETMX", "sus", (const char *[]){"gain=2", "optic=ETMX"}, 2},
        {"SUS_ITMX", "sus", itmx_args, 1},
        {"IFO", "ifo", NULL, 0},
    };
    cr_assert_eq(store_seed(st, reordered, 3), 0);
    l = list_nodes();
    cr_assert_not(l.node[find(&l, "SUS_ETMX")].enabled);

    /* The file changed for SUS_ETMX and SUS_ITMX, and no longer has IFO. */
    struct store_node_def changed[] = {
        {"SUS_ETMX", "sus", (const char *[]){"optic=ETMX", "gain=3"}, 2},
        {"SUS_ITMX", "sus2", itmx_args, 1},
    };
    cr_assert_eq(store_seed(st, changed, 2), 0);
    l = list_nodes();
    cr_assert_eq(l.n, 3, "SUS_ETMX, SUS_ITMX and RT_NODE");
    int e = find(&l, "SUS_ETMX");
    cr_assert(l.node[e].enabled, "the file changed: the file wins");
    cr_assert_str_eq(l.node[e].args, "gain=3,optic=ETMX");
    cr_assert_str_eq(l.node[e].request, "ALIGNED", "saved controls stay");
    int i = find(&l, "SUS_ITMX");
    cr_assert_geq(i, 0, "the file changed: the destroy is forgotten");
    cr_assert_str_eq(l.node[i].system, "sus2");
    cr_assert_lt(find(&l, "IFO"), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM nodes WHERE name = 'IFO' AND removed > 0"), 1,
                 "kept, marked removed");
    cr_assert_geq(find(&l, "RT_NODE"), 0, "runtime nodes are not the file's");
    store_flush(st);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions WHERE node = 'IFO'"), 1, "history stays");
    cr_assert(strstr(logbuf, "IFO is no longer in the configuration file") != NULL, "%s", logbuf);
}

/* A node the file stops naming keeps its saved controls: naming it again
 * brings them back; enable, destroy and create treat it as gone. */
Test(store, removed_config_node_comes_back_with_its_controls)
{
    st = open_default();
    seed_three();
    cr_assert_eq(store_node_state(st, "IFO", "LOCKED", "MANUAL", "PAUSE", "DOWN"), 0);
    store_flush(st);
    struct store_node_def two[] = {
        {"SUS_ETMX", "sus", (const char *[]){"optic=ETMX", "gain=2"}, 2},
        {"SUS_ITMX", "sus", itmx_args, 1},
    };
    cr_assert_eq(store_seed(st, two, 2), 0);
    struct listed l = list_nodes();
    cr_assert_eq(l.n, 2);
    cr_assert_lt(find(&l, "IFO"), 0, "not listed");
    cr_assert_eq(store_node_set_enabled(st, "IFO", false), STORE_ENOENT);
    cr_assert_eq(store_node_destroy(st, "IFO"), STORE_ENOENT);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state WHERE name = 'IFO'"), 1);
    reopen();
    seed_three();
    l = list_nodes();
    int i = find(&l, "IFO");
    cr_assert_geq(i, 0, "back");
    cr_assert_str_eq(l.node[i].request, "LOCKED");
    cr_assert_str_eq(l.node[i].mode, "MANUAL");
    cr_assert_str_eq(l.node[i].op, "PAUSE");
    cr_assert(strstr(logbuf, "IFO is in the configuration file again") != NULL, "%s", logbuf);

    /* Removed again, then created at run time: a new node, without them. */
    cr_assert_eq(store_seed(st, two, 2), 0);
    struct store_node_def rt = {"IFO", "ifo2", NULL, 0};
    cr_assert_eq(store_node_create(st, &rt), 0);
    l = list_nodes();
    i = find(&l, "IFO");
    cr_assert_geq(i, 0);
    cr_assert(l.node[i].runtime);
    cr_assert_str_eq(l.node[i].request, "-", "not the old one's controls");
}

Test(store, seeding_refuses_bad_files_and_changes_nothing)
{
    st = open_default();
    seed_three();
    struct store_node_def dup[] = {{"A", "sus", NULL, 0}, {"A", "sus", NULL, 0}};
    cr_assert_eq(store_seed(st, dup, 2), STORE_EINVAL);
    struct store_node_def bad_arg[] = {{"A", "sus", (const char *[]){"noequals"}, 1}};
    cr_assert_eq(store_seed(st, bad_arg, 1), STORE_EINVAL);
    struct store_node_def dup_key[] = {{"A", "sus", (const char *[]){"k=1", "k=2"}, 2}};
    cr_assert_eq(store_seed(st, dup_key, 1), STORE_EINVAL);
    struct store_node_def newline[] = {{"A", "sus", (const char *[]){"k=1\nx=2"}, 1}};
    cr_assert_eq(store_seed(st, newline, 1), STORE_EINVAL);
    struct store_node_def bad_name[] = {{"A-B", "sus", NULL, 0}};
    cr_assert_eq(store_seed(st, bad_name, 1), STORE_EINVAL);
    cr_assert_eq(list_nodes().n, 3);
}

Test(store, runtime_create_destroy_enable)
{
    st = open_default();
    seed_three();
    struct store_node_def etmx = {"SUS_ETMX", "sus", NULL, 0};
    cr_assert_eq(store_node_create(st, &etmx), STORE_EEXIST);
    cr_assert_eq(store_node_destroy(st, "NOPE"), STORE_ENOENT);
    cr_assert_eq(store_node_set_enabled(st, "NOPE", true), STORE_ENOENT);
    struct store_node_def rt = {"RT", "bench", NULL, 0};
    cr_assert_eq(store_node_create(st, &rt), 0);
    cr_assert_eq(store_node_state(st, "RT", "A", NULL, NULL, NULL), 0);
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(store_node_destroy(st, "RT"), 0); /* a runtime node goes for good */
    cr_assert_eq(sql_int("SELECT count(*) FROM nodes WHERE name = 'RT'"), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state WHERE name = 'RT'"), 0);
    cr_assert_eq(store_node_destroy(st, "RT"), STORE_ENOENT);

    /* A destroyed config node is kept as destroyed; creating it again keeps
     * it a config node whose file entry did not change. */
    cr_assert_eq(store_node_destroy(st, "SUS_ETMX"), 0);
    cr_assert_eq(sql_int("SELECT destroyed FROM nodes WHERE name = 'SUS_ETMX'"), 1);
    struct store_node_def again = {"SUS_ETMX", "sus", (const char *[]){"optic=ETMY"}, 1};
    cr_assert_eq(store_node_create(st, &again), 0);
    seed_three();
    struct listed l = list_nodes();
    cr_assert_str_eq(l.node[find(&l, "SUS_ETMX")].args, "optic=ETMY");
}

/* ---- the queue and flushes ---- */

Test(store, flush_commits_everything_in_one_transaction)
{
    st = open_default();
    seed_three();
    double t = now();
    for (int i = 0; i < 5000; i++) {
        transition("SUS_ETMX", t + i * 1e-3, "DAMPED", "ALIGNED");
        cr_assert_eq(store_node_state(st, i % 2 ? "SUS_ETMX" : "IFO", "ALIGNED", "AUTO", "EXEC", "S"), 0);
    }
    struct store_fault f = {.node = "IFO", .time = t, .state = "LOCKING", .kind = "error", .message = "boom"};
    cr_assert_eq(store_fault(st, &f), 0);
    struct store_audit a = {.node = "IFO", .time = t, .channel = "X1:GRD-IFO_REQUEST", .old_value = "DOWN",
                            .new_value = "LOCKED", .host = "ws1", .user = "joe", .accepted = true};
    cr_assert_eq(store_audit(st, &a), 0);
    struct store_status s0;
    store_status(st, &s0);
    cr_assert_eq(s0.queued, 5002 + 2);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 0, "nothing is written before a flush");

    /* A failed flush writes nothing at all. */
    store_fail_next_flushes(st, 1);
    cr_assert_eq(store_flush(st), STORE_EIO);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state"), 0);

    cr_assert_eq(store_flush(st), 0);
    struct store_status s1;
    store_status(st, &s1);
    cr_assert_eq(s1.flushes, s0.flushes + 1, "one flush, one transaction");
    cr_assert_eq(s1.queued, 0);
    cr_assert_eq(s1.committed_total, 5002 + 2);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 5000);
    cr_assert_eq(sql_int("SELECT count(*) FROM faults"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM audit WHERE accepted = 1 AND user = 'joe'"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state"), 2);
}

struct run_until {
    store *s;
    double deadline;
    bool (*done)(const struct store_status *);
};

static void poll_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)revents;
    struct run_until *r = w->data;
    struct store_status s;
    store_status(r->s, &s);
    if (r->done(&s) || ev_now(l) > r->deadline)
        ev_break(l, EVBREAK_ALL);
}

/* Run the loop until done(status) or `seconds` passed. */
static void run_loop(bool (*done)(const struct store_status *), double seconds)
{
    struct run_until r = {st, ev_now(loop) + seconds, done};
    ev_timer poll;
    ev_timer_init(&poll, poll_cb, 0.005, 0.005);
    poll.data = &r;
    ev_timer_start(loop, &poll);
    ev_run(loop, 0);
    ev_timer_stop(loop, &poll);
}

static bool drained(const struct store_status *s) { return s->ok && s->queued == 0; }

Test(store, timer_flushes_within_a_budget)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    struct store_options o = options();
    o.flush_interval = 0.02;
    o.flush_budget = 0.001;
    st = open_with(&o);
    seed_three();
    double t = now();
    for (int i = 0; i < 30000; i++)
        transition("IFO", t, "A", "B");
    run_loop(drained, 20);
    struct store_status s;
    store_status(st, &s);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.committed_total, 30000);
    cr_assert_gt(s.flushes, 1, "a 1 ms budget splits 30000 rows over several flushes");
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 30000);
}

Test(store, a_full_queue_drops_the_oldest_history)
{
    struct store_options o = options();
    o.max_queued = 100;
    st = open_with(&o);
    seed_three();
    for (int i = 0; i < 150; i++)
        transition("IFO", 1000 + i, "A", "B");
    cr_assert_eq(store_node_state(st, "IFO", "X", NULL, NULL, NULL), 0);
    struct store_status s;
    store_status(st, &s);
    cr_assert_eq(s.dropped, 50);
    cr_assert_eq(s.queued, 101, "100 records and one node state");
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(sql_int("SELECT min(time) FROM transitions"), 1050);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 100);
}

Test(store, refuses_bad_records)
{
    st = open_default();
    struct store_transition t = {.node = "A B", .time = 1, .to = "X"};
    cr_assert_eq(store_transition(st, &t), STORE_EINVAL);
    t.node = "A";
    t.time = NAN;
    cr_assert_eq(store_transition(st, &t), STORE_EINVAL);
    t.time = 1;
    t.to = NULL;
    cr_assert_eq(store_transition(st, &t), STORE_EINVAL);
    t.to = "X";
    t.how = 9;
    cr_assert_eq(store_transition(st, &t), STORE_EINVAL);
    char longname[80];
    memset(longname, 'N', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    cr_assert_eq(store_node_state(st, longname, "X", NULL, NULL, NULL), STORE_EINVAL);
    char longstate[400];
    memset(longstate, 'S', sizeof(longstate) - 1);
    longstate[sizeof(longstate) - 1] = 0;
    cr_assert_eq(store_node_state(st, "A", longstate, NULL, NULL, NULL), STORE_EINVAL);
    cr_assert_eq(store_node_state(st, "A", "bad\nstate", NULL, NULL, NULL), STORE_EINVAL);
    /* Outside text in history is cut and cleaned, not refused. */
    struct store_audit a = {.node = "A", .time = 5, .channel = "X1:GRD-A_REQUEST", .old_value = longstate,
                            .new_value = "two\nlines", .host = "h", .user = "u"};
    cr_assert_eq(store_audit(st, &a), 0);
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(sql_int("SELECT length(old_value) FROM audit"), STORE_TEXT_MAX);
    char v[32];
    cr_assert_str_eq(sql_text("SELECT new_value FROM audit", v, sizeof(v)), "two?lines");
}

/* ---- retention ---- */

Test(store, retention_prunes_history_and_keeps_crashes)
{
    struct store_options o = options();
    o.retention_days = 30;
    st = open_with(&o);
    seed_three();
    cr_assert_eq(store_node_state(st, "IFO", "LOCKED", NULL, NULL, NULL), 0);
    double t = now(), old = t - 40 * 86400.0, recent = t - 86400.0;
    for (int i = 0; i < 700; i++) /* more than one pruning chunk */
        transition("IFO", old + i, "A", "B");
    transition("IFO", recent, "B", "C");
    struct store_audit a = {.node = "IFO", .time = old, .channel = "C", .accepted = true};
    cr_assert_eq(store_audit(st, &a), 0);
    a.time = recent;
    cr_assert_eq(store_audit(st, &a), 0);
    struct store_fault f = {.node = "IFO", .time = old, .kind = "error"};
    cr_assert_eq(store_fault(st, &f), 0);
    store_close(st);
    st = NULL;
    char journal[160], rec[256];
    snprintf(journal, sizeof(journal), "%s/crash.journal", dir);
    snprintf(rec, sizeof(rec), "CRASH v1 boot=1 seq=1 time=%.1f signal=11 node=IFO\nEND\n", t - 400 * 86400.0);
    write_file(journal, rec, strlen(rec));
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 701);

    st = open_with(&o); /* prunes at open */
    cr_assert_eq(store_import_journal(st, journal, NULL, 0), 1);
    store_close(st);
    st = open_with(&o);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM audit"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM faults"), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM crashes"), 1, "crashes are never pruned");
    cr_assert_eq(store_crash_total(st, "IFO"), 1);
    struct trail tr = {0};
    cr_assert_eq(store_history(st, "IFO", 0, 0, trail_add, &tr), 1, "the chain ends where pruning cut it");
}

/* ---- boots ---- */

Test(store, boots_clean_and_unclean)
{
    st = open_default();
    bool unclean = true;
    int64_t b1 = store_boot_begin(st, "0.2.0", 100, &unclean);
    cr_assert_gt(b1, 0);
    cr_assert_not(unclean, "no earlier boot");
    cr_assert_eq(store_boot_begin(st, "0.2.0", 100, NULL), STORE_EINVAL, "one boot per store");
    reopen(); /* died: never ended */
    int64_t b2 = store_boot_begin(st, "0.2.1", 101, &unclean);
    cr_assert_gt(b2, b1);
    cr_assert(unclean);
    cr_assert(strstr(logbuf, "did not end cleanly") != NULL, "%s", logbuf);
    struct store_status s;
    store_status(st, &s);
    cr_assert(s.prev_unclean);
    cr_assert_eq(s.boot_id, b2);
    cr_assert_eq(store_boot_end(st, true), 0);
    reopen();
    store_boot_begin(st, "0.2.1", 102, &unclean);
    cr_assert_not(unclean);
    cr_assert_eq(sql_int("SELECT clean FROM boots WHERE id = 1"), 0);
    cr_assert_eq(sql_int("SELECT clean FROM boots WHERE id = 2"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM boots WHERE id = 3 AND clean IS NULL AND ended IS NULL"), 1);
}

/* ---- the crash journal ---- */

static char journal[160];

static void write_journal(const char *text)
{
    snprintf(journal, sizeof(journal), "%s/crash.journal", dir);
    write_file(journal, text, strlen(text));
}

static off_t file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

static const char JOURNAL[] =
    "CRASH v1 boot=1 seq=1 time=1000.5 signal=11 code=1 addr=0x7f00dead uptime=12.25 node=SUS_ETMX state=DAMPED "
    "phase=run\n"
    "bt build/systems/sus.so(damped_run+0x1c)[0x7f00dead]\n"
    "bt build/bin/guardiand(node_step+0x40)[0x55550000]\n"
    "END\n"
    "CRASH v1 boot=2 seq=1 time=1600.5 signal=7 code=2 addr=0x0 uptime=3 node=SUS_ETMX state=ALIGNED phase=main\n"
    "bt one\n"
    "END\n"
    "CRASH v1 boot=3 seq=1 time=1700 signal=6 code=0 addr=0x1 uptime=1 node=IFO state=- phase=-\n"
    "bt cut short\n"; /* died while writing: no END */

Test(store, journal_is_imported_exactly_once)
{
    st = open_default();
    seed_three();
    cr_assert_eq(store_import_journal(st, "/nonexistent/journal", NULL, 0), 0, "no journal: nothing to do");
    write_journal(JOURNAL);
    char err[256];
    cr_assert_eq(store_import_journal(st, journal, err, sizeof(err)), 3, "%s", err);
    cr_assert_eq(file_size(journal), 0, "emptied after the commit");
    cr_assert_eq(sql_int("SELECT count(*) FROM crashes"), 3);
    /* The same records again (as if we died before emptying it): nothing new. */
    write_journal(JOURNAL);
    cr_assert_eq(store_import_journal(st, journal, err, sizeof(err)), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM crashes"), 3);
    cr_assert_eq(sql_int("SELECT since_prev_crash FROM crashes WHERE boot_id = 2"), 600);
    cr_assert_eq(sql_int("SELECT since_prev_crash IS NULL FROM crashes WHERE boot_id = 1"), 1);
    cr_assert_eq(sql_int("SELECT since_prev_crash FROM crashes WHERE boot_id = 3"), 99);
    cr_assert_eq(sql_int("SELECT complete FROM crashes WHERE boot_id = 3"), 0);
    cr_assert_eq(sql_int("SELECT complete FROM crashes WHERE boot_id = 1"), 1);
    char v[256];
    cr_assert_str_eq(sql_text("SELECT backtrace FROM crashes WHERE boot_id = 1", v, sizeof(v)),
                     "build/systems/sus.so(damped_run+0x1c)[0x7f00dead]\n"
                     "build/bin/guardiand(node_step+0x40)[0x55550000]");
    cr_assert_str_eq(sql_text("SELECT addr FROM crashes WHERE boot_id = 1", v, sizeof(v)), "0x7f00dead");
    cr_assert_str_eq(sql_text("SELECT phase FROM crashes WHERE boot_id = 1", v, sizeof(v)), "run");
    cr_assert_str_eq(sql_text("SELECT state FROM crashes WHERE boot_id = 3", v, sizeof(v)), "(null)");
    cr_assert_eq(store_crash_total(st, "SUS_ETMX"), 2);
    cr_assert_eq(store_crash_total(st, "IFO"), 1);
}

Test(store, journal_import_marks_the_crashed_boot_unclean)
{
    st = open_default();
    int64_t b1 = store_boot_begin(st, "v", 1, NULL);
    cr_assert_eq(store_boot_end(st, true), 0);
    reopen();
    char rec[128];
    snprintf(rec, sizeof(rec), "CRASH v1 boot=%lld seq=0 time=5000 signal=11\nEND\n", (long long)b1);
    write_journal(rec);
    cr_assert_eq(store_import_journal(st, journal, NULL, 0), 1);
    bool unclean = false;
    store_boot_begin(st, "v", 2, &unclean);
    cr_assert(unclean, "the previous boot crashed");
    cr_assert_eq(sql_int("SELECT clean FROM boots WHERE id = 1"), 0);
}

Test(store, journal_is_parsed_defensively)
{
    st = open_default();
    char *text = malloc(20000);
    char *o = text;
    o += sprintf(o, "garbage line\n\n");
    o += sprintf(o, "CRASH v1 seq=1 time=1 signal=11\nEND\n");                 /* no boot: skipped */
    o += sprintf(o, "CRASH v2 boot=9 seq=1 time=1\nEND\n");                    /* unknown version */
    o += sprintf(o, "CRASH v1 boot=5 seq=1 time=abc\nEND\n");                  /* bad time: skipped */
    o += sprintf(o, "CRASH v1 boot=5 seq=2 time=10 signal=x addr=0xZZ node=BAD-NAME state=S\xc3\xa9 "
                    "uptime=-1 extra=ignored\n");
    o += sprintf(o, "bt ");
    memset(o, 'x', 9000); /* longer than a line: cut */
    o += 9000;
    o += sprintf(o, "\nbt after\x01" "control\r\nEND\n");
    o += sprintf(o, "CRASH v1 boot=5 seq=3 time=11 node=OK_NODE"); /* cut mid-line, no newline */
    write_journal(text);
    free(text);
    cr_assert_eq(store_import_journal(st, journal, NULL, 0), 2);
    char v[5000];
    cr_assert_eq(sql_int("SELECT signal IS NULL AND addr IS NULL AND node IS NULL AND uptime IS NULL "
                         "FROM crashes WHERE seq = 2"), 1);
    cr_assert_str_eq(sql_text("SELECT state FROM crashes WHERE seq = 2", v, sizeof(v)), "S\xc3\xa9");
    sql_text("SELECT backtrace FROM crashes WHERE seq = 2", v, sizeof(v));
    cr_assert(strstr(v, "\nafter?control") != NULL, "%s", v + strlen(v) - 20);
    cr_assert_lt(strlen(v), 4200);
    cr_assert_str_eq(sql_text("SELECT node FROM crashes WHERE seq = 3", v, sizeof(v)), "OK_NODE");
    cr_assert_eq(sql_int("SELECT complete FROM crashes WHERE seq = 3"), 0);
    cr_assert(strstr(logbuf, "2 crashes imported, 0 already there, 3 unusable records skipped") != NULL, "%s",
              logbuf);
}

Test(store, an_unreadable_journal_is_left_alone)
{
    st = open_default();
    snprintf(journal, sizeof(journal), "%s/journal-dir", dir);
    cr_assert_eq(mkdir(journal, 0755), 0);
    char err[256] = "";
    cr_assert_eq(store_import_journal(st, journal, err, sizeof(err)), STORE_EIO);
    cr_assert(strstr(err, journal) != NULL && strstr(err, "left as it is") != NULL, "%s", err);
    cr_assert(exists(journal));
    /* A device is not a journal either: /dev/full would be read for ever. */
    cr_assert_eq(store_import_journal(st, "/dev/full", err, sizeof(err)), STORE_EIO);
    cr_assert(strstr(err, "/dev/full: not a regular file"), "%s", err);
    /* A journal whose import cannot commit is not emptied either. */
    write_journal(JOURNAL);
    sqlite3 *other;
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(store_import_journal(st, journal, err, sizeof(err)), STORE_EIO);
    cr_assert_eq(file_size(journal), (off_t)strlen(JOURNAL));
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    cr_assert_eq(store_import_journal(st, journal, err, sizeof(err)), 3);
}

/* ---- quarantine counts ---- */

Test(store, crash_counts_and_release)
{
    st = open_default();
    seed_three();
    write_journal("CRASH v1 boot=1 seq=1 time=900 node=SUS_ETMX\nEND\n"
                  "CRASH v1 boot=1 seq=2 time=950 node=SUS_ETMX\nEND\n"
                  "CRASH v1 boot=1 seq=3 time=990 node=SUS_ETMX\nEND\n"
                  "CRASH v1 boot=1 seq=4 time=995 node=IFO\nEND\n");
    cr_assert_eq(store_import_journal(st, journal, NULL, 0), 4);
    cr_assert_eq(store_crash_count(st, "SUS_ETMX", 940), 2);
    cr_assert_eq(store_crash_count(st, "SUS_ETMX", 0), 3);
    cr_assert_eq(store_release(st, "SUS_ETMX", 960), 0);
    cr_assert_eq(store_crash_count(st, "SUS_ETMX", 0), 1, "only crashes after the release count");
    cr_assert_eq(store_crash_count(st, "SUS_ETMX", 980), 1);
    cr_assert_eq(store_crash_total(st, "SUS_ETMX"), 3, "the total is all time");
    cr_assert_eq(store_crash_count(st, "SUS_ITMX", 0), 0);
    cr_assert_eq(store_release(st, "NOPE", 960), STORE_ENOENT);
    cr_assert_eq(store_crash_count(st, "bad name", 0), STORE_EINVAL);
}

/* ---- queries ---- */

struct seen {
    int n;
    char first[64];
};

static int saw_crash(void *arg, const struct store_crash *c)
{
    struct seen *s = arg;
    if (!s->n++)
        snprintf(s->first, sizeof(s->first), "%lld/%s/%.0f", (long long)c->seq, c->node ? c->node : "-",
                 c->since_prev);
    return 0;
}

static int saw_transition(void *arg, const struct store_transition *t)
{
    struct seen *s = arg;
    if (!s->n++)
        snprintf(s->first, sizeof(s->first), "%s>%s:%s", t->from ? t->from : "-", t->to, store_how_name(t->how));
    return 0;
}

static int saw_audit(void *arg, const struct store_audit *a)
{
    struct seen *s = arg;
    if (!s->n++)
        snprintf(s->first, sizeof(s->first), "%s=%s@%s:%d", a->channel, a->new_value, a->host, a->accepted);
    return 0;
}

Test(store, queries_newest_first_with_limits)
{
    st = open_default();
    seed_three();
    write_journal("CRASH v1 boot=1 seq=1 time=900 node=SUS_ETMX\nEND\n"
                  "CRASH v1 boot=1 seq=2 time=950 node=IFO\nEND\n");
    store_import_journal(st, journal, NULL, 0);
    for (int i = 0; i < 10; i++) {
        struct store_transition t = {.node = i % 2 ? "IFO" : "SUS_ETMX", .time = 100 + i, .from = i ? "A" : NULL,
                                     .to = "B", .how = i == 9 ? STORE_HOW_JUMP : STORE_HOW_EDGE};
        cr_assert_eq(store_transition(st, &t), 0);
        struct store_audit a = {.node = "IFO", .time = 100 + i, .channel = i % 2 ? "X1:GRD-IFO_MODE" : "X1:GRD-IFO_OP",
                                .new_value = i % 2 ? "AUTO" : "EXEC", .host = "ws", .accepted = i != 9};
        cr_assert_eq(store_audit(st, &a), 0);
    }
    cr_assert_eq(store_flush(st), 0);

    struct seen s = {0};
    cr_assert_eq(store_crashes(st, NULL, 0, 0, saw_crash, &s), 2);
    cr_assert_str_eq(s.first, "2/IFO/50");
    s = (struct seen){0};
    cr_assert_eq(store_crashes(st, "SUS_ETMX", 0, 0, saw_crash, &s), 1);
    cr_assert_str_eq(s.first, "1/SUS_ETMX/-1");
    s = (struct seen){0};
    cr_assert_eq(store_crashes(st, NULL, 920, 0, saw_crash, &s), 1);

    s = (struct seen){0};
    cr_assert_eq(store_history(st, "IFO", 0, 3, saw_transition, &s), 3);
    cr_assert_str_eq(s.first, "A>B:jump");
    s = (struct seen){0};
    cr_assert_eq(store_history(st, NULL, 105, 0, saw_transition, &s), 4);
    s = (struct seen){0};
    cr_assert_eq(store_history(st, "SUS_ETMX", 0, 0, saw_transition, &s), 5);

    s = (struct seen){0};
    cr_assert_eq(store_audit_list(st, "IFO", "X1:GRD-IFO_MODE", 0, 0, saw_audit, &s), 5);
    cr_assert_str_eq(s.first, "X1:GRD-IFO_MODE=AUTO@ws:0");
    s = (struct seen){0};
    cr_assert_eq(store_audit_list(st, NULL, NULL, 0, 7, saw_audit, &s), 7);
    s = (struct seen){0};
    cr_assert_eq(store_audit_list(st, "IFO", NULL, 105, 0, saw_audit, &s), 4, "since");

    /* Counts: the same filters, no limit, stopping at the cap. */
    cr_assert_eq(store_count(st, STORE_ROWS_CRASHES, NULL, NULL, 0, 1000), 2);
    cr_assert_eq(store_count(st, STORE_ROWS_CRASHES, NULL, NULL, 920, 1000), 1);
    cr_assert_eq(store_count(st, STORE_ROWS_HISTORY, "IFO", NULL, 0, 1000), 5, "by the chain");
    cr_assert_eq(store_count(st, STORE_ROWS_HISTORY, NULL, NULL, 105, 1000), 4);
    cr_assert_eq(store_count(st, STORE_ROWS_HISTORY, NULL, NULL, 0, 3), 3, "the cap");
    cr_assert_eq(store_count(st, STORE_ROWS_AUDIT, "IFO", "X1:GRD-IFO_MODE", 0, 1000), 5);
    cr_assert_eq(store_count(st, STORE_ROWS_AUDIT, "IFO", NULL, 105, 1000), 4);
    cr_assert_eq(store_count(st, STORE_ROWS_AUDIT, "SUS_ETMX", NULL, 0, 1000), 0);

    /* the newest accepted write of one channel (guardctl status: who set the request) */
    s = (struct seen){0};
    cr_assert_eq(store_audit_newest(st, "IFO", "X1:GRD-IFO_MODE", saw_audit, &s), 1);
    cr_assert_str_eq(s.first, "X1:GRD-IFO_MODE=AUTO@ws:1", "the refused newest one is passed over");
    s = (struct seen){0};
    cr_assert_eq(store_audit_newest(st, "IFO", "X1:GRD-IFO_OP", saw_audit, &s), 1);
    s = (struct seen){0};
    cr_assert_eq(store_audit_newest(st, "SUS_ETMX", "X1:GRD-IFO_OP", saw_audit, &s), 0);
    cr_assert_eq(store_audit_newest(st, "IFO", NULL, saw_audit, &s), STORE_EINVAL);
    cr_assert_eq(store_audit_newest(st, "bad name", "X", saw_audit, &s), STORE_EINVAL);
}

/* A registered node's history follows its chain; the same rows come from the
 * time index once the node has left the registry. */
Test(store, history_of_a_node_follows_its_chain)
{
    st = open_default();
    seed_three();
    cr_assert_eq(store_node_state(st, "IFO", "LOCKED", "AUTO", "EXEC", "DOWN"), 0);
    cr_assert_eq(store_node_state(st, "SUS_ETMX", "ALIGNED", "AUTO", "EXEC", "SAFE"), 0);
    for (int i = 0; i < 30; i++) {
        transition(i % 3 ? "SUS_ETMX" : "IFO", 100 + i, "A", "B");
        if (i % 7 == 6)
            cr_assert_eq(store_flush(st), 0); /* the chain runs across flushes */
    }
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(sql_int("SELECT last_transition FROM node_state WHERE name = 'IFO'"),
                 sql_int("SELECT max(id) FROM transitions WHERE node = 'IFO'"));
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions WHERE prev_id IS NULL"), 2, "one first per node");
    struct trail tr = {0};
    cr_assert_eq(store_history(st, "IFO", 0, 0, trail_add, &tr), 10);
    cr_assert_str_eq(tr.text, "127,124,121,118,115,112,109,106,103,100");
    tr = (struct trail){0};
    cr_assert_eq(store_history(st, "IFO", 110, 0, trail_add, &tr), 6);
    cr_assert_str_eq(tr.text, "127,124,121,118,115,112");
    tr = (struct trail){0};
    cr_assert_eq(store_history(st, "IFO", 0, 2, trail_add, &tr), 2);
    cr_assert_str_eq(tr.text, "127,124");
    tr = (struct trail){0};
    cr_assert_eq(store_history(st, "SUS_ETMX", 120, 0, trail_add, &tr), 6);
    cr_assert_str_eq(tr.text, "129,128,126,125,123,122");

    /* Removed from the file: its saved state goes, its history stays. */
    struct store_node_def keep[] = {{"SUS_ETMX", "sus", etmx_args, 2}, {"SUS_ITMX", "sus", itmx_args, 1}};
    cr_assert_eq(store_seed(st, keep, 2), 0);
    tr = (struct trail){0};
    cr_assert_eq(store_history(st, "IFO", 110, 0, trail_add, &tr), 6);
    cr_assert_str_eq(tr.text, "127,124,121,118,115,112");
}

/* ---- degraded mode ---- */

Test(store, injected_failures_degrade_then_recover)
{
    st = open_default();
    seed_three();
    transition("IFO", 100, "A", "B");
    cr_assert_eq(store_node_state(st, "IFO", "LOCKED", NULL, NULL, NULL), 0);
    clear_log();
    store_fail_next_flushes(st, 2);
    cr_assert_eq(store_flush(st), STORE_EIO);
    struct store_status s;
    store_status(st, &s);
    cr_assert_not(s.ok);
    cr_assert(strstr(s.error, "injected") != NULL, "%s", s.error);
    cr_assert_eq(s.queued, 2, "the queue is kept");
    cr_assert_eq(log_lines, 1, "one line when it starts failing: %s", logbuf);
    cr_assert_eq(store_node_state(st, "IFO", "DOWN", NULL, NULL, NULL), 0); /* still latest wins */
    cr_assert_eq(store_flush(st), STORE_EIO);
    cr_assert_eq(log_lines, 1, "not one line per failure: %s", logbuf);
    cr_assert_eq(store_flush(st), 0);
    store_status(st, &s);
    cr_assert(s.ok);
    cr_assert_str_eq(s.error, "");
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(s.failed_flushes, 2);
    cr_assert_eq(log_lines, 2, "one line when it recovers: %s", logbuf);
    cr_assert(strstr(logbuf, "work again") != NULL, "%s", logbuf);
    char v[16];
    cr_assert_str_eq(sql_text("SELECT request FROM node_state WHERE name = 'IFO'", v, sizeof(v)), "DOWN");
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 1);
}

static bool failing(const struct store_status *s) { return !s->ok; }

Test(store, the_timer_retries_with_backoff)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    struct store_options o = options();
    o.flush_interval = 0.01;
    o.max_backoff = 0.04;
    st = open_with(&o);
    seed_three();
    clear_log();
    store_fail_next_flushes(st, 4);
    for (int i = 0; i < 100; i++)
        transition("IFO", 100 + i, "A", "B");
    run_loop(failing, 5);
    struct store_status s;
    store_status(st, &s);
    cr_assert_not(s.ok);
    run_loop(drained, 10);
    store_status(st, &s);
    cr_assert(s.ok, "%s", s.error);
    cr_assert_eq(s.failed_flushes, 4);
    cr_assert_eq(s.committed_total, 100);
    cr_assert_eq(log_lines, 2, "%s", logbuf);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 100);
}

Test(store, a_full_disk_degrades_then_recovers)
{
    st = open_default();
    seed_three();
    cr_assert_eq(store_flush(st), 0);
    clear_log();
    cr_assert_eq(store_set_size_limit(st, 1), 0); /* no room to grow: SQLITE_FULL for real */
    char msg[800];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = 0;
    double t = now();
    for (int i = 0; i < 2000; i++) {
        struct store_fault f = {.node = "IFO", .time = t, .kind = "error", .message = msg};
        cr_assert_eq(store_fault(st, &f), 0);
    }
    cr_assert_eq(store_node_state(st, "SUS_ETMX", "ALIGNED", "AUTO", "EXEC", "DAMPED"), 0);
    cr_assert_eq(store_flush(st), STORE_EIO);
    struct store_status s;
    store_status(st, &s);
    cr_assert_not(s.ok);
    cr_assert(strstr(s.error, "full") != NULL, "%s", s.error);
    cr_assert_eq(s.queued, 2001);
    cr_assert_eq(store_node_state(st, "SUS_ETMX", "DAMPED", NULL, NULL, NULL), 0);
    cr_assert_eq(store_flush(st), STORE_EIO, "still full");
    cr_assert_eq(sql_int("SELECT count(*) FROM faults"), 0);

    cr_assert_eq(store_set_size_limit(st, 0), 0); /* space again */
    cr_assert_eq(store_flush(st), 0);
    store_status(st, &s);
    cr_assert(s.ok);
    cr_assert_eq(s.queued, 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM faults"), 2000);
    char v[16];
    cr_assert_str_eq(sql_text("SELECT request FROM node_state WHERE name = 'SUS_ETMX'", v, sizeof(v)), "DAMPED");
    cr_assert_eq(log_lines, 2, "%s", logbuf);
}

Test(store, a_locked_database_degrades_then_recovers)
{
    st = open_default();
    seed_three();
    sqlite3 *other;
    cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    transition("IFO", 100, "A", "B");
    cr_assert_eq(store_node_state(st, "IFO", "LOCKED", NULL, NULL, NULL), 0);
    cr_assert_eq(store_flush(st), STORE_EIO);
    struct store_status s;
    store_status(st, &s);
    cr_assert_not(s.ok);
    cr_assert(strstr(s.error, "locked") != NULL, "%s", s.error);
    /* Registry changes are immediate: they fail too, and say so. */
    cr_assert_eq(store_node_set_enabled(st, "IFO", false), STORE_EIO);
    cr_assert(strstr(store_errmsg(st), "locked") != NULL, "%s", store_errmsg(st));
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(other);
    cr_assert_eq(store_flush(st), 0);
    store_status(st, &s);
    cr_assert(s.ok);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_state WHERE request = 'LOCKED'"), 1);
}

/* ---- checkpoints ---- */

Test(store, checkpoints_run_on_their_own_timer)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    struct store_options o = options();
    o.flush_interval = 0.01;
    o.checkpoint_pages = 20;
    st = open_with(&o);
    seed_three();
    for (int i = 0; i < 20000; i++)
        transition("IFO", 100 + i, "SOME_LONGER_STATE_NAME", "ANOTHER_LONG_STATE_NAME");
    run_loop(drained, 20);
    ev_run(loop, EVRUN_NOWAIT); /* the checkpoint timer, if it is pending */
    struct store_status s;
    store_status(st, &s);
    cr_assert_gt(s.checkpoints, 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 20000);
}

/* ---- node log lines ---- */

struct lines {
    int n;
    char text[2048];
};

/* The lines given, "|"-separated; their times checked against the line text
 * ("<time> NODE ...", as the tests below write them). */
static int lines_add(void *arg, double time, const char *line)
{
    struct lines *l = arg;
    l->n++;
    cr_assert_eq(atof(line), time, "line '%s' with time %.0f", line, time);
    size_t len = strlen(l->text);
    snprintf(l->text + len, sizeof(l->text) - len, "%s%s", len ? "|" : "", line);
    return 0;
}

static void log_line(const char *node, double t, const char *msg)
{
    char line[256];
    snprintf(line, sizeof(line), "%.0f %s %s", t, node, msg);
    cr_assert_eq(store_log_line(st, node, t, line), 0);
}

static struct lines read_lines(const char *node, double since, unsigned limit)
{
    struct lines l = {0};
    int n = store_log_lines(st, node, since, limit, lines_add, &l);
    cr_assert_eq(n, l.n, "store_log_lines returned %d", n);
    return l;
}

Test(store, node_log_lines_newest_first_per_node)
{
    struct store_options o = options();
    o.log_retention_days = -1; /* the times here are of 1970 */
    st = open_with(&o);
    for (int i = 0; i < 30; i++) {
        log_line(i % 3 ? "A" : "B", 100 + i, i % 3 ? "a" : "b");
        if (i % 7 == 6)
            cr_assert_eq(store_flush(st), 0); /* the chain runs across flushes */
    }
    log_line("D", 90, "queued");
    cr_assert_eq(read_lines("D", 0, 0).n, 0, "nothing before the flush: committed lines only");
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(read_lines("D", 0, 0).n, 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log"), 31);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log WHERE prev_id IS NULL"), 3, "one first per node");
    struct lines l = read_lines("B", 0, 0);
    cr_assert_eq(l.n, 10);
    cr_assert_str_eq(l.text, "127 B b|124 B b|121 B b|118 B b|115 B b|112 B b|109 B b|106 B b|103 B b|100 B b");
    l = read_lines("B", 110, 0);
    cr_assert_str_eq(l.text, "127 B b|124 B b|121 B b|118 B b|115 B b|112 B b", "since: later lines only");
    l = read_lines("A", 0, 3);
    cr_assert_str_eq(l.text, "129 A a|128 A a|126 A a", "limit");
    l = read_lines("A", 125, 2);
    cr_assert_str_eq(l.text, "129 A a|128 A a");
    cr_assert_eq(read_lines("C", 0, 0).n, 0, "a node that never logged");
    cr_assert_eq(store_log_lines(st, "no such", 0, 0, lines_add, &l), STORE_EINVAL);

    /* Across a reopen (a restart of the daemon) the chains go on. */
    store_close(st);
    st = open_with(&o);
    log_line("B", 200, "after");
    cr_assert_eq(store_flush(st), 0);
    l = read_lines("B", 120, 0);
    cr_assert_str_eq(l.text, "200 B after|127 B b|124 B b|121 B b");
    cr_assert_eq(read_lines("A", 0, 0).n, 20);
    /* Not tied to the registry: there is none here, and seeding one changes nothing. */
    seed_three();
    cr_assert_eq(read_lines("A", 0, 0).n, 20);
}

Test(store, node_log_lines_are_checked_cut_and_cleaned)
{
    st = open_default();
    cr_assert_eq(store_log_line(st, "A B", 1, "x"), STORE_EINVAL);
    cr_assert_eq(store_log_line(st, "A", NAN, "x"), STORE_EINVAL);
    cr_assert_eq(store_log_line(st, "A", -1, "x"), STORE_EINVAL);
    cr_assert_eq(store_log_line(st, "A", 1, NULL), STORE_EINVAL);
    cr_assert_eq(store_log_line(st, "A", 1, ""), STORE_EINVAL);
    char longline[STORE_LINE_MAX + 100];
    memset(longline, 'L', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = 0;
    cr_assert_eq(store_log_line(st, "A", 5, longline), 0);
    cr_assert_eq(store_log_line(st, "A", 6, "two\nlines\x7f"), 0);
    struct store_status s;
    store_status(st, &s);
    cr_assert_eq(s.log_queued, 2);
    cr_assert_eq(s.queued, 0, "log lines are counted apart");
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(sql_int("SELECT length(line) FROM node_log WHERE time = 5"), STORE_LINE_MAX);
    char v[32];
    cr_assert_str_eq(sql_text("SELECT line FROM node_log WHERE time = 6", v, sizeof(v)), "two?lines?");
    store_status(st, &s);
    cr_assert_eq(s.log_queued, 0);
    cr_assert_eq(s.committed_total, 2);
}

Test(store, a_full_log_queue_drops_its_oldest_lines_not_history)
{
    struct store_options o = options();
    o.max_queued = 100;
    o.max_log_queued = 50;
    st = open_with(&o);
    seed_three();
    for (int i = 0; i < 80; i++)
        log_line("IFO", 1000 + i, "chatty");
    for (int i = 0; i < 10; i++)
        transition("IFO", 1000 + i, "A", "B");
    struct store_status s;
    store_status(st, &s);
    cr_assert_eq(s.log_dropped, 30);
    cr_assert_eq(s.log_queued, 50);
    cr_assert_eq(s.dropped, 0, "history is not pushed out by log lines");
    cr_assert_eq(s.queued, 10);
    /* A failing flush keeps them all. */
    store_fail_next_flushes(st, 1);
    cr_assert_eq(store_flush(st), STORE_EIO);
    store_status(st, &s);
    cr_assert_eq(s.log_queued, 50);
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(sql_int("SELECT min(time) FROM node_log"), 1030);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log"), 50);
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 10);
    cr_assert_eq(read_lines("IFO", 0, 1000).n, 50);
}

Test(store, log_retention_prunes_lines_and_heads_apart_from_history)
{
    struct store_options o = options();
    o.retention_days = 90;
    o.log_retention_days = 7;
    st = open_with(&o);
    seed_three();
    double t = now(), old = t - 10 * 86400.0, recent = t - 86400.0;
    for (int i = 0; i < 700; i++) /* more than one pruning chunk */
        log_line(i % 2 ? "A" : "GONE", old + i, "old");
    log_line("A", recent, "recent");
    transition("IFO", old, "A", "B"); /* within the history's retention */
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log"), 701);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log_heads"), 2);
    store_close(st);
    st = open_with(&o); /* prunes at open */
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log_heads"), 1, "GONE has no lines left, so no head");
    cr_assert_eq(sql_int("SELECT count(*) FROM transitions"), 1);
    struct lines l = read_lines("A", 0, 0);
    cr_assert_eq(l.n, 1, "the chain ends where pruning cut it: %s", l.text);
    cr_assert_eq(read_lines("GONE", 0, 0).n, 0);
    /* A node logging again after all its lines were pruned starts a new chain. */
    log_line("GONE", t, "back");
    cr_assert_eq(store_flush(st), 0);
    cr_assert_eq(read_lines("GONE", 0, 0).n, 1);

    /* < 0: kept for ever. */
    store_close(st);
    o.log_retention_days = -1;
    st = open_with(&o);
    log_line("A", old, "old again");
    cr_assert_eq(store_flush(st), 0);
    store_close(st);
    st = open_with(&o); /* would prune at open */
    cr_assert_eq(sql_int("SELECT count(*) FROM node_log WHERE time < strftime('%s','now') - 86400 * 7"), 1);
}

/* ---- site snapshots ---- */

struct snap_seen {
    char head[128];
    char rows[8][160];
    unsigned n;
};

static int snap_head(void *arg, const struct store_snapshot *snap)
{
    struct snap_seen *s = arg;
    snprintf(s->head, sizeof(s->head), "%s %s %u", snap->name, snap->user ? snap->user : "-",
             snap->nodes);
    return 0;
}

static int snap_row(void *arg, const struct store_snapshot_node *x)
{
    struct snap_seen *s = arg;
    if (s->n < 8)
        snprintf(s->rows[s->n++], sizeof(s->rows[0]), "%s %s %d %d %s %s %s", x->node, x->system,
                 x->enabled, x->running, x->request ? x->request : "-", x->mode ? x->mode : "-",
                 x->op ? x->op : "-");
    return 0;
}

static int snap_name(void *arg, const struct store_snapshot *snap)
{
    struct snap_seen *s = arg;
    if (s->n < 8)
        snprintf(s->rows[s->n++], sizeof(s->rows[0]), "%s", snap->name);
    return 0;
}

Test(store, snapshots_are_saved_read_replaced_and_deleted)
{
    st = open_default();
    struct store_snapshot_node nodes[] = {
        {.node = "SUS_ETMX", .system = "sus", .enabled = true, .running = true,
         .request = "ALIGNED", .mode = "AUTO", .op = "EXEC"},
        {.node = "B1", .system = "bench", .enabled = false, .running = false},
    };
    struct store_snapshot head = {.name = "before-vent", .time = 1000, .user = "alice", .nodes = 2};
    cr_assert_eq(store_snapshot_save(st, &head, nodes, 2, false), STORE_OK);
    cr_expect_eq(store_snapshot_save(st, &head, nodes, 2, false), STORE_EEXIST);
    struct snap_seen seen = {0};
    cr_assert_eq(store_snapshot_get(st, "before-vent", snap_head, snap_row, &seen), STORE_OK);
    cr_expect_str_eq(seen.head, "before-vent alice 2");
    cr_assert_eq(seen.n, 2u);
    cr_expect_str_eq(seen.rows[0], "B1 bench 0 0 - - -"); /* by name */
    cr_expect_str_eq(seen.rows[1], "SUS_ETMX sus 1 1 ALIGNED AUTO EXEC");
    /* replaced: only the new rows */
    head.time = 2000;
    head.nodes = 1;
    cr_assert_eq(store_snapshot_save(st, &head, nodes + 1, 1, true), STORE_OK);
    struct store_snapshot other = {.name = "later", .time = 3000, .nodes = 0};
    cr_assert_eq(store_snapshot_save(st, &other, NULL, 0, false), STORE_OK);
    memset(&seen, 0, sizeof(seen));
    cr_assert_eq(store_snapshot_get(st, "before-vent", snap_head, snap_row, &seen), STORE_OK);
    cr_expect_eq(seen.n, 1u);
    cr_expect_eq(sql_int("SELECT count(*) FROM snapshot_nodes"), 1);
    memset(&seen, 0, sizeof(seen));
    cr_assert_eq(store_snapshot_list(st, snap_name, &seen), 2);
    cr_expect_str_eq(seen.rows[0], "later"); /* newest first */
    /* bad input changes nothing */
    cr_expect_eq(store_snapshot_save(st, &(struct store_snapshot){.name = "-x"}, NULL, 0, false),
                 STORE_EINVAL);
    struct store_snapshot_node twice[] = {nodes[1], nodes[1]};
    struct store_snapshot t = {.name = "twice", .time = 1};
    cr_expect_eq(store_snapshot_save(st, &t, twice, 2, false), STORE_EINVAL);
    cr_expect_eq(store_snapshot_get(st, "twice", NULL, NULL, NULL), STORE_ENOENT);
    struct store_snapshot_node bad = {.node = "lower", .system = "x"};
    cr_expect_eq(store_snapshot_save(st, &t, &bad, 1, false), STORE_EINVAL);
    /* kept across a reopen; deleted with their rows */
    reopen();
    cr_expect_eq(store_snapshot_delete(st, "before-vent"), STORE_OK);
    cr_expect_eq(store_snapshot_delete(st, "before-vent"), STORE_ENOENT);
    cr_expect_eq(sql_int("SELECT count(*) FROM snapshot_nodes"), 0);
    cr_expect_eq(sql_int("SELECT count(*) FROM snapshots"), 1);
}
