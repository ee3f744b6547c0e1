/* nodes.c — bench-nodes: what N Guardian nodes cost one guardiand.
 *
 * For each node count N (default 100, 300, 1000) it writes a configuration of N nodes running
 * the `bench` system (systems/bench.c: never settles, changes state about once a second, does a
 * little arithmetic every cycle and logs a few lines per state change), starts
 * `guardiand --config FILE --no-repeater` on free 127.0.0.1 ports, waits for its ready line and
 * a warm-up, then measures over a window of S seconds:
 *   - CPU: the daemon's utime + stime (/proc/PID/stat) over the window's wall time, in % of one
 *     core (it is single threaded, so 100 % is its ceiling); dwait: the time it was runnable
 *     but had no CPU (/proc/PID/schedstat), i.e. what other work on the host costs its timing;
 *   - memory: VmRSS at the end of the window, and VmHWM (the peak since start);
 *   - the scheduler's own figures, read over libca from the supervisor channels X1:GUARDIAND-*
 *     (supervisor/supchan.c, refreshed once a second): JITTER_P50, _P99, _MAX (ms: lateness of
 *     the daemon's last SCHED_SAMPLES ticks), OVERRUNS and SKIPPED_CYCLES (read at both ends of
 *     the window; the difference is shown), LOOP_UTIL (% of a second the loop was awake: the
 *     mean of its updates during the window) and NODES (must be N).
 * A second row per N runs a fresh daemon with this process as an operator screen (MEDM-like):
 * one CA client monitoring every node's STATE and EXECTIME (native DBR_TIME_* type,
 * DBE_VALUE | DBE_ALARM), counting the updates it receives.
 *
 * With --hostile, two more rows per N each add one hostile client (raw CA over TCP, not
 * libca) that never reads what it is sent:
 *   huge:  8 EVENT_ADDs (extended header) of DBR_DOUBLE with a count just under the 64 MiB
 *          reply limit, on the EXECTIME channels of 8 nodes (16 Hz each): every update would
 *          be 64 MiB of zero fill;
 *   100k:  100 000 subscriptions on one circuit, 1000 on each of 100 channels to one node's
 *          EXECTIME (16 Hz).
 * The hostile client connects and subscribes at the start of the window, so the window holds
 * the cost of opening its subscriptions too. What one client may cost the site shows in the
 * jitter, overruns, CPU and RSS of those rows.
 *
 * With --plant, one more row per N ("plant") puts the nodes on a plant over Channel Access, as
 * issue 9 asks: each node gets reads=20 and writes=2 (systems/bench.c reads its 20 IN channels
 * every cycle and writes its 2 OUT channels on every state change: 22 CA channels a node), and
 * the daemon's libca client searches only a guardsim (beside the daemon) that serves the same
 * site file on its own free port, started first with --change 0.1 --rate 16 (a tenth of the
 * IN channels change 16 times a second). The row adds:
 *   - connect: from the daemon's exec until every plant channel is connected, as its control
 *     socket says (`status`: supervisor.plant.ca_connected == .ca == 22 N), polled every 50 ms
 *     from the ready line (the socket answers from then on) until connected, at most 30 s. The
 *     polling ends before the warm-up, so the window does not pay for it;
 *   - at the end of the window: every node's CONNECT (how many are not OK), the CA channels
 *     connected, and the writes made and refused during the window (status at both ends);
 *   - guardsim's CPU over the window (it is another process on the same 2 cores).
 *
 * With --managers, one more row per N ("manage") runs a site of managers (issue 10): every
 * tenth node is a `lock` manager (systems/lock.c) over the nine `sus` nodes after it
 * (systems/sus.c: 6 plant channels each, served by guardsim as in the plant row, whose
 * watchdogs trip at random, --trip-rate 6 an hour each, and reset 30 s later). Managers reach
 * their subordinates in-process through their node channels, claim and renew them, and revive
 * those a trip stalled. The plant columns apply, and the row adds the revives, trips seen
 * (JUMP lines to TRIPPED) and refused claims in the window, from the daemon's log.
 *
 * It prints figures only; the targets line says whether they are met but the exit status does
 * not depend on timings. Exit status: 1 if a daemon does not start or dies, or a channel cannot
 * be connected or read; 2 on a usage error; else 0.
 *
 * The daemon and guardsim are started and stopped by the harness (tests/lib/harness.h), in the
 * row's folder: without --demo (the demo PV set, with a 100 000-element array and two timers,
 * would count in its RSS and CPU), on the row's configuration file, its ready line parsed for
 * the figures it holds (nodes started and failed, PVs). With --no-repeater nothing would hold
 * the repeater port, so this process serves the repeater (see repeater_start()), also while a
 * server starts.
 *
 * Every daemon gets its control socket and database in its row's folder (the default socket is
 * one per host, and a daemon already on it, a test's or an operator's, would stop ours from
 * starting).
 *
 * Usage: bench-nodes [--nodes 100,300,1000] [--seconds S] [--warm-up S] [--quick] [--no-screen]
 *                    [--hostile] [--plant] [--managers]
 * The daemon is $GUARDIAND, else guardiand next to this program, else build/bin/guardiand; the
 * systems are the systems/ folder beside its bin/ (else beside ours); guardsim is beside the
 * daemon. Every wait is bounded in time, every loop in count.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/caproto.h"
#include "ca/cas.h"
#include "ca/epics_ca.h"
#include "node/node.h" /* node_channel_name */
#include "tests/lib/ca_raw.h"
#include "tests/lib/harness.h"

#define MAX_COUNTS 16          /* node counts in one --nodes list */
#define MAX_NODES 100000L      /* names stay BENCH<digits> within 63 characters, memory bounded */
#define MAX_NOTES 12
#define READY_TIMEOUT_S 60.0
#define STOP_TIMEOUT_S 10.0
#define CA_TIMEOUT_S 10.0      /* connect or read the supervisor channels */
#define SCREEN_TIMEOUT_S 60.0  /* connect the screen's channels, get their first updates */
#define IFO "X1"
#define SUP_PREFIX IFO ":GUARDIAND-"
#define TARGET_NODES 1000L
#define TARGET_CPU_PCT 15.0
#define TARGET_RSS_MIB 100.0
#define TARGET_P99_MS 2.0

/* The plant row (issue 9). */
#define PLANT_READS 20
#define PLANT_WRITES 2
#define PLANT_CHANGE "0.1"         /* guardsim --change: share of IN channels changed a tick */
#define PLANT_RATE "16"            /* guardsim --rate */
#define PLANT_CONNECT_TIMEOUT_S 30.0
#define PLANT_POLL_S 0.05          /* the control socket's status while connecting */
#define CTL_TIMEOUT_S 5.0          /* one status request */
#define CTL_REPLY_BYTES 65536      /* a status without nodes is about 1 KiB */
#define TARGET_PLANT_CPU_PCT 25.0
#define TARGET_PLANT_RSS_MIB 150.0
#define TARGET_PLANT_CONNECT_S 2.0

/* The managers row (issue 10). */
#define MANAGE_GROUP 10            /* one manager, then the nine sus nodes it manages */
#define SUS_PLANT_CHANNELS 6       /* systems/sus.c: watchdog, 3 gains, 2 offsets */
#define MANAGE_TRIP_RATE "6"       /* guardsim --trip-rate: trips an hour, each optic */
#define MANAGE_TRIP_RESET "30"     /* guardsim --trip-reset: seconds */

/* ---- options and the run's context ---- */

struct bench_opts {
    long nodes[MAX_COUNTS];
    int n_counts;
    double seconds;     /* the measurement window */
    double warm_up;     /* after the ready line: the first cycles start every node's graph */
    bool quick;
    bool screen;        /* also the rows with a monitoring client */
    bool hostile;       /* also the rows with a hostile client */
    bool plant;         /* also the rows with a plant over CA (guardsim) */
    bool managers;      /* also the rows of managers over sus nodes (guardsim) */
};

/* What besides the daemon runs in a row. */
enum row_kind { ROW_PLAIN, ROW_SCREEN, ROW_HUGE, ROW_100K, ROW_PLANT, ROW_MANAGERS };
static const char *const kind_name[] = {"-", "screen", "huge", "100k", "plant", "manage"};

/* The supervisor channels read, as X1:GUARDIAND-<suffix>. */
enum sup_chan { SC_NODES, SC_LOOP_UTIL, SC_JITTER_P50, SC_JITTER_P99, SC_JITTER_MAX,
                SC_OVERRUNS, SC_SKIPPED, SC_COUNT };
static const char *const sup_suffix[SC_COUNT] = {
    [SC_NODES] = "NODES", [SC_LOOP_UTIL] = "LOOP_UTIL", [SC_JITTER_P50] = "JITTER_P50",
    [SC_JITTER_P99] = "JITTER_P99", [SC_JITTER_MAX] = "JITTER_MAX", [SC_OVERRUNS] = "OVERRUNS",
    [SC_SKIPPED] = "SKIPPED_CYCLES",
};

/* One table row: one daemon, one window. */
struct row {
    long nodes;
    enum row_kind kind;
    double seconds;                /* the window as measured */
    double cpu_pct, wait_pct;      /* the daemon, % of one core */
    double self_pct, other_pct;    /* this process (libca threads included); everything else */
    long rss_kb, hwm_kb;
    double sup[SC_COUNT];          /* supervisor channels at the end of the window */
    double overruns, skipped;      /* during the window */
    double util_mean;              /* mean LOOP_UTIL update in the window, NAN if none came */
    double updates_per_s;          /* the screen's monitor updates */
    long subscriptions;
    double start_s;                /* exec to the ready line */
    long pvs;                      /* from the ready line */
    double log_kib_per_s;          /* the daemon's stdout + stderr */
    double rss_growth;             /* KiB/s over the window: still filling its log rings? */
    /* the plant row only */
    long plant_ca;                 /* CA channels the daemon holds once connected */
    double connect_s;              /* exec to every one connected, NAN if not in time */
    long connected_end;            /* connected at the end of the window */
    long connect_not_ok;           /* nodes whose CONNECT is not OK then (or not read) */
    double puts_per_s;             /* plant writes in the window */
    long put_failures;             /* ... and failures */
    double plant_updates_per_s;    /* values the daemon's libca delivered */
    double polls_per_s;            /* ca_poll calls */
    double put_off_pct;            /* % of the polls put off until a tick had run */
    double sim_cpu_pct;            /* guardsim, % of one core */
    long sim_rss_kb;
    double ctl_ms;                 /* the slowest status reply while connecting */
    /* the managers row only: in the window, from the daemon's log */
    long revives, trips, refused;
};

struct bench {
    struct bench_opts o;
    char daemon[PATH_MAX];
    char systems[PATH_MAX];
    char guardsim[PATH_MAX];    /* with --plant */
    int n_notes;
    char notes[MAX_NOTES][240]; /* odd things seen, printed at the end */
    struct row rows[6 * MAX_COUNTS];
    int n_rows;
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

/* ---- measuring the daemon and the host ---- */

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Lines of the file between byte offsets from and to that contain needle (a line counts
 * where it starts). */
static long log_count(const char *path, long from, long to, const char *needle)
{
    FILE *f = fopen(path, "re");
    if (!f || from < 0 || fseek(f, from, SEEK_SET) != 0) {
        if (f)
            fclose(f);
        return -1;
    }
    char line[1024];
    long count = 0, at = from;
    while (at < to && fgets(line, sizeof line, f)) {
        count += strstr(line, needle) != NULL;
        at += (long)strlen(line);
    }
    fclose(f);
    return count;
}

/* A point in time with the clocks a row is made of. */
struct mark {
    double t, daemon_cpu, daemon_wait, self_cpu, host_busy;
    double sim_cpu; /* guardsim's, 0 when the row has none */
    long log_bytes, rss_kb;
};

static struct mark mark_now(const harness_daemon *d, const harness_daemon *sim)
{
    double run;
    struct mark m = {.t = harness_now(), .daemon_cpu = harness_proc_cpu_s(d->pid),
                     .self_cpu = harness_self_cpu_s(), .host_busy = harness_host_busy_s(),
                     .sim_cpu = sim->pid > 0 ? harness_proc_cpu_s(sim->pid) : 0,
                     .log_bytes = file_size(d->log_path),
                     .rss_kb = harness_proc_status_kb(d->pid, "VmRSS:")};
    harness_proc_schedstat(d->pid, &run, &m.daemon_wait);
    return m;
}

/* ---- the daemon ---- */

/* One daemon of one row, in its own temporary folder (configuration, log, database, control
 * socket), and for a plant row the guardsim it reaches the plant through. */
struct daemon_run {
    harness_daemon d;      /* pid, ports, log path, control socket, exec time */
    harness_daemon sim;    /* guardsim: pid 0 and no log path when the row has none */
    bool plant;            /* a plant over CA: the plant and managers rows */
    bool managers;         /* the managers row: lock and sus nodes, not bench ones */
    char dir[200];         /* fits, with "/guardiand.log", in d.log_path */
    char config[256];
    long nodes, failed, pvs; /* from the ready line */
    double start_s;
};

static void bench_node_name(char *out, size_t size, long i) { snprintf(out, size, "BENCH%04ld", i + 1); }

/* N bench nodes at 16 Hz, in the format of etc/guardiand.ini; for a plant row with their
 * plant channels, and the plant searched at guardsim's port only. guardsim reads the same
 * file (ifo, and each node's reads= and writes=, or optic=). For the managers row, groups of
 * MANAGE_GROUP: a lock node over the sus nodes after it (same names, other systems). */
static int write_config(const struct bench *b, const struct daemon_run *r, long nodes)
{
    FILE *f = fopen(r->config, "wxe");
    if (!f)
        return -1;
    fprintf(f, "; bench-nodes: %ld bench nodes\n[guardiand]\nifo = %s\nsystems = %s\n"
               "rate = 16\ndatabase = %s/bench.db\n",
            nodes, IFO, b->systems, r->dir);
    if (r->plant)
        fprintf(f, "plant_addr_list = 127.0.0.1:%d\nplant_auto_addr_list = no\n", r->sim.port);
    for (long i = 0; i < nodes; i++) {
        char name[32];
        bench_node_name(name, sizeof name, i);
        if (r->managers && i % MANAGE_GROUP == 0 && i + 1 < nodes) {
            fprintf(f, "\n[node %s]\nsystem = lock\n", name);
            for (long k = i + 1; k < i + MANAGE_GROUP && k < nodes; k++) {
                bench_node_name(name, sizeof name, k);
                fprintf(f, "nodes = %s\n", name); /* a repeated key continues the list */
            }
        } else if (r->managers) {
            fprintf(f, "\n[node %s]\nsystem = sus\noptic = O%04ld\nsettle = 0.5\n", name, i);
        } else {
            fprintf(f, "\n[node %s]\nsystem = bench\n", name);
        }
        if (r->plant && !r->managers)
            fprintf(f, "reads = %d\nwrites = %d\n", PLANT_READS, PLANT_WRITES);
    }
    bool bad = ferror(f);
    return fclose(f) == 0 && !bad ? 0 : -1;
}

/* "guardiand: ready: ca port %u (tcp %u), %u nodes (%d failed), %zu PVs" (supervisor/main.c) */
static bool parse_ready(void *arg, const char *line)
{
    struct daemon_run *r = arg;
    if (strncmp(line, "guardiand: ready:", 17) != 0)
        return false;
    if (sscanf(line, "guardiand: ready: ca port %*u (tcp %*u), %ld nodes (%ld failed), %ld PVs",
               &r->nodes, &r->failed, &r->pvs) != 3)
        r->nodes = r->failed = r->pvs = -1; /* the format changed: ready all the same */
    return true;
}

/* "guardsim: ready: N channels on port P" (sim/guardsim.c) */
static bool parse_sim_ready(void *arg, const char *line)
{
    (void)arg;
    return strncmp(line, "guardsim: ready:", 16) == 0;
}

struct client;
static void repeater_serve(struct client *c, double seconds);

/* harness_opts.wait while a server starts: a plant row's daemon starts libca before it is
 * ready, and registers with the repeater this process serves. */
static void repeater_wait(void *arg, double seconds) { repeater_serve(arg, seconds); }

/* Folder, ports and configuration of a row; nothing started yet. 0, or -1 with a message. */
static int daemon_prepare(const struct bench *b, struct daemon_run *r, long nodes,
                          enum row_kind kind)
{
    memset(r, 0, sizeof *r);
    r->plant = kind == ROW_PLANT || kind == ROW_MANAGERS;
    r->managers = kind == ROW_MANAGERS;
    if (harness_temp_dir(r->dir, sizeof r->dir, "bench-nodes") != 0) {
        perror("bench-nodes: temporary folder");
        return -1;
    }
    snprintf(r->config, sizeof r->config, "%s/guardiand.ini", r->dir);
    /* Chosen now: the configuration names guardsim's port, and the repeater this process
     * serves on the daemon's beacon port starts before the servers. */
    int unused_beacon;
    if (harness_free_ports(&r->d.port, &r->d.beacon_port) != 0 ||
        (r->plant && harness_free_ports(&r->sim.port, &unused_beacon) != 0)) {
        fprintf(stderr, "bench-nodes: no free port on 127.0.0.1\n");
        harness_remove_dir(r->dir);
        return -1;
    }
    if (write_config(b, r, nodes) != 0) {
        perror("bench-nodes: configuration file");
        harness_remove_dir(r->dir);
        return -1;
    }
    return 0;
}

/* For a plant row guardsim first, serving the plant channels of the same file; then the
 * daemon. 0 once both are ready; -1 with neither running and the folder removed. */
static int daemon_start(const struct bench *b, struct daemon_run *r, struct client *c)
{
    char sim_port[16];
    snprintf(sim_port, sizeof sim_port, "%d", r->sim.port);
    const char *sim_args[] = {"--config", r->config, "--port", sim_port,
                              "--change", PLANT_CHANGE, "--rate", PLANT_RATE, "--quiet",
                              /* the managers row only (the list ends at the NULL otherwise) */
                              r->managers ? "--trip-rate" : NULL, MANAGE_TRIP_RATE,
                              "--trip-reset", MANAGE_TRIP_RESET, NULL};
    /* guardsim beacons to the host's repeater, which this process serves for the daemon. */
    harness_opts sim = {.program = b->guardsim, .args = sim_args, .port = r->sim.port,
                        .beacon_port = r->d.beacon_port, .dir = r->dir,
                        .ready = parse_sim_ready, .wait = repeater_wait, .wait_arg = c,
                        .ready_timeout = READY_TIMEOUT_S};
    const char *args[] = {"--config", r->config, "--no-repeater", NULL};
    harness_opts daemon = {.args = args, .no_demo = true, .real_plant = true,
                           .port = r->d.port, .beacon_port = r->d.beacon_port, .dir = r->dir,
                           .ready = parse_ready, .ready_arg = r, .wait = repeater_wait,
                           .wait_arg = c, .ready_timeout = READY_TIMEOUT_S};
    if (r->plant && harness_start(&r->sim, &sim) != 0) {
        fprintf(stderr, "bench-nodes: guardsim did not start\n");
        harness_remove_dir(r->dir);
        return -1;
    }
    if (harness_start(&r->d, &daemon) != 0) {
        if (r->plant)
            harness_stop(&r->sim, STOP_TIMEOUT_S);
        harness_remove_dir(r->dir);
        return -1;
    }
    r->start_s = harness_now() - r->d.started;
    return 0;
}

/* Lines the daemon itself logged while running (not its nodes', which start with a time stamp;
 * not its start-up lines before the ready line, which are information such as the database it
 * created; not the shutdown line) become notes: they are what went wrong during a row. */
static void daemon_log_notes(struct bench *b, const struct daemon_run *r, const char *row)
{
    FILE *f = fopen(r->d.log_path, "re");
    if (!f)
        return;
    char line[512], first[200] = "";
    long odd = 0;
    bool running = false;
    for (long i = 0; i < 10000000 && fgets(line, sizeof line, f); i++) {
        if (strncmp(line, "guardiand:", 10) != 0 || strstr(line, "shutting down"))
            continue;
        if (!running) {
            running = strncmp(line, "guardiand: ready:", 17) == 0;
            continue;
        }
        if (!odd++) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(first, sizeof first, "%.199s", line);
        }
    }
    fclose(f);
    if (odd)
        note(b, "%s: the daemon logged %ld line(s) of its own, first: %s", row, odd, first);
}

/* SIGTERM, reap, note a bad exit; guardsim after the daemon (its nodes would see the plant
 * go first otherwise); remove the folder. */
static void daemon_finish(struct bench *b, struct daemon_run *r, const char *row)
{
    daemon_log_notes(b, r, row);
    bool alive = harness_alive(&r->d);
    int code = harness_stop(&r->d, STOP_TIMEOUT_S);
    if (!alive || code != 0)
        note(b, "%s: daemon %s (exit status %d)", row, alive ? "stopped badly" : "died", code);
    if (r->plant) {
        alive = harness_alive(&r->sim);
        code = harness_stop(&r->sim, STOP_TIMEOUT_S);
        if (!alive || code != 0)
            note(b, "%s: guardsim %s (exit status %d)", row, alive ? "stopped badly" : "died",
                 code);
    }
    harness_remove_dir(r->dir);
}

/* ---- the CA client: the supervisor channels, and the screen ---- */

/* A screen subscription's callback argument: the first update of each is counted apart, so
 * that the set-up waits for every subscription rather than for a number of updates. */
struct screen_sub {
    struct client *client;
    bool seen;
};

struct client {
    struct ev_loop *loop;  /* for the repeater only */
    cas_repeater *repeater;
    bool context;
    chid sup[SC_COUNT];
    evid util_sub;
    bool util_seen;        /* the subscription's first update came */
    bool util_counting;    /* in the window: add updates up */
    double util_sum;
    long util_n;
    chid *chans;           /* the screen: STATE and EXECTIME of every node */
    evid *subs;
    struct screen_sub *sub_args;
    size_t n_chans;
    size_t n_first;        /* subscriptions whose first update came */
    long updates;
    long exceptions;
    char first_exception[200];
};

static void on_exception(struct exception_handler_args args)
{
    struct client *c = args.usr;
    if (c->exceptions++ == 0)
        snprintf(c->first_exception, sizeof c->first_exception, "%s (op %ld, %s)",
                 ca_message(args.stat), args.op, args.ctx ? args.ctx : "");
}

static void on_util(struct event_handler_args args)
{
    struct client *c = args.usr;
    if (args.status != ECA_NORMAL || !args.dbr)
        return;
    c->util_seen = true;
    if (c->util_counting) {
        c->util_sum += *(const dbr_double_t *)args.dbr;
        c->util_n++;
    }
}

static bool util_seen(void *arg) { return ((struct client *)arg)->util_seen; }

/* Serve libca's callbacks and the repeater until done(arg) (if given) or for `seconds`.
 * Returns done(arg), or true. */
static bool client_pump(struct client *c, bool (*done)(void *), void *arg, double seconds)
{
    double deadline = harness_now() + seconds;
    ca_flush_io();
    while (!(done && done(arg)) && harness_now() < deadline) {
        ca_pend_event(0.01);
        if (c->loop)
            ev_run(c->loop, EVRUN_NOWAIT);
    }
    return done ? done(arg) : true;
}

/* The daemon runs with --no-repeater, and Debian ships no caRepeater: with nothing on the
 * repeater port, ca_context_create() tries to spawn one and prints four lines, and later
 * complains that no repeater confirms its registration. So this process serves the host's
 * repeater on the daemon's beacon port, from the project's own code, as a caRepeater process
 * would; the daemon's beacons reach our client through it. */
static void repeater_start(struct bench *b, struct client *c, const struct daemon_run *r)
{
    char err[256];
    c->loop = ev_loop_new(EVFLAG_AUTO);
    if (c->loop && !(c->repeater = cas_repeater_new(c->loop, (uint16_t)r->d.beacon_port, err,
                                                    sizeof err)))
        note(b, "no repeater in bench-nodes (%s): libca may try to spawn caRepeater", err);
}

/* The context, the supervisor channels, and a subscription to LOOP_UTIL (its updates, once a
 * second, are averaged over the window rather than trusting the last second alone). The
 * repeater was started before the daemon (repeater_start). */
static int client_start(struct client *c, const struct daemon_run *r)
{
    int st = harness_ca_context(&r->d);
    if (st != ECA_NORMAL) {
        fprintf(stderr, "bench-nodes: ca_context_create: %s\n", ca_message(st));
        return -1;
    }
    c->context = true;
    ca_add_exception_event(on_exception, c);
    char names[SC_COUNT][64];
    const char *p[SC_COUNT];
    for (int i = 0; i < SC_COUNT; i++) {
        snprintf(names[i], sizeof names[i], "%s%s", SUP_PREFIX, sup_suffix[i]);
        p[i] = names[i];
    }
    if (harness_ca_connect(c->sup, p, SC_COUNT, CA_TIMEOUT_S) != SC_COUNT) {
        fprintf(stderr, "bench-nodes: the supervisor channels %s* did not all connect\n",
                SUP_PREFIX);
        return -1;
    }
    if (ca_create_subscription(DBR_DOUBLE, 1, c->sup[SC_LOOP_UTIL], DBE_VALUE, on_util, c,
                               &c->util_sub) != ECA_NORMAL ||
        !client_pump(c, util_seen, c, CA_TIMEOUT_S)) {
        fprintf(stderr, "bench-nodes: no update of %sLOOP_UTIL\n", SUP_PREFIX);
        return -1;
    }
    return 0;
}

/* Read every supervisor channel as a double. Returns 0, or -1 with a message. */
static int read_sup(struct client *c, double v[SC_COUNT])
{
    for (int i = 0; i < SC_COUNT; i++) {
        v[i] = NAN;
        if (ca_array_get(DBR_DOUBLE, 1, c->sup[i], &v[i]) != ECA_NORMAL)
            break;
    }
    int st = ca_pend_io(CA_TIMEOUT_S);
    for (int i = 0; i < SC_COUNT; i++)
        if (st != ECA_NORMAL || isnan(v[i])) {
            fprintf(stderr, "bench-nodes: cannot read %s%s: %s\n", SUP_PREFIX, sup_suffix[i],
                    ca_message(st));
            return -1;
        }
    return 0;
}

static void on_update(struct event_handler_args args)
{
    struct screen_sub *s = args.usr;
    if (args.status != ECA_NORMAL)
        return;
    s->client->updates++;
    if (!s->seen) {
        s->seen = true;
        s->client->n_first++;
    }
}

static bool first_updates(void *arg)
{
    const struct client *c = arg;
    return c->n_first >= c->n_chans;
}

/* The screen: connect STATE and EXECTIME of every node, subscribe to each in its native
 * DBR_TIME type as MEDM does, and wait for every first update. */
static int screen_start(struct client *c, long nodes)
{
    size_t n = (size_t)nodes * 2;
    const size_t slot = 64;
    char *text = malloc(n * slot);
    const char **names = malloc(n * sizeof *names);
    c->chans = calloc(n, sizeof *c->chans);
    c->subs = calloc(n, sizeof *c->subs);
    c->sub_args = calloc(n, sizeof *c->sub_args);
    c->n_chans = n;
    int rc = -1;
    if (!text || !names || !c->chans || !c->subs || !c->sub_args)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char node[32];
        bench_node_name(node, sizeof node, (long)(i / 2));
        names[i] = text + i * slot;
        node_channel_name(text + i * slot, slot, IFO, node, i % 2 ? "EXECTIME" : "STATE");
    }
    size_t up = harness_ca_connect(c->chans, names, n, SCREEN_TIMEOUT_S);
    if (up != n) {
        fprintf(stderr, "bench-nodes: only %zu of %zu node channels connected\n", up, n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        c->sub_args[i].client = c;
    for (size_t i = 0; i < n; i++)
        if (ca_create_subscription(dbf_type_to_DBR_TIME(ca_field_type(c->chans[i])), 1,
                                   c->chans[i], DBE_VALUE | DBE_ALARM, on_update,
                                   &c->sub_args[i], &c->subs[i]) != ECA_NORMAL) {
            fprintf(stderr, "bench-nodes: cannot subscribe to %s\n", names[i]);
            goto out;
        }
    if (!client_pump(c, first_updates, c, SCREEN_TIMEOUT_S)) {
        fprintf(stderr, "bench-nodes: first updates of %zu of %zu subscriptions\n", c->n_first,
                n);
        goto out;
    }
    rc = 0;
out:
    free(names);
    free(text);
    return rc;
}

/* Subscriptions and channels first, so that no callback outlives *c, then the context, then
 * the repeater (libca may still talk to it while the context goes). */
static void client_finish(struct bench *b, struct client *c, const char *row)
{
    if (!c->context)
        goto repeater;
    for (size_t i = 0; c->subs && i < c->n_chans && c->subs[i]; i++)
        ca_clear_subscription(c->subs[i]);
    for (size_t i = 0; c->chans && i < c->n_chans; i++)
        if (c->chans[i])
            ca_clear_channel(c->chans[i]);
    if (c->util_sub)
        ca_clear_subscription(c->util_sub);
    for (int i = 0; i < SC_COUNT; i++)
        if (c->sup[i])
            ca_clear_channel(c->sup[i]);
    ca_context_destroy();
    free(c->subs);
    free(c->sub_args);
    free(c->chans);
    if (c->exceptions)
        note(b, "%s: %ld libca exception(s), first: %s", row, c->exceptions, c->first_exception);
repeater:
    cas_repeater_free(c->repeater);
    if (c->loop)
        ev_loop_destroy(c->loop);
}

/* ---- the plant row: the daemon's control socket, and its nodes' CONNECT ---- */

/* Read exactly n bytes before the deadline. */
static bool recv_exact(int fd, void *buf, size_t n, double deadline)
{
    size_t got = 0;
    while (got < n) {
        int ms = (int)((deadline - harness_now()) * 1000);
        struct pollfd p = {fd, POLLIN, 0};
        if (ms <= 0 || poll(&p, 1, ms) <= 0)
            return false;
        ssize_t k = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        if (k > 0)
            got += (size_t)k;
    }
    return true;
}

/* One `status` request on the daemon's control socket (ctl/proto.h: each way a 4-byte
 * big-endian length, then a JSON object), on a connection of its own, as guardctl makes.
 * The reply's text goes to out, NUL-terminated. Returns 0, or -1: no answer within
 * CTL_TIMEOUT_S, or a reply longer than out. */
static int ctl_status(const char *path, char *out, size_t size)
{
    static const char req[] = "{\"cmd\":\"status\"}";
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    uint8_t frame[4 + sizeof req - 1];
    uint32_t len = sizeof req - 1;
    frame[0] = (uint8_t)(len >> 24), frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8), frame[3] = (uint8_t)len;
    memcpy(frame + 4, req, len);
    double deadline = harness_now() + CTL_TIMEOUT_S;
    uint8_t hdr[4];
    int rc = -1;
    /* Connected at once or refused: a Unix socket's connect() does not wait. The request is
     * far smaller than any socket buffer, so one send() takes it whole. */
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, frame, sizeof frame, MSG_NOSIGNAL) != (ssize_t)sizeof frame ||
        !recv_exact(fd, hdr, 4, deadline))
        goto out;
    len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len >= size || !recv_exact(fd, out, len, deadline))
        goto out;
    out[len] = '\0';
    rc = 0;
out:
    close(fd);
    return rc;
}

/* The number after "key": in JSON text, or -1. Enough for the flat object supervisor.plant;
 * the benchmarks do not link jansson. */
static long json_long(const char *text, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(text, pattern);
    if (!p)
        return -1;
    p += strlen(pattern);
    while (*p == ' ')
        p++;
    if (*p++ != ':')
        return -1;
    char *end;
    long v = strtol(p, &end, 10);
    return end == p ? -1 : v;
}

/* supervisor.plant of `guardctl status`: {channels, ca, ca_connected, local, simulated, puts,
 * put_failures, updates, polls, polls_put_off}. */
struct plant_status {
    long ca, connected, puts, put_failures, updates, polls, polls_put_off;
};

/* The daemon's plant counts, and how long the request took (ms). Returns 0, or -1. */
static int plant_status(const struct daemon_run *r, struct plant_status *ps, double *ms)
{
    static char text[CTL_REPLY_BYTES];
    double t = harness_now();
    if (ctl_status(r->d.socket_path, text, sizeof text) != 0)
        return -1;
    *ms = (harness_now() - t) * 1e3;
    /* Only inside "plant": {...}; the reply has other keys of these names ("ca": the server). */
    char *plant = strstr(text, "\"plant\"");
    char *end = plant ? strchr(plant, '}') : NULL;
    if (!end)
        return -1;
    *end = '\0';
    *ps = (struct plant_status){json_long(plant, "ca"), json_long(plant, "ca_connected"),
                                json_long(plant, "puts"), json_long(plant, "put_failures"),
                                json_long(plant, "updates"), json_long(plant, "polls"),
                                json_long(plant, "polls_put_off")};
    return ps->ca < 0 || ps->connected < 0 || ps->puts < 0 || ps->put_failures < 0 ||
                   ps->updates < 0 || ps->polls < 0 || ps->polls_put_off < 0
               ? -1
               : 0;
}

/* Serve the repeater (for the daemon's libca) for `seconds`, before our CA context exists. */
static void repeater_serve(struct client *c, double seconds)
{
    double deadline = harness_now() + seconds;
    do {
        if (c->loop)
            ev_run(c->loop, EVRUN_NOWAIT);
        harness_sleep(0.005);
    } while (harness_now() < deadline);
}

/* From the ready line on, the daemon's plant counts every PLANT_POLL_S until its CA channels
 * are as many as the nodes name and all connected, at most PLANT_CONNECT_TIMEOUT_S after its
 * exec. row->connect_s is when the reply saying so came (the truth lies up to PLANT_POLL_S
 * before), NAN if that never came. */
static void plant_wait_connected(struct bench *b, struct daemon_run *r, struct client *c,
                                 struct row *row, const char *label)
{
    long sus = row->nodes - (row->nodes + MANAGE_GROUP - 2) / MANAGE_GROUP; /* less managers */
    long want = r->managers ? sus * SUS_PLANT_CHANNELS
                            : row->nodes * (PLANT_READS + PLANT_WRITES);
    struct plant_status ps = {-1, -1, -1, -1, -1, -1, -1};
    long failed = 0;
    row->connect_s = NAN;
    while (harness_now() - r->d.started < PLANT_CONNECT_TIMEOUT_S && harness_alive(&r->d)) {
        double t = harness_now(), ms;
        if (plant_status(r, &ps, &ms) != 0) {
            failed++;
        } else {
            row->ctl_ms = fmax(row->ctl_ms, ms);
            if (ps.ca == want && ps.connected == want) {
                row->connect_s = harness_now() - r->d.started;
                break;
            }
        }
        repeater_serve(c, fmax(0, t + PLANT_POLL_S - harness_now()));
    }
    row->plant_ca = ps.ca;
    if (isnan(row->connect_s))
        note(b, "%s: the plant channels did not all connect within %.0f s: %ld of %ld "
                "(%ld named by the nodes)", label, PLANT_CONNECT_TIMEOUT_S, ps.connected, ps.ca,
             want);
    if (failed)
        note(b, "%s: %ld status request(s) to the control socket failed", label, failed);
}

/* Every node's CONNECT, read once over CA: how many are not OK (state 0), unread ones
 * included. -1 if out of memory. */
static long nodes_not_connected(long nodes)
{
    size_t n = (size_t)nodes;
    const size_t slot = 64;
    char *text = malloc(n * slot);
    const char **names = malloc(n * sizeof *names);
    chid *chans = calloc(n, sizeof *chans);
    dbr_enum_t *state = malloc(n * sizeof *state);
    long bad = -1;
    if (!text || !names || !chans || !state)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char node[32];
        bench_node_name(node, sizeof node, (long)i);
        names[i] = text + i * slot;
        node_channel_name(text + i * slot, slot, IFO, node, "CONNECT");
        state[i] = 0xFFFF; /* not read */
    }
    harness_ca_connect(chans, names, n, CA_TIMEOUT_S);
    for (size_t i = 0; i < n; i++)
        if (chans[i] && ca_state(chans[i]) == cs_conn)
            ca_array_get(DBR_ENUM, 1, chans[i], &state[i]);
    ca_pend_io(CA_TIMEOUT_S);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += state[i] != 0;
out:
    for (size_t i = 0; chans && i < n; i++)
        if (chans[i])
            ca_clear_channel(chans[i]);
    free(state);
    free(chans);
    free(names);
    free(text);
    return bad;
}

/* ---- one row ---- */

/* Warm up, then the window: supervisor channels at both ends, clocks around it. */
static int hostile_start(const struct daemon_run *r, enum row_kind kind);

static int measure(const struct bench *b, struct daemon_run *r, struct client *c,
                   struct row *row, int *hostile)
{
    client_pump(c, NULL, NULL, b->o.warm_up);
    double v0[SC_COUNT];
    if (read_sup(c, v0) != 0)
        return -1;
    long updates0 = c->updates;
    c->util_counting = true;
    struct plant_status ps0, ps1;
    double ms;
    if (r->plant && plant_status(r, &ps0, &ms) != 0) {
        fprintf(stderr, "bench-nodes: no status from the control socket %s\n", r->d.socket_path);
        return -1;
    }
    struct mark m0 = mark_now(&r->d, &r->sim);
    bool is_hostile = row->kind == ROW_HUGE || row->kind == ROW_100K;
    if (is_hostile && (*hostile = hostile_start(r, row->kind)) < 0) {
        fprintf(stderr, "bench-nodes: the hostile client could not subscribe\n");
        return -1;
    }
    client_pump(c, NULL, NULL, b->o.seconds);
    struct mark m1 = mark_now(&r->d, &r->sim);
    c->util_counting = false;
    row->sim_rss_kb = r->plant ? harness_proc_status_kb(r->sim.pid, "VmRSS:") : 0;
    if (read_sup(c, row->sup) != 0)
        return -1;
    row->rss_kb = harness_proc_status_kb(r->d.pid, "VmRSS:");
    row->hwm_kb = harness_proc_status_kb(r->d.pid, "VmHWM:");
    if (!harness_alive(&r->d)) {
        fprintf(stderr, "bench-nodes: the daemon died during the window\n");
        return -1;
    }
    double s = row->seconds = m1.t - m0.t;
    row->cpu_pct = 100.0 * (m1.daemon_cpu - m0.daemon_cpu) / s;
    row->wait_pct = 100.0 * (m1.daemon_wait - m0.daemon_wait) / s;
    row->self_pct = 100.0 * (m1.self_cpu - m0.self_cpu) / s;
    row->sim_cpu_pct = 100.0 * (m1.sim_cpu - m0.sim_cpu) / s;
    row->other_pct = 100.0 * (m1.host_busy - m0.host_busy) / s - row->cpu_pct - row->self_pct -
                     row->sim_cpu_pct;
    row->overruns = row->sup[SC_OVERRUNS] - v0[SC_OVERRUNS];
    row->skipped = row->sup[SC_SKIPPED] - v0[SC_SKIPPED];
    row->util_mean = c->util_n ? c->util_sum / (double)c->util_n : NAN;
    row->updates_per_s = (double)(c->updates - updates0) / s;
    row->subscriptions = (long)c->n_chans;
    row->log_kib_per_s = (double)(m1.log_bytes - m0.log_bytes) / 1024.0 / s;
    row->rss_growth = (double)(m1.rss_kb - m0.rss_kb) / s;
    if (r->managers) {
        row->revives = log_count(r->d.log_path, m0.log_bytes, m1.log_bytes, ": revive (");
        row->trips = log_count(r->d.log_path, m0.log_bytes, m1.log_bytes, "->TRIPPED");
        row->refused = log_count(r->d.log_path, m0.log_bytes, m1.log_bytes, "claim refused");
    }
    if (!r->plant)
        return 0;
    /* After the window's figures: these requests cost the daemon something too. */
    if (plant_status(r, &ps1, &ms) != 0) {
        fprintf(stderr, "bench-nodes: no status from the control socket %s\n", r->d.socket_path);
        return -1;
    }
    row->connected_end = ps1.connected;
    row->puts_per_s = (double)(ps1.puts - ps0.puts) / s;
    row->put_failures = ps1.put_failures - ps0.put_failures;
    row->plant_updates_per_s = (double)(ps1.updates - ps0.updates) / s;
    row->polls_per_s = (double)(ps1.polls - ps0.polls) / s;
    long polls = ps1.polls - ps0.polls;
    row->put_off_pct =
        polls > 0 ? 100.0 * (double)(ps1.polls_put_off - ps0.polls_put_off) / (double)polls : 0;
    if ((row->connect_not_ok = nodes_not_connected(row->nodes)) < 0) {
        fprintf(stderr, "bench-nodes: out of memory\n");
        return -1;
    }
    return 0;
}

static void row_print(const struct row *r)
{
    char util[16] = "-"; /* no LOOP_UTIL update in a window shorter than a second */
    if (!isnan(r->util_mean))
        snprintf(util, sizeof util, "%.1f", r->util_mean);
    printf("  %6ld  %-6s %6.1f %7.1f %8.1f %8.1f %7.3f %7.3f %7.3f %9.0f %8.0f %7s\n", r->nodes,
           kind_name[r->kind], r->cpu_pct, r->wait_pct, (double)r->rss_kb / 1024.0,
           (double)r->hwm_kb / 1024.0, r->sup[SC_JITTER_P50], r->sup[SC_JITTER_P99],
           r->sup[SC_JITTER_MAX], r->overruns, r->skipped, util);
    fflush(stdout);
}

/* ---- the hostile rows: raw CA over TCP ---- */

/* Read messages until `want` CREATE_CHAN replies have come; their sids go to sids[]. */
static bool raw_sids(int fd, uint32_t *sids, size_t want)
{
    static uint8_t buf[1 << 16];
    size_t len = 0, got = 0;
    double deadline = harness_now() + CA_TIMEOUT_S;
    while (got < want && harness_now() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, buf + len, sizeof buf - len, MSG_DONTWAIT);
        if (k <= 0)
            return false;
        len += (size_t)k;
        size_t at = 0;
        while (len - at >= CA_HDR_SIZE) {
            uint32_t size = ca_get16(buf + at + 2); /* replies before any update: no extended */
            if (len - at < CA_HDR_SIZE + size)
                break;
            if (ca_get16(buf + at) == CA_PROTO_CREATE_CHAN && got < want)
                sids[got++] = ca_get32(buf + at + 12);
            at += CA_HDR_SIZE + size;
        }
        memmove(buf, buf + at, len - at);
        len -= at;
    }
    return got == want;
}

/* The hostile client of a row: connects, creates `n_chans` channels to the EXECTIME of nodes
 * (one node each, or all to the first), subscribes, and from then on never reads. Returns the
 * socket, or -1. */
static int hostile_start(const struct daemon_run *r, enum row_kind kind)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->d.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t n_chans = kind == ROW_HUGE ? 8 : 100;
    uint32_t per_chan = kind == ROW_HUGE ? 1 : 1000;
    static uint8_t b[1 << 20];
    size_t n = raw_hdr(b, CA_PROTO_VERSION, 0, 0, CA_MINOR_VERSION, 0, 0);
    for (size_t i = 0; i < n_chans; i++) {
        char node[32], name[64];
        bench_node_name(node, sizeof node, kind == ROW_HUGE ? (long)i : 0);
        node_channel_name(name, sizeof name, IFO, node, "EXECTIME");
        n += raw_hdr_str(b + n, CA_PROTO_CREATE_CHAN, 0, 0, (uint32_t)i, CA_MINOR_VERSION, name);
    }
    uint32_t sids[100];
    if (!raw_send_all(fd, b, n, CA_TIMEOUT_S) || !raw_sids(fd, sids, n_chans)) {
        close(fd);
        return -1;
    }
    for (size_t i = 0; i < n_chans; i++) {
        n = 0;
        for (uint32_t k = 0; k < per_chan; k++) {
            uint32_t id = (uint32_t)(i * per_chan + k);
            if (kind == ROW_HUGE) /* just under the 64 MiB reply limit, in DBR_DOUBLEs */
                n += raw_hdr_ext(b + n, CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE,
                                 (64u << 20) / 8 - 64, sids[i], id);
            else
                n += raw_hdr(b + n, CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE, 1, sids[i], id);
            memset(b + n, 0, 16);
            ca_put16(b + n + 12, DBE_VALUE | DBE_ALARM);
            n += 16;
        }
        if (!raw_send_all(fd, b, n, CA_TIMEOUT_S)) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* A fresh daemon with `nodes` nodes, and what the kind adds: this process monitoring them
 * (screen) or a hostile client. Returns 0, or -1 if the daemon did not start or died, or a
 * channel could not be connected or read. */
static int run_row(struct bench *b, long nodes, enum row_kind kind)
{
    struct row *row = &b->rows[b->n_rows];
    *row = (struct row){.nodes = nodes, .kind = kind};
    char label[48];
    snprintf(label, sizeof label, "%ld nodes%s%s", nodes, kind ? " + " : "",
             kind ? kind_name[kind] : "");
    struct daemon_run r;
    struct client c = {0};
    if (daemon_prepare(b, &r, nodes, kind) != 0) {
        fprintf(stderr, "bench-nodes: %s: no folder or ports for the daemon\n", label);
        return -1;
    }
    /* The repeater before the servers: the daemon's libca registers with it at once. */
    repeater_start(b, &c, &r);
    if (daemon_start(b, &r, &c) != 0) {
        fprintf(stderr, "bench-nodes: %s: the daemon did not start\n", label);
        client_finish(b, &c, label);
        return -1;
    }
    row->start_s = r.start_s;
    row->pvs = r.pvs;
    if (r.nodes != nodes || r.failed != 0)
        note(b, "%s: the ready line says %ld nodes (%ld failed)", label, r.nodes, r.failed);
    if (r.plant)
        plant_wait_connected(b, &r, &c, row, label);
    int rc = -1, hostile = -1;
    if (client_start(&c, &r) == 0 && (kind != ROW_SCREEN || screen_start(&c, nodes) == 0))
        rc = measure(b, &r, &c, row, &hostile);
    client_finish(b, &c, label);
    daemon_finish(b, &r, label);
    if (hostile >= 0)
        close(hostile);
    if (rc == 0) {
        if (row->sup[SC_NODES] != (double)nodes)
            note(b, "%s: %sNODES reads %.0f", label, SUP_PREFIX, row->sup[SC_NODES]);
        b->n_rows++;
        row_print(row);
    } else {
        fprintf(stderr, "bench-nodes: %s: no figures\n", label);
    }
    return rc;
}

/* ---- reporting ---- */

static void print_header(const struct bench *b)
{
    /* Other work on the host moves every figure: say how busy it was to begin with. */
    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "re");
    if (f) {
        if (!fgets(load, sizeof load, f))
            snprintf(load, sizeof load, "?");
        load[strcspn(load, "\n")] = '\0';
        fclose(f);
    }
    printf("bench-nodes%s: guardiand with N `bench` nodes at 16 Hz on 127.0.0.1; %ld CPUs; "
           "/proc/loadavg %s\n",
           b->o.quick ? " --quick" : "", sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("Each row: a fresh daemon, %.1f s warm-up after its ready line, then a %.1f s window.\n"
           "  CPU, dwait: the daemon's CPU time and its run-queue wait (runnable, no CPU), %% of "
           "one core.\n"
           "  RSS, HWM: VmRSS at the end of the window, VmHWM (peak since start), MiB. RSS grows\n"
           "  until every node's log ring (256 lines) is full, ~45 s here: see RSS +KiB/s below.\n"
           "  p50/p99/max: tick lateness, ms, from %sJITTER_*: the daemon's last 4096 ticks\n"
           "  (16 s at 16 Hz)%s.\n"
           "  overruns, skipped: during the window.\n"
           "  util: %sLOOP_UTIL, the mean of its once-a-second figures in the window.\n"
           "  screen: this process monitors STATE and EXECTIME of every node (MEDM-like).\n"
           "  The bench nodes start together, so their state changes (log lines, full channel\n"
           "  publish) all fall in one cycle a second: the worst case for that cycle's ticks.\n\n",
           b->o.warm_up, b->o.seconds, SUP_PREFIX,
           b->o.warm_up + b->o.seconds < 16 ? ", so they include the daemon's first ticks" : "",
           SUP_PREFIX);
    if (b->o.plant)
        printf("  plant: each node also reads %d and writes %d plant channels over CA, served by\n"
               "  guardsim (--change %s --rate %s); the warm-up starts once all are connected.\n",
               PLANT_READS, PLANT_WRITES, PLANT_CHANGE, PLANT_RATE);
    printf("  %6s  %-6s %6s %7s %8s %8s %7s %7s %7s %9s %8s %7s\n", "nodes", "client", "CPU %",
           "dwait %", "RSS MiB", "HWM MiB", "p50 ms", "p99 ms", "max ms", "overruns", "skipped",
           "util %");
}

static void print_details(const struct bench *b)
{
    printf("\nDetails: start = exec to ready line; RSS +KiB/s: its growth over the window; log =\n"
           "the daemon's stdout+stderr (node log lines); updates/s: monitor updates the screen\n"
           "received; client: this process's CPU (libca threads included); other: CPU used by\n"
           "everything else on the host during the window (guardsim's apart: see the plant\n"
           "rows). CPU in %% of one core.\n");
    printf("  %6s  %-6s %7s %7s %10s %9s %6s %10s %8s %8s\n", "nodes", "client", "start s",
           "PVs", "RSS +KiB/s", "log KiB/s", "subs", "updates/s", "client %", "other %");
    for (int i = 0; i < b->n_rows; i++) {
        const struct row *r = &b->rows[i];
        printf("  %6ld  %-6s %7.2f %7ld %10.0f %9.1f %6ld %10.0f %8.1f %8.1f\n", r->nodes,
               kind_name[r->kind], r->start_s, r->pvs, r->rss_growth, r->log_kib_per_s,
               r->subscriptions, r->updates_per_s, r->self_pct, r->other_pct);
    }
}

/* The plant rows' own figures. */
static void print_plant(const struct bench *b)
{
    if (!b->o.plant && !b->o.managers)
        return;
    printf("\nPlant rows: CA = plant channels the daemon holds (%d read + %d written a node);\n"
           "connect = the daemon's exec to all of them connected (control socket status, polled\n"
           "every %.0f ms from the ready line: none is seen earlier), and the same from the ready\n"
           "line; status ms: its slowest reply meanwhile; at the window's end: channels\n"
           "connected, nodes whose CONNECT is not OK; in the window: plant writes/s and refused\n"
           "ones, values received/s, ca_poll calls/s and the %% of them put off until a tick had\n"
           "run, guardsim's CPU (%% of one core) and RSS.\n",
           PLANT_READS, PLANT_WRITES, PLANT_POLL_S * 1e3);
    printf("  %6s %7s %9s %11s %9s %9s %7s %8s %6s %9s %7s %8s %8s %8s\n", "nodes", "CA",
           "connect s", "after ready", "status ms", "connected", "not OK", "writes/s", "failed",
           "values/s", "polls/s", "put off%", "sim CPU%", "sim MiB");
    for (int i = 0; i < b->n_rows; i++) {
        const struct row *r = &b->rows[i];
        if (r->kind != ROW_PLANT && r->kind != ROW_MANAGERS)
            continue;
        char connect[16] = "-", after[16] = "-"; /* not connected within the time allowed */
        if (!isnan(r->connect_s)) {
            snprintf(connect, sizeof connect, "%.2f", r->connect_s);
            snprintf(after, sizeof after, "%.2f", r->connect_s - r->start_s);
        }
        printf("  %6ld %7ld %9s %11s %9.1f %9ld %7ld %8.0f %6ld %9.0f %7.1f %8.1f %8.1f %8.1f\n",
               r->nodes, r->plant_ca, connect, after, r->ctl_ms, r->connected_end,
               r->connect_not_ok, r->puts_per_s, r->put_failures, r->plant_updates_per_s,
               r->polls_per_s, r->put_off_pct, r->sim_cpu_pct, (double)r->sim_rss_kb / 1024.0);
    }
    if (!b->o.managers)
        return;
    printf("\nManagers rows: one lock manager per %d nodes over the other %d (sus, %d plant\n"
           "channels each, so CA above counts theirs); in the window: watchdog trips seen\n"
           "(JUMP to TRIPPED), revives by managers, claims refused.\n",
           MANAGE_GROUP, MANAGE_GROUP - 1, SUS_PLANT_CHANNELS);
    printf("  %6s %9s %7s %9s %9s %8s\n", "nodes", "managers", "trips", "revives", "refused",
           "CPU %");
    for (int i = 0; i < b->n_rows; i++) {
        const struct row *r = &b->rows[i];
        if (r->kind == ROW_MANAGERS)
            printf("  %6ld %9ld %7ld %9ld %9ld %8.1f\n", r->nodes,
                   (r->nodes + MANAGE_GROUP - 2) / MANAGE_GROUP, r->trips, r->revives,
                   r->refused, r->cpu_pct);
    }
}

static const char *met(bool ok) { return ok ? "met" : "MISSED"; }

static void print_targets(const struct bench *b)
{
    printf("\nTargets at %ld nodes: CPU <= %.0f %% of one core, RSS <= %.0f MiB, jitter p99 <= "
           "%.0f ms\n",
           TARGET_NODES, TARGET_CPU_PCT, TARGET_RSS_MIB, TARGET_P99_MS);
    bool any = false;
    for (int i = 0; i < b->n_rows; i++) {
        const struct row *r = &b->rows[i];
        if (r->nodes != TARGET_NODES || (r->kind != ROW_PLAIN && r->kind != ROW_SCREEN))
            continue;
        any = true;
        double mib = (double)r->rss_kb / 1024.0, p99 = r->sup[SC_JITTER_P99];
        printf("  %-15s CPU %.1f %% (%s), RSS %.1f MiB (%s), p99 %.3f ms (%s)\n",
               r->kind == ROW_SCREEN ? "with screen:" : "without screen:", r->cpu_pct,
               met(r->cpu_pct <= TARGET_CPU_PCT), mib, met(mib <= TARGET_RSS_MIB), p99,
               met(p99 <= TARGET_P99_MS));
    }
    if (!any)
        printf("  not measured (no %ld-node row)\n", TARGET_NODES);
    if (!b->o.plant)
        return;
    printf("Targets of the plant row at %ld nodes (issue 9): CPU <= %.0f %%, RSS <= %.0f MiB, "
           "jitter p99 <= %.0f ms, all connected <= %.0f s after start\n",
           TARGET_NODES, TARGET_PLANT_CPU_PCT, TARGET_PLANT_RSS_MIB, TARGET_P99_MS,
           TARGET_PLANT_CONNECT_S);
    any = false;
    for (int i = 0; i < b->n_rows; i++) {
        const struct row *r = &b->rows[i];
        if (r->nodes != TARGET_NODES || r->kind != ROW_PLANT)
            continue;
        any = true;
        double mib = (double)r->rss_kb / 1024.0, p99 = r->sup[SC_JITTER_P99];
        printf("  %-15s CPU %.1f %% (%s), RSS %.1f MiB (%s), p99 %.3f ms (%s), connect %.2f s "
               "(%s)\n", "plant:", r->cpu_pct, met(r->cpu_pct <= TARGET_PLANT_CPU_PCT), mib,
               met(mib <= TARGET_PLANT_RSS_MIB), p99, met(p99 <= TARGET_P99_MS), r->connect_s,
               met(r->connect_s <= TARGET_PLANT_CONNECT_S)); /* NAN: missed */
    }
    if (!any)
        printf("  not measured (no %ld-node plant row)\n", TARGET_NODES);
}

static void print_notes(const struct bench *b)
{
    printf("\nNotes: %s\n", b->n_notes ? "" : "none (no daemon lines of its own, libca "
                                              "exceptions or node start failures)");
    for (int i = 0; i < b->n_notes; i++)
        printf("  - %s\n", b->notes[i]);
}

/* ---- options, main ---- */

static void usage(FILE *f)
{
    fputs("usage: bench-nodes [--nodes N[,N...]] [--seconds S] [--warm-up S] [--quick] "
          "[--no-screen] [--hostile] [--plant] [--managers]\n"
          "  --nodes      node counts, one row each (default 100,300,1000)\n"
          "  --seconds    the measurement window (default 10)\n"
          "  --warm-up    seconds between the ready line and the window (default 2)\n"
          "  --quick      a smoke test: 3 s windows, 100 and 300 nodes (unless given)\n"
          "  --no-screen  skip the rows with a client monitoring every node\n"
          "  --hostile    add the rows with a hostile client (huge counts; 100k monitors)\n"
          "  --plant      add the rows with a plant over CA (guardsim; 20 reads, 2 writes each)\n"
          "  --managers   add the rows of lock managers over sus nodes (guardsim; 1 in 10)\n",
          f);
}

static int parse_counts(struct bench_opts *o, const char *text)
{
    o->n_counts = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > MAX_NODES || o->n_counts >= MAX_COUNTS ||
            (*end && *end != ','))
            return -1;
        o->nodes[o->n_counts++] = v;
        p = *end ? end + 1 : end;
    }
    return o->n_counts ? 0 : -1;
}

/* Returns 0 to run, 1 to exit 0 (help), -1 to exit 2. */
static int parse_options(int argc, char **argv, struct bench_opts *o)
{
    enum { O_NODES = 256, O_SECONDS, O_WARM_UP, O_QUICK, O_NO_SCREEN, O_HOSTILE, O_PLANT,
           O_MANAGERS };
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, O_NODES},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"warm-up", required_argument, NULL, O_WARM_UP},
        {"quick", no_argument, NULL, O_QUICK},
        {"no-screen", no_argument, NULL, O_NO_SCREEN},
        {"hostile", no_argument, NULL, O_HOSTILE},
        {"plant", no_argument, NULL, O_PLANT},
        {"managers", no_argument, NULL, O_MANAGERS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct bench_opts){.screen = true, .warm_up = 2};
    bool counts_given = false, seconds_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_NODES:
            if (parse_counts(o, optarg) != 0) {
                fprintf(stderr, "bench-nodes: --nodes: expected up to %d counts of 1..%ld, "
                                "separated by commas\n", MAX_COUNTS, MAX_NODES);
                return -1;
            }
            counts_given = true;
            break;
        case O_SECONDS:
            o->seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(o->seconds >= 0.5 && o->seconds <= 3600)) {
                fprintf(stderr, "bench-nodes: --seconds: expected 0.5..3600\n");
                return -1;
            }
            seconds_given = true;
            break;
        case O_WARM_UP:
            o->warm_up = strtod(optarg, &end);
            if (end == optarg || *end || !(o->warm_up >= 0 && o->warm_up <= 3600)) {
                fprintf(stderr, "bench-nodes: --warm-up: expected 0..3600\n");
                return -1;
            }
            break;
        case O_QUICK: o->quick = true; break;
        case O_NO_SCREEN: o->screen = false; break;
        case O_HOSTILE: o->hostile = true; break;
        case O_PLANT: o->plant = true; break;
        case O_MANAGERS: o->managers = true; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return -1;
    }
    if (!counts_given)
        parse_counts(o, o->quick ? "100,300" : "100,300,1000");
    if (!seconds_given)
        o->seconds = o->quick ? 3 : 10;
    return 0;
}

/* The systems folder that goes with a program in <build>/bin: <build>/systems, resolved into
 * out (PATH_MAX). Returns 0, or -1 if there is none. */
static int systems_beside(const char *program, char *out)
{
    char path[PATH_MAX + 16];
    const char *slash = strrchr(program, '/');
    snprintf(path, sizeof path, "%.*s/../systems", slash ? (int)(slash - program) : 1,
             slash ? program : ".");
    return realpath(path, out) ? 0 : -1;
}

/* The daemon ($GUARDIAND, else next to this program, else build/bin/guardiand) and the
 * systems folder next to it, else next to this program (a $GUARDIAND copied elsewhere), as
 * absolute paths so the daemon's working directory does not matter. $GUARDIAND is set to the
 * daemon's, which the harness starts. */
static int find_paths(struct bench *b)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    harness_prefer_daemon_beside_self();
    const char *path = harness_daemon_path();
    if (!realpath(path, b->daemon) || access(b->daemon, X_OK) != 0) {
        fprintf(stderr, "bench-nodes: no daemon at %s (build it with make, or set GUARDIAND)\n",
                path);
        return -1;
    }
    setenv("GUARDIAND", b->daemon, 1);
    if (systems_beside(b->daemon, b->systems) != 0 && systems_beside(exe, b->systems) != 0) {
        fprintf(stderr, "bench-nodes: no systems folder beside %s or %s\n", b->daemon, exe);
        return -1;
    }
    /* guardsim: in the daemon's bin folder, as make builds them. */
    const char *slash = strrchr(b->daemon, '/');
    snprintf(b->guardsim, sizeof b->guardsim, "%.*s/guardsim", (int)(slash - b->daemon), b->daemon);
    if ((b->o.plant || b->o.managers) && access(b->guardsim, X_OK) != 0) {
        fprintf(stderr, "bench-nodes: --plant, --managers: no guardsim at %s (build it with "
                        "make)\n", b->guardsim);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int r = parse_options(argc, argv, &b.o);
    if (r)
        return r > 0 ? 0 : 2;
    if (find_paths(&b) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = harness_now();
    print_header(&b);
    int failed = 0;
    for (int i = 0; i < b.o.n_counts; i++) {
        failed += run_row(&b, b.o.nodes[i], ROW_PLAIN) != 0;
        if (b.o.screen)
            failed += run_row(&b, b.o.nodes[i], ROW_SCREEN) != 0;
        if (b.o.hostile) {
            failed += run_row(&b, b.o.nodes[i], ROW_HUGE) != 0;
            failed += run_row(&b, b.o.nodes[i], ROW_100K) != 0;
        }
        if (b.o.plant)
            failed += run_row(&b, b.o.nodes[i], ROW_PLANT) != 0;
        if (b.o.managers)
            failed += run_row(&b, b.o.nodes[i], ROW_MANAGERS) != 0;
    }
    print_details(&b);
    print_plant(&b);
    print_targets(&b);
    print_notes(&b);
    printf("\nTotal time %.1f s%s\n", harness_now() - t0,
           failed ? "; some rows FAILED (see stderr)" : "");
    return failed ? 1 : 0;
}
