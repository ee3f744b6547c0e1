/* repeater.c — bench-repeater: what a flood on the CA repeater port costs the nodes.
 *
 * guardiand serves the host's CA repeater on its own loop (ca/repeater.c), the loop that steps
 * the nodes. This starts `guardiand --config FILE` with N `bench` nodes (default 300) on free
 * 127.0.0.1 ports, with its repeater on the harness's beacon port, registers K UDP clients
 * (default 50) with it as libca does (a zero-length datagram from 127.0.0.1, answered by
 * REPEATER_CONFIRM), waits a warm-up, then measures three windows of S seconds (default 10):
 *   quiet    nothing but the daemon's own beacons reaches the repeater;
 *   control  the flood below, sent to a socket of this process that nobody reads: on a small
 *            host the sender's own CPU competes with the daemon, and this row shows what that
 *            alone costs the node ticks;
 *   flood    a child process sends 16-byte datagrams to 127.0.0.1:<repeater port> as fast as
 *            it can (sendmmsg, 64 a call; --rate paces it) for S seconds. Each is an all-zero VERSION header,
 *            the repeater's own liveness no-op, so the libca client of this process ignores
 *            what is forwarded to it; the repeater's work is the same as for a beacon.
 * For each window: the daemon's CPU (/proc/PID/stat, % of one core), the supervisor channels
 * over libca — OVERRUNS and SKIPPED_CYCLES (difference over the window), JITTER_P99/_MAX (ms,
 * the daemon's last 4096 ticks = 16 s, so the flood row also holds the 6 s before it),
 * LOOP_UTIL (mean of its once-a-second updates in the window) — and how many datagrams one
 * registered client was sent per second (a probe client read throughout; its socket's drops
 * counted with SO_RXQ_OVFL; the other clients get the same datagrams).
 * After the flood it checks that the repeater still works and the daemon still answers CA:
 * a beacon (RSRV_IS_UP, m_available 0) sent to the repeater port must reach every client with
 * m_available = 127.0.0.1, and X1:GUARDIAND-NODES must read N.
 *
 * Only ever sends to 127.0.0.1. Every wait is bounded in time and every loop in count.
 * Prints figures; exits 1 if the daemon does not start or dies, a check after the flood fails,
 * or a channel cannot be read; 2 on a usage error.
 *
 * Usage: bench-repeater [--nodes N] [--clients K] [--seconds S] [--warm-up S] [--rate R]
 * The daemon is $GUARDIAND, else guardiand next to this program, else build/bin/guardiand.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca/caproto.h"
#include "ca/epics_ca.h"
#include "tests/lib/harness.h"

#define MAX_CLIENTS 1000
#define MAX_NODES 9999
#define FLOOD_BATCH 64
#define FLOOD_MAX_DATAGRAMS 200000000L /* a bound on the sender's loop besides its deadline */
#define CA_TIMEOUT_S 10.0
#define CONFIRM_TIMEOUT_S 5.0
#define PROBE_PORT 1 /* the test beacon's server port: not one of the daemon's */

enum sup_chan { SC_NODES, SC_LOOP_UTIL, SC_P99, SC_MAX, SC_OVERRUNS, SC_SKIPPED, SC_COUNT };
static const char *const sup_name[SC_COUNT] = {
    "X1:GUARDIAND-NODES",      "X1:GUARDIAND-LOOP_UTIL", "X1:GUARDIAND-JITTER_P99",
    "X1:GUARDIAND-JITTER_MAX", "X1:GUARDIAND-OVERRUNS",  "X1:GUARDIAND-SKIPPED_CYCLES",
};

struct opts {
    int nodes, clients;
    double seconds, warm_up;
    double rate;           /* datagrams/s of the flood; 0: as fast as it can */
};

struct row {
    const char *name;
    double seconds, cpu_pct, util, p99, max, overruns, skipped;
    double sent_per_s;     /* the flood's rate */
    double probe_per_s;    /* datagrams the repeater sent one client, per second */
    double probe_drop_per_s; /* of those, dropped by the client's full socket */
};

struct bench {
    struct opts o;
    harness_daemon d;
    char dir[256];
    int *fds;              /* the registered clients; fds[0] is the probe */
    struct sockaddr_in repeater;
    chid sup[SC_COUNT];
    evid util_sub;
    bool util_counting;
    double util_sum;
    long util_n;
    long probe_got;        /* datagrams read from the probe */
    uint32_t probe_drops;  /* its socket's drop counter (SO_RXQ_OVFL), latest */
};

/* ---- the registered clients ---- */

static int udp_client(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One datagram, if one is waiting: its length, or -1. drops gets the socket's drop counter
 * when the kernel attaches it (SO_RXQ_OVFL). */
static ssize_t recv_one(int fd, uint8_t *buf, size_t size, uint32_t *drops)
{
    char control[CMSG_SPACE(sizeof(uint32_t))];
    struct iovec iov = {.iov_base = buf, .iov_len = size};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control};
    ssize_t n = recvmsg(fd, &m, MSG_DONTWAIT);
    if (n < 0 || !drops)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
            memcpy(drops, CMSG_DATA(c), sizeof *drops);
    return n;
}

/* Register every client and wait (bounded) for each one's REPEATER_CONFIRM. */
static int register_clients(struct bench *b)
{
    int k = b->o.clients;
    b->fds = calloc((size_t)k, sizeof *b->fds);
    bool *confirmed = calloc((size_t)k, sizeof *confirmed);
    if (!b->fds || !confirmed)
        return -1;
    for (int i = 0; i < k; i++)
        b->fds[i] = -1;
    int rc = -1, n_confirmed = 0;
    for (int i = 0; i < k; i++) {
        if ((b->fds[i] = udp_client()) < 0) {
            perror("bench-repeater: client socket");
            goto out;
        }
        if (i == 0) {
            int one = 1;
            setsockopt(b->fds[0], SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
        }
        if (sendto(b->fds[i], "", 0, 0, (struct sockaddr *)&b->repeater, sizeof b->repeater) != 0) {
            perror("bench-repeater: register");
            goto out;
        }
    }
    double deadline = harness_now() + CONFIRM_TIMEOUT_S;
    while (n_confirmed < k && harness_now() < deadline) {
        for (int i = 0; i < k; i++) {
            uint8_t buf[64];
            ssize_t n;
            for (int j = 0; j < 1000 && (n = recv_one(b->fds[i], buf, sizeof buf, NULL)) >= 0; j++)
                if (n >= CA_HDR_SIZE && ca_get16(buf) == CA_REPEATER_CONFIRM && !confirmed[i]) {
                    confirmed[i] = true;
                    n_confirmed++;
                }
        }
        harness_sleep(0.01);
    }
    if (n_confirmed < k)
        fprintf(stderr, "bench-repeater: %d of %d clients confirmed in %.0f s\n", n_confirmed, k,
                CONFIRM_TIMEOUT_S);
    else
        rc = 0;
out:
    free(confirmed);
    return rc;
}

/* Read what is waiting on the probe (bounded), counting it. */
static void drain_probe(struct bench *b)
{
    uint8_t buf[CA_MAX_UDP_RECV];
    for (int j = 0; j < 100000 && recv_one(b->fds[0], buf, sizeof buf, &b->probe_drops) >= 0; j++)
        b->probe_got++;
}

/* Empty every client's socket (bounded). */
static void drain_all(struct bench *b)
{
    uint8_t buf[CA_MAX_UDP_RECV];
    for (int i = 0; i < b->o.clients; i++)
        for (int j = 0; j < 100000 && recv_one(b->fds[i], buf, sizeof buf, NULL) >= 0; j++) {
        }
}

/* ---- libca: the supervisor channels ---- */

static void on_util(struct event_handler_args args)
{
    struct bench *b = args.usr;
    if (args.status == ECA_NORMAL && args.dbr && b->util_counting) {
        b->util_sum += *(const dbr_double_t *)args.dbr;
        b->util_n++;
    }
}

static int ca_start(struct bench *b)
{
    if (harness_ca_context(&b->d) != ECA_NORMAL)
        return -1;
    if (harness_ca_connect(b->sup, sup_name, SC_COUNT, CA_TIMEOUT_S) != SC_COUNT) {
        fprintf(stderr, "bench-repeater: the supervisor channels did not all connect\n");
        return -1;
    }
    if (ca_create_subscription(DBR_DOUBLE, 1, b->sup[SC_LOOP_UTIL], DBE_VALUE, on_util, b,
                               &b->util_sub) != ECA_NORMAL)
        return -1;
    return 0;
}

static int read_sup(struct bench *b, double v[SC_COUNT])
{
    for (int i = 0; i < SC_COUNT; i++) {
        v[i] = NAN;
        ca_array_get(DBR_DOUBLE, 1, b->sup[i], &v[i]);
    }
    int st = ca_pend_io(CA_TIMEOUT_S);
    for (int i = 0; i < SC_COUNT; i++)
        if (st != ECA_NORMAL || isnan(v[i])) {
            fprintf(stderr, "bench-repeater: cannot read %s: %s\n", sup_name[i], ca_message(st));
            return -1;
        }
    return 0;
}

/* libca's callbacks and the probe, for `seconds`. */
static void pump(struct bench *b, double seconds)
{
    double deadline = harness_now() + seconds;
    while (harness_now() < deadline) {
        ca_pend_event(0.01);
        drain_probe(b);
    }
}

/* ---- the flood ---- */

/* The sender: a child process doing system calls only (this process has libca's threads).
 * Writes the number of datagrams it sent to out_fd, then exits. */
static void flood_child(const struct sockaddr_in *to, double seconds, double rate, int out_fd)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint8_t msg[CA_HDR_SIZE] = {0}; /* VERSION, all zero: the repeater's no-op */
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg};
    struct mmsghdr v[FLOOD_BATCH];
    for (int i = 0; i < FLOOD_BATCH; i++)
        v[i] = (struct mmsghdr){.msg_hdr = {.msg_name = (void *)to, .msg_namelen = sizeof *to,
                                            .msg_iov = &iov, .msg_iovlen = 1}};
    long sent = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double start = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9, end = start + seconds;
    while (fd >= 0 && sent < FLOOD_MAX_DATAGRAMS) {
        int n = sendmmsg(fd, v, FLOOD_BATCH, MSG_DONTWAIT);
        if (n > 0)
            sent += n;
        if (rate > 0) { /* paced: sleep until this many datagrams are due */
            double due = start + (double)sent / rate;
            if (due > end)
                due = end;
            struct timespec at = {(time_t)due, (long)((due - (double)(time_t)due) * 1e9)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 >= end)
            break;
    }
    ssize_t w = write(out_fd, &sent, sizeof sent);
    (void)w;
    _exit(0);
}

static pid_t flood_start(struct bench *b, const struct sockaddr_in *to, int *pipe_rd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        flood_child(to, b->o.seconds, b->o.rate, p[1]);
    }
    close(p[1]);
    if (pid < 0)
        close(p[0]);
    *pipe_rd = p[0];
    return pid;
}

static long flood_finish(pid_t pid, int pipe_rd)
{
    long sent = -1;
    int st;
    /* The child stops itself at its deadline; make sure all the same. */
    double deadline = harness_now() + 5.0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (harness_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        harness_sleep(0.01);
    }
    if (read(pipe_rd, &sent, sizeof sent) != (ssize_t)sizeof sent)
        sent = -1;
    close(pipe_rd);
    return sent;
}

/* ---- one window ---- */

/* One window; flood_to: where the flood goes (NULL: no flood). */
static int window(struct bench *b, struct row *r, const struct sockaddr_in *flood_to)
{
    bool flood = flood_to != NULL;
    double v0[SC_COUNT], v1[SC_COUNT];
    drain_all(b);
    if (read_sup(b, v0) != 0)
        return -1;
    long got0 = b->probe_got;
    uint32_t drops0 = b->probe_drops;
    int pipe_rd = -1;
    pid_t child = 0;
    b->util_sum = 0;
    b->util_n = 0;
    b->util_counting = true;
    double t0 = harness_now(), cpu0 = harness_proc_cpu_s(b->d.pid);
    if (flood && (child = flood_start(b, flood_to, &pipe_rd)) < 0) {
        perror("bench-repeater: fork");
        return -1;
    }
    pump(b, b->o.seconds);
    long sent = flood ? flood_finish(child, pipe_rd) : 0;
    double t1 = harness_now(), cpu1 = harness_proc_cpu_s(b->d.pid);
    b->util_counting = false;
    pump(b, 0.2); /* what was in flight */
    if (!harness_alive(&b->d)) {
        fprintf(stderr, "bench-repeater: the daemon died during the %s window\n", r->name);
        return -1;
    }
    if (read_sup(b, v1) != 0)
        return -1;
    double s = r->seconds = t1 - t0;
    r->cpu_pct = 100.0 * (cpu1 - cpu0) / s;
    r->util = b->util_n ? b->util_sum / (double)b->util_n : NAN;
    r->p99 = v1[SC_P99];
    r->max = v1[SC_MAX];
    r->overruns = v1[SC_OVERRUNS] - v0[SC_OVERRUNS];
    r->skipped = v1[SC_SKIPPED] - v0[SC_SKIPPED];
    r->sent_per_s = (double)sent / s;
    r->probe_drop_per_s = (double)(uint32_t)(b->probe_drops - drops0) / s;
    r->probe_per_s = (double)(b->probe_got - got0) / s + r->probe_drop_per_s;
    return 0;
}

static void row_print(const struct row *r, int clients)
{
    printf("  %-7s %9.0f %11.0f %11.0f %7.1f %7.1f %8.3f %8.3f %9.0f %8.0f\n", r->name,
           r->sent_per_s, r->probe_per_s, r->probe_per_s * clients, r->cpu_pct, r->util, r->p99,
           r->max, r->overruns, r->skipped);
    fflush(stdout);
}

/* ---- after the flood: does the repeater still do its job, does CA still answer? ---- */

static int check_after(struct bench *b)
{
    drain_all(b);
    int u = udp_client();
    uint8_t beacon[CA_HDR_SIZE] = {0};
    ca_put16(beacon, CA_PROTO_RSRV_IS_UP);
    ca_put16(beacon + 4, CA_MINOR_VERSION);
    ca_put16(beacon + 6, PROBE_PORT);
    ca_put32(beacon + 8, 0xBE4C0);
    int reached = 0, fixed = 0, sent = 0;
    bool *seen = calloc((size_t)b->o.clients, sizeof *seen);
    double t0 = harness_now(), deadline = t0 + 5.0, next_send = t0;
    /* Datagrams that reach the port while the repeater waits out a spent budget are dropped
     * with the flood's; so the beacon is sent again every half second until all have it. */
    while (u >= 0 && seen && reached < b->o.clients && harness_now() < deadline) {
        if (harness_now() >= next_send) {
            sent += sendto(u, beacon, sizeof beacon, 0, (struct sockaddr *)&b->repeater,
                           sizeof b->repeater) == sizeof beacon;
            next_send += 0.5;
        }
        for (int i = 0; i < b->o.clients; i++) {
            uint8_t buf[256];
            ssize_t n;
            for (int j = 0; j < 1000 && (n = recv_one(b->fds[i], buf, sizeof buf, NULL)) >= 0; j++)
                if (!seen[i] && n == CA_HDR_SIZE && ca_get16(buf) == CA_PROTO_RSRV_IS_UP &&
                    ca_get16(buf + 6) == PROBE_PORT && ca_get32(buf + 8) == 0xBE4C0) {
                    seen[i] = true;
                    reached++;
                    fixed += ca_get32(buf + 12) == INADDR_LOOPBACK;
                }
        }
        ca_pend_event(0.01);
    }
    double took = harness_now() - t0;
    free(seen);
    if (u >= 0)
        close(u);
    double v[SC_COUNT];
    int rc = read_sup(b, v);
    printf("\nAfter the flood: a beacon sent to the repeater (%d time(s), every 0.5 s) reached %d "
           "of %d clients in %.1f s (%d with m_available = 127.0.0.1); %s reads %.0f (%d nodes "
           "configured).\n",
           sent, reached, b->o.clients, took, fixed, sup_name[SC_NODES],
           rc == 0 ? v[SC_NODES] : NAN, b->o.nodes);
    return rc == 0 && reached == b->o.clients && fixed == reached && v[SC_NODES] == b->o.nodes
               ? 0 : -1;
}

/* ---- the daemon ---- */

static int write_config(struct bench *b, char *config, size_t len)
{
    char systems[PATH_MAX];
    if (harness_systems_dir(systems, sizeof systems) != 0)
        return -1;
    snprintf(config, len, "%s/guardiand.ini", b->dir);
    FILE *f = fopen(config, "we");
    if (!f)
        return -1;
    fprintf(f, "; bench-repeater: %d bench nodes\n[guardiand]\nifo = X1\nsystems = %s\n"
               "rate = 16\ndatabase = %s/guardiand.db\n",
            b->o.nodes, systems, b->dir);
    for (int i = 0; i < b->o.nodes; i++)
        fprintf(f, "\n[node BENCH%04d]\nsystem = bench\n", i + 1);
    return fclose(f);
}

/* The daemon's log lines about the repeater (its drop reports), for the record. */
static void print_repeater_log(const harness_daemon *d)
{
    FILE *f = fopen(d->log_path, "re");
    if (!f)
        return;
    char line[512];
    int shown = 0;
    for (long i = 0; i < 1000000 && fgets(line, sizeof line, f); i++)
        if (strstr(line, ": repeater") && shown++ < 8)
            printf("  daemon: %s", line);
    fclose(f);
    if (!shown)
        printf("  daemon: no log line about the repeater\n");
}

static void usage(FILE *f)
{
    fputs("usage: bench-repeater [--nodes N] [--clients K] [--seconds S] [--warm-up S] "
          "[--rate R]\n"
          "  --nodes    bench nodes the daemon runs (default 300)\n"
          "  --clients  repeater clients registered (default 50)\n"
          "  --seconds  each window, quiet and flood (default 10)\n"
          "  --warm-up  seconds after the ready line before the first window (default 2)\n"
          "  --rate     datagrams/s of the flood (default 0: as fast as one process can)\n",
          f);
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.nodes = 300, .clients = 50, .seconds = 10, .warm_up = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (!v) {
            usage(stderr);
            return -1;
        }
        double x = strtod(v, &end);
        bool ok = end != v && !*end;
        if (strcmp(a, "--nodes") == 0 && ok && x >= 1 && x <= MAX_NODES && x == (int)x)
            o->nodes = (int)x;
        else if (strcmp(a, "--clients") == 0 && ok && x >= 1 && x <= MAX_CLIENTS && x == (int)x)
            o->clients = (int)x;
        else if (strcmp(a, "--seconds") == 0 && ok && x >= 1 && x <= 600)
            o->seconds = x;
        else if (strcmp(a, "--warm-up") == 0 && ok && x >= 0 && x <= 600)
            o->warm_up = x;
        else if (strcmp(a, "--rate") == 0 && ok && x >= 0 && x <= 1e8)
            o->rate = x;
        else {
            usage(stderr);
            return -1;
        }
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int r = parse(argc, argv, &b.o);
    if (r)
        return r > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    harness_prefer_daemon_beside_self();
    char config[PATH_MAX];
    if (harness_temp_dir(b.dir, sizeof b.dir, "bench-repeater") != 0 ||
        write_config(&b, config, sizeof config) != 0) {
        perror("bench-repeater: configuration");
        return 1;
    }
    const char *args[] = {"--config", config, NULL};
    harness_opts ho = {.args = args, .no_demo = true, .ready_timeout = 60};
    if (harness_start(&b.d, &ho) != 0)
        return 1;
    b.repeater = (struct sockaddr_in){.sin_family = AF_INET,
                                      .sin_port = htons((uint16_t)b.d.beacon_port),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char load[64] = "?";
    FILE *lf = fopen("/proc/loadavg", "re");
    if (lf) {
        if (!fgets(load, sizeof load, lf))
            snprintf(load, sizeof load, "?");
        load[strcspn(load, "\n")] = '\0';
        fclose(lf);
    }
    char rate[48] = "as fast as it can";
    if (b.o.rate > 0)
        snprintf(rate, sizeof rate, "at %.0f datagrams/s", b.o.rate);
    printf("bench-repeater: guardiand with %d bench nodes at 16 Hz, its CA repeater on "
           "127.0.0.1:%d with %d registered clients, a flood %s; %ld CPUs; /proc/loadavg %s\n",
           b.o.nodes, b.d.beacon_port, b.o.clients, rate, sysconf(_SC_NPROCESSORS_ONLN), load);
    printf("Windows of %.0f s after a %.0f s warm-up. flood/s: datagrams sent to the repeater "
           "port; per client/s: what the\nrepeater sent one registered client (all clients get "
           "the same); sends/s: that times the clients;\nCPU: the daemon, %% of one core; util: "
           "LOOP_UTIL mean; p99/max: tick lateness, ms, over the last 16 s;\noverruns, skipped: "
           "during the window. control: the same flood to a socket nobody reads (what the "
           "sender's\nCPU alone costs the daemon).\n\n",
           b.o.seconds, b.o.warm_up);
    int rc = 1;
    /* control: the same flood to a socket of this process that nobody reads, so that what
     * the sender's own CPU costs the daemon on a small host shows apart from the repeater's
     * work. */
    struct row rows[3] = {{.name = "quiet"}, {.name = "control"}, {.name = "flood"}};
    struct sockaddr_in sink_addr = {.sin_family = AF_INET};
    socklen_t sink_len = sizeof sink_addr;
    int sink = udp_client();
    if (sink < 0 || getsockname(sink, (struct sockaddr *)&sink_addr, &sink_len) != 0) {
        perror("bench-repeater: sink socket");
        goto out;
    }
    const struct sockaddr_in *targets[3] = {NULL, &sink_addr, &b.repeater};
    if (register_clients(&b) != 0 || ca_start(&b) != 0)
        goto out;
    pump(&b, b.o.warm_up);
    printf("  %-7s %9s %11s %11s %7s %7s %8s %8s %9s %8s\n", "window", "flood/s", "per client/s",
           "sends/s", "CPU %", "util %", "p99 ms", "max ms", "overruns", "skipped");
    for (int i = 0; i < 3; i++) {
        if (window(&b, &rows[i], targets[i]) != 0)
            goto out;
        row_print(&rows[i], b.o.clients);
    }
    if (rows[2].probe_drop_per_s > 0)
        printf("  (per client/s includes %.0f/s the probe client's full socket dropped)\n",
               rows[2].probe_drop_per_s);
    rc = check_after(&b) == 0 ? 0 : 1;
    print_repeater_log(&b.d);
out:
    if (b.util_sub)
        ca_clear_subscription(b.util_sub);
    for (int i = 0; i < SC_COUNT; i++)
        if (b.sup[i])
            ca_clear_channel(b.sup[i]);
    ca_context_destroy();
    if (sink >= 0)
        close(sink);
    for (int i = 0; b.fds && i < b.o.clients; i++)
        if (b.fds[i] >= 0)
            close(b.fds[i]);
    free(b.fds);
    int code = harness_stop(&b.d, 10);
    if (code != 0) {
        fprintf(stderr, "bench-repeater: the daemon exited with %d\n", code);
        rc = 1;
    }
    harness_remove_dir(b.dir);
    printf("\n%s\n", rc == 0 ? "bench-repeater: done" : "bench-repeater: FAILED (see stderr)");
    return rc;
}
