/* harness.c — start, watch and stop a guardiand (or guardsim) for tests and benchmarks (see
 * harness.h).
 *
 * The server is forked and exec'd with its arguments and environment built before fork(), so
 * the child only calls async-signal-safe functions (libca threads may already exist in the
 * parent). Readiness is read from its log file rather than a pipe, so a chatty daemon can never
 * block on a full pipe that nobody drains; the file is read as it grows, a line at a time, so
 * a daemon with hundreds of nodes, which logs many lines before its ready line, is not read
 * again from the start at every look.
 */
#include "tests/lib/harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
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

int harness_proc_schedstat(pid_t pid, double *run_s, double *wait_s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "re");
    unsigned long long run, queued;
    int n = f != NULL ? fscanf(f, "%llu %llu", &run, &queued) : 0;
    if (f != NULL)
        fclose(f);
    *run_s = n == 2 ? (double)run * 1e-9 : NAN;
    *wait_s = n == 2 ? (double)queued * 1e-9 : NAN;
    return n == 2 ? 0 : -1;
}

long harness_proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    long kb = -1;
    size_t len = strlen(field);
    while (kb < 0 && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, len) == 0 && sscanf(line + len, " %ld", &kb) != 1)
            kb = -1;
    fclose(f);
    return kb;
}

double harness_host_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "re");
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    int n = f != NULL ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice,
                               &sys, &idle, &iowait, &irq, &softirq, &steal)
                      : 0;
    if (f != NULL)
        fclose(f);
    if (n != 8)
        return NAN;
    return (double)(user + nice + sys + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
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

const char *harness_daemon_path(void)
{
    const char *p = getenv("GUARDIAND");
    return p != NULL && *p != '\0' ? p : "build/bin/guardiand";
}

void harness_prefer_daemon_beside_self(void)
{
    const char *env = getenv("GUARDIAND");
    if (env != NULL && *env != '\0')
        return;
    char exe[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    snprintf(path, sizeof path, "%.*s/guardiand", (int)(slash - exe), exe);
    if (access(path, X_OK) == 0)
        setenv("GUARDIAND", path, 1);
}

int harness_temp_dir(char *out, size_t size, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, size, "%s/%s.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp", name);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) != NULL ? 0 : -1;
}

void harness_remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp != NULL) {
        struct dirent *e;
        for (int i = 0; i < 10000 && (e = readdir(dp)) != NULL; i++)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(dp), e->d_name, 0);
        closedir(dp);
    }
    rmdir(dir);
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

/* Reads a log as it grows, line by line across reads, for a ready line. */
struct log_lines {
    int fd;
    char line[4096]; /* longer lines are cut: ready lines are short */
    size_t len;
};

/* The default ready line: one holding the word "ready" ("already" does not count). */
static bool line_says_ready(void *arg, const char *line)
{
    (void)arg;
    for (const char *p = line; (p = strstr(p, "ready")) != NULL; p += 5)
        if ((p == line || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[5]))
            return true;
    return false;
}

/* Whether a line written since the last call is a ready line. Only whole lines count: a line
 * is judged once its newline is there. */
static bool log_has_ready_line(struct log_lines *lr, bool (*ready)(void *, const char *),
                               void *arg)
{
    char buf[16384];
    ssize_t n;
    /* Bounded: a server logging faster than we read must not keep us here. */
    for (int reads = 0; reads < 4096 && (n = read(lr->fd, buf, sizeof buf)) > 0; reads++)
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (lr->len < sizeof lr->line - 1)
                    lr->line[lr->len++] = buf[i];
                continue;
            }
            lr->line[lr->len] = '\0';
            lr->len = 0;
            if (ready(arg, lr->line))
                return true;
        }
    return false;
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
    const char *path = harness_daemon_path();
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

static bool args_have(const harness_opts *o, const char *option)
{
    for (const char *const *a = o->args; a != NULL && *a != NULL; a++)
        if (strcmp(*a, option) == 0)
            return true;
    return false;
}

/* The value after `option` in o->args, or NULL. */
static const char *args_value(const harness_opts *o, const char *option)
{
    for (const char *const *a = o->args; a != NULL && *a != NULL; a++)
        if (strcmp(*a, option) == 0)
            return a[1];
    return NULL;
}

/* The log file, opened for writing: <dir>/<program name>.log, or a new
 * $TMPDIR/guardiand-test.XXXXXX. Returns the fd, or -1 with a message. */
static int log_create(harness_daemon *d, const harness_opts *o, const char *program)
{
    int n, fd;
    if (o->dir != NULL) {
        const char *slash = strrchr(program, '/');
        n = snprintf(d->log_path, sizeof d->log_path, "%s/%s.log", o->dir,
                     slash != NULL ? slash + 1 : program);
        fd = n > 0 && (size_t)n < sizeof d->log_path
                 ? open(d->log_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                 : -1;
    } else {
        const char *tmp = getenv("TMPDIR");
        n = snprintf(d->log_path, sizeof d->log_path, "%s/guardiand-test.XXXXXX",
                     tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
        fd = n > 0 && (size_t)n < sizeof d->log_path ? mkostemp(d->log_path, O_CLOEXEC) : -1;
    }
    if (fd < 0)
        fprintf(stderr, "harness: log file %s: %s\n", d->log_path, strerror(errno));
    return fd;
}

/* Where the harness's own files of d go: beside the log, <dir>/<program name>.<suffix> or
 * <log>.<suffix>. Returns 0, or -1 if the path does not fit in size. */
static int own_file(char *out, size_t size, const harness_daemon *d, const harness_opts *o,
                    const char *suffix)
{
    size_t stem = strlen(d->log_path);
    if (o->dir != NULL)
        stem -= sizeof ".log" - 1;
    int n = snprintf(out, size, "%.*s.%s", (int)stem, d->log_path, suffix);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The daemon's own options: --demo, --simulate-plant, --port, and a database and control
 * socket of its own (see harness.h). Returns the argument count, or -1 with a message. */
static int daemon_args(const char **argv, int max, harness_daemon *d, const harness_opts *o)
{
    static char port_arg[16];
    int argc = 0;
    if (!o->no_demo)
        argv[argc++] = "--demo";
    if (!o->real_plant)
        argv[argc++] = "--simulate-plant";
    if (o->port_via == HARNESS_PORT_OPTION) {
        snprintf(port_arg, sizeof port_arg, "%d", d->port);
        argv[argc++] = "--port";
        argv[argc++] = port_arg;
    }
    /* Not guardiand.db in the working directory. */
    if (!args_have(o, "--database") && !args_have(o, "--config") && !args_have(o, "-c")) {
        if (own_file(d->db_path, sizeof d->db_path, d, o, "db") != 0)
            goto too_long;
        argv[argc++] = "--database";
        argv[argc++] = d->db_path;
    }
    /* Not the default, one per host: a second daemon on it refuses to start. */
    const char *socket = args_value(o, "--control-socket");
    if (socket == NULL) {
        if (own_file(d->socket_path, sizeof d->socket_path, d, o, "sock") != 0)
            goto too_long;
        d->own_socket = true;
        argv[argc++] = "--control-socket";
        argv[argc++] = d->socket_path;
    } else {
        snprintf(d->socket_path, sizeof d->socket_path, "%s", socket);
    }
    return argc < max ? argc : -1;
too_long:
    fprintf(stderr, "harness: the path of the database or control socket beside %s is too "
                    "long\n", d->log_path);
    return -1;
}

/* fork() and exec argv with envp, its output to log_fd. Returns the pid, or -1. */
static pid_t spawn(const char *const *argv, char *const *envp, int log_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
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
    static const char msg[] = "harness: cannot execute the program\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

/* Wait (bounded) for the ready line. Returns 0, or -1 with the log's tail printed and the
 * server killed and reaped. */
static int wait_ready(harness_daemon *d, const harness_opts *o, const char *program)
{
    struct log_lines lr = { .fd = open(d->log_path, O_RDONLY | O_CLOEXEC) };
    bool (*ready)(void *, const char *) = o->ready != NULL ? o->ready : line_says_ready;
    double limit = o->ready_timeout > 0 ? o->ready_timeout : 10.0;
    double deadline = d->started + limit;
    char why[PATH_MAX + 64];
    snprintf(why, sizeof why, "%s not ready after %.0f s", program, limit);
    while (lr.fd >= 0 && harness_now() < deadline) {
        if (log_has_ready_line(&lr, ready, o->ready_arg)) {
            close(lr.fd);
            return 0;
        }
        if (!harness_alive(d)) {
            snprintf(why, sizeof why, "%s exited before it was ready (status %d)", program,
                     wait_status_code(d->status));
            break;
        }
        if (o->wait != NULL)
            o->wait(o->wait_arg, 0.01);
        else
            harness_sleep(0.01);
    }
    if (lr.fd >= 0)
        close(lr.fd);
    log_tail(d, why);
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &d->status, 0);
        d->pid = 0;
    }
    return -1;
}

int harness_start(harness_daemon *d, const harness_opts *opts)
{
    static const harness_opts none;
    const harness_opts *o = opts != NULL ? opts : &none;
    memset(d, 0, sizeof *d);
    d->port = o->port;
    d->beacon_port = o->beacon_port;
    int unused_beacon;
    if ((d->port == 0 && harness_free_ports(&d->port, d->beacon_port ? &unused_beacon
                                                                      : &d->beacon_port) != 0) ||
        (d->beacon_port == 0 && harness_free_ports(&unused_beacon, &d->beacon_port) != 0)) {
        fprintf(stderr, "harness: no free port on 127.0.0.1\n");
        return -1;
    }

    const char *program = o->program != NULL ? o->program : harness_daemon_path();
    int log_fd = log_create(d, o, program);
    if (log_fd < 0)
        return -1;

    const char *argv[HARNESS_MAX_ARGS];
    int argc = 0;
    argv[argc++] = program;
    if (o->program == NULL) {
        int n = daemon_args(argv + argc, HARNESS_MAX_ARGS - argc, d, o);
        if (n < 0) {
            close(log_fd);
            return -1;
        }
        argc += n;
    }
    for (const char *const *a = o->args; a != NULL && *a != NULL; a++) {
        if (argc >= HARNESS_MAX_ARGS - 1) {
            fprintf(stderr, "harness: too many arguments\n");
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

    d->started = harness_now();
    pid_t pid = spawn(argv, envp, log_fd);
    close(log_fd);
    if (pid < 0) {
        perror("harness: fork");
        return -1;
    }
    d->pid = pid;
    return wait_ready(d, o, program);
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
    /* The files the harness gave it go either way (the daemon leaves its database's .lock
     * file in place: see supervisor/persist.c). */
    static const char *const db_files[] = {"", "-wal", "-shm", ".crashes", ".lock"};
    for (size_t i = 0; d->db_path[0] != '\0' && i < sizeof db_files / sizeof db_files[0]; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s%s", d->db_path, db_files[i]);
        unlink(path);
    }
    if (d->own_socket)
        unlink(d->socket_path);
    return code;
}

long harness_rss_kb(const harness_daemon *d)
{
    return d->pid > 0 ? harness_proc_status_kb(d->pid, "VmRSS:") : -1;
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
