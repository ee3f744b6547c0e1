/* open.c — opening the database: check it without touching it, then open it
 * read-write, set it up, migrate it; and closing it.
 *
 * An existing file is checked in three steps, none of which can modify it:
 *   1. its first 100 bytes, read with read(2): the SQLite magic string and a
 *      valid page size, so that a file of garbage never reaches SQLite at all
 *      (SQLite would create -wal/-shm files beside it);
 *   2. SQLite read-only: PRAGMA user_version (newer than the binary: refused)
 *      and PRAGMA quick_check. When no -wal file exists nobody has the file
 *      open and its content is complete, so it is opened immutable (no locks,
 *      no -shm, no side file at all); otherwise read-only with normal locking,
 *      so that the WAL's committed transactions are seen;
 *   3. only then read-write, where migrations run, each in one transaction.
 * A fresh file is created read-write directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/migrations.h"

#define OPEN_PRUNE_BUDGET 0.5 /* seconds of pruning at open; the rest goes in flushes */
#define JOURNAL_SIZE_LIMIT (16 * 1024 * 1024) /* bytes the WAL file is cut back to */

const char *store_strerror(int err)
{
    switch (err) {
    case STORE_OK: return "success";
    case STORE_ENOMEM: return "out of memory";
    case STORE_EINVAL: return "invalid argument";
    case STORE_EIO: return "cannot read or write the database";
    case STORE_ECORRUPT: return "not a database, or damaged";
    case STORE_ENEWER: return "database schema newer than this program";
    case STORE_ENOENT: return "no such node";
    case STORE_EEXIST: return "node exists";
    default: return "unknown error";
    }
}

/* ---- helpers shared by the store's files ---- */

double store_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double store_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void default_log(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "store: %s\n", line);
}

void store_log(store *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    s->opt.log(s->opt.log_arg, line);
}

int store_err_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW: return STORE_OK;
    case SQLITE_NOMEM: return STORE_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return STORE_ECORRUPT;
    default: return STORE_EIO;
    }
}

int store_fail(store *s, int rc, const char *what)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", what, sqlite3_errmsg(s->db));
    if (strcmp(sqlite3_errmsg(s->db), sqlite3_errstr(rc)) != 0)
        snprintf(s->errmsg + strlen(s->errmsg), sizeof(s->errmsg) - strlen(s->errmsg), " (%s)", sqlite3_errstr(rc));
    return store_err_of(rc);
}

bool store_valid_text(const char *text, size_t max)
{
    if (!text)
        return false;
    size_t n = strnlen(text, max + 1);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return false;
    return true;
}

int store_exec(store *s, const char *sql)
{
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
}

static int run(store *s, int which)
{
    sqlite3_stmt *st = s->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_begin(store *s) { return s->st[ST_BEGIN] ? run(s, ST_BEGIN) : store_exec(s, "BEGIN IMMEDIATE"); }
int store_commit(store *s) { return s->st[ST_COMMIT] ? run(s, ST_COMMIT) : store_exec(s, "COMMIT"); }

void store_rollback(store *s)
{
    if (sqlite3_get_autocommit(s->db))
        return; /* SQLite already rolled back (SQLITE_FULL, IOERR...) or nothing began */
    if (s->st[ST_ROLLBACK])
        run(s, ST_ROLLBACK);
    else
        store_exec(s, "ROLLBACK");
}

/* ---- step 1: the header, by hand ---- */

static int check_header(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return STORE_EIO;
    }
    unsigned char h[100];
    ssize_t n = 0;
    while (n < (ssize_t)sizeof(h)) {
        ssize_t r = read(fd, h + n, sizeof(h) - (size_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            close(fd);
            return STORE_EIO;
        }
        if (r == 0)
            break;
        n += r;
    }
    close(fd);
    if (n == 0)
        return STORE_OK; /* an empty file is an empty database to SQLite */
    if (n < (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
        snprintf(err, errlen, "%s: not an SQLite database (refusing to touch it)", path);
        return STORE_ECORRUPT;
    }
    unsigned page = (unsigned)h[16] << 8 | h[17];
    if (page == 1)
        page = 65536;
    if (page < 512 || (page & (page - 1)) != 0) {
        snprintf(err, errlen, "%s: damaged SQLite header (page size %u; refusing to touch it)", path, page);
        return STORE_ECORRUPT;
    }
    return STORE_OK;
}

/* ---- step 2: SQLite, read-only ---- */

/* "file:" URI for path: everything but unreserved characters and '/' escaped. */
static char *file_uri(const char *path, bool immutable)
{
    size_t len = strlen(path);
    char *uri = malloc(len * 3 + 40);
    if (!uri)
        return NULL;
    char *o = uri + sprintf(uri, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' ||
            c == '-' || c == '_' || c == '.' || c == '~')
            *o++ = (char)c;
        else
            o += sprintf(o, "%%%02X", c);
    }
    sprintf(o, "?mode=ro%s", immutable ? "&immutable=1" : "");
    return uri;
}

static int latest_version(void) { return (int)store_n_migrations; }

#define APPLICATION_ID 1196573764 /* "GRDD", set by schema/001_initial.sql */

/* The error for a failed read-only look at path. */
static int readonly_error(sqlite3 *db, int rc, const char *path, char *err, size_t errlen)
{
    int code = store_err_of(rc);
    if (code == STORE_ECORRUPT)
        snprintf(err, errlen, "%s: damaged database (%s); refusing to use it", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    else
        snprintf(err, errlen, "%s: cannot read: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return code == STORE_OK ? STORE_EIO : code;
}

/* The first column of the first row of sql: as an int in *num, and as text
 * in text (when not NULL). */
static int query_one(sqlite3 *db, const char *sql, int *num, char *text, size_t len)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *num = sqlite3_column_int(st, 0);
        if (text)
            snprintf(text, len, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_int(sqlite3 *db, const char *sql, int *out) { return query_one(db, sql, out, NULL, 0); }

static int check_readonly(store *s, char *err, size_t errlen)
{
    /* Without a -wal or a hot -journal the file alone is the whole database. */
    char side[strlen(s->path) + 9];
    snprintf(side, sizeof(side), "%s-wal", s->path);
    bool immutable = access(side, F_OK) != 0;
    snprintf(side, sizeof(side), "%s-journal", s->path);
    immutable = immutable && access(side, F_OK) != 0;
    char *uri = file_uri(s->path, immutable);
    if (!uri) {
        snprintf(err, errlen, "out of memory");
        return STORE_ENOMEM;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    int code = STORE_OK, version = 0;
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_timeout(db, s->opt.busy_timeout_ms);
        rc = query_int(db, "PRAGMA user_version", &version);
    }
    if ((rc & 0xff) == SQLITE_READONLY) {
        /* A WAL or journal that needs recovery, which takes a writer: the
         * header was sane; versions are checked again read-write, before
         * anything is written. */
        store_log(s, "%s: needs recovery (%s); checked after opening it read-write", s->path, sqlite3_errstr(rc));
        goto out;
    }
    if (rc != SQLITE_OK) {
        code = readonly_error(db, rc, s->path, err, errlen);
        goto out;
    }
    if (version > latest_version()) {
        snprintf(err, errlen,
                 "%s: database schema version %d is newer than this guardiand's (%d); refusing to use it "
                 "(run a newer guardiand, or configure another database)",
                 s->path, version, latest_version());
        code = STORE_ENEWER;
        goto out;
    }
    if (version < 0) {
        snprintf(err, errlen, "%s: database schema version %d makes no sense; refusing to use it", s->path,
                 version);
        code = STORE_ECORRUPT;
        goto out;
    }
    /* Another program's database: never write into it. */
    int app = 0, tables = 0;
    rc = query_int(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = query_int(db, "SELECT count(*) FROM sqlite_master", &tables);
    if (rc != SQLITE_OK) {
        code = readonly_error(db, rc, s->path, err, errlen);
        goto out;
    }
    if ((app != 0 && app != APPLICATION_ID) || (version == 0 && tables > 0)) {
        snprintf(err, errlen, "%s: not a guardiand database (application_id %d, %d tables, schema version %d); "
                 "refusing to use it", s->path, app, tables, version);
        code = STORE_ECORRUPT;
        goto out;
    }
    if (!s->opt.skip_check) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                const char *res = (const char *)sqlite3_column_text(st, 0);
                if (!res || strcmp(res, "ok") != 0) {
                    snprintf(err, errlen, "%s: damaged database (quick_check: %.200s); refusing to use it",
                             s->path, res ? res : "?");
                    code = STORE_ECORRUPT;
                }
                rc = SQLITE_OK;
            }
            sqlite3_finalize(st);
        }
        if (code == STORE_OK && rc != SQLITE_OK)
            code = readonly_error(db, rc, s->path, err, errlen);
    }
out:
    sqlite3_close(db);
    return code;
}

/* ---- step 3: read-write ---- */

static int open_error(store *s, int rc, const char *what, char *err, size_t errlen)
{
    /* SQLite says "unable to open database file"; the system's reason
     * ("Permission denied", "No such file or directory") is what helps. */
    int sys = s->db ? sqlite3_system_errno(s->db) : 0;
    snprintf(err, errlen, "%s: %s: %s%s%s%s", s->path, what,
             s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), sys ? " (" : "",
             sys ? strerror(sys) : "", sys ? ")" : "");
    int code = store_err_of(rc);
    return code == STORE_OK ? STORE_EIO : code;
}

static int migrate(store *s, int from, bool fresh, char *err, size_t errlen)
{
    for (unsigned i = (unsigned)from; i < store_n_migrations; i++) {
        const struct store_migration *m = &store_migrations[i];
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", m->version);
        int rc = store_begin(s);
        if (rc == SQLITE_OK)
            rc = store_exec(s, m->sql);
        if (rc == SQLITE_OK)
            rc = store_exec(s, pragma);
        if (rc == SQLITE_OK)
            rc = store_commit(s);
        if (rc != SQLITE_OK) {
            char what[96];
            snprintf(what, sizeof(what), "migration %s failed", m->name);
            int code = open_error(s, rc, what, err, errlen);
            store_rollback(s);
            return code;
        }
        if (!fresh)
            store_log(s, "%s: schema migrated to version %d (%s)", s->path, m->version, m->name);
    }
    if (fresh)
        store_log(s, "%s: created (schema version %d)", s->path, latest_version());
    return STORE_OK;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db, (void)name;
    store *s = arg;
    if (pages >= (int)s->opt.checkpoint_pages)
        s->checkpoint_due = true;
    return SQLITE_OK;
}

static int open_readwrite(store *s, bool fresh, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | (fresh ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK)
        return open_error(s, rc, fresh ? "cannot create" : "cannot open for writing", err, errlen);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->opt.busy_timeout_ms);
    int version = 0;
    char mode[16] = "";
    rc = query_one(s->db, "PRAGMA journal_mode = WAL", &version, mode, sizeof(mode));
    if (rc != SQLITE_OK)
        return open_error(s, rc, "cannot switch to WAL mode", err, errlen);
    if (strcmp(mode, "wal") != 0)
        store_log(s, "%s: WAL mode not available (journal mode %s): commits will be slower", s->path, mode);
    char pragmas[160];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -4096; PRAGMA journal_size_limit = %d",
             JOURNAL_SIZE_LIMIT);
    rc = store_exec(s, pragmas);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        return open_error(s, rc, "cannot set up", err, errlen);
    /* Checked again: another process could have migrated it meanwhile. */
    if (version > latest_version() || version < 0) {
        snprintf(err, errlen, "%s: database schema version %d is newer than this guardiand's (%d); refusing to use it",
                 s->path, version, latest_version());
        return STORE_ENEWER;
    }
    int code = migrate(s, version, fresh || version == 0, err, errlen);
    if (code != STORE_OK)
        return code;
    /* Checkpoints are ours to schedule (queue.c), never inside a commit. */
    sqlite3_wal_hook(s->db, wal_hook, s);
    rc = store_queue_prepare(s);
    if (rc != SQLITE_OK)
        return open_error(s, rc, "cannot prepare statements", err, errlen);
    return STORE_OK;
}

static void apply_defaults(struct store_options *o)
{
    if (o->flush_interval <= 0)
        o->flush_interval = 0.25;
    if (o->flush_budget <= 0)
        o->flush_budget = 0.002;
    if (o->max_backoff <= 0)
        o->max_backoff = 5.0;
    if (o->retention_days == 0)
        o->retention_days = 90;
    if (o->log_retention_days == 0)
        o->log_retention_days = 14;
    if (o->max_queued == 0)
        o->max_queued = 200000;
    if (o->max_log_queued == 0)
        o->max_log_queued = 100000;
    if (o->busy_timeout_ms <= 0)
        o->busy_timeout_ms = 50;
    if (o->checkpoint_pages == 0)
        o->checkpoint_pages = 128;
    if (!o->log)
        o->log = default_log;
    if (o->max_defer <= 0)
        o->max_defer = 0.05;
}

store *store_open(struct ev_loop *loop, const struct store_options *opt, int *code, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0)
        err = dummy, errlen = sizeof(dummy);
    err[0] = 0;
    int c = STORE_EINVAL;
    store *s = NULL;
    if (!opt || !opt->path || !opt->path[0] || opt->flush_interval < 0 || opt->flush_budget < 0) {
        snprintf(err, errlen, "store: no database path, or bad options");
        goto fail;
    }
    c = STORE_ENOMEM;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(opt->path))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->opt = *opt;
    s->opt.path = s->path;
    apply_defaults(&s->opt);
    s->loop = loop;
    s->dirty_tail = &s->dirty;
    s->history = (struct fifo){.tail = &s->history.head, .max = s->opt.max_queued};
    s->logs = (struct fifo){.tail = &s->logs.head, .max = s->opt.max_log_queued};

    struct stat st;
    bool fresh = false;
    if (stat(s->path, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "%s: %s", s->path, strerror(errno));
            c = STORE_EIO;
            goto fail;
        }
        fresh = true;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", s->path);
        c = STORE_EIO;
        goto fail;
    }
    if (!fresh && ((c = check_header(s->path, err, errlen)) != STORE_OK ||
                   (c = check_readonly(s, err, errlen)) != STORE_OK))
        goto fail;
    if ((c = open_readwrite(s, fresh, err, errlen)) != STORE_OK)
        goto fail;

    s->prune_pending = store_prunes(s);
    if (s->prune_pending && store_prune(s, OPEN_PRUNE_BUDGET))
        s->prune_pending = false;
    s->next_prune = store_mono() + 3600;
    store_queue_start(s);
    if (code)
        *code = STORE_OK;
    return s;

fail:
    if (code)
        *code = c;
    if (s) {
        store_queue_free(s);
        sqlite3_close(s->db);
        free(s->path);
        free(s);
    }
    return NULL;
}

void store_close(store *s)
{
    if (!s)
        return;
    store_flush(s);
    store_queue_stop(s);
    store_queue_free(s);
    /* The last connection: SQLite checkpoints and removes the WAL. */
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

const char *store_errmsg(const store *s) { return s->errmsg; }
