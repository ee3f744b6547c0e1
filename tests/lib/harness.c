/* harness.c — start, watch and stop a guardiand for tests and benchmarks (see harness.h).
 *
 * The daemon is forked and exec'd with an environment built before fork(), so the child only
 * calls async-signal-safe functions (libca threads may already exist in the parent). Readiness
 * is read from its log file rather than a pipe, so a chatty daemon can never block on a full
 * pipe that nobody drains.
 */
#include "tests/lib/harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define HARNESS_MAX_ARGS 64
#define HARNESS_MAX_ENV 512
#define HARNESS_LOG_TAIL 4096

double harness_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void harness_sleep(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

double harness_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NAN;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return NAN;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

double harness_self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Bind a socket of `type` to 127.0.0.1:port (0 = any); returns the fd and the bound port. */
static int bind_loopback(int type, int port, int *bound)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

int harness_free_ports(int *port, int *beacon_port)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int p, bp;
        int u = bind_loopback(SOCK_DGRAM, 0, &p);
        if (u < 0)
            return -1;
        int t = bind_loopback(SOCK_STREAM, p, &p);
        int b = bind_loopback(SOCK_DGRAM, 0, &bp);
        if (t >= 0)
            close(t);
        if (b >= 0)
            close(b);
        close(u);
        if (t >= 0 && b >= 0 && bp != p) {
            *port = p;
            *beacon_port = bp;
            return 0;
        }
    }
    return -1;
}

/* "NAME=value": does entry set the variable called name (length n)? */
static bool env_is(const char *entry, const char *name, size_t n)
{
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

static bool env_overridden(const char *entry, const char *const *extra)
{
    const char *eq = strchr(entry, '=');
    if (eq == NULL)
        return false;
    for (; extra != NULL && *extra != NULL; extra++)
        if (env_is(*extra, entry, (size_t)(eq - entry)))
            return true;
    return false;
}

/* The daemon's environment: ours minus EPICS_*, the test defaults, then opts->env. Strings
 * are stored in `store` (entries point into it). Returns the entry count or -1. */
static int build_env(char **envp, char *store, size_t store_size, const harness_daemon *d,
                     const harness_opts *o)
{
    int n = 0;
    size_t used = 0;
    for (char **e = environ; *e != NULL && n < HARNESS_MAX_ENV - 16; e++)
        if (strncmp(*e, "EPICS_", 6) != 0)
            envp[n++] = *e;

    char defaults[8][64];
    int nd = 0;
    /* The daemon's own CA client (plant channels) searches only where a test
     * says (EPICS_CA_ADDR_LIST in o->env), and registers with the daemon's
     * own repeater rather than spawning a caRepeater. */
    snprintf(defaults[nd++], 64, "EPICS_CA_AUTO_ADDR_LIST=NO");
    snprintf(defaults[nd++], 64, "EPICS_CA_REPEATER_PORT=%d", d->beacon_port);
    snprintf(defaults[nd++], 64, "EPICS_CAS_INTF_ADDR_LIST=127.0.0.1");
    snprintf(defaults[nd++], 64, "EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1");
    snprintf(defaults[nd++], 64, "EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO");
    snprintf(defaults[nd++], 64, "EPICS_CAS_BEACON_PORT=%d", d->beacon_port);
    if (o->port_via == HARNESS_PORT_CAS_ENV)
        snprintf(defaults[nd++], 64, "EPICS_CAS_SERVER_PORT=%d", d->port);
    else if (o->port_via == HARNESS_PORT_CA_ENV)
        snprintf(defaults[nd++], 64, "EPICS_CA_SERVER_PORT=%d", d->port);

    for (int i = 0; i < nd; i++) {
        if (env_overridden(defaults[i], o->env))
            continue;
        size_t len = strlen(defaults[i]) + 1;
        if (used + len > store_size)
            return -1;
        memcpy(store + used, defaults[i], len);
        envp[n++] = store + used;
        used += len;
    }
    for (const char *const *x = o->env; x != NULL && *x != NULL; x++) {
        if (n >= HARNESS_MAX_ENV - 1)
            return -1;
        envp[n++] = (char *)*x;
    }
    envp[n] = NULL;
    return n;
}

static const char *daemon_path(void)
{
    const char *p = getenv("GUARDIAND");
    return p != NULL && *p != '\0' ? p : "build/bin/guardiand";
}

/* Print the last HARNESS_LOG_TAIL bytes of the daemon's log to stderr. */
static void log_tail(const harness_daemon *d, const char *why)
{
    fprintf(stderr, "harness: %s (daemon log %s):\n", why, d->log_path);
    int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    lseek(fd, size > HARNESS_LOG_TAIL ? size - HARNESS_LOG_TAIL : 0, SEEK_SET);
    char buf[HARNESS_LOG_TAIL];
    ssize_t r = read(fd, buf, sizeof buf);
    close(fd);
    if (r > 0)
        fprintf(stderr, "%.*s%s", (int)r, buf, buf[r - 1] == '\n' ? "" : "\n");
}

/* Does the log contain the word "ready" ("already" does not count)? The whole log is read, in
 * chunks: a daemon with hundreds of nodes logs many lines before its ready line. */
static bool log_says_ready(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    enum { CHUNK = 16384, KEEP = 6 }; /* KEEP: a character before "ready", the word itself */
    char buf[KEEP + CHUNK + 1];
    size_t kept = 0;
    bool found = false;
    ssize_t r;
    while (!found && (r = read(fd, buf + kept, CHUNK)) > 0) {
        size_t n = kept + (size_t)r;
        buf[n] = '\0';
        for (char *p = buf; (p = strstr(p, "ready")) != NULL; p += 5) {
            bool start = p == buf ? kept == 0 : !isalpha((unsigned char)p[-1]);
            /* A match at the very end may go on in the next chunk: decide it there. */
            if (p + 5 == buf + n)
                break;
            if (start && !isalpha((unsigned char)p[5])) {
                found = true;
                break;
            }
        }
        kept = n < KEEP ? n : KEEP;
        memmove(buf, buf + n - kept, kept);
    }
    if (!found && kept >= 5 && strncmp(buf + kept - 5, "ready", 5) == 0)
        found = kept == 5 || !isalpha((unsigned char)buf[kept - 6]); /* "ready" at the end */
    close(fd);
    return found;
}

static int wait_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int harness_systems_dir(char *out, size_t len)
{
    char bin[PATH_MAX];
    const char *path = daemon_path();
    if (realpath(path, bin) == NULL)
        snprintf(bin, sizeof bin, "%s", path);
    char *slash = strrchr(bin, '/');
    if (slash != NULL)
        *slash = '\0'; /* .../bin */
    else
        snprintf(bin, sizeof bin, ".");
    int n = snprintf(out, len, "%s/../systems", bin);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

bool harness_alive(harness_daemon *d)
{
    if (d->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == d->pid) {
        d->status = st;
        d->pid = 0;
        return false;
    }
    return r == 0;
}

int harness_start(harness_daemon *d, const harness_opts *opts)
{
    static const harness_opts none;
    const harness_opts *o = opts != NULL ? opts : &none;
    memset(d, 0, sizeof *d);
    if (harness_free_ports(&d->port, &d->beacon_port) != 0) {
        fprintf(stderr, "harness: no free port on 127.0.0.1\n");
        return -1;
    }

    const char *tmp = getenv("TMPDIR");
    snprintf(d->log_path, sizeof d->log_path, "%s/guardiand-test.XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    int log_fd = mkostemp(d->log_path, O_CLOEXEC);
    if (log_fd < 0) {
        perror("harness: log file");
        return -1;
    }

    char port_arg[16];
    snprintf(port_arg, sizeof port_arg, "%d", d->port);
    const char *argv[HARNESS_MAX_ARGS];
    int argc = 0;
    argv[argc++] = daemon_path();
    if (!o->no_demo)
        argv[argc++] = "--demo";
    if (!o->real_plant)
        argv[argc++] = "--simulate-plant";
    if (o->port_via == HARNESS_PORT_OPTION) {
        argv[argc++] = "--port";
        argv[argc++] = port_arg;
    }
    /* A database of its own beside the log (the default would be guardiand.db
     * in the working directory), unless the caller configures one. */
    bool own_db = true;
    for (const char *const *a = o->args; a != NULL && *a != NULL; a++)
        if (strcmp(*a, "--database") == 0 || strcmp(*a, "--config") == 0 || strcmp(*a, "-c") == 0)
            own_db = false;
    static char db_arg[300];
    if (own_db) {
        snprintf(db_arg, sizeof db_arg, "%s.db", d->log_path);
        argv[argc++] = "--database";
        argv[argc++] = db_arg;
    }
    /* A control socket of its own too: the default path is one per host, and
     * a second daemon on it refuses to start. */
    bool own_socket = true;
    for (const char *const *a = o->args; a != NULL && *a != NULL; a++)
        if (strcmp(*a, "--control-socket") == 0)
            own_socket = false;
    static char sock_arg[300];
    if (own_socket) {
        snprintf(sock_arg, sizeof sock_arg, "%s.sock", d->log_path);
        argv[argc++] = "--control-socket";
        argv[argc++] = sock_arg;
    }
    for (const char *const *a = o->args; a != NULL && *a != NULL; a++) {
        if (argc >= HARNESS_MAX_ARGS - 1) {
            close(log_fd);
            return -1;
        }
        argv[argc++] = *a;
    }
    argv[argc] = NULL;

    static char *envp[HARNESS_MAX_ENV];
    static char env_store[1024];
    if (build_env(envp, env_store, sizeof env_store, d, o) < 0) {
        fprintf(stderr, "harness: environment too large\n");
        close(log_fd);
        return -1;
    }

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        close(log_fd);
        return -1;
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        close_range(3, ~0u, 0); /* nothing of the test runner's (pipes, arenas) leaks in */
        execve(argv[0], (char *const *)argv, envp);
        static const char msg[] = "harness: cannot execute the daemon\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(127);
    }
    close(log_fd);
    d->pid = pid;

    double limit = o->ready_timeout > 0 ? o->ready_timeout : 10.0;
    double deadline = harness_now() + limit;
    while (harness_now() < deadline) {
        if (log_says_ready(d->log_path))
            return 0;
        if (!harness_alive(d)) {
            char why[128];
            snprintf(why, sizeof why, "%s exited before it was ready (status %d)", argv[0],
                     wait_status_code(d->status));
            log_tail(d, why);
            return -1;
        }
        harness_sleep(0.01);
    }
    char why[128];
    snprintf(why, sizeof why, "%s not ready after %.0f s", argv[0], limit);
    log_tail(d, why);
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &d->status, 0);
    d->pid = 0;
    return -1;
}

int harness_stop(harness_daemon *d, double timeout)
{
    if (d->log_path[0] == '\0')
        return -1; /* never started */
    double limit = timeout > 0 ? timeout : 10.0;
    if (d->pid > 0) {
        pid_t pid = d->pid;
        kill(pid, SIGTERM);
        double deadline = harness_now() + limit;
        while (harness_alive(d) && harness_now() < deadline)
            harness_sleep(0.01);
        if (d->pid > 0) {
            fprintf(stderr, "harness: daemon %d ignored SIGTERM for %.0f s, killing it\n",
                    (int)pid, limit);
            kill(pid, SIGKILL);
            waitpid(pid, &d->status, 0);
            d->pid = 0;
        }
    }
    int code = wait_status_code(d->status);
    if (code != 0) {
        char why[64];
        snprintf(why, sizeof why, "daemon ended with status %d", code);
        log_tail(d, why);
    } else {
        unlink(d->log_path);
    }
    /* The database the harness gave it, if any, goes either way. */
    static const char *const db_files[] = {".db", ".db-wal", ".db-shm", ".db.crashes", ".sock"};
    for (size_t i = 0; i < sizeof db_files / sizeof db_files[0]; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s%s", d->log_path, db_files[i]);
        unlink(path);
    }
    return code;
}

long harness_rss_kb(const harness_daemon *d)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)d->pid);
    FILE *f = d->pid > 0 ? fopen(path, "re") : NULL;
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

void harness_client_env(const harness_daemon *d)
{
    char port[16], beacon[16];
    snprintf(port, sizeof port, "%d", d->port);
    snprintf(beacon, sizeof beacon, "%d", d->beacon_port);
    setenv("EPICS_CA_AUTO_ADDR_LIST", "NO", 1);
    setenv("EPICS_CA_ADDR_LIST", "127.0.0.1", 1);
    setenv("EPICS_CA_SERVER_PORT", port, 1);
    setenv("EPICS_CA_REPEATER_PORT", beacon, 1);
    unsetenv("EPICS_CA_NAME_SERVERS");
}

/* dbr_size, value_size and value_off of every type 0..38 (the table in section 4.2). */
static const unsigned short dbr_layout[39][3] = {
    { 40, 40, 0 },   { 2, 2, 0 },     { 4, 4, 0 },     { 2, 2, 0 },     { 1, 1, 0 },
    { 4, 4, 0 },     { 8, 8, 0 },     { 44, 40, 4 },   { 6, 2, 4 },     { 8, 4, 4 },
    { 6, 2, 4 },     { 6, 1, 5 },     { 8, 4, 4 },     { 16, 8, 8 },    { 52, 40, 12 },
    { 16, 2, 14 },   { 16, 4, 12 },   { 16, 2, 14 },   { 16, 1, 15 },   { 16, 4, 12 },
    { 24, 8, 16 },   { 44, 40, 4 },   { 26, 2, 24 },   { 44, 4, 40 },   { 424, 2, 422 },
    { 20, 1, 19 },   { 40, 4, 36 },   { 72, 8, 64 },   { 44, 40, 4 },   { 30, 2, 28 },
    { 52, 4, 48 },   { 424, 2, 422 }, { 22, 1, 21 },   { 48, 4, 44 },   { 88, 8, 80 },
    { 2, 2, 0 },     { 2, 2, 0 },     { 48, 40, 8 },   { 40, 40, 0 },
};

size_t harness_dbr_size_n(unsigned type, unsigned long n)
{
    if (type > 38 || n == 0)
        return 0;
    return dbr_layout[type][0] + (n - 1) * dbr_layout[type][1];
}

size_t harness_dbr_value_offset(unsigned type) { return type > 38 ? 0 : dbr_layout[type][2]; }

size_t harness_dbr_value_size(unsigned type) { return type > 38 ? 0 : dbr_layout[type][1]; }

int harness_ca_context(const harness_daemon *d)
{
    harness_client_env(d);
    return ca_context_create(ca_disable_preemptive_callback);
}

size_t harness_ca_connect(chid *chans, const char *const *names, size_t n, double timeout)
{
    for (size_t i = 0; i < n; i++)
        if (ca_create_channel(names[i], NULL, NULL, CA_PRIORITY_DEFAULT, &chans[i]) != ECA_NORMAL)
            chans[i] = NULL;
    ca_pend_io(timeout);
    size_t up = 0;
    for (size_t i = 0; i < n; i++)
        if (chans[i] != NULL && ca_state(chans[i]) == cs_conn)
            up++;
    return up;
}

bool harness_ca_wait(bool (*done)(void *arg), void *arg, double timeout)
{
    double deadline = harness_now() + timeout;
    ca_flush_io();
    while (!done(arg) && harness_now() < deadline)
        ca_pend_event(0.01);
    return done(arg);
}

void harness_ca_idle(double seconds)
{
    double deadline = harness_now() + seconds;
    ca_flush_io();
    while (harness_now() < deadline)
        ca_pend_event(0.01);
}
