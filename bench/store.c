/* store.c — bench-store: what persistence costs the loop.
 *
 * N nodes (1000) each change state every cycle at R Hz (16), on a real file:
 * a slotted ev_timer like the daemon's schedule (16 slots per cycle) queues,
 * for each node of the slot, one store_node_state and one store_transition,
 * i.e. N*R of each per second; with --log-rate L, also L node log lines a
 * node a second (store_log_line, lines of ~110 characters as node/log.c
 * makes them), spread over its visits. The store flushes from its own timer
 * as in the daemon. Figures:
 *   - changes queued and rows committed per second;
 *   - flush durations (store_status().last_flush after each flush) and the
 *     loop stall they cause, measured from outside: the busy time of each
 *     loop iteration (ev_check -> ev_prepare) in which a flush or a
 *     checkpoint ran, minus the load generator's own time in it;
 *   - WAL checkpoints: count and durations (they run in their own iteration);
 *   - the database and WAL sizes, the final flush, and the time to open the
 *     resulting file again and list every node with its saved state (the
 *     start-up path; quick_check included).
 * Figures only: nothing here passes or fails on a timing.
 *
 * Usage: bench-store [--seconds S] [--nodes N] [--rate HZ] [--log-rate L] [--dir DIR] [--keep]
 *                    [--quick] [--interval S] [--budget MS] [--checkpoint-pages N]
 * The last three set the store's options (flush_interval, flush_budget,
 * checkpoint_pages) to compare settings; by default the store's defaults.
 * The database goes in a fresh directory under DIR (default /var/tmp), removed
 * at the end unless --keep.
 */
#include <dirent.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define SLOTS 16
#define MAX_SAMPLES 200000

struct samples {
    double *v;
    size_t n;
};

struct bench {
    /* options */
    double seconds, rate, log_rate;
    int nodes;
    const char *parent;
    bool keep;
    double interval, budget;   /* store options; 0: the store's defaults */
    unsigned checkpoint_pages;
    /* run */
    char dir[512], path[600];
    struct ev_loop *loop;
    store *st;
    char (*names)[24];
    ev_timer gen, stop;
    ev_check check;
    ev_prepare prepare;
    uint64_t tick;
    double t0;
    uint64_t queued_states, queued_transitions, queued_lines;
    double line_credit;        /* log lines due, not yet queued */
    size_t peak_queue;
    /* per iteration */
    double it_start, it_gen;
    struct store_status it_status;
    struct samples flush, stall, ckpt, ckpt_stall, gen_cost;
    unsigned stalls_over_5ms;
    unsigned log_lines;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void add(struct samples *s, double v)
{
    if (!s->v)
        s->v = malloc(MAX_SAMPLES * sizeof(double));
    if (s->v && s->n < MAX_SAMPLES)
        s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(struct samples *s, double p)
{
    if (!s->n)
        return 0;
    qsort(s->v, s->n, sizeof(double), cmp_double);
    size_t i = (size_t)ceil(p / 100.0 * (double)s->n);
    return s->v[i ? i - 1 : 0];
}

static void bench_log(void *arg, const char *line)
{
    struct bench *b = arg;
    if (b->log_lines++ < 20)
        fprintf(stderr, "  store: %s\n", line);
}

/* ---- the load ---- */

static const char *const states[] = {"DAMPED", "ALIGNED", "MISALIGNED", "SAFE"};

static void gen_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    struct bench *b = w->data;
    double start = mono();
    /* Catch up on ticks that are due (as the daemon's schedule does). */
    uint64_t due = (uint64_t)floor((start - b->t0) * b->rate * SLOTS);
    for (; b->tick <= due; b->tick++) {
        unsigned slot = (unsigned)(b->tick % SLOTS);
        uint64_t cycle = b->tick / SLOTS;
        double now = wall();
        for (int i = (int)slot; i < b->nodes; i += SLOTS) {
            const char *from = states[(cycle + (uint64_t)i) % 4], *to = states[(cycle + (uint64_t)i + 1) % 4];
            store_node_state(b->st, b->names[i], "ALIGNED", "AUTO", "EXEC", to);
            struct store_transition t = {.node = b->names[i], .time = now, .from = from, .to = to,
                                         .request = "ALIGNED", .how = STORE_HOW_EDGE};
            store_transition(b->st, &t);
            b->queued_states++;
            b->queued_transitions++;
            for (b->line_credit += b->log_rate / b->rate; b->line_credit >= 1; b->line_credit -= 1) {
                char line[160];
                snprintf(line, sizeof(line), "2026-11-26_12:00:00.000000Z %s [%s.run] bench step %llu: "
                         "x = 0x%016llx, sum 12.5", b->names[i], to, (unsigned long long)cycle,
                         (unsigned long long)(cycle * 2654435761u + (uint64_t)i));
                store_log_line(b->st, b->names[i], now, line);
                b->queued_lines++;
            }
        }
    }
    double dt = mono() - start;
    b->it_gen += dt;
    add(&b->gen_cost, dt);
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* ---- measuring the loop ---- */

static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop, (void)revents;
    struct bench *b = w->data;
    b->it_start = mono();
    b->it_gen = 0;
    store_status(b->st, &b->it_status);
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop, (void)revents;
    struct bench *b = w->data;
    if (b->it_start == 0)
        return;
    double busy = mono() - b->it_start - b->it_gen;
    struct store_status s;
    store_status(b->st, &s);
    if ((s.queued + s.log_queued) > b->peak_queue)
        b->peak_queue = (s.queued + s.log_queued);
    bool flushed = s.flushes != b->it_status.flushes || s.failed_flushes != b->it_status.failed_flushes;
    bool checkpointed = s.checkpoints != b->it_status.checkpoints;
    if (flushed) {
        add(&b->flush, s.last_flush);
        add(&b->stall, busy);
    }
    if (checkpointed) {
        add(&b->ckpt, s.last_checkpoint);
        add(&b->ckpt_stall, busy);
    }
    if ((flushed || checkpointed) && busy > 0.005)
        b->stalls_over_5ms++;
}

/* ---- set-up, report ---- */

static long file_kib(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)(sb.st_size / 1024) : 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[1100];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int count_node(void *arg, const struct store_node *n)
{
    int *count = arg;
    if (n->state)
        (*count)++;
    return 0;
}

static void row(const char *what, struct samples *s)
{
    if (!s->n) {
        printf("  %-34s (none)\n", what);
        return;
    }
    double max = pct(s, 100);
    printf("  %-34s n=%-6zu p50 %7.3f  p99 %7.3f  max %7.3f ms\n", what, s->n, pct(s, 50) * 1e3,
           pct(s, 99) * 1e3, max * 1e3);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--seconds S] [--nodes N] [--rate HZ] [--log-rate L] [--dir DIR] [--keep] [--quick]\n"
            "          [--interval S] [--budget MS] [--checkpoint-pages N]   (store options)\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    struct bench b = {.seconds = 10, .rate = 16, .nodes = 1000, .parent = "/var/tmp"};
    static const struct option longopts[] = {
        {"seconds", required_argument, NULL, 's'}, {"nodes", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},    {"dir", required_argument, NULL, 'd'},
        {"keep", no_argument, NULL, 'k'},          {"quick", no_argument, NULL, 'q'},
        {"interval", required_argument, NULL, 'i'}, {"budget", required_argument, NULL, 'b'},
        {"checkpoint-pages", required_argument, NULL, 'c'}, {"log-rate", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': b.seconds = atof(optarg); break;
        case 'n': b.nodes = atoi(optarg); break;
        case 'r': b.rate = atof(optarg); break;
        case 'd': b.parent = optarg; break;
        case 'k': b.keep = true; break;
        case 'q': b.seconds = 2; break;
        case 'i': b.interval = atof(optarg); break;
        case 'b': b.budget = atof(optarg) / 1e3; break;
        case 'c': b.checkpoint_pages = (unsigned)atoi(optarg); break;
        case 'l': b.log_rate = atof(optarg); break;
        default: return usage(argv[0]);
        }
    }
    if (b.seconds <= 0 || b.seconds > 3600 || b.nodes < 1 || b.nodes > 100000 || b.rate <= 0 || b.rate > 1000 ||
        !(b.log_rate >= 0 && b.log_rate <= 10000))
        return usage(argv[0]);

    snprintf(b.dir, sizeof(b.dir), "%s/bench-store-XXXXXX", b.parent);
    if (!mkdtemp(b.dir)) {
        perror(b.dir);
        return 1;
    }
    snprintf(b.path, sizeof(b.path), "%s/guardiand.db", b.dir);
    b.loop = ev_loop_new(EVFLAG_AUTO);
    struct store_options opt = {.path = b.path, .log = bench_log, .log_arg = &b, .flush_interval = b.interval,
                                .flush_budget = b.budget, .checkpoint_pages = b.checkpoint_pages};
    char err[512];
    double t_open = mono();
    b.st = store_open(b.loop, &opt, NULL, err, sizeof(err));
    if (!b.st) {
        fprintf(stderr, "bench-store: %s\n", err);
        return 1;
    }
    t_open = mono() - t_open;

    b.names = calloc((size_t)b.nodes, sizeof(*b.names));
    struct store_node_def *defs = calloc((size_t)b.nodes, sizeof(*defs));
    char (*argtext)[24] = calloc((size_t)b.nodes, sizeof(*argtext));
    const char **argv1 = calloc((size_t)b.nodes, sizeof(*argv1));
    for (int i = 0; i < b.nodes; i++) {
        snprintf(b.names[i], sizeof(b.names[i]), "BENCH_%05d", i);
        snprintf(argtext[i], sizeof(argtext[i]), "index=%d", i);
        argv1[i] = argtext[i];
        defs[i] = (struct store_node_def){b.names[i], "bench", &argv1[i], 1};
    }
    double t_seed = mono();
    if (store_seed(b.st, defs, (unsigned)b.nodes) != 0 || store_boot_begin(b.st, "bench", (int)getpid(), NULL) <= 0) {
        fprintf(stderr, "bench-store: seeding: %s\n", store_errmsg(b.st));
        return 1;
    }
    t_seed = mono() - t_seed;

    printf("bench-store: %d nodes changing state every cycle at %g Hz, %g log lines a node a second, for %g s, "
           "database %s\n", b.nodes, b.rate, b.log_rate, b.seconds, b.path);
    printf("  create + migrate %.1f ms, seed %d nodes %.1f ms\n", t_open * 1e3, b.nodes, t_seed * 1e3);

    ev_timer_init(&b.gen, gen_cb, 0, 1.0 / (b.rate * SLOTS));
    b.gen.data = &b;
    ev_timer_init(&b.stop, stop_cb, b.seconds, 0);
    ev_check_init(&b.check, check_cb);
    b.check.data = &b;
    ev_prepare_init(&b.prepare, prepare_cb);
    b.prepare.data = &b;
    ev_check_start(b.loop, &b.check);
    ev_prepare_start(b.loop, &b.prepare);
    ev_timer_start(b.loop, &b.gen);
    ev_timer_start(b.loop, &b.stop);
    ev_now_update(b.loop);
    b.t0 = mono();
    double cpu0 = cpu_seconds();
    struct store_status s0;
    store_status(b.st, &s0);
    ev_run(b.loop, 0);
    double elapsed = mono() - b.t0;
    double cpu = cpu_seconds() - cpu0;
    ev_timer_stop(b.loop, &b.gen);
    ev_check_stop(b.loop, &b.check);
    ev_prepare_stop(b.loop, &b.prepare);

    struct store_status s1;
    store_status(b.st, &s1);
    char wal[620];
    snprintf(wal, sizeof(wal), "%s-wal", b.path);
    long wal_kib = file_kib(wal);
    double t_final = mono();
    int final_rc = store_flush(b.st);
    t_final = mono() - t_final;
    struct store_status s2;
    store_status(b.st, &s2);
    store_boot_end(b.st, true);
    double t_close = mono();
    store_close(b.st);
    t_close = mono() - t_close;
    long db_kib = file_kib(b.path);

    /* The start-up path: open the file again, list every node. */
    double t_reopen = mono();
    store *again = store_open(NULL, &opt, NULL, err, sizeof(err));
    int restored = 0;
    if (again)
        store_nodes(again, count_node, &restored);
    t_reopen = mono() - t_reopen;
    if (again)
        store_close(again);
    long long in_file = -1, lines_in_file = -1;
    sqlite3 *db;
    if (sqlite3_open_v2(b.path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM transitions", -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            in_file = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM node_log", -1, &q, NULL) == SQLITE_OK &&
            sqlite3_step(q) == SQLITE_ROW)
            lines_in_file = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);

    double queued = (double)(b.queued_states + b.queued_transitions + b.queued_lines);
    uint64_t committed = s1.committed_total - s0.committed_total;
    printf("  changes queued      %10.0f /s  (%llu node states + %llu transitions + %llu log lines in %.2f s)\n",
           queued / elapsed, (unsigned long long)b.queued_states, (unsigned long long)b.queued_transitions,
           (unsigned long long)b.queued_lines, elapsed);
    printf("  rows committed      %10.0f /s  (every transition; node states coalesced to the latest per flush)\n",
           (double)committed / elapsed);
    printf("  flushes %llu (%.1f /s), failed %llu, queue peak %zu, dropped %llu + %llu log lines, left at the end "
           "%zu + %zu log lines\n",
           (unsigned long long)(s1.flushes - s0.flushes), (double)(s1.flushes - s0.flushes) / elapsed,
           (unsigned long long)s1.failed_flushes, b.peak_queue, (unsigned long long)s1.dropped,
           (unsigned long long)s1.log_dropped, s1.queued, s1.log_queued);
    row("flush duration", &b.flush);
    row("loop stall, flush iterations", &b.stall);
    row("checkpoint duration", &b.ckpt);
    row("loop stall, checkpoint iterations", &b.ckpt_stall);
    row("load generator, per timer call", &b.gen_cost);
    printf("  iterations with persistence > 5 ms: %u\n", b.stalls_over_5ms);
    printf("  checkpoints %llu, WAL at the end %ld KiB, database %ld KiB after close\n",
           (unsigned long long)s1.checkpoints, wal_kib, db_kib);
    printf("  final flush %.1f ms (%s, %llu rows), close %.1f ms\n", t_final * 1e3, final_rc ? "failed" : "ok",
           (unsigned long long)(s2.committed_total - s1.committed_total), t_close * 1e3);
    printf("  transitions in the file: %lld of %llu queued; log lines %lld of %llu\n", in_file,
           (unsigned long long)b.queued_transitions, lines_in_file, (unsigned long long)b.queued_lines);
    printf("  reopen + list %d nodes: %.1f ms (%d with saved state)%s%s\n", b.nodes, t_reopen * 1e3, restored,
           again ? "" : " FAILED: ", again ? "" : err);
    printf("  CPU %.1f %% of one core over the run (generator + store + SQLite)\n", 100.0 * cpu / elapsed);

    if (!b.keep)
        remove_dir(b.dir);
    free(b.names);
    free(defs);
    free(argtext);
    free(argv1);
    free(b.flush.v);
    free(b.stall.v);
    free(b.ckpt.v);
    free(b.ckpt_stall.v);
    free(b.gen_cost.v);
    ev_loop_destroy(b.loop);
    return again && final_rc == 0 ? 0 : 1;
}
