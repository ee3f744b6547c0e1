/* ca.c — bench-ca: Channel Access throughput and latency of guardiand, measured with libca.
 *
 * Each phase starts its own daemon on free 127.0.0.1 ports (tests/lib/harness) and measures:
 *   1. async get rate: per DBR type, bursts of n ca_array_get on ONE channel of one circuit,
 *      issued back to back into one buffer, each burst ended by a single ca_pend_io; the
 *      median of REPEATS bursts. A last, catime-style row round-robins DBR_DOUBLE gets over
 *      DEMO:N:0..k-1. One unreported warm-up burst comes first.
 *   2. async put rate: per type, bursts of n ca_array_put on one channel, each acknowledged
 *      by one ca_array_get + ca_pend_io (a circuit's requests are handled in order), whose
 *      value must be the last one put; the median of REPEATS bursts.
 *   3. sync get latency: ca_array_get + ca_pend_io, one at a time; mean, p50, p99, max.
 *   4. monitor fan-out: N subscriber processes x M subscriptions (DEMO:N:0..M-1, DBR_LONG,
 *      DBE_VALUE) and one writer process putting new values round-robin as fast as it can
 *      for a few seconds; updates/s received in total and per client, and the share of the
 *      updates generated that arrived (the server coalesces the rest). The clients are this
 *      program re-executed (--child), so each is a fresh process with its own libca context.
 *   5. name search + connect rate: k channels DEMO:N:i created at once, time until all are
 *      connected (ca_pend_io).
 *   6. memory: the idle daemon's VmRSS with --demo-count 0 and with a large count.
 *   7. catime's shapes (EPICS Base's CA benchmark): k channels to ONE PV (DEMO:DOUBLE)
 *      connected at once, then per type (DBR_FLOAT, DBR_DOUBLE, DBR_STRING with values that
 *      change on every put, DBR_INT with one value) 10 async puts per channel round-robin,
 *      acknowledged by one get; µs per operation, as catime prints them. A post must cost
 *      nothing for channels without subscriptions, so these rows must not grow with k.
 * Rows also show CPU time over the row in % of one core: the daemon's (single-threaded, so
 * /proc/PID/schedstat, to the ns; also its run-queue wait) and the clients' (getrusage,
 * /proc/PID/stat; libca threads included). Whoever sits near 100 % is the bottleneck.
 * It prints figures only and asserts nothing about timings; odd things (daemon log lines,
 * libca exceptions, failed requests, a wrong read-back) are listed as notes at the end.
 *
 * Usage: bench-ca [--quick | --catime]   (--quick: small counts, a few seconds, a smoke test;
 *                                         --catime: only phase 7, full counts)
 * The daemon is $GUARDIAND, else guardiand next to this program, else build/bin/guardiand.
 * Every wait is bounded in time, every loop in count.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca/epics_ca.h"
#include "tests/lib/harness.h"

#define ISSUE_LIMIT_S 60.0   /* give up issuing a row's requests after this long */
#define PEND_LIMIT_S 60.0    /* ca_pend_io bound for one row */
#define MAX_CHILDREN 64
#define MAX_NOTES 8
#define REPEATS 5           /* bursts per row of phases 1 and 2; the median is shown */

/* ---- options and the run's context ---- */

struct fan_cfg {
    int clients; /* subscriber processes */
    int subs;    /* subscriptions each, on DEMO:N:0..subs-1 */
};

struct bench_opts {
    bool quick;
    long gets;          /* async gets per row */
    long rr_channels;   /* channels of the round-robin get row */
    long puts;          /* async puts per row */
    long syncs;         /* sync gets */
    struct fan_cfg fan[2];
    double fan_seconds;
    long connect;       /* channels of the connect phase */
    long rss_big;       /* --demo-count of the memory phase */
    long catime;        /* channels to one PV in the catime phase */
};

struct ca_errors {
    long count;
    char where[64];    /* the row being measured, for the message */
    char first[200];
};

struct bench {
    struct bench_opts o;
    char exe[PATH_MAX];       /* this program, for the fan-out children */
    struct ca_errors errors;  /* libca exceptions in this process */
    int n_notes;
    char notes[MAX_NOTES][240]; /* odd things seen, printed at the end */
    double get_double_rate, put_double_rate, sync_mean_us;
    double catime_connect_us, catime_put_us[4];
};

static void note(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct bench *b, const char *fmt, ...)
{
    if (b->n_notes >= MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->notes[b->n_notes++], sizeof b->notes[0], fmt, ap);
    va_end(ap);
}

static void set_counts(struct bench_opts *o, bool quick)
{
    if (quick) {
        *o = (struct bench_opts){
            .quick = true, .gets = 5000, .rr_channels = 1000, .puts = 5000, .syncs = 300,
            .fan = {{2, 50}, {4, 10}}, .fan_seconds = 0.5, .connect = 2000, .rss_big = 10000,
            .catime = 1000,
        };
        return;
    }
    *o = (struct bench_opts){
        .gets = 200000, .rr_channels = 10000, .puts = 200000, .syncs = 5000,
        .fan = {{4, 1000}, {16, 100}}, .fan_seconds = 3.0, .connect = 40000, .rss_big = 100000,
        .catime = 10000,
    };
}

/* ---- measuring ---- */

/* CPU seconds of a single-threaded process (the daemon) to the nanosecond, from
 * /proc/PID/schedstat (its main thread only; /proc/PID/stat if absent), and in *wait the
 * seconds it was runnable but waiting for a CPU (NAN if unknown). */
static double daemon_cpu_s(pid_t pid, double *wait)
{
    double run;
    return harness_proc_schedstat(pid, &run, wait) == 0 ? run : harness_proc_cpu_s(pid);
}

/* A point in time, with the daemon's and our CPU clocks. */
struct mark {
    double t, daemon_cpu, daemon_wait, self_cpu;
};

static struct mark mark_now(pid_t daemon)
{
    struct mark m = {.t = harness_now(), .self_cpu = harness_self_cpu_s()};
    m.daemon_cpu = daemon_cpu_s(daemon, &m.daemon_wait);
    return m;
}

/* What happened between two marks, CPU times in % of the elapsed time. */
struct span {
    double seconds, daemon_pct, daemon_wait_pct, self_pct;
};

static struct span span_of(struct mark a, struct mark b)
{
    double s = b.t - a.t > 1e-9 ? b.t - a.t : 1e-9;
    return (struct span){s, 100.0 * (b.daemon_cpu - a.daemon_cpu) / s,
                         100.0 * (b.daemon_wait - a.daemon_wait) / s,
                         100.0 * (b.self_cpu - a.self_cpu) / s};
}

/* "1.23 M", "456.7 k", "12.0" */
static const char *fmt_rate(char *out, size_t size, double r)
{
    if (r >= 1e6)
        snprintf(out, size, "%.2f M", r / 1e6);
    else if (r >= 1e3)
        snprintf(out, size, "%.1f k", r / 1e3);
    else
        snprintf(out, size, "%.1f", r);
    return out;
}

/* ---- the daemon ---- */

static int daemon_start(harness_daemon *d, long demo_count)
{
    char count[24];
    snprintf(count, sizeof count, "%ld", demo_count);
    const char *args[] = {"--demo-count", count, NULL};
    harness_opts o = {.args = args, .ready_timeout = 60};
    return harness_start(d, &o);
}

/* Lines of the daemon's log other than the ready and shutdown lines become notes. */
static void daemon_log_notes(struct bench *b, const harness_daemon *d, const char *phase)
{
    FILE *f = fopen(d->log_path, "re");
    if (!f)
        return;
    char line[512], first[200] = "";
    long odd = 0;
    for (long i = 0; i < 1000000 && fgets(line, sizeof line, f); i++) {
        if (strstr(line, "ready:") || strstr(line, "shutting down"))
            continue;
        if (!odd++) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(first, sizeof first, "%.199s", line);
        }
    }
    fclose(f);
    if (odd)
        note(b, "%s: daemon logged %ld line(s), first: %s", phase, odd, first);
}

/* Report the daemon's final state, note anything odd, stop it. */
static void daemon_finish(struct bench *b, harness_daemon *d, const char *phase, bool print)
{
    double wait;
    if (print)
        printf("  daemon: VmRSS %ld kB, CPU %.2f s in total\n", harness_rss_kb(d),
               daemon_cpu_s(d->pid, &wait));
    daemon_log_notes(b, d, phase);
    bool alive = harness_alive(d);
    int code = harness_stop(d, 10);
    if (!alive || code != 0)
        note(b, "%s: daemon %s (exit status %d)", phase, alive ? "stopped badly" : "died", code);
}

/* ---- libca in this process ---- */

static void on_exception(struct exception_handler_args args)
{
    struct ca_errors *e = args.usr;
    if (e->count++ == 0)
        snprintf(e->first, sizeof e->first, "%s (op %ld, %s) during %s", ca_message(args.stat),
                 args.op, args.ctx ? args.ctx : "", e->where[0] ? e->where : "set-up");
}

static int client_start(struct bench *b, const harness_daemon *d)
{
    int st = harness_ca_context(d);
    if (st != ECA_NORMAL) {
        fprintf(stderr, "bench-ca: ca_context_create: %s\n", ca_message(st));
        return -1;
    }
    ca_add_exception_event(on_exception, &b->errors);
    return 0;
}

static void client_finish(struct bench *b, const char *phase)
{
    snprintf(b->errors.where, sizeof b->errors.where, "ca_context_destroy");
    ca_context_destroy();
    if (b->errors.count)
        note(b, "%s: %ld libca exception(s), first: %s", phase, b->errors.count, b->errors.first);
    b->errors.count = 0;
    b->errors.where[0] = '\0';
}

/* Clear the channels chans[0..n-1] (NULL ones were never created) and free the array. */
static void clear_channels(chid *chans, size_t n)
{
    for (size_t i = 0; chans && i < n; i++)
        if (chans[i])
            ca_clear_channel(chans[i]);
    free(chans);
}

/* Connect channels names[0..n-1]; returns them (all connected) or NULL. */
static chid *connect_names(const char *const *names, size_t n, double timeout)
{
    chid *chans = calloc(n, sizeof *chans);
    if (!chans)
        return NULL;
    size_t up = harness_ca_connect(chans, names, n, timeout);
    if (up == n)
        return chans;
    fprintf(stderr, "bench-ca: only %zu of %zu channels connected\n", up, n);
    clear_channels(chans, n);
    return NULL;
}

/* names[i] = "DEMO:N:<i>", in one allocation freed with free(names). */
static const char **demo_n_names(size_t n)
{
    const size_t slot = 32;
    char **names = malloc(n * (sizeof(char *) + slot));
    if (!names)
        return NULL;
    char *text = (char *)(names + n);
    for (size_t i = 0; i < n; i++) {
        names[i] = text + i * slot;
        snprintf(names[i], slot, "DEMO:N:%zu", i);
    }
    return (const char **)names;
}

static chid *connect_demo_n(size_t n, double timeout)
{
    const char **names = demo_n_names(n);
    if (!names)
        return NULL;
    chid *chans = connect_names(names, n, timeout);
    free(names);
    return chans;
}

/* ---- 1. async gets ---- */

union dbr_buf {
    dbr_double_t d;
    dbr_float_t f;
    dbr_long_t l;
    dbr_short_t s;
    dbr_enum_t e;
    dbr_string_t str;
    struct dbr_time_double time_d;
    struct dbr_ctrl_double ctrl_d;
};

struct type_case {
    const char *label;
    chtype type;
    const char *pv;
};

static const struct type_case get_cases[] = {
    {"DBR_DOUBLE", DBR_DOUBLE, "DEMO:DOUBLE"},
    {"DBR_FLOAT", DBR_FLOAT, "DEMO:FLOAT"},
    {"DBR_LONG", DBR_LONG, "DEMO:LONG"},
    {"DBR_SHORT", DBR_SHORT, "DEMO:SHORT"},
    {"DBR_STRING", DBR_STRING, "DEMO:STRING"},
    {"DBR_ENUM", DBR_ENUM, "DEMO:ENUM"},
    {"DBR_TIME_DOUBLE", DBR_TIME_DOUBLE, "DEMO:DOUBLE"},
    {"DBR_CTRL_DOUBLE", DBR_CTRL_DOUBLE, "DEMO:DOUBLE"},
};
#define N_GET_CASES (sizeof get_cases / sizeof get_cases[0])

static void format_value(char *out, size_t size, chtype type, const union dbr_buf *v)
{
    switch (type) {
    case DBR_DOUBLE: snprintf(out, size, "%g", v->d); break;
    case DBR_FLOAT: snprintf(out, size, "%g", (double)v->f); break;
    case DBR_LONG: snprintf(out, size, "%d", (int)v->l); break;
    case DBR_SHORT: snprintf(out, size, "%d", (int)v->s); break;
    case DBR_ENUM: snprintf(out, size, "%u", (unsigned)v->e); break;
    case DBR_STRING: snprintf(out, size, "\"%.30s\"", v->str); break;
    case DBR_TIME_DOUBLE:
        snprintf(out, size, "%g @%u.%09u", v->time_d.value, (unsigned)v->time_d.stamp.secPastEpoch,
                 (unsigned)v->time_d.stamp.nsec);
        break;
    case DBR_CTRL_DOUBLE:
        snprintf(out, size, "%g %.8s [%g..%g]", v->ctrl_d.value, v->ctrl_d.units,
                 v->ctrl_d.lower_ctrl_limit, v->ctrl_d.upper_ctrl_limit);
        break;
    default: snprintf(out, size, "?"); break;
    }
}

/* Issue n gets of `type` over chans[0..nchans-1] round-robin, then one ca_pend_io.
 * Returns how many completed (n, or fewer after a time-out). */
static long get_burst(const chid *chans, size_t nchans, chtype type, long n, union dbr_buf *buf)
{
    double start = harness_now();
    long issued = 0;
    for (; issued < n; issued++) {
        if (ca_array_get(type, 1, chans[(size_t)issued % nchans], buf) != ECA_NORMAL)
            break;
        if ((issued & 1023) == 1023 && harness_now() - start > ISSUE_LIMIT_S)
            break;
    }
    return ca_pend_io(PEND_LIMIT_S) == ECA_NORMAL ? issued : 0;
}

/* Rates of the bursts of one row, and the row's totals. */
struct row {
    double rate[REPEATS];
    int n;         /* bursts run */
    long short_by; /* requests that did not complete, over all bursts */
    struct span span;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median rate; *spread = (max - min) / median in %. */
static double row_median(struct row *r, double *spread)
{
    qsort(r->rate, (size_t)r->n, sizeof r->rate[0], cmp_double);
    double med = r->n ? r->rate[r->n / 2] : 0;
    *spread = med > 0 ? 100.0 * (r->rate[r->n - 1] - r->rate[0]) / med : 0;
    return med;
}

/* One table line of rows 1 and 2; returns the median rate. */
static double row_print(struct row *r, const char *label, const char *what, const char *value)
{
    double spread;
    double med = row_median(r, &spread);
    char rate[32];
    printf("  %-16s %-19s %9s %6.0f%% %7.0f%% %7.0f%%   %s\n", label, what,
           fmt_rate(rate, sizeof rate, med), spread, r->span.daemon_pct, r->span.self_pct,
           value);
    fflush(stdout);
    return med;
}

static void get_row(struct bench *b, pid_t daemon, const char *label, const char *what,
                    const chid *chans, size_t nchans, chtype type)
{
    union dbr_buf buf;
    memset(&buf, 0, sizeof buf);
    struct row r = {.n = 0};
    snprintf(b->errors.where, sizeof b->errors.where, "get %s %s", label, what);
    struct mark m0 = mark_now(daemon);
    for (; r.n < REPEATS; r.n++) {
        double t0 = harness_now();
        long done = get_burst(chans, nchans, type, b->o.gets, &buf);
        r.rate[r.n] = (double)done / (harness_now() - t0);
        r.short_by += b->o.gets - done;
    }
    r.span = span_of(m0, mark_now(daemon));
    char value[96];
    format_value(value, sizeof value, type, &buf);
    double med = row_print(&r, label, what, value);
    if (r.short_by)
        note(b, "async get %s on %s: %ld gets did not complete", label, what, r.short_by);
    if (type == DBR_DOUBLE && nchans == 1)
        b->get_double_rate = med;
}

static void get_rows_single(struct bench *b, pid_t daemon)
{
    for (size_t i = 0; i < N_GET_CASES; i++) {
        const struct type_case *c = &get_cases[i];
        chid *ch = connect_names(&c->pv, 1, 10);
        if (!ch) {
            note(b, "async get: %s did not connect", c->pv);
            continue;
        }
        get_row(b, daemon, c->label, c->pv, ch, 1, c->type);
        clear_channels(ch, 1);
    }
}

static void get_row_round_robin(struct bench *b, pid_t daemon)
{
    size_t n = (size_t)b->o.rr_channels;
    chid *chans = connect_demo_n(n, 60);
    if (!chans) {
        note(b, "async get: DEMO:N:* did not all connect");
        return;
    }
    char what[48];
    snprintf(what, sizeof what, "DEMO:N:0..%zu (rr)", n - 1);
    get_row(b, daemon, "DBR_DOUBLE", what, chans, n, DBR_DOUBLE);
    clear_channels(chans, n);
}

static void phase_gets(struct bench *b, pid_t daemon)
{
    printf("\n1. Async get rate, one circuit: bursts of %ld ca_array_get into one buffer, each\n"
           "   followed by one ca_pend_io; median of %d bursts, spread = (max - min) / median.\n"
           "   One channel per row; the last row is catime-style, round-robin over many.\n"
           "   daemon, client: CPU time over the row in %% of one core.\n",
           b->o.gets, REPEATS);
    printf("  %-16s %-19s %9s %7s %8s %8s   %s\n", "type", "channel", "gets/s", "spread",
           "daemon", "client", "last value read");
    get_rows_single(b, daemon);
    get_row_round_robin(b, daemon);
}

/* ---- 2. async puts ---- */

static const struct type_case put_cases[] = {
    {"DBR_DOUBLE", DBR_DOUBLE, "DEMO:DOUBLE"},
    {"DBR_FLOAT", DBR_FLOAT, "DEMO:FLOAT"},
    {"DBR_LONG", DBR_LONG, "DEMO:LONG"},
    {"DBR_SHORT", DBR_SHORT, "DEMO:SHORT"},
    {"DBR_STRING", DBR_STRING, "DEMO:STRING"},
    {"DBR_ENUM", DBR_ENUM, "DEMO:ENUM"},
};
#define N_PUT_CASES (sizeof put_cases / sizeof put_cases[0])

/* The i-th value put: always within the PV's limits and states. */
static void put_value(union dbr_buf *v, chtype type, long i)
{
    memset(v, 0, sizeof *v);
    switch (type) {
    case DBR_DOUBLE: v->d = (double)(i % 1000) * 0.01; break;
    case DBR_FLOAT: v->f = (float)(i % 100) * 0.05f; break;
    case DBR_LONG: v->l = (dbr_long_t)(i % 100000); break;
    case DBR_SHORT: v->s = (dbr_short_t)(i % 1000); break;
    case DBR_ENUM: v->e = (dbr_enum_t)(i % 3); break;
    case DBR_STRING: snprintf(v->str, sizeof v->str, "bench %ld", i % 16); break;
    default: break;
    }
}

static bool same_value(chtype type, const union dbr_buf *a, const union dbr_buf *b)
{
    switch (type) {
    case DBR_DOUBLE: return a->d == b->d;
    case DBR_FLOAT: return a->f == b->f;
    case DBR_LONG: return a->l == b->l;
    case DBR_SHORT: return a->s == b->s;
    case DBR_ENUM: return a->e == b->e;
    case DBR_STRING: return strncmp(a->str, b->str, sizeof a->str) == 0;
    default: return false;
    }
}

/* n puts on ch; the 16 distinct values are prepared first so the loop only calls libca.
 * Returns how many were issued. */
static long put_burst(chid ch, chtype type, long n)
{
    union dbr_buf vals[16];
    for (long i = 0; i < 16; i++)
        put_value(&vals[i], type, n - 16 + i); /* ends on the value of put n-1 */
    double start = harness_now();
    long issued = 0;
    for (; issued < n; issued++) {
        if (ca_array_put(type, 1, ch, &vals[(issued - n % 16 + 16) % 16]) != ECA_NORMAL)
            break;
        if ((issued & 1023) == 1023 && harness_now() - start > ISSUE_LIMIT_S)
            break;
    }
    return issued;
}

/* One burst of n puts plus the acknowledging get; returns puts/s, or 0 if the read-back is
 * not the last value put. */
static double put_once(chid ch, chtype type, long n, union dbr_buf *got, int *st)
{
    union dbr_buf last;
    put_value(&last, type, n - 1);
    memset(got, 0, sizeof *got);
    double t0 = harness_now();
    long done = put_burst(ch, type, n);
    *st = ca_array_get(type, 1, ch, got);
    if (*st == ECA_NORMAL)
        *st = ca_pend_io(PEND_LIMIT_S);
    double rate = (double)done / (harness_now() - t0);
    bool ok = *st == ECA_NORMAL && done == n && same_value(type, &last, got);
    return ok ? rate : 0;
}

static void put_row(struct bench *b, pid_t daemon, const struct type_case *c, chid ch)
{
    union dbr_buf got;
    int st = ECA_NORMAL;
    struct row r = {.n = 0};
    snprintf(b->errors.where, sizeof b->errors.where, "put %s", c->label);
    struct mark m0 = mark_now(daemon);
    for (; r.n < REPEATS; r.n++) {
        r.rate[r.n] = put_once(ch, c->type, b->o.puts, &got, &st);
        r.short_by += r.rate[r.n] == 0;
    }
    r.span = span_of(m0, mark_now(daemon));
    char value[96], text[128];
    format_value(value, sizeof value, c->type, &got);
    snprintf(text, sizeof text, "%s %s", value, r.short_by ? "(NOT the last put)" : "(= last put)");
    double med = row_print(&r, c->label, c->pv, text);
    if (r.short_by)
        note(b, "async put %s: %ld burst(s) failed (ack %s, read back %s)", c->label, r.short_by,
             ca_message(st), value);
    if (c->type == DBR_DOUBLE)
        b->put_double_rate = med;
}

static void phase_puts(struct bench *b, pid_t daemon)
{
    printf("\n2. Async put rate, one circuit: bursts of %ld ca_array_put on one channel, each\n"
           "   acknowledged by one ca_array_get + ca_pend_io (timed too); median of %d bursts.\n",
           b->o.puts, REPEATS);
    printf("  %-16s %-19s %9s %7s %8s %8s   %s\n", "type", "channel", "puts/s", "spread",
           "daemon", "client", "value read back");
    for (size_t i = 0; i < N_PUT_CASES; i++) {
        const struct type_case *c = &put_cases[i];
        chid *ch = connect_names(&c->pv, 1, 10);
        if (!ch) {
            note(b, "async put: %s did not connect", c->pv);
            continue;
        }
        put_row(b, daemon, c, ch[0]);
        clear_channels(ch, 1);
    }
}

/* ---- 3. sync get latency ---- */

/* Fill us[0..n-1] with round-trip times in µs; returns how many succeeded. */
static long sync_gets(chid ch, double *us, long n)
{
    long ok = 0;
    double start = harness_now();
    for (long i = 0; i < n && harness_now() - start < ISSUE_LIMIT_S; i++) {
        dbr_double_t v;
        double t0 = harness_now();
        if (ca_array_get(DBR_DOUBLE, 1, ch, &v) != ECA_NORMAL || ca_pend_io(5.0) != ECA_NORMAL)
            continue;
        us[ok++] = (harness_now() - t0) * 1e6;
    }
    return ok;
}

/* Print the latency line for us[0..n-1] (sorted here). */
static void sync_print(struct bench *b, double *us, long n, struct span s)
{
    double sum = 0;
    for (long i = 0; i < n; i++)
        sum += us[i];
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    printf("  %8s %8s %8s %8s %8s %8s %8s\n", "gets", "mean µs", "p50 µs", "p99 µs", "max µs",
           "daemon", "client");
    if (n == 0)
        return;
    b->sync_mean_us = sum / (double)n;
    printf("  %8ld %8.1f %8.1f %8.1f %8.1f %7.0f%% %7.0f%%\n", n, b->sync_mean_us, us[n / 2],
           us[(long)((double)n * 0.99)], us[n - 1], s.daemon_pct, s.self_pct);
}

static void phase_sync(struct bench *b, pid_t daemon)
{
    printf("\n3. Sync get latency: ca_array_get(DBR_DOUBLE) + ca_pend_io, one at a time, "
           "%ld times.\n", b->o.syncs);
    const char *pv = "DEMO:DOUBLE";
    chid *ch = connect_names(&pv, 1, 10);
    double *us = calloc((size_t)b->o.syncs, sizeof *us);
    if (ch && us) {
        snprintf(b->errors.where, sizeof b->errors.where, "sync get");
        struct mark m0 = mark_now(daemon);
        long n = sync_gets(ch[0], us, b->o.syncs);
        sync_print(b, us, n, span_of(m0, mark_now(daemon)));
        if (n < b->o.syncs)
            note(b, "sync get: %ld of %ld failed", b->o.syncs - n, b->o.syncs);
    } else {
        note(b, "sync get: no channel or no memory");
    }
    clear_channels(ch, 1);
    free(us);
}

/* ---- 4. monitor fan-out: the child processes ---- */

static void count_update(struct event_handler_args args)
{
    if (args.status == ECA_NORMAL)
        ++*(long *)args.usr;
}

static bool count_reached(void *arg)
{
    const long *counts = arg; /* {received, wanted} */
    return counts[0] >= counts[1];
}

/* Tell the parent we are set up, then wait (bounded) for its go byte on stdin while
 * serving libca. Returns 0 on go, -1 on EOF or time-out. */
static int child_wait_go(void)
{
    printf("ready\n");
    fflush(stdout);
    double deadline = harness_now() + 120;
    while (harness_now() < deadline) {
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&p, 1, 0) == 1) {
            char c;
            return read(STDIN_FILENO, &c, 1) == 1 ? 0 : -1;
        }
        ca_pend_event(0.01);
    }
    return -1;
}

/* Subscribe, wait for every initial update, then count updates over the run. Returns
 * 0 once the count is printed. */
static int child_count_updates(chid *chans, evid *ids, long m, double seconds, long *counts)
{
    for (long i = 0; i < m; i++)
        if (ca_create_subscription(DBR_LONG, 1, chans[i], DBE_VALUE, count_update, &counts[0],
                                   &ids[i]) != ECA_NORMAL)
            return 1;
    if (!harness_ca_wait(count_reached, counts, 60)) {
        fprintf(stderr, "bench-ca child: %ld of %ld initial updates\n", counts[0], m);
        return 1;
    }
    if (child_wait_go() != 0)
        return 1;
    counts[0] = 0;
    double t0 = harness_now();
    while (harness_now() - t0 < seconds)
        ca_pend_event(0.01);
    printf("%ld %.6f\n", counts[0], harness_now() - t0);
    return 0;
}

static int child_subscriber(chid *chans, long m, double seconds)
{
    long counts[2] = {0, m}; /* {received, wanted}: the callbacks' target */
    evid *ids = calloc((size_t)m, sizeof *ids);
    if (!ids)
        return 1;
    int rc = child_count_updates(chans, ids, m, seconds, counts);
    /* No callback may reach counts once we return. */
    for (long i = 0; i < m && ids[i]; i++)
        ca_clear_subscription(ids[i]);
    free(ids);
    return rc;
}

static int child_writer(chid *chans, long m, double seconds)
{
    if (child_wait_go() != 0)
        return 1;
    double t0 = harness_now();
    long puts = 0;
    dbr_long_t v = 1000000;
    for (; puts < 2000000000L; puts++) {
        v++;
        if (ca_array_put(DBR_LONG, 1, chans[puts % m], &v) != ECA_NORMAL)
            break;
        if ((puts & 255) == 255 && harness_now() - t0 >= seconds)
            break;
    }
    dbr_long_t ack;
    if (ca_array_get(DBR_LONG, 1, chans[0], &ack) != ECA_NORMAL || ca_pend_io(30) != ECA_NORMAL)
        return 1;
    printf("%ld %.6f\n", puts, harness_now() - t0);
    return 0;
}

/* bench-ca --child sub|writer M SECONDS: the client environment comes from the parent. */
static int child_main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    long m = atol(argv[3]);
    double seconds = atof(argv[4]);
    if (m <= 0 || seconds <= 0 || ca_context_create(ca_disable_preemptive_callback) != ECA_NORMAL)
        return 2;
    chid *chans = connect_demo_n((size_t)m, 60);
    int rc = !chans ? 1
             : strcmp(argv[2], "sub") == 0 ? child_subscriber(chans, m, seconds)
                                           : child_writer(chans, m, seconds);
    fflush(stdout);
    clear_channels(chans, (size_t)m);
    ca_context_destroy();
    return rc;
}

/* ---- 4. monitor fan-out: the parent ---- */

struct child {
    pid_t pid;
    int to;   /* its stdin */
    int from; /* its stdout */
    char line[128];
    size_t len;
    bool ready, done;
    long count;
    double seconds;
    double cpu; /* CPU seconds at the start of the run, then used during it */
};

/* fork + exec this program as a fan-out child. argv is built before fork(). */
static int child_spawn(struct child *c, const char *exe, const char *role, int m, double s)
{
    char ms[24], ss[24];
    snprintf(ms, sizeof ms, "%d", m);
    snprintf(ss, sizeof ss, "%g", s);
    char *const argv[] = {(char *)exe, "--child", (char *)role, ms, ss, NULL};
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return -1;
    }
    memset(c, 0, sizeof *c);
    c->pid = fork();
    if (c->pid == 0) { /* async-signal-safe calls only */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execv(exe, argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->to = in[1];
    c->from = out[0];
    return c->pid > 0 ? 0 : -1;
}

/* Handle one line from a child: "ready" or "<count> <seconds>". */
static void child_line(struct child *c)
{
    c->line[c->len] = '\0';
    if (strcmp(c->line, "ready") == 0)
        c->ready = true;
    else if (sscanf(c->line, "%ld %lf", &c->count, &c->seconds) == 2)
        c->done = true;
    c->len = 0;
}

static void child_read(struct child *c)
{
    char buf[256];
    ssize_t n = read(c->from, buf, sizeof buf);
    if (n <= 0) {
        c->done = c->ready = true; /* it is gone; what it reported stays */
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            child_line(c);
        else if (c->len < sizeof c->line - 1)
            c->line[c->len++] = buf[i];
    }
}

/* Read children's output until every one is ready (want_done false) or done, or timeout. */
static bool children_wait(struct child *cs, int n, bool want_done, double timeout)
{
    double deadline = harness_now() + timeout;
    for (;;) {
        struct pollfd p[MAX_CHILDREN];
        int waiting = 0;
        for (int i = 0; i < n; i++)
            if (!(want_done ? cs[i].done : cs[i].ready))
                p[waiting++] = (struct pollfd){.fd = cs[i].from, .events = POLLIN};
        if (!waiting)
            return true;
        double left = deadline - harness_now();
        if (left <= 0 || poll(p, (nfds_t)waiting, (int)(left * 1000) + 1) < 0)
            return false;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < waiting; k++)
                if (p[k].fd == cs[i].from && (p[k].revents & (POLLIN | POLLHUP)))
                    child_read(&cs[i]);
    }
}

static void children_reap(struct child *cs, int n)
{
    for (int i = 0; i < n; i++) {
        close(cs[i].to);
        close(cs[i].from);
        if (cs[i].pid <= 0)
            continue;
        double deadline = harness_now() + 10;
        while (waitpid(cs[i].pid, NULL, WNOHANG) == 0 && harness_now() < deadline)
            harness_sleep(0.01);
        if (harness_now() >= deadline) {
            kill(cs[i].pid, SIGKILL);
            waitpid(cs[i].pid, NULL, 0);
        }
    }
}

/* CPU % of one core used by children [from, to) during the run. */
static double children_pct(const struct child *cs, int from, int to, double seconds)
{
    double sum = 0;
    for (int i = from; i < to; i++)
        sum += cs[i].cpu;
    return 100.0 * sum / seconds;
}

static void fan_print(const struct fan_cfg *f, const struct child *cs,
                      struct span s, long rss)
{
    const struct child *w = &cs[f->clients];
    double puts_rate = w->seconds > 0 ? (double)w->count / w->seconds : 0;
    double total = 0, lo = INFINITY;
    for (int i = 0; i < f->clients; i++) {
        double r = cs[i].seconds > 0 ? (double)cs[i].count / cs[i].seconds : 0;
        total += r;
        lo = fmin(lo, r);
    }
    char a[32], t[32], pc[32], l[32];
    double generated = puts_rate * f->clients;
    printf("  %3d x %-5d %8s %9s %8s %8s %5.0f%% %6.0f%% %5.0f%% %6.0f%% %6.0f%% %7ld\n",
           f->clients, f->subs, fmt_rate(a, sizeof a, puts_rate), fmt_rate(t, sizeof t, total),
           fmt_rate(pc, sizeof pc, total / f->clients), fmt_rate(l, sizeof l, lo),
           generated > 0 ? 100.0 * total / generated : 0, s.daemon_pct, s.daemon_wait_pct,
           children_pct(cs, 0, f->clients, s.seconds),
           children_pct(cs, f->clients, f->clients + 1, s.seconds), rss);
    fflush(stdout);
}

/* Start the subscribers cs[0..N-1] and the writer cs[N]; wait until all are set up.
 * Returns how many were started, negated if they did not all get ready. */
static int fan_spawn(struct bench *b, const struct fan_cfg *f, struct child *cs)
{
    int n = 0;
    for (; n <= f->clients && n < MAX_CHILDREN; n++)
        if (child_spawn(&cs[n], b->exe, n < f->clients ? "sub" : "writer", f->subs,
                        b->o.fan_seconds) != 0)
            break;
    return n > f->clients && children_wait(cs, n, false, 120) ? n : -n;
}

/* Say go, let them run, measure the daemon and the children over the run. */
static struct span fan_window(struct bench *b, const harness_daemon *d, struct child *cs, int n,
                              long *rss)
{
    for (int i = 0; i < n; i++)
        cs[i].cpu = harness_proc_cpu_s(cs[i].pid);
    struct mark m0 = mark_now(d->pid);
    for (int i = 0; i < n; i++)
        if (write(cs[i].to, "g", 1) != 1)
            note(b, "fan-out: cannot start client %d", i);
    harness_sleep(b->o.fan_seconds);
    struct span s = span_of(m0, mark_now(d->pid));
    for (int i = 0; i < n; i++)
        cs[i].cpu = harness_proc_cpu_s(cs[i].pid) - cs[i].cpu;
    *rss = harness_rss_kb(d);
    return s;
}

static void fan_run(struct bench *b, const struct fan_cfg *f)
{
    harness_daemon d;
    if (daemon_start(&d, f->subs > 1000 ? f->subs : 1000) != 0) {
        note(b, "fan-out: the daemon did not start");
        return;
    }
    harness_client_env(&d);
    struct child cs[MAX_CHILDREN];
    int n = fan_spawn(b, f, cs);
    if (n > 0) {
        long rss;
        struct span s = fan_window(b, &d, cs, n, &rss);
        bool all = children_wait(cs, n, true, b->o.fan_seconds + 60);
        fan_print(f, cs, s, rss);
        for (int i = 0; i < n; i++)
            if (!all || cs[i].seconds <= 0)
                note(b, "fan-out %dx%d: client %d reported nothing", f->clients, f->subs, i);
    } else {
        note(b, "fan-out %dx%d: the clients did not get ready", f->clients, f->subs);
    }
    children_reap(cs, n > 0 ? n : -n);
    daemon_finish(b, &d, "fan-out", false);
}

static void phase_fanout(struct bench *b)
{
    printf("\n4. Monitor fan-out: N subscriber processes x M subscriptions (DEMO:N:0..M-1,\n"
           "   DBR_LONG, DBE_VALUE), one writer process putting round-robin as fast as it can\n"
           "   for %.1f s. updates/s: received by all clients; /client: their mean; min: the\n"
           "   slowest client. kept = updates received / (puts x N), the rest were coalesced.\n"
           "   CPU in %% of one core: daemon, all subscriber processes, the writer; dwait: time\n"
           "   the daemon was runnable but had no CPU. RSS: the daemon's at the end of the run,\n"
           "   clients still connected.\n",
           b->o.fan_seconds);
    printf("  %-11s %8s %9s %8s %8s %6s %7s %6s %7s %7s %7s\n", "N x M", "puts/s", "updates/s",
           "/client", "min", "kept", "daemon", "dwait", "subs", "writer", "RSS kB");
    for (int i = 0; i < 2; i++)
        fan_run(b, &b->o.fan[i]);
}

/* ---- 5. search + connect ---- */

/* Create n channels DEMO:N:i at once and time their connection. */
static void connect_measure(struct bench *b, pid_t daemon, size_t n)
{
    const char **names = demo_n_names(n);
    chid *chans = calloc(n, sizeof *chans);
    if (!names || !chans) {
        note(b, "connect: out of memory");
        free(names);
        free(chans);
        return;
    }
    struct mark m0 = mark_now(daemon);
    size_t up = harness_ca_connect(chans, names, n, 120);
    struct span s = span_of(m0, mark_now(daemon));
    char rate[32];
    printf("  %10s %10s %8s %8s %8s\n", "channels", "chan/s", "time s", "daemon", "client");
    printf("  %10zu %10s %8.3f %7.0f%% %7.0f%%\n", up,
           fmt_rate(rate, sizeof rate, (double)up / s.seconds), s.seconds, s.daemon_pct,
           s.self_pct);
    if (up < n)
        note(b, "connect: only %zu of %zu channels connected in 120 s", up, n);
    clear_channels(chans, n);
    free(names);
}

static void phase_connect(struct bench *b)
{
    printf("\n5. Name search + connect: %ld channels DEMO:N:i created at once, until all are "
           "connected.\n", b->o.connect);
    harness_daemon d;
    if (daemon_start(&d, b->o.connect) != 0) {
        note(b, "connect: the daemon did not start");
        return;
    }
    if (client_start(b, &d) == 0) {
        connect_measure(b, d.pid, (size_t)b->o.connect);
        client_finish(b, "connect");
    }
    daemon_finish(b, &d, "connect", true);
}

/* ---- 6. memory ---- */

/* VmRSS of an idle daemon serving demo_count DEMO:N PVs, or -1. */
static long idle_rss(struct bench *b, long demo_count)
{
    harness_daemon d;
    if (daemon_start(&d, demo_count) != 0) {
        note(b, "memory: the daemon did not start with --demo-count %ld", demo_count);
        return -1;
    }
    harness_sleep(0.2);
    long rss = harness_rss_kb(&d);
    daemon_log_notes(b, &d, "memory");
    if (harness_stop(&d, 10) != 0)
        note(b, "memory: daemon with --demo-count %ld stopped badly", demo_count);
    return rss;
}

static void phase_memory(struct bench *b)
{
    printf("\n6. Memory: the idle daemon's VmRSS (/proc/PID/status).\n");
    long small = idle_rss(b, 0);
    long big = idle_rss(b, b->o.rss_big);
    printf("  --demo-count 0: %ld kB;  --demo-count %ld: %ld kB", small, b->o.rss_big, big);
    if (small > 0 && big > 0)
        printf(";  %.0f kB per 10k PVs (%.0f bytes a PV)\n",
               (double)(big - small) * 10000.0 / (double)b->o.rss_big,
               (double)(big - small) * 1024.0 / (double)b->o.rss_big);
    else
        printf("\n");
}

/* ---- 7. catime's shapes ---- */

/* The i-th catime put value of a type: changing with i, or the same for DBR_INT. */
static void catime_value(union dbr_buf *v, chtype type, long i)
{
    memset(v, 0, sizeof *v);
    switch (type) {
    case DBR_FLOAT: v->f = (float)(i % 1000) * 0.01f; break;
    case DBR_DOUBLE: v->d = (double)(i % 1000) * 0.01; break;
    case DBR_STRING: snprintf(v->str, sizeof v->str, "%f", (double)(i % 1000) * 0.01); break;
    default: v->s = 7; break; /* DBR_INT (= DBR_SHORT): unchanged */
    }
}

/* 10 puts per channel round-robin, then one acknowledging get; µs per put, or 0. */
static double catime_puts(struct bench *b, pid_t daemon, chid *chans, size_t n, chtype type,
                          struct span *sp)
{
    long total = 10 * (long)n;
    union dbr_buf *vals = calloc((size_t)total, sizeof *vals);
    if (!vals)
        return 0;
    for (long i = 0; i < total; i++)
        catime_value(&vals[i], type, i);
    struct mark m0 = mark_now(daemon);
    double t0 = harness_now();
    long done = 0;
    for (; done < total; done++)
        if (ca_array_put(type, 1, chans[done % (long)n], &vals[done]) != ECA_NORMAL)
            break;
    union dbr_buf got;
    int st = ca_array_get(type, 1, chans[0], &got);
    if (st == ECA_NORMAL)
        st = ca_pend_io(PEND_LIMIT_S);
    double us = (harness_now() - t0) * 1e6 / (double)total;
    *sp = span_of(m0, mark_now(daemon));
    free(vals);
    if (done < total || st != ECA_NORMAL) {
        note(b, "catime: puts of type %ld failed (%s)", type, ca_message(st));
        return 0;
    }
    return us;
}

static void phase_catime(struct bench *b)
{
    size_t n = (size_t)b->o.catime;
    printf("\n7. catime shapes: %zu channels to one PV (DEMO:DOUBLE), none subscribed.\n", n);
    harness_daemon d;
    if (daemon_start(&d, 0) != 0) {
        note(b, "catime: the daemon did not start");
        return;
    }
    const char **names = calloc(n, sizeof *names);
    chid *chans = calloc(n, sizeof *chans);
    if (names && chans && client_start(b, &d) == 0) {
        for (size_t i = 0; i < n; i++)
            names[i] = "DEMO:DOUBLE";
        printf("  %-34s %10s %10s %8s %8s\n", "test", "µs per op", "ops/s", "daemon", "client");
        struct mark m0 = mark_now(d.pid);
        double t0 = harness_now();
        size_t up = harness_ca_connect(chans, names, n, 120);
        double us = (harness_now() - t0) * 1e6 / (double)n;
        struct span sp = span_of(m0, mark_now(d.pid));
        char rate[32];
        printf("  %-34s %10.3f %10s %7.0f%% %7.0f%%\n", "channel connect", us,
               fmt_rate(rate, sizeof rate, 1e6 / us), sp.daemon_pct, sp.self_pct);
        b->catime_connect_us = us;
        if (up == n) {
            static const struct {
                const char *label;
                chtype type;
            } rows[] = {
                {"async put DBR_FLOAT (changing)", DBR_FLOAT},
                {"async put DBR_DOUBLE (changing)", DBR_DOUBLE},
                {"async put DBR_STRING (changing)", DBR_STRING},
                {"async put DBR_INT (unchanged)", DBR_SHORT},
            };
            for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                us = catime_puts(b, d.pid, chans, n, rows[i].type, &sp);
                b->catime_put_us[i] = us;
                printf("  %-34s %10.3f %10s %7.0f%% %7.0f%%\n", rows[i].label, us,
                       fmt_rate(rate, sizeof rate, us > 0 ? 1e6 / us : 0), sp.daemon_pct,
                       sp.self_pct);
            }
        } else {
            note(b, "catime: only %zu of %zu channels connected", up, n);
        }
        clear_channels(chans, n);
        chans = NULL;
        client_finish(b, "catime");
    }
    free(chans);
    free(names);
    daemon_finish(b, &d, "catime", true);
}

/* ---- main ---- */

/* One unreported burst of gets and puts, so that the first row does not pay for libca's
 * and the daemon's buffers growing. */
static void warm_up(struct bench *b)
{
    const char *pv = "DEMO:G:A"; /* a DOUBLE that no row reads */
    chid *ch = connect_names(&pv, 1, 10);
    if (!ch)
        return;
    union dbr_buf buf;
    int st;
    get_burst(ch, 1, DBR_DOUBLE, b->o.gets, &buf);
    put_once(ch[0], DBR_DOUBLE, b->o.puts, &buf, &st);
    clear_channels(ch, 1);
}

static void phases_one_circuit(struct bench *b)
{
    harness_daemon d;
    if (daemon_start(&d, b->o.rr_channels) != 0) {
        note(b, "phases 1-3: the daemon did not start");
        return;
    }
    if (client_start(b, &d) == 0) {
        /* libca closes a circuit when its last channel is cleared, and a channel created
         * meanwhile may land on the dying circuit (ECA_DISCONN). One channel held for the
         * whole phase keeps every row on the same circuit. */
        const char *pv = "DEMO:RO";
        chid *anchor = connect_names(&pv, 1, 10);
        warm_up(b);
        phase_gets(b, d.pid);
        phase_puts(b, d.pid);
        phase_sync(b, d.pid);
        clear_channels(anchor, 1);
        client_finish(b, "phases 1-3");
    }
    daemon_finish(b, &d, "phases 1-3", true);
}

static void print_summary(const struct bench *b)
{
    char g[32], p[32];
    printf("\nSummary (reference: an EPICS IOC over one loopback circuit; other hardware)\n");
    printf("  %-38s %12s %12s\n", "", "guardiand", "EPICS IOC");
    printf("  %-38s %10s/s %12s\n", "async get DBR_DOUBLE, one circuit",
           fmt_rate(g, sizeof g, b->get_double_rate), "~3.7 M/s");
    printf("  %-38s %10s/s %12s\n", "async put DBR_DOUBLE, one circuit",
           fmt_rate(p, sizeof p, b->put_double_rate), "~3.9 M/s");
    printf("  %-38s %9.1f µs %12s\n", "sync get latency (mean)", b->sync_mean_us, "~80 µs");
    printf("  catime, %ld channels to one PV, µs per op:\n", b->o.catime);
    printf("  %-38s %9.3f µs %12s\n", "  channel connect", b->catime_connect_us, "5.1 µs");
    static const char *const put_rows[4][2] = {
        {"  async put DBR_FLOAT (changing)", "0.23 µs"}, {"  async put DBR_DOUBLE (changing)", "0.18 µs"},
        {"  async put DBR_STRING (changing)", "0.27 µs"}, {"  async put DBR_INT (unchanged)", "0.18 µs"},
    };
    for (int i = 0; i < 4; i++)
        printf("  %-38s %9.3f µs %12s\n", put_rows[i][0], b->catime_put_us[i], put_rows[i][1]);
    printf("\nNotes: %s\n", b->n_notes ? "" : "none (no daemon log lines, libca exceptions or "
                                                "failed requests)");
    for (int i = 0; i < b->n_notes; i++)
        printf("  - %s\n", b->notes[i]);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);
    bool quick = argc == 2 && strcmp(argv[1], "--quick") == 0;
    bool catime_only = argc == 2 && strcmp(argv[1], "--catime") == 0;
    if (argc > 2 || (argc == 2 && !quick && !catime_only)) {
        fprintf(stderr, "usage: bench-ca [--quick | --catime]\n");
        return 2;
    }
    static struct bench b;
    set_counts(&b.o, quick);
    ssize_t n = readlink("/proc/self/exe", b.exe, sizeof b.exe - 1);
    if (n <= 0) {
        perror("bench-ca: /proc/self/exe");
        return 1;
    }
    b.exe[n] = '\0';
    harness_prefer_daemon_beside_self();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = harness_now();
    printf("bench-ca%s: guardiand over libca on 127.0.0.1, %ld CPUs\n", quick ? " --quick" : "",
           sysconf(_SC_NPROCESSORS_ONLN));
    if (!catime_only) {
        phases_one_circuit(&b);
        phase_fanout(&b);
        phase_connect(&b);
        phase_memory(&b);
    }
    phase_catime(&b);
    print_summary(&b);
    printf("\nTotal time %.1f s\n", harness_now() - t0);
    return 0;
}
