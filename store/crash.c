/* crash.c — importing the crash journal, and the counts the quarantine rule
 * and the CRASHES channel read.
 *
 * The journal is written by the crash handler with write(2) only (it runs in
 * a signal handler), one record per crash, appended:
 *
 *   CRASH v1 boot=<id> seq=<n> time=<unix s.frac> signal=<n> code=<n> addr=0x<hex>
 *       uptime=<s> node=<name|-> state=<name|-> phase=<name|->      (one line)
 *   bt <one backtrace line, as backtrace_symbols_fd prints it>      (any number)
 *   END
 *
 * It is outside input: a process may have died in the middle of a record (no
 * END: imported with what it has, complete = 0), a line may be cut, a file may
 * hold garbage. Lines are read into a fixed buffer (longer ones are cut),
 * every value is parsed strictly and a bad value is left NULL rather than
 * guessed; a record without a usable boot, seq or time is skipped. Unknown
 * keys are ignored, so the handler may add some. Unknown versions (v2...) are
 * skipped whole.
 *
 * Exactly once: crashes has UNIQUE (boot_id, seq) and the rows go in with
 * INSERT OR IGNORE, all in one transaction; the journal is truncated only
 * after that transaction committed. If we die between the two, the next
 * import finds every record already there and adds nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

#define JOURNAL_LINE_MAX 4096            /* bytes of one line; the rest of a longer one is dropped */
#define BACKTRACE_MAX 65536              /* bytes of backtrace kept per crash */
#define JOURNAL_READ_MAX (64L << 20)     /* bytes read from one journal */

struct crash_rec {
    bool open, complete;
    bool has_boot, has_seq, has_time, has_signal, has_code, has_uptime;
    int64_t boot, seq;
    double time, uptime;
    int signal, code;
    char addr[24];                       /* "" when unknown */
    char node[STORE_NAME_MAX + 1];
    char state[STORE_TEXT_MAX + 1];
    char phase[STORE_TEXT_MAX + 1];
    char *bt;
    size_t bt_len, bt_cap;
};

struct import {
    store *s;
    sqlite3_stmt *ins, *boot;
    double now;
    int imported, duplicates, skipped;
    int rc;                              /* the first SQLite error */
};

/* ---- parsing ---- */

static bool parse_i64(const char *v, int64_t *out)
{
    if (!*v)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end)
        return false;
    *out = x;
    return true;
}

static bool parse_int(const char *v, int *out)
{
    int64_t x;
    if (!parse_i64(v, &x) || x < -2147483647 || x > 2147483647)
        return false;
    *out = (int)x;
    return true;
}

static bool parse_seconds(const char *v, double *out)
{
    if (!*v)
        return false;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < 0)
        return false;
    *out = x;
    return true;
}

static void parse_addr(const char *v, char *out, size_t len)
{
    size_t n = strlen(v);
    if (n < 3 || n > 18 || v[0] != '0' || (v[1] != 'x' && v[1] != 'X') || strspn(v + 2, "0123456789abcdefABCDEF") != n - 2)
        return;
    snprintf(out, len, "%s", v);
}

/* A name field: "-" is none; otherwise printable, no spaces, at most len - 1. */
static void parse_word(const char *v, char *out, size_t len, bool node_name)
{
    if (strcmp(v, "-") == 0)
        return;
    if (node_name ? !store_valid_name(v) : !store_valid_text(v, len - 1))
        return;
    snprintf(out, len, "%s", v);
}

static void parse_field(struct crash_rec *c, const char *key, const char *v)
{
    if (strcmp(key, "boot") == 0)
        c->has_boot = parse_i64(v, &c->boot) && c->boot > 0;
    else if (strcmp(key, "seq") == 0)
        c->has_seq = parse_i64(v, &c->seq) && c->seq >= 0;
    else if (strcmp(key, "time") == 0)
        c->has_time = parse_seconds(v, &c->time);
    else if (strcmp(key, "signal") == 0)
        c->has_signal = parse_int(v, &c->signal);
    else if (strcmp(key, "code") == 0)
        c->has_code = parse_int(v, &c->code);
    else if (strcmp(key, "addr") == 0)
        parse_addr(v, c->addr, sizeof(c->addr));
    else if (strcmp(key, "uptime") == 0)
        c->has_uptime = parse_seconds(v, &c->uptime);
    else if (strcmp(key, "node") == 0)
        parse_word(v, c->node, sizeof(c->node), true);
    else if (strcmp(key, "state") == 0)
        parse_word(v, c->state, sizeof(c->state), false);
    else if (strcmp(key, "phase") == 0)
        parse_word(v, c->phase, sizeof(c->phase), false);
}

/* "CRASH v1 key=value ...": starts a record. Returns false for another version. */
static bool parse_header(struct crash_rec *c, char *line)
{
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save); /* CRASH */
    tok = strtok_r(NULL, " ", &save);
    if (!tok || strcmp(tok, "v1") != 0)
        return false;
    while ((tok = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        parse_field(c, tok, eq + 1);
    }
    return true;
}

static void add_backtrace(struct crash_rec *c, const char *line)
{
    size_t n = strlen(line);
    if (c->bt_len + n + 2 > BACKTRACE_MAX)
        return;
    if (c->bt_len + n + 2 > c->bt_cap) {
        size_t cap = c->bt_cap ? c->bt_cap * 2 : 1024;
        while (cap < c->bt_len + n + 2)
            cap *= 2;
        char *bt = realloc(c->bt, cap);
        if (!bt)
            return;
        c->bt = bt;
        c->bt_cap = cap;
    }
    if (c->bt_len)
        c->bt[c->bt_len++] = '\n';
    for (size_t i = 0; i < n; i++) { /* control characters shown as '?' */
        unsigned char ch = (unsigned char)line[i];
        c->bt[c->bt_len++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    c->bt[c->bt_len] = 0;
}

static void reset_rec(struct crash_rec *c)
{
    char *bt = c->bt;
    size_t cap = c->bt_cap;
    memset(c, 0, sizeof(*c));
    c->bt = bt;
    c->bt_cap = cap;
    if (bt)
        bt[0] = 0;
}

/* ---- writing ---- */

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v && v[0])
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void finish_rec(struct import *im, struct crash_rec *c)
{
    if (!c->open)
        return;
    c->open = false;
    if (!c->has_boot || !c->has_seq || !c->has_time) {
        im->skipped++;
        return;
    }
    if (im->rc != SQLITE_OK)
        return;
    sqlite3_stmt *st = im->ins;
    sqlite3_bind_int64(st, 1, c->boot);
    sqlite3_bind_int64(st, 2, c->seq);
    sqlite3_bind_double(st, 3, c->time);
    if (c->has_signal)
        sqlite3_bind_int(st, 4, c->signal);
    if (c->has_code)
        sqlite3_bind_int(st, 5, c->code);
    bind_opt_text(st, 6, c->addr);
    bind_opt_text(st, 7, c->node);
    bind_opt_text(st, 8, c->state);
    bind_opt_text(st, 9, c->phase);
    if (c->has_uptime)
        sqlite3_bind_double(st, 10, c->uptime);
    sqlite3_bind_text(st, 11, c->bt ? c->bt : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 12, c->complete);
    sqlite3_bind_double(st, 13, im->now);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        im->rc = rc;
        return;
    }
    if (sqlite3_changes(im->s->db) == 0) {
        im->duplicates++;
        return;
    }
    im->imported++;
    /* The boot that crashed did not end cleanly, and ended no later than this. */
    sqlite3_bind_int64(im->boot, 1, c->boot);
    sqlite3_bind_double(im->boot, 2, c->time);
    rc = sqlite3_step(im->boot);
    sqlite3_reset(im->boot);
    if (rc != SQLITE_DONE)
        im->rc = rc;
}

/* Read the journal line by line; *complete is false if reading stopped early. */
static int read_journal(struct import *im, FILE *f, bool *complete)
{
    char line[JOURNAL_LINE_MAX];
    struct crash_rec c = {0};
    long total = 0;
    *complete = true;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strlen(line);
        total += (long)n;
        if (n && line[n - 1] == '\n') {
            line[--n] = 0;
        } else if (n == sizeof(line) - 1) { /* cut: drop the rest of the line */
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                total++;
        }
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (strncmp(line, "CRASH ", 6) == 0) {
            finish_rec(im, &c); /* a record without END: cut short */
            reset_rec(&c);
            c.open = parse_header(&c, line);
            if (!c.open)
                im->skipped++;
        } else if (strncmp(line, "bt ", 3) == 0) {
            if (c.open)
                add_backtrace(&c, line + 3);
        } else if (strcmp(line, "END") == 0) {
            c.complete = true;
            finish_rec(im, &c);
        } /* anything else: not ours, ignored */
        if (total > JOURNAL_READ_MAX) {
            *complete = false;
            break;
        }
    }
    bool error = ferror(f) != 0;
    finish_rec(im, &c);
    free(c.bt);
    if (error)
        *complete = false;
    return error ? -1 : 0;
}

int store_import_journal(store *s, const char *path, char *err, size_t errlen)
{
    STORE_ASSERT_IDLE(s);
    char dummy[8];
    if (!err || errlen == 0)
        err = dummy, errlen = sizeof(dummy);
    err[0] = 0;
    if (!path || !path[0])
        return STORE_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return 0;
    /* Only a regular file: /dev/zero or /dev/full would be read for ever. */
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        snprintf(err, errlen, "crash journal %s: not a regular file (left as it is)", path);
        close(fd);
        return STORE_EIO;
    }
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        snprintf(err, errlen, "crash journal %s: cannot read: %s (left as it is)", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return STORE_EIO;
    }
    struct import im = {.s = s, .now = store_wall()};
    int rc = sqlite3_prepare_v2(
        s->db,
        "INSERT OR IGNORE INTO crashes (boot_id, seq, time, signal, code, addr, node, state, phase, uptime, "
        "since_prev_crash, backtrace, complete, imported) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "?3 - (SELECT max(time) FROM crashes WHERE time <= ?3), ?11, ?12, ?13)",
        -1, &im.ins, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "UPDATE boots SET clean = 0, ended = coalesce(ended, ?2) WHERE id = ?1", -1,
                                &im.boot, NULL);
    if (rc == SQLITE_OK)
        rc = store_begin(s);
    bool complete = true;
    int read_failed = 0;
    int read_errno = 0;
    if (rc == SQLITE_OK) {
        read_failed = read_journal(&im, f, &complete);
        read_errno = errno;
        rc = im.rc;
    }
    if (rc == SQLITE_OK && !read_failed)
        rc = store_commit(s);
    int code;
    if (read_failed) {
        snprintf(err, errlen, "crash journal %s: read error: %s (left as it is)", path, strerror(read_errno));
        store_rollback(s);
        code = STORE_EIO;
    } else if (rc != SQLITE_OK) {
        code = store_fail(s, rc, "importing the crash journal");
        snprintf(err, errlen, "crash journal %s: %s (left as it is)", path, s->errmsg);
        store_rollback(s);
    } else {
        code = im.imported;
        if (!complete)
            snprintf(err, errlen, "crash journal %s: larger than %ld bytes: only its start was imported, "
                     "the file is left as it is", path, JOURNAL_READ_MAX);
        else if (truncate(path, 0) != 0)
            snprintf(err, errlen, "crash journal %s: imported, but cannot empty it: %s "
                     "(the next import skips what is there)", path, strerror(errno));
        if (im.imported || im.duplicates || im.skipped)
            store_log(s, "crash journal %s: %d crashes imported, %d already there, %d unusable records skipped",
                      path, im.imported, im.duplicates, im.skipped);
        if (err[0])
            store_log(s, "%s", err);
    }
    sqlite3_finalize(im.ins);
    sqlite3_finalize(im.boot);
    fclose(f);
    return code;
}

/* ---- counts ---- */

static int count(store *s, const char *sql, const char *node, double since)
{
    if (!store_valid_name(node) || !isfinite(since))
        return STORE_EINVAL;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc, "counting crashes");
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, since);
    rc = sqlite3_step(st);
    int n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : store_fail(s, rc, "counting crashes");
    sqlite3_finalize(st);
    return n;
}

int store_crash_count(store *s, const char *node, double since)
{
    return count(s,
                 "SELECT count(*) FROM crashes WHERE node = ?1 AND time > "
                 "max(?2, coalesce((SELECT quarantine_cleared FROM nodes WHERE name = ?1), ?2))",
                 node, since);
}

int store_crash_total(store *s, const char *node)
{
    return count(s, "SELECT count(*) FROM crashes WHERE node = ?1", node, 0);
}

int store_release(store *s, const char *node, double now)
{
    if (!store_valid_name(node) || !isfinite(now))
        return STORE_EINVAL;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "UPDATE nodes SET quarantine_cleared = ?2, updated = ?3 WHERE name = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 2, now);
        sqlite3_bind_double(st, 3, store_wall());
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "releasing a node");
    return sqlite3_changes(s->db) ? STORE_OK : STORE_ENOENT;
}
