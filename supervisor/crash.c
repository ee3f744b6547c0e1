/* crash.c — the crash and hang handlers (see crash.h).
 *
 * Inside a handler the heap may be corrupt and locks may be held, so the
 * handlers use only async-signal-safe calls: write(2), clock_gettime,
 * signal, raise, and backtrace/backtrace_symbols_fd (which glibc documents as
 * not allocating once backtrace() has run once: crash_init calls it so that
 * libgcc is loaded up front). Numbers are formatted by hand into a static
 * buffer. Strings read from the node runtime are copied with a bound and
 * only printable characters, since they may be damaged.
 */
#include "supervisor/crash.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "node/node.h"

#define MAX_FRAMES 64
#define ALT_STACK_SIZE (64 * 1024)
#define HANG_CHECK 0.25 /* seconds between hang checks */

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define N_FATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static struct {
    int fd;
    int64_t boot;
    double hang_limit;
    double started;              /* monotonic time of crash_init */
    volatile sig_atomic_t seq;   /* records written this run */
    volatile sig_atomic_t in_handler;
    const char *volatile step_node;
    volatile double step_started; /* monotonic; valid while step_node is set */
    /* crash_suspect's copy; read by the handler only while suspect_set. */
    char suspect[64];
    volatile sig_atomic_t suspect_set;
    bool installed;
    const char *pending;
    const volatile size_t *pending_len;
    struct sigaction old[N_FATAL], old_alarm;
} crash = {.fd = -1};

static char alt_stack[ALT_STACK_SIZE];

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- async-signal-safe formatting into a fixed buffer ---- */

struct out {
    char buf[1024];
    size_t len;
};

static void put(struct out *o, const char *s)
{
    while (*s && o->len < sizeof(o->buf) - 1)
        o->buf[o->len++] = *s++;
}

/* A name from the runtime: at most 63 printable characters, "-" if none. */
static void put_name(struct out *o, const char *s)
{
    if (!s || !*s) {
        put(o, "-");
        return;
    }
    for (int i = 0; i < 63 && s[i] && o->len < sizeof(o->buf) - 1; i++)
        o->buf[o->len++] = (s[i] > ' ' && s[i] < 127) ? s[i] : '?';
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && o->len < sizeof(o->buf) - 1)
        o->buf[o->len++] = tmp[--n];
}

static void put_i64(struct out *o, int64_t v)
{
    if (v < 0) {
        put(o, "-");
        put_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(o, (uint64_t)v);
    }
}

static void put_hex(struct out *o, uint64_t v)
{
    char tmp[17];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    put(o, "0x");
    while (n && o->len < sizeof(o->buf) - 1)
        o->buf[o->len++] = tmp[--n];
}

/* Seconds with microseconds, non-negative. */
static void put_seconds(struct out *o, double t)
{
    if (!(t >= 0))
        t = 0;
    uint64_t us = (uint64_t)(t * 1e6 + 0.5);
    put_u64(o, us / 1000000);
    put(o, ".");
    char frac[7];
    uint64_t f = us % 1000000;
    for (int i = 5; i >= 0; i--, f /= 10)
        frac[i] = (char)('0' + f % 10);
    frac[6] = 0;
    put(o, frac);
}

static void write_all(const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(crash.fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Unwritten stdout first (bounded by the buffer it points into). */
static void write_pending(void)
{
    if (!crash.pending || !crash.pending_len)
        return;
    size_t n = *crash.pending_len, done = 0;
    while (done < n) {
        ssize_t w = write(STDOUT_FILENO, crash.pending + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        done += (size_t)w;
    }
}

/* One journal record: header, backtrace, END. */
static void write_record(int sig, int code, const void *addr, bool watchdog)
{
    write_pending();
    if (crash.fd < 0)
        return;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    static struct out o; /* static: the alternate stack is small */
    o.len = 0;
    put(&o, "CRASH v1 boot=");
    put_i64(&o, crash.boot);
    put(&o, " seq=");
    put_u64(&o, (uint64_t)++crash.seq);
    put(&o, " time=");
    put_seconds(&o, (double)wall.tv_sec + (double)wall.tv_nsec * 1e-9);
    put(&o, " signal=");
    put_u64(&o, (uint64_t)sig);
    put(&o, " code=");
    put_i64(&o, code);
    put(&o, " addr=");
    put_hex(&o, (uint64_t)(uintptr_t)addr);
    put(&o, " uptime=");
    put_seconds(&o, mono() - crash.started);
    /* The node whose step was running; state and phase if inside its code.
     * Else, for the watchdog's kill, the node it blamed. */
    const char *node = node_executing.node ? node_executing.node : crash.step_node;
    const char *phase = node_executing.phase ? node_executing.phase : (node ? "step" : NULL);
    if (!node && watchdog && crash.suspect_set) {
        node = crash.suspect;
        phase = "watchdog";
    }
    put(&o, " node=");
    put_name(&o, node);
    put(&o, " state=");
    put_name(&o, node_executing.state);
    put(&o, " phase=");
    put_name(&o, phase);
    put(&o, "\n");
    write_all(o.buf, o.len);

    void *frames[MAX_FRAMES];
    int n = backtrace(frames, MAX_FRAMES);
    for (int i = 0; i < n; i++) {
        write_all("bt ", 3);
        backtrace_symbols_fd(&frames[i], 1, crash.fd);
    }
    write_all("END\n", 4);
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    /* A crash inside the handler, or a second thread crashing: no record. */
    if (!crash.in_handler) {
        crash.in_handler = 1;
        /* SI_USER: kill(2) from another process, as systemd's watchdog
         * does; abort() in this process says SI_TKILL. */
        bool watchdog = sig == SIGABRT && si && si->si_code == SI_USER;
        write_record(sig, si ? si->si_code : 0, si ? si->si_addr : NULL, watchdog);
    }
    /* SA_RESETHAND restored the default action: raising again now (it is
     * delivered when we return) ends the process with the core dump. */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* exit() while a node step runs: that node's crash (crash.h). */
static void on_process_exit(int status, void *arg)
{
    (void)arg;
    if (!crash.installed || crash.in_handler || !(node_executing.node || crash.step_node))
        return;
    crash.in_handler = 1;
    write_record(0, status, NULL, false);
    _exit(CRASH_EXIT_STATUS);
}

static void on_alarm(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    if (!crash.step_node || crash.hang_limit <= 0 || crash.in_handler)
        return;
    double ran = mono() - crash.step_started;
    if (ran < crash.hang_limit)
        return;
    int saved = errno;
    crash.in_handler = 1;
    write_record(SIGALRM, 0, NULL, false);
    /* Abort for the core dump, without a second record from on_fatal. */
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
    errno = saved;
}

int crash_init(const char *journal, int64_t boot, double hang_limit, char *err, size_t errlen)
{
    int fd = open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "crash journal %s: %s", journal,
                 fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Load what backtrace() needs now, not inside a handler. */
    void *frames[4];
    backtrace(frames, 4);

    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack)};
    if (sigaltstack(&ss, NULL) < 0) {
        snprintf(err, errlen, "sigaltstack: %s", strerror(errno));
        close(fd);
        return -1;
    }
    crash.fd = fd;
    crash.boot = boot;
    crash.hang_limit = hang_limit;
    crash.started = mono();
    crash.seq = 0;
    crash.in_handler = 0;

    struct sigaction sa = {.sa_sigaction = on_fatal,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_FATAL; i++)
        sigaction(fatal_signals[i], &sa, &crash.old[i]);

    struct sigaction al = {.sa_sigaction = on_alarm, .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART};
    sigemptyset(&al.sa_mask);
    sigaction(SIGALRM, &al, &crash.old_alarm);
    if (hang_limit > 0) {
        struct itimerval it = {.it_interval = {0, (long)(HANG_CHECK * 1e6)},
                               .it_value = {0, (long)(HANG_CHECK * 1e6)}};
        setitimer(ITIMER_REAL, &it, NULL);
    }
    static bool exit_hook; /* on_exit handlers cannot be removed: register once */
    if (!exit_hook && on_exit(on_process_exit, NULL) == 0)
        exit_hook = true;
    crash.installed = true;
    return 0;
}

void crash_pending_output(const char *buf, const volatile size_t *len)
{
    crash.pending = buf;
    crash.pending_len = len;
}

void crash_step_begin(const char *name, double started)
{
    crash.step_started = started;
    crash.step_node = name;
}

void crash_suspect(const char *name)
{
    crash.suspect_set = 0;
    if (!name)
        return;
    /* The fences keep the compiler from moving the copy across the flag:
     * a handler never reads a name being written. */
    atomic_signal_fence(memory_order_seq_cst);
    snprintf(crash.suspect, sizeof(crash.suspect), "%s", name);
    atomic_signal_fence(memory_order_seq_cst);
    crash.suspect_set = 1;
}

void crash_step_end(void) { crash.step_node = NULL; }

void crash_fini(void)
{
    if (!crash.installed)
        return;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &crash.old_alarm, NULL);
    for (size_t i = 0; i < N_FATAL; i++)
        sigaction(fatal_signals[i], &crash.old[i], NULL);
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    close(crash.fd);
    crash.fd = -1;
    crash.installed = false;
}
