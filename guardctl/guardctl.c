/* guardctl.c — operators' command-line client of guardiand's control socket,
 * as systemctl is systemd's.
 *
 * One request, one reply (the protocol is in supervisor/ctl.h: frames of a
 * 4-byte big-endian length and a JSON object), except `log -f`, which reads
 * line frames until interrupted, and `list -w` / `status -w`, which keep a
 * `watch` connection and ask again on each of its change frames. Human
 * output by default, coloured only on a terminal; --json prints the
 * daemon's reply as it is, for scripts. NODE patterns and `all` are
 * expanded here (expand_nodes says why).
 *
 * Exit codes: 0 done; 1 the operation failed (unknown node or state, a node
 * that would not start, a pattern that matches nothing, ...); 2 usage; 3
 * the daemon is not running, or for is-ok / is-active a node that is not
 * (systemctl's convention); 4 permission denied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/proto.h" /* the protocol: framing, limits, the default socket */
#include "medm/medm.h"
#include "supervisor/version.h"

#define REPLY_TIMEOUT_MS 30000

/* EXIT_NOT_ALL: is-ok and is-active when a node is not (systemctl's 3 for
 * "not active"; it is also what a daemon that does not run gives). */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NOT_RUNNING = 3, EXIT_NOT_ALL = 3,
       EXIT_PERM = 4 };

static const char *socket_path;
static bool json_out;
static bool no_colour;  /* --no-color */
static bool watching;   /* list -w, status -w: --json prints one line a drawing */
static volatile sig_atomic_t interrupted;

/* ---- talking to the daemon ---- */

static int connect_daemon(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "guardctl: socket path too long: %s\n", socket_path);
        exit(EXIT_USAGE);
    }
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("guardctl: socket");
        exit(EXIT_FAILED);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    int e = errno;
    if (e == EACCES || e == EPERM) {
        fprintf(stderr, "guardctl: permission denied: cannot connect to %s (the socket's group "
                "decides who may use it)\n", socket_path);
        exit(EXIT_PERM);
    }
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
        fprintf(stderr,
                "guardctl: guardiand is not running (%s: %s).\n"
                "Start it with `systemctl start guardiand`, or `guardiand --config FILE`;\n"
                "another socket is chosen with --socket PATH or $GUARDIAND_SOCKET.\n",
                socket_path, e == ENOENT ? "no such socket" : "nobody answers");
        exit(EXIT_NOT_RUNNING);
    }
    fprintf(stderr, "guardctl: cannot connect to %s: %s\n", socket_path, strerror(e));
    exit(EXIT_NOT_RUNNING);
}

/* Whether bytes wait to be read (a reply sent before the daemon closed). */
static bool reply_waiting(int fd)
{
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/* False when the daemon has closed the connection (EPIPE, ECONNRESET): it
 * may have refused it with a reply first (no free slot), which the caller
 * then reads. Any other failure ends the program. */
static bool write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET) && reply_waiting(fd))
            return false;
        if (w <= 0) {
            fprintf(stderr, "guardctl: lost the connection to guardiand: %s\n",
                    w < 0 ? strerror(errno) : "closed");
            exit(EXIT_FAILED);
        }
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* 1 when len bytes were read, 0 at EOF before any, -1 interrupted. Waits at
 * most timeout_ms for each piece (-1: forever). */
static int read_all(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR) {
            if (interrupted)
                return -1;
            continue;
        }
        if (r == 0) {
            fprintf(stderr, "guardctl: no reply from guardiand in %d s\n", timeout_ms / 1000);
            exit(EXIT_FAILED);
        }
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR) {
            if (interrupted)
                return -1;
            continue;
        }
        if (n <= 0) {
            if (got == 0 && n == 0)
                return 0;
            fprintf(stderr, "guardctl: guardiand closed the connection mid-reply\n");
            exit(EXIT_FAILED);
        }
        got += (size_t)n;
    }
    return 1;
}

/* The next frame; NULL at EOF (or when interrupted). */
static json_t *read_frame(int fd, int timeout_ms)
{
    unsigned char hdr[CTL_FRAME_HEADER];
    int r = read_all(fd, hdr, CTL_FRAME_HEADER, timeout_ms);
    if (r <= 0) {
        if (r == 0 && !interrupted && timeout_ms >= 0) {
            fprintf(stderr, "guardctl: guardiand closed the connection without a reply\n");
            exit(EXIT_FAILED);
        }
        return NULL;
    }
    uint32_t len = ctl_frame_len(hdr);
    if (len == 0 || len > CTL_REPLY_MAX) {
        fprintf(stderr, "guardctl: bad reply length %u from guardiand\n", len);
        exit(EXIT_FAILED);
    }
    char *body = malloc(len);
    if (!body) {
        fprintf(stderr, "guardctl: out of memory\n");
        exit(EXIT_FAILED);
    }
    if (read_all(fd, body, len, timeout_ms) <= 0) {
        free(body);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);
    free(body);
    if (!json_is_object(j)) {
        fprintf(stderr, "guardctl: guardiand sent something that is not a JSON object\n");
        exit(EXIT_FAILED);
    }
    return j;
}

static void send_request(int fd, const char *cmd, json_t *args)
{
    json_t *req = json_pack("{s:s,s:o}", "cmd", cmd, "args", args ? args : json_object());
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t len = text ? strlen(text) : 0;
    if (!text || len > CTL_REQUEST_MAX) {
        fprintf(stderr, "guardctl: request too large\n");
        exit(EXIT_USAGE);
    }
    unsigned char hdr[CTL_FRAME_HEADER];
    ctl_frame_put_len(hdr, (uint32_t)len);
    /* Cut short: the daemon refused the connection; its reply is read next. */
    if (write_all(fd, hdr, CTL_FRAME_HEADER))
        write_all(fd, text, len);
    free(text);
}

static int exit_code_of(const char *code)
{
    if (!code)
        return EXIT_FAILED;
    if (strcmp(code, CTL_EPERM) == 0)
        return EXIT_PERM;
    if (strcmp(code, CTL_EINVAL) == 0 || strcmp(code, CTL_EUNKNOWN_CMD) == 0)
        return EXIT_USAGE;
    return EXIT_FAILED;
}

/* Send one request and read its reply. A refusal is printed (or, with
 * --json, the reply is) and the program exits with its code. */
static json_t *call(int fd, const char *cmd, json_t *args)
{
    send_request(fd, cmd, args);
    json_t *reply = read_frame(fd, REPLY_TIMEOUT_MS);
    if (!reply) /* interrupted (Ctrl-C in list -w): that is how it ends */
        exit(interrupted ? EXIT_OK : EXIT_FAILED);
    if (json_is_true(json_object_get(reply, "ok")))
        return reply;
    const char *code = json_string_value(json_object_get(reply, "code"));
    if (json_out) {
        json_dumpf(reply, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        const char *msg = json_string_value(json_object_get(reply, "error"));
        fprintf(stderr, "guardctl: %s\n", msg ? msg : "the request failed");
        json_t *results = json_object_get(reply, "results");
        size_t i;
        json_t *x;
        json_array_foreach(results, i, x)
            fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(x, "node")),
                    json_string_value(json_object_get(x, "result")));
    }
    int status = exit_code_of(code);
    json_decref(reply);
    exit(status);
}

/* One request: connect, call, close; the reply is the caller's. */
static json_t *request(const char *cmd, json_t *args)
{
    int fd = connect_daemon();
    json_t *reply = call(fd, cmd, args);
    close(fd);
    return reply;
}

static int print_json(json_t *reply)
{
    json_dumpf(reply, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(reply);
    return EXIT_OK;
}

/* ---- formatting ---- */

static const char *str(json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : dflt;
}

static const char *fmt_time(double t, char *buf, size_t len)
{
    if (t <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    /* Local time, with its zone: node log lines are UTC ("...Z"), and a
     * time without a zone next to them would be read wrongly. --since
     * reads local times too. */
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buf;
}

static const char *fmt_duration(double s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    unsigned long t = (unsigned long)s;
    if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (t < 3600)
        snprintf(buf, len, "%lumin %lus", t / 60, t % 60);
    else if (t < 86400)
        snprintf(buf, len, "%luh %lumin", t / 3600, t / 60 % 60);
    else
        snprintf(buf, len, "%lud %luh", t / 86400, t / 3600 % 24);
    return buf;
}

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* --since: seconds since 1970, a duration ago (30s, 10m, 2h, 7d, 1w) or a
 * local date and time (YYYY-MM-DD[ HH:MM[:SS]], or with a T). */
static int parse_since(const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end != text && *end == 0) {
        *out = v;
        return 0;
    }
    if (end != text && v >= 0 && end[0] && !end[1]) {
        double unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600
                      : end[0] == 'd' ? 86400 : end[0] == 'w' ? 604800 : 0;
        if (unit > 0) {
            *out = now_wall() - v * unit;
            return 0;
        }
    }
    static const char *const formats[] = {"%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                                          "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"};
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        struct tm tm = {0};
        const char *e = strptime(text, formats[i], &tm);
        if (e && !*e) {
            tm.tm_isdst = -1;
            *out = (double)mktime(&tm);
            return 0;
        }
    }
    return -1;
}

/* ---- commands ---- */

struct command;
typedef int (*command_fn)(const struct command *c, int argc, char **argv);

struct command {
    const char *name;
    command_fn fn;
    const char *usage;   /* after "guardctl NAME" */
    const char *help;    /* what it does, and its options */
    int min_args, max_args; /* positional arguments (-1: any number) */
};

static int usage_error(const struct command *c, const char *fmt, const char *arg)
{
    fprintf(stderr, "guardctl %s: ", c->name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: guardctl %s %s (see guardctl %s --help)\n", c->name, c->usage,
            c->name);
    return EXIT_USAGE;
}

/* Options every command takes (--help, --json) plus its own (extra, with
 * their short letters in shortopts). Returns the index of the first
 * positional argument, or -1 after printing help (exit 0) or an error. */
#define ROWS_MAX 100000 /* rows a history query may ask for (the daemon's bound) */

struct parsed {
    int n;           /* -n N */
    bool n_given;    /* -n or --all (history, audit, crashes: else the daemon's 100) */
    bool follow;     /* -f */
    bool backtrace;  /* --backtrace */
    bool accept;     /* spm --accept */
    const char *since;
    const char *out; /* medm --out */
    bool force;      /* reload --force */
    bool dry_run;    /* reload NODE --dry-run */
    bool watch;      /* list, status -w: draw again on each change */
    bool failed, not_ok, error; /* list filters */
    bool quiet;      /* is-ok, is-active -q */
    bool names;      /* states --names */
    int first;       /* first positional argument */
    int status;      /* when first < 0: the exit status */
};

static struct parsed parse_command(const struct command *c, int argc, char **argv,
                                   const char *shortopts, const struct option *extra)
{
    /* --no-pager as systemctl takes it: guardctl never pages, so scripts
     * and fingers used to systemctl may pass it. */
    struct option longopts[16] = {{"help", no_argument, NULL, 'h'},
                                  {"json", no_argument, NULL, 'J'},
                                  {"no-pager", no_argument, NULL, 'P'},
                                  {"no-color", no_argument, NULL, 'C'}};
    int nl = 4;
    for (; extra && extra->name; extra++)
        longopts[nl++] = *extra;
    longopts[nl] = (struct option){0};
    char opts[32];
    /* Options may follow the arguments (log NODE -n 5): GNU permutation. */
    snprintf(opts, sizeof(opts), "h%s", shortopts);
    struct parsed p = {.n = 20, .first = -1};
    optind = 0; /* glibc: start afresh on this argv */
    opterr = 0; /* one message for a bad option: ours, below */
    int ch;
    while ((ch = getopt_long(argc, argv, opts, longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            printf("usage: guardctl [--socket PATH] [--json] %s %s\n\n%s", c->name, c->usage,
                   c->help);
            printf("  --no-color      no colour (else: on a terminal, unless $NO_COLOR is set)\n"
                   "  -h, --help      this text\n");
            return p;
        case 'J': json_out = true; break;
        case 'P': break;
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 0 || v > ROWS_MAX) {
                p.status = usage_error(c, strcmp(c->name, "log") == 0
                                              ? "-n: expected 0 to 100000 lines, got '%s'"
                                              : "-n: expected 0 to 100000 rows, got '%s'", optarg);
                return p;
            }
            p.n = (int)v;
            p.n_given = true;
            break;
        }
        case 'a': p.n = ROWS_MAX; p.n_given = true; break;
        case 'f': p.follow = true; break;
        case 'A': p.accept = true; break;
        case 'b': p.backtrace = true; break;
        case 's': p.since = optarg; break;
        case 'o': p.out = optarg; break;
        case 'F': p.force = true; break;
        case 'D': p.dry_run = true; break;
        case 'C': no_colour = true; break;
        case 'w': p.watch = watching = true; break;
        case '1': p.failed = true; break;
        case '2': p.not_ok = true; break;
        case '3': p.error = true; break;
        case 'q': p.quiet = true; break;
        case '4': p.names = true; break;
        default:
            p.status = usage_error(c, "unknown option or missing value: '%s'",
                                   argv[optind - 1 > 0 ? optind - 1 : 0]);
            return p;
        }
    }
    int nargs = argc - optind;
    if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args)) {
        p.status = usage_error(c, "%s", nargs < c->min_args ? "missing arguments"
                                                              : "too many arguments");
        return p;
    }
    p.first = optind;
    return p;
}

static json_t *names_array(int argc, char **argv, int first)
{
    json_t *a = json_array();
    for (int i = first; i < argc; i++)
        json_array_append_new(a, json_string(argv[i]));
    return a;
}

/* -- colour -- */

/* Colour is for a person at a terminal: only when stdout is one, $NO_COLOR
 * is unset or empty (no-color.org), --no-color was not given, and never in
 * --json output. Decided once, after the options are read. */
static bool colour_on(void)
{
    static int on = -1;
    if (on < 0) {
        const char *nc = getenv("NO_COLOR");
        on = !no_colour && !json_out && !(nc && *nc) && isatty(STDOUT_FILENO);
    }
    return on;
}

enum colour { PLAIN, RED, GREEN, YELLOW };

/* text left-aligned in width columns (0: as it is), in colour c when colour
 * is on; the codes go around the text only, so the columns still line up. */
static void paint(FILE *out, enum colour c, int width, const char *text)
{
    static const char *const codes[] = {"", "\033[1;31m", "\033[32m", "\033[33m"};
    int len = (int)strlen(text);
    if (c != PLAIN && colour_on())
        fprintf(out, "%s%s\033[0m", codes[c], text);
    else
        fputs(text, out);
    if (width > len)
        fprintf(out, "%*s", width - len, "");
}

/* -- what a node of a list or status reply is: one home for the filters,
 * the colours and is-ok / is-active -- */

static bool is_true(json_t *o, const char *key) { return json_is_true(json_object_get(o, key)); }

/* Could not start, or quarantined (crashes, too slow): not running as it should. */
static bool node_failed(json_t *n) { return is_true(n, "failed") || is_true(n, "quarantined"); }
/* OK: running, and its OK is True (a stopped node is not OK). */
static bool node_is_ok(json_t *n) { return is_true(n, "running") && is_true(n, "ok"); }
/* ERROR True, or Connect (channels not connected, a write they stopped). */
static bool node_in_error(json_t *n)
{
    return is_true(n, "running") &&
           (is_true(n, "error") || json_is_false(json_object_get(n, "connected")));
}
static const char *node_activity(json_t *n)
{
    return is_true(n, "running") && is_true(n, "active") ? "active"
           : node_failed(n)                              ? "failed"
                                                         : "inactive";
}
/* The colour of its STATE: red in error or failed, yellow stalled or with a notification. */
static enum colour state_colour(json_t *n)
{
    if (node_failed(n) || node_in_error(n))
        return RED;
    if (is_true(n, "stalled") || (is_true(n, "notification") && *str(n, "usermsg", "")))
        return YELLOW;
    return PLAIN;
}

/* -- NODE arguments: names, patterns, all -- */

static bool is_pattern(const char *arg) { return strpbrk(arg, "*?[") != NULL; }

/* `all` is every node (node names are upper case: no node is called all);
 * an argument with * ? or [ is an fnmatch(3) pattern, case ignored (so
 * 'sus*' finds SUS_ETMX); anything else is a name. */
static bool arg_matches(const char *arg, const char *name)
{
    if (strcmp(arg, "all") == 0)
        return true;
    if (is_pattern(arg))
        return fnmatch(arg, name, FNM_CASEFOLD) == 0;
    return strcmp(arg, name) == 0;
}

static bool names_has(json_t *names, const char *name)
{
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x) if (strcmp(json_string_value(x), name) == 0) return true;
    return false;
}

/* The nodes the NODE arguments argv[first..] name, each once, in the order
 * given (a pattern's nodes by name). Patterns and `all` are expanded here,
 * in the client, from one `list` (only when there are any), not in the
 * daemon: the protocol goes on naming nodes exactly, so every command keeps
 * its checks (an unknown name is refused and nothing changes) and scripts
 * that speak it see no new rules; and the command acts on exactly the
 * nodes the pattern matched when it ran, as systemctl expands unit globs
 * itself. A pattern that matches nothing is an error naming it (exit 1):
 * `stop 'SUS_ETMY*'` with a typo must not look done. */
static json_t *expand_nodes(const struct command *c, int argc, char **argv, int first)
{
    json_t *names = json_array(), *reply = NULL, *nodes = NULL;
    for (int i = first; i < argc && !reply; i++)
        if (strcmp(argv[i], "all") == 0 || is_pattern(argv[i])) {
            reply = request("list", NULL);
            nodes = json_object_get(reply, "nodes");
        }
    for (int i = first; i < argc; i++) {
        if (!reply || !(strcmp(argv[i], "all") == 0 || is_pattern(argv[i]))) {
            if (!names_has(names, argv[i]))
                json_array_append_new(names, json_string(argv[i]));
            continue;
        }
        unsigned matched = 0;
        size_t k;
        json_t *n;
        json_array_foreach(nodes, k, n) {
            const char *name = str(n, "name", "");
            if (!arg_matches(argv[i], name))
                continue;
            matched++;
            if (!names_has(names, name))
                json_array_append_new(names, json_string(name));
        }
        if (!matched) {
            fprintf(stderr, "guardctl %s: no node matches '%s'%s\n", c->name, argv[i],
                    strcmp(argv[i], "all") == 0 ? " (there are no nodes)"
                                                : " (guardctl list shows the nodes)");
            exit(EXIT_FAILED);
        }
    }
    json_decref(reply);
    return names;
}

/* -- watching: list -w, status -w -- */

typedef void (*render_fn)(FILE *out, void *ctx);

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Draw, then draw again each time the daemon says something changed (a
 * `watch` connection: ctl.h), until Ctrl-C (exit 0) or the daemon goes
 * (exit 1). No polling: between changes guardctl sleeps in read(). On a
 * terminal each drawing replaces the last (the screen cleared); piped, each
 * follows the last after a blank line (--json: one object a line). A
 * drawing identical to the last one is not repeated. */
static int watch_loop(json_t *watch_args, render_fn render, void *ctx)
{
    /* No SA_RESTART: SIGINT interrupts the wait, and we end cleanly. */
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int fd = connect_daemon();
    json_decref(call(fd, "watch", watch_args));
    bool screen = isatty(STDOUT_FILENO) && !json_out;
    char *shown = NULL;
    bool closed = false;
    while (!interrupted && !closed) {
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (!m) {
            perror("guardctl: open_memstream");
            exit(EXIT_FAILED);
        }
        render(m, ctx);
        fclose(m);
        if (interrupted) {
            free(buf);
            break;
        }
        if (!shown || strcmp(buf, shown) != 0) {
            if (screen) {
                char t[32];
                printf("\033[H\033[2J" "guardctl: redrawn when something changes (Ctrl-C "
                       "ends); last change %s\n\n", fmt_time(now_wall(), t, sizeof(t)));
            } else if (shown && !json_out) {
                putchar('\n');
            }
            fwrite(buf, 1, len, stdout);
            fflush(stdout);
            free(shown);
            shown = buf;
        } else {
            free(buf);
        }
        json_t *frame = read_frame(fd, -1);
        closed = !frame;
        json_decref(frame);
        /* Frames that came meanwhile say the same thing: one drawing for all. */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (!closed && !interrupted && poll(&pfd, 1, 0) > 0) {
            frame = read_frame(fd, -1);
            closed = !frame;
            json_decref(frame);
        }
    }
    free(shown);
    close(fd);
    if (interrupted)
        return EXIT_OK;
    fprintf(stderr, "guardctl: guardiand closed the connection (did it stop?)\n");
    return EXIT_FAILED;
}

static void print_reply_json(FILE *out, json_t *reply)
{
    json_dumpf(reply, out, watching ? JSON_COMPACT : JSON_INDENT(2));
    fputc('\n', out);
}

/* -- list -- */

struct list_view {
    const struct parsed *p;
    int argc;
    char **argv;
};

/* Whether a node of the list passes the filters: a PATTERN (if any are
 * given) and one of --failed, --not-ok, --error (if any are given). */
static bool listed(const struct list_view *v, json_t *n)
{
    const struct parsed *p = v->p;
    bool named = p->first >= v->argc;
    for (int i = p->first; i < v->argc && !named; i++)
        named = arg_matches(v->argv[i], str(n, "name", ""));
    if (!named)
        return false;
    if (!p->failed && !p->not_ok && !p->error)
        return true;
    return (p->failed && node_failed(n)) || (p->not_ok && !node_is_ok(n)) ||
           (p->error && node_in_error(n));
}

static void render_list(FILE *out, void *ctx)
{
    const struct list_view *v = ctx;
    json_t *reply = request("list", NULL);
    json_t *nodes = json_object_get(reply, "nodes");
    size_t all = json_array_size(nodes);
    for (size_t i = 0; i < json_array_size(nodes);) {
        if (listed(v, json_array_get(nodes, i)))
            i++;
        else
            json_array_remove(nodes, i);
    }
    if (json_out) {
        print_reply_json(out, reply);
        json_decref(reply);
        return;
    }
    int w_name = 4, w_sys = 6, w_state = 10 /* "(disabled)" */, w_req = 7;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        int a = (int)strlen(str(n, "name", "")), b = (int)strlen(str(n, "system", "")),
            d = (int)strlen(str(n, "state", "")), e = (int)strlen(str(n, "request", ""));
        w_name = a > w_name ? a : w_name;
        w_sys = b > w_sys ? b : w_sys;
        w_state = d > w_state ? d : w_state;
        w_req = e > w_req ? e : w_req;
    }
    fprintf(out, "%-*s  %-*s  %-5s  %-7s  %-*s  %-*s  %-5s  %s\n", w_name, "NODE", w_sys,
            "SYSTEM", "OP", "MODE", w_state, "STATE", w_req, "REQUEST", "OK", "SINCE");
    json_array_foreach(nodes, i, n) {
        bool running = is_true(n, "running");
        char since[32];
        const char *state = running                  ? str(n, "state", "-")
                            : is_true(n, "failed")   ? "(failed)"
                            : is_true(n, "enabled")  ? "(stopped)"
                                                     : "(disabled)";
        const char *ok = !running                       ? "-"
                         : is_true(n, "too_slow")       ? "SLOW"
                         : is_true(n, "quarantined")    ? "QUAR"
                         : is_true(n, "ok")             ? "True"
                                                        : "False";
        fprintf(out, "%-*s  %-*s  %-5s  %-7s  ", w_name, str(n, "name", ""), w_sys,
                str(n, "system", ""), running ? str(n, "op", "-") : "-",
                running ? str(n, "mode", "-") : "-");
        paint(out, state_colour(n), w_state, state);
        fprintf(out, "  %-*s  ", w_req, str(n, "request", "-"));
        paint(out, !running ? PLAIN : strcmp(ok, "True") == 0 ? GREEN : RED, 5, ok);
        fprintf(out, "  %s",
                fmt_time(json_number_value(json_object_get(n, "since")), since, sizeof(since)));
        if (running && is_true(n, "load_pending")) { /* the module file is not what runs */
            fputs("  ", out);
            paint(out, YELLOW, 0, "modified");
        }
        fputc('\n', out);
    }
    size_t shown = json_array_size(nodes);
    if (shown == all)
        fprintf(out, "\n%zu node%s listed.\n", shown, shown == 1 ? "" : "s");
    else
        fprintf(out, "\n%zu of %zu node%s listed.\n", shown, all, all == 1 ? "" : "s");
    json_decref(reply);
}

static int cmd_list(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"failed", no_argument, NULL, '1'},
                                          {"not-ok", no_argument, NULL, '2'},
                                          {"error", no_argument, NULL, '3'},
                                          {"watch", no_argument, NULL, 'w'},
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "w", extra);
    if (p.first < 0)
        return p.status;
    struct list_view v = {.p = &p, .argc = argc, .argv = argv};
    if (p.watch)
        return watch_loop(json_object(), render_list, &v);
    render_list(stdout, &v);
    return EXIT_OK;
}

/* -- status -- */

/* "2 min ago": how long ago, roughly (the exact time is a --json away). */
static const char *fmt_ago(double t, char *buf, size_t len)
{
    double s = now_wall() - t;
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, len, "%.0f s ago", s);
    else if (s < 3600)
        snprintf(buf, len, "%.0f min ago", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%.0f h ago", s / 3600);
    else
        snprintf(buf, len, "%.0f days ago", s / 86400);
    return buf;
}

static void print_supervisor(FILE *out, json_t *s)
{
    char a[64], b[64];
    fprintf(out, "\xe2\x97\x8f guardiand %s - running (pid %lld), up %s, since %s\n", str(s, "version", "?"),
           (long long)json_integer_value(json_object_get(s, "pid")),
           fmt_duration(json_number_value(json_object_get(s, "uptime")), a, sizeof(a)),
           fmt_time(json_number_value(json_object_get(s, "started")), b, sizeof(b)));
    fprintf(out, "     Config: %s (ifo %s)\n", str(s, "config", "-"), str(s, "ifo", "-"));
    fprintf(out, "      Nodes: %lld running, %lld registered, %lld failed to start, %lld quarantined "
           "(%lld too slow)\n",
           (long long)json_integer_value(json_object_get(s, "nodes_running")),
           (long long)json_integer_value(json_object_get(s, "nodes_registered")),
           (long long)json_integer_value(json_object_get(s, "nodes_failed")),
           (long long)json_integer_value(json_object_get(s, "quarantined")),
           (long long)json_integer_value(json_object_get(s, "too_slow")));
    json_t *j = json_object_get(s, "jitter_ms");
    fprintf(out, "       Loop: %.1f %% busy at %g Hz; tick jitter p50 %.3f ms, p99 %.3f ms, max %.3f "
           "ms; %lld overruns, %lld skipped cycles\n",
           json_number_value(json_object_get(s, "loop_util")),
           json_number_value(json_object_get(s, "rate")),
           json_number_value(json_object_get(j, "p50")), json_number_value(json_object_get(j, "p99")),
           json_number_value(json_object_get(j, "max")),
           (long long)json_integer_value(json_object_get(s, "overruns")),
           (long long)json_integer_value(json_object_get(s, "skipped_cycles")));
    json_t *db = json_object_get(s, "database");
    const char *msg = str(db, "message", "");
    fprintf(out, "   Database: %s: %s%s%s", str(db, "path", "-"), str(db, "status", "?"), *msg ? ": " : "",
           msg);
    if (json_object_get(db, "queued"))
        fprintf(out, " (%lld queued, %lld committed)",
               (long long)json_integer_value(json_object_get(db, "queued")),
               (long long)json_integer_value(json_object_get(db, "committed")));
    const char *prev = str(s, "prev_boot", "");
    fprintf(out, "\n  Last boot: %s\n", strcmp(prev, "unclean") == 0 ? "did NOT end cleanly (crash or kill)"
                                 : strcmp(prev, "clean") == 0 ? "ended cleanly"
                                                              : "unknown (no database)");
    json_t *ca = json_object_get(s, "ca");
    if (ca)
        fprintf(out, "         CA: %lld clients, %lld channels, %lld subscriptions, tcp port %lld\n",
               (long long)json_integer_value(json_object_get(ca, "clients")),
               (long long)json_integer_value(json_object_get(ca, "channels")),
               (long long)json_integer_value(json_object_get(ca, "subscriptions")),
               (long long)json_integer_value(json_object_get(ca, "port")));
    fprintf(out, "    Control: %s\n", str(s, "control_socket", "-"));
    json_t *lr = json_object_get(s, "last_reload");
    if (lr) {
        fprintf(out, "Last reload: %s by %s: ", fmt_time(json_number_value(json_object_get(lr, "time")), a,
                                                   sizeof(a)), str(lr, "by", "?"));
        if (json_is_true(json_object_get(lr, "applied")))
            fprintf(out, "applied (%lld started, %lld stopped, %lld restarted, %lld failed)\n",
                   (long long)json_integer_value(json_object_get(lr, "started")),
                   (long long)json_integer_value(json_object_get(lr, "stopped")),
                   (long long)json_integer_value(json_object_get(lr, "restarted")),
                   (long long)json_integer_value(json_object_get(lr, "failed")));
        else
            fprintf(out, "NOT applied: %s\n", str(lr, "error", "?"));
    }
}

/* Path: the states from the current one to the request. */
static void print_path(FILE *out, json_t *n)
{
    json_t *path = json_object_get(n, "path");
    size_t len = json_array_size(path), i;
    json_t *x;
    fprintf(out, "         Path: ");
    if (len == 0) {
        paint(out, YELLOW, 0, "none");
        fprintf(out, " (no path from %s to %s)\n", str(n, "state", "?"), str(n, "request", "?"));
        return;
    }
    json_array_foreach(path, i, x)
        fprintf(out, "%s%s", i ? " -> " : "", json_string_value(x));
    if (len == 1)
        fprintf(out, " (at its request)");
    else if (is_true(n, "stalled"))
        fprintf(out, " (stalled: not followed until a new request)");
    else if (strcmp(str(n, "mode", ""), "MANUAL") == 0)
        fprintf(out, " (MANUAL: not followed)");
    fputc('\n', out);
}

/* The module file it runs (as loaded), and whether the file on disk still
 * holds that code (LOAD_PENDING). */
static void print_module(FILE *out, json_t *n)
{
    json_t *m = json_object_get(n, "module");
    if (!json_is_object(m) || !*str(m, "path", ""))
        return;
    char t[64];
    fprintf(out, "       Module: %s\n               as loaded: mtime %s, %lld bytes, hash %s\n",
            str(m, "path", "?"), fmt_time(json_number_value(json_object_get(m, "mtime")), t,
                                          sizeof(t)),
            (long long)json_integer_value(json_object_get(m, "size")), str(m, "hash", "?"));
    const char *state = str(m, "state", "");
    if (!is_true(m, "pending"))
        return;
    fprintf(out, "               ");
    paint(out, YELLOW, 0, strcmp(state, "missing") == 0
                              ? "module missing on disk (LOAD would fail; the loaded code runs)"
                              : "modified on disk since load (LOAD to run it)");
    fputc('\n', out);
}

static void print_node_status(FILE *out, json_t *n)
{
    bool running = is_true(n, "running");
    bool enabled = is_true(n, "enabled");
    char a[64], b[64];
    bool quarantined = is_true(n, "quarantined");
    bool too_slow = is_true(n, "too_slow");
    fprintf(out, "%s %s - %s (", running ? "\xe2\x97\x8f" : "\xe2\x97\x8b", str(n, "name", "?"),
            str(n, "system", "?"));
    if (!running && is_true(n, "failed"))
        paint(out, RED, 0, "FAILED to start");
    else if (!running)
        fputs("stopped", out);
    else if (quarantined)
        paint(out, RED, 0, too_slow ? "QUARANTINED, TOO SLOW: not executed; guardctl release"
                                    : "QUARANTINED: not executed; guardctl release");
    else
        paint(out, GREEN, 0, "running");
    fprintf(out, ", %s)\n", enabled ? "enabled" : "disabled");
    if (is_true(n, "failed")) {
        fprintf(out, "       Failed: ");
        paint(out, RED, 0, str(n, "failure", "?"));
        fputc('\n', out);
    }
    if (running) {
        double since = json_number_value(json_object_get(n, "since"));
        fprintf(out, "        State: ");
        paint(out, state_colour(n), 0, str(n, "state", "-"));
        fprintf(out, " since %s (%s ago)\n", fmt_time(since, a, sizeof(a)),
                fmt_duration(now_wall() - since, b, sizeof(b)));
    } else {
        fprintf(out, "        State: %s (when it last ran)\n", str(n, "state", "-"));
    }
    fprintf(out, "      Request: %s", str(n, "request", "-"));
    json_t *set = json_object_get(n, "request_set");
    if (json_is_object(set))
        fprintf(out, " (set by %s %s)", str(set, "by", "?"),
                fmt_ago(json_number_value(json_object_get(set, "time")), a, sizeof(a)));
    fputc('\n', out);
    if (running) {
        fprintf(out, "       Target: %s\n", str(n, "target", "-"));
        print_path(out, n);
        fprintf(out, "      Nominal: %s\n", str(n, "nominal", "-"));
    }
    fprintf(out, "         Mode: %s\n           Op: %s\n", str(n, "mode", "-"), str(n, "op", "-"));
    if (running) {
        bool ok = is_true(n, "ok");
        fprintf(out, "       Status: %s   OK: ", str(n, "status", "-"));
        paint(out, ok ? GREEN : RED, 0, ok ? "True" : "False");
        fprintf(out, "   Active: %s\n", is_true(n, "active") ? "True" : "False");
        if (is_true(n, "stalled")) {
            fprintf(out, "      Stalled: ");
            paint(out, YELLOW, 0, "STALLED");
            fprintf(out, " (it jumped while MANAGED or MANUAL: it waits for a new request)\n");
        }
        const char *em = str(n, "error_message", "");
        bool connected = is_true(n, "connected");
        const char *error = is_true(n, "error") ? "True" : *em || !connected ? "Connect" : "no";
        fprintf(out, "        Error: ");
        paint(out, strcmp(error, "no") ? RED : PLAIN, 0, error);
        fprintf(out, "%s%s\n", *em ? ": " : "", em);
        fprintf(out, "      Connect: %s   Set points: %lld watched, %lld changed (guardctl spm)\n",
                connected ? "OK" : "ERROR (channels not connected: see the log)",
                (long long)json_integer_value(json_object_get(n, "spm_total")),
                (long long)json_integer_value(json_object_get(n, "spm_changed")));
        const char *um = str(n, "usermsg", "");
        fprintf(out, " Notification: ");
        if (is_true(n, "notification") && *um)
            paint(out, YELLOW, 0, um);
        else
            fputs("none", out);
        fputc('\n', out);
    }
    json_t *steps = json_object_get(n, "steps");
    if (steps) {
        double budget = json_number_value(json_object_get(steps, "budget"));
        char over[64] = "no budget";
        if (budget > 0)
            snprintf(over, sizeof(over), "%lld over the %.3g ms budget",
                     (long long)json_integer_value(json_object_get(steps, "over_budget")),
                     budget * 1e3);
        fprintf(out, "    Step time: last %.3f ms, mean %.3f ms, max %.3f ms; %s\n",
                json_number_value(json_object_get(steps, "last")) * 1e3,
                json_number_value(json_object_get(steps, "mean")) * 1e3,
                json_number_value(json_object_get(steps, "max")) * 1e3, over);
    }
    print_module(out, n);
    const char *why = str(n, "quarantine_reason", "");
    fprintf(out, "      Crashes: %lld\n   Quarantine: ",
            (long long)json_integer_value(json_object_get(n, "crashes")));
    paint(out, quarantined ? RED : PLAIN, 0, quarantined ? "QUARANTINED" : "no");
    fprintf(out, "%s%s\n", quarantined && *why ? ", " : "", quarantined ? why : "");
    if (quarantined)
        fprintf(out, "               (guardctl release %s runs it again)\n", str(n, "name", "?"));
    json_t *args = json_object_get(n, "args");
    if (json_array_size(args)) {
        fprintf(out, "    Arguments:");
        size_t i;
        json_t *x;
        json_array_foreach(args, i, x)
            fprintf(out, " %s", json_string_value(x));
        fputc('\n', out);
    }
    json_t *log = json_object_get(n, "log");
    if (json_array_size(log)) {
        fputc('\n', out);
        size_t i;
        json_t *x;
        json_array_foreach(log, i, x)
            fprintf(out, "%s\n", json_string_value(x));
    }
}

static void render_status(FILE *out, void *ctx)
{
    json_t *args = ctx;
    json_t *reply = request("status", json_incref(args));
    if (json_out) {
        print_reply_json(out, reply);
        json_decref(reply);
        return;
    }
    json_t *sup = json_object_get(reply, "supervisor");
    if (sup)
        print_supervisor(out, sup);
    json_t *nodes = json_object_get(reply, "nodes");
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        if (i)
            fputc('\n', out);
        print_node_status(out, n);
    }
    json_decref(reply);
}

static int cmd_status(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"watch", no_argument, NULL, 'w'}, {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "w", extra);
    if (p.first < 0)
        return p.status;
    json_t *args = json_object(), *names = NULL;
    if (p.first < argc) {
        names = expand_nodes(c, argc, argv, p.first);
        json_object_set(args, "nodes", names);
    }
    int rc = EXIT_OK;
    if (p.watch) {
        /* The daemon tells of changes of these nodes only, when they are few
         * enough to name (CTL_WATCH_NODES); else of any. */
        json_t *w = json_object();
        if (names && json_array_size(names) <= 64)
            json_object_set(w, "nodes", names);
        rc = watch_loop(w, render_status, args);
    } else {
        render_status(stdout, args);
    }
    json_decref(names);
    json_decref(args);
    return rc;
}

/* -- is-ok, is-active: for scripts, as systemctl is-active -- */

static int cmd_is(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"quiet", no_argument, NULL, 'q'}, {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "q", extra);
    if (p.first < 0)
        return p.status;
    json_t *names = expand_nodes(c, argc, argv, p.first);
    bool several = json_array_size(names) > 1;
    json_t *reply = request("status", json_pack("{s:o}", "nodes", names));
    bool active = strcmp(c->name, "is-active") == 0, all = true;
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(reply, "nodes"), i, n) {
        const char *word = active ? node_activity(n) : node_is_ok(n) ? "ok" : "not-ok";
        all &= active ? strcmp(word, "active") == 0 : node_is_ok(n);
        if (p.quiet || json_out)
            continue;
        if (several)
            printf("%s: ", str(n, "name", "?"));
        printf("%s\n", word);
    }
    if (json_out)
        print_json(json_incref(reply));
    json_decref(reply);
    return all ? EXIT_OK : EXIT_NOT_ALL;
}

/* -- states -- */

static int by_index_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "index"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "index"));
    return x < y ? 1 : x > y ? -1 : 0;
}

/* One edge of a states row, "B" or "B (weight 5)", after the others in
 * buf; false when it does not fit. */
static bool add_edge(char *buf, size_t len, size_t *used, const char *to, json_t *weight)
{
    char w[40] = "";
    if (weight)
        snprintf(w, sizeof(w), " (weight %.12g)", json_number_value(weight));
    int n = snprintf(buf + *used, len - *used, "%s%s%s", *used ? " " : "", to ? to : "?", w);
    if (n < 0 || *used + (size_t)n >= len) {
        buf[*used] = '\0';
        return false;
    }
    *used += (size_t)n;
    return true;
}

/* The EDGES TO column: the listed edges, each with its weight when not 1,
 * then the edges to goto states that have one. */
static void state_edges(json_t *state, char *buf, size_t len)
{
    json_t *listed = json_object_get(state, "edges"), *weights = json_object_get(state, "weights");
    size_t used = 0, k;
    json_t *e;
    const char *to;
    json_array_foreach(listed, k, e)
        if (!add_edge(buf, len, &used, json_string_value(e),
                      json_object_get(weights, json_string_value(e))))
            return;
    json_object_foreach(weights, to, e) {
        bool seen = false;
        json_t *x;
        json_array_foreach(listed, k, x)
            seen = seen || strcmp(json_string_value(x) ? json_string_value(x) : "", to) == 0;
        if (!seen && !add_edge(buf, len, &used, to, e))
            return;
    }
}

/* -- snapshot -- */

static const char *snap_value(json_t *x, const char *key)
{
    const char *v = str(x, key, NULL);
    return v ? v : "-";
}

/* save NAME [--force], list, diff NAME [NODE...], restore NAME [--dry-run]
 * [NODE...], delete NAME. */
static int cmd_snapshot(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"force", no_argument, NULL, 'F'},
                                          {"dry-run", no_argument, NULL, 'D'},
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "", extra);
    if (p.first < 0)
        return p.status;
    const char *sub = argv[p.first];
    int nargs = argc - p.first - 1;
    const char *name = nargs > 0 ? argv[p.first + 1] : NULL;
    bool list = strcmp(sub, "list") == 0, save = strcmp(sub, "save") == 0,
         del = strcmp(sub, "delete") == 0, diff = strcmp(sub, "diff") == 0,
         restore = strcmp(sub, "restore") == 0;
    if (!list && !save && !del && !diff && !restore)
        return usage_error(c, "unknown snapshot command '%s'", sub);
    if ((list && nargs) || (!list && !nargs) || ((save || del) && nargs > 1))
        return usage_error(c, "%s", list ? "list takes no arguments"
                                         : nargs ? "too many arguments" : "missing NAME");
    if ((p.force && !save) || (p.dry_run && !restore))
        return usage_error(c, "%s", p.force ? "--force is for save" : "--dry-run is for restore");
    char cmd[32];
    snprintf(cmd, sizeof(cmd), "snapshot-%s", sub);
    json_t *args = json_object();
    if (name)
        json_object_set_new(args, "name", json_string(name));
    if (save)
        json_object_set_new(args, "force", json_boolean(p.force));
    if (restore)
        json_object_set_new(args, "dry_run", json_boolean(p.dry_run));
    if ((diff || restore) && nargs > 1)
        json_object_set_new(args, "nodes", names_array(argc, argv, p.first + 2));
    json_t *reply = request(cmd, args);
    if (json_out) {
        long long failed = json_integer_value(json_object_get(reply, "failed"));
        print_json(reply);
        return failed ? EXIT_FAILED : EXIT_OK;
    }
    size_t i;
    json_t *x;
    if (save) {
        printf("snapshot %s saved: %lld nodes\n", name,
               (long long)json_integer_value(json_object_get(reply, "nodes")));
    } else if (del) {
        printf("snapshot %s deleted\n", name);
    } else if (list) {
        printf("%-24s  %-23s  %-12s  %s\n", "NAME", "SAVED", "BY", "NODES");
        json_array_foreach(json_object_get(reply, "snapshots"), i, x) {
            char t[32];
            printf("%-24s  %-23s  %-12s  %lld\n", str(x, "name", "?"),
                   fmt_time(json_number_value(json_object_get(x, "time")), t, sizeof(t)),
                   str(x, "user", "-"), (long long)json_integer_value(json_object_get(x, "nodes")));
        }
    } else {
        char t[32];
        printf("snapshot %s (saved %s by %s)%s\n", name,
               fmt_time(json_number_value(json_object_get(reply, "time")), t, sizeof(t)),
               str(reply, "user", "?"),
               is_true(reply, "dry_run") ? ": dry run, nothing changed" : "");
        json_t *nodes = json_object_get(reply, "nodes");
        if (!json_array_size(nodes))
            printf("no differences\n");
        json_array_foreach(nodes, i, x) {
            size_t k;
            json_t *d;
            json_array_foreach(json_object_get(x, "changes"), k, d) {
                printf("%-24s  %-8s  %s -> %s", str(x, "node", "?"), str(d, "what", "?"),
                       snap_value(d, "now"), snap_value(d, "snapshot"));
                if (json_object_get(d, "result"))
                    printf("  %s%s", is_true(d, "failed") ? "REFUSED: " : "",
                           str(d, "result", ""));
                putchar('\n');
            }
        }
        json_t *extra_nodes = json_object_get(reply, "not_in_snapshot");
        if (json_array_size(extra_nodes)) {
            printf("not in the snapshot (left alone):");
            json_array_foreach(extra_nodes, i, x)
                printf(" %s", json_string_value(x));
            putchar('\n');
        }
    }
    long long failed = json_integer_value(json_object_get(reply, "failed"));
    if (failed)
        fprintf(stderr, "guardctl: %lld change%s not restored; first: %s\n", failed,
                failed == 1 ? "" : "s", str(reply, "first_failure", "?"));
    json_decref(reply);
    return failed ? EXIT_FAILED : EXIT_OK;
}

/* -- access -- */

/* guardctl access NODE [USER[@HOST]]: HOST may be a name, looked up here (a
 * command-line tool may wait for DNS; the daemon never does); USER alone
 * means from this host, as the control socket's own users write. */
static int cmd_access(const struct command *c, int argc, char **argv)
{
    struct parsed p = parse_command(c, argc, argv, "", NULL);
    if (p.first < 0)
        return p.status;
    json_t *args = json_pack("{s:s}", "node", argv[p.first]);
    char user[256] = "", host[INET_ADDRSTRLEN] = "";
    if (p.first + 1 < argc) {
        const char *who = argv[p.first + 1], *at = strrchr(who, '@');
        size_t ulen = at ? (size_t)(at - who) : strlen(who);
        if (ulen == 0 || ulen >= sizeof(user) || (at && !at[1])) {
            fprintf(stderr, "guardctl: '%s': expected USER or USER@HOST\n", who);
            json_decref(args);
            return EXIT_USAGE;
        }
        memcpy(user, who, ulen);
        user[ulen] = '\0';
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
        const char *name = at ? at + 1 : "127.0.0.1";
        int rc = getaddrinfo(name, NULL, &hints, &res);
        if (rc != 0) {
            fprintf(stderr, "guardctl: host %s: %s\n", name, gai_strerror(rc));
            json_decref(args);
            return EXIT_USAGE;
        }
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, host, sizeof(host));
        freeaddrinfo(res);
        json_object_set_new(args, "user", json_string(user));
        json_object_set_new(args, "host", json_string(host));
    }
    json_t *reply = request("access", args);
    if (json_out)
        return print_json(reply);
    if (is_true(reply, "open"))
        printf("%s: access is OPEN (no access rules): anyone may write every channel\n",
               str(reply, "node", "?"));
    if (user[0])
        printf("%s from %s:\n", user, host);
    printf("%-8s  %s%s\n", "CHANNEL", user[0] ? "WRITE  " : "", "WHO MAY WRITE (RULE)");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(reply, "channels"), i, x) {
        const char *may = json_is_true(json_object_get(x, "write")) ? "yes    " : "NO     ";
        printf("%-8s  %s%s\n", str(x, "channel", "?"), user[0] ? may : "", str(x, "allows", "?"));
        if (json_object_get(x, "file"))
            printf("%-8s  %s  rule %s:%lld: [access %s] %s = %s\n", "", user[0] ? "     " : "",
                   str(x, "file", "?"), (long long)json_integer_value(json_object_get(x, "line")),
                   str(x, "section", "?"), str(x, "key", "?"), str(x, "value", "?"));
    }
    json_decref(reply);
    return EXIT_OK;
}

static int cmd_states(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"names", no_argument, NULL, '4'}, {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "", extra);
    if (p.first < 0)
        return p.status;
    json_t *reply = request("states", json_pack("{s:s}", "node", argv[p.first]));
    if (json_out)
        return print_json(reply);
    json_t *list = json_object_get(reply, "states");
    size_t n = json_array_size(list), i;
    json_t *x;
    json_t **rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows) {
        fprintf(stderr, "guardctl: out of memory\n");
        return EXIT_FAILED;
    }
    int w_name = 5;
    json_array_foreach(list, i, x) {
        rows[i] = x;
        int w = (int)strlen(str(x, "name", ""));
        w_name = w > w_name ? w : w_name;
    }
    /* Highest index first, as Guardian prints a system's states. */
    qsort(rows, n, sizeof(*rows), by_index_desc);
    if (p.names) { /* the requestable states in index order, as REQUEST_ENUM (completion) */
        for (i = n; i-- > 0;)
            if (is_true(rows[i], "requestable"))
                printf("%s\n", str(rows[i], "name", ""));
        free(rows);
        json_decref(reply);
        return EXIT_OK;
    }
    printf("%s (%s): state %s, request %s, target %s, nominal %s\n", str(reply, "node", "?"),
           str(reply, "system", "?"), str(reply, "state", "-"), str(reply, "request", "-"),
           str(reply, "target", "-"), str(reply, "nominal", "-"));
    printf("%5s  %-3s  %-4s  %-*s  %s\n", "INDEX", "REQ", "GOTO", w_name, "STATE", "EDGES TO");
    for (i = 0; i < n; i++) {
        json_t *s = rows[i];
        char edges[1024] = "";
        state_edges(s, edges, sizeof(edges));
        char marks[64] = "";
        static const char *const mark_keys[] = {"current", "target", "request", "nominal"};
        for (unsigned m = 0; m < 4; m++)
            if (is_true(s, mark_keys[m]))
                snprintf(marks + strlen(marks), sizeof(marks) - strlen(marks), "%s%s",
                         marks[0] ? ", " : "<- ", mark_keys[m]);
        printf("%5lld  %-3s  %-4s  ", (long long)json_integer_value(json_object_get(s, "index")),
               is_true(s, "requestable") ? "*" : "", is_true(s, "goto") ? "goto" : "");
        paint(stdout, is_true(s, "current") ? GREEN : PLAIN, w_name, str(s, "name", "?"));
        printf("  %-*s%s\n", marks[0] ? 24 : 0, edges[0] ? edges : "-", marks);
    }
    json_t *path = json_object_get(reply, "path");
    printf("\n(* requestable: in the REQUEST menu; goto: reachable from every state)\nPath: ");
    json_array_foreach(path, i, x)
        printf("%s%s", i ? " -> " : "", json_string_value(x));
    printf("%s\n", json_array_size(path) ? "" : "none");
    free(rows);
    json_decref(reply);
    return EXIT_OK;
}

/* -- changes to nodes: start stop restart enable disable -- */

static int cmd_nodes_action(const struct command *c, int argc, char **argv)
{
    struct parsed p = parse_command(c, argc, argv, "", NULL);
    if (p.first < 0)
        return p.status;
    json_t *args = json_pack("{s:o}", "nodes", expand_nodes(c, argc, argv, p.first));
    json_t *reply = request(c->name, args);
    if (json_out)
        return print_json(reply);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(reply, "results"), i, x)
        printf("%s: %s\n", str(x, "node", "?"), str(x, "result", "?"));
    json_decref(reply);
    return EXIT_OK;
}

/* -- reload -- */

static void print_diff_list(json_t *diff, const char *key, const char *title)
{
    json_t *l = json_object_get(diff, key);
    long long count = json_integer_value(json_object_get(l, "count"));
    if (!count)
        return;
    printf("  %s (%lld):", title, count);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(l, "items"), i, x)
        printf(" %s", json_string_value(x));
    if ((long long)json_array_size(json_object_get(l, "items")) < count)
        printf(" ...");
    putchar('\n');
}

/* reload NODE...: each node's system loaded again, one request each; the
 * difference printed before the outcome. Exit 1 if any was not loaded. */
static int reload_nodes(const struct parsed *p, int argc, char **argv)
{
    int status = EXIT_OK;
    json_t *all = json_out ? json_array() : NULL;
    for (int i = p->first; i < argc; i++) {
        json_t *reply = request("reload", json_pack("{s:s,s:b,s:b}", "node", argv[i], "force",
                                                    p->force, "dry_run", p->dry_run));
        const char *refused = str(reply, "refused", NULL);
        if (refused || (!p->dry_run && !json_is_true(json_object_get(reply, "loaded"))))
            status = EXIT_FAILED;
        if (all) {
            json_array_append_new(all, reply);
            continue;
        }
        json_t *diff = json_object_get(reply, "diff");
        printf("%s:\n", argv[i]);
        print_diff_list(diff, "states_added", "states added");
        print_diff_list(diff, "states_removed", "states removed");
        print_diff_list(diff, "edges_added", "edges added");
        print_diff_list(diff, "edges_removed", "edges removed");
        print_diff_list(diff, "index", "index changes");
        print_diff_list(diff, "requestable", "requestable changes");
        if (refused)
            printf("  LOAD %s%s\n", refused, p->dry_run ? " (dry run)" : " (--force loads it)");
        else
            printf("  %s\n", p->dry_run ? "would load (dry run)" : "loaded");
        json_decref(reply);
    }
    if (all)
        print_json(all);
    return status;
}

static int cmd_reload(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"force", no_argument, NULL, 'F'},
                                          {"dry-run", no_argument, NULL, 'D'},
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "", extra);
    if (p.first < 0)
        return p.status;
    if (p.first < argc)
        return reload_nodes(&p, argc, argv);
    if (p.dry_run)
        return usage_error(c, "%s", "--dry-run is for nodes: reload NODE... --dry-run");
    json_t *reply = request(c->name, json_pack("{s:b}", "force", p.force));
    if (json_out)
        return print_json(reply);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(reply, "changes"), i, x) {
        const char *why = str(x, "why", "");
        printf("%s: %s%s%s\n", str(x, "node", "?"), str(x, "what", "?"), *why ? ": " : "", why);
    }
    json_t *n = json_object_get(reply, "counts");
    long long failed = json_integer_value(json_object_get(n, "failed"));
    printf("%s applied: %lld nodes (%lld started, %lld stopped, %lld restarted, %lld failed)\n",
           str(reply, "file", "the configuration"),
           (long long)json_integer_value(json_object_get(n, "nodes")),
           (long long)json_integer_value(json_object_get(n, "started")),
           (long long)json_integer_value(json_object_get(n, "stopped")),
           (long long)json_integer_value(json_object_get(n, "restarted")), failed);
    json_decref(reply);
    return failed ? EXIT_FAILED : EXIT_OK;
}

static int cmd_create(const struct command *c, int argc, char **argv)
{
    struct parsed p = parse_command(c, argc, argv, "", NULL);
    if (p.first < 0)
        return p.status;
    for (int i = p.first + 2; i < argc; i++)
        if (!strchr(argv[i], '='))
            return usage_error(c, "'%s': arguments are key=value", argv[i]);
    json_t *args = json_pack("{s:s,s:s,s:o}", "node", argv[p.first], "system", argv[p.first + 1],
                             "args", names_array(argc, argv, p.first + 2));
    json_t *reply = request("create", args);
    if (json_out)
        return print_json(reply);
    printf("%s: created and started (system %s)\n", argv[p.first], argv[p.first + 1]);
    json_decref(reply);
    /* Arguments the system does not read (a mistyped key?) are known once
     * the node has left INIT: wait a moment for that verdict. */
    if (argc - p.first > 2)
        for (int tries = 0; tries < 30; tries++) {
            json_t *st = request("status", json_pack("{s:[s]}", "nodes", argv[p.first]));
            json_t *unread = json_object_get(json_array_get(json_object_get(st, "nodes"), 0),
                                             "unread_args");
            bool known = json_is_string(unread);
            if (known && *json_string_value(unread))
                fprintf(stderr, "guardctl: warning: system %s did not read %s (a mistyped key?)\n",
                        argv[p.first + 1], json_string_value(unread));
            json_decref(st);
            if (known)
                break;
            nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
        }
    return EXIT_OK;
}

static int cmd_one_node(const struct command *c, int argc, char **argv)
{
    struct parsed p = parse_command(c, argc, argv, "", NULL);
    if (p.first < 0)
        return p.status;
    json_t *reply = request(c->name, json_pack("{s:s}", "node", argv[p.first]));
    if (json_out)
        return print_json(reply);
    if (strcmp(c->name, "release") == 0)
        printf("%s: %s\n", argv[p.first], json_is_true(json_object_get(reply, "was_quarantined"))
                                              ? "released from quarantine"
                                              : "released (it was not quarantined)");
    else if (strcmp(c->name, "release-manager") == 0 && *str(reply, "was", ""))
        printf("%s: released from its manager %s\n", argv[p.first], str(reply, "was", ""));
    else if (strcmp(c->name, "release-manager") == 0)
        printf("%s: has no manager\n", argv[p.first]);
    else
        printf("%s: destroyed\n", argv[p.first]);
    json_decref(reply);
    return EXIT_OK;
}

/* -- tree -- */

/* One line per node, indented under its manager as systemctl
 * list-dependencies draws it: "├─" before each but the last child, "└─"
 * before the last, "│ " continuing a level that has more children below. */
static void print_tree(json_t *t, char *indent, size_t len, size_t used, bool last, bool root)
{
    const char *state = str(t, "state", ""), *req = str(t, "request", "");
    bool connected = json_is_true(json_object_get(t, "connected"));
    const char *ok = !connected ? "-" : json_is_true(json_object_get(t, "ok")) ? "OK" : "NOT OK";
    const char *manager = str(t, "manager", ""), *fault = str(t, "fault", "");
    printf("%.*s%s%s  %s%s%s  %s  %s", (int)used, indent, root ? "" : last ? "└─" : "├─",
           str(t, "name", "?"), connected ? state : "(disconnected)",
           connected && strcmp(state, req) != 0 ? " -> " : "",
           connected && strcmp(state, req) != 0 ? req : "", str(t, "mode", ""), ok);
    if (*manager)
        printf("  managed by %s", manager);
    if (!json_is_true(json_object_get(t, "local")))
        printf("  [remote]");
    if (*fault && strcmp(ok, "NOT OK") != 0 && connected)
        printf("  (%s)", fault);
    putchar('\n');
    json_t *subs = json_object_get(t, "subnodes");
    size_t n = json_array_size(subs), i;
    size_t add = root ? 0 : strlen(last ? "  " : "│ ");
    if (used + add + 1 > len)
        return;
    if (!root)
        memcpy(indent + used, last ? "  " : "│ ", add);
    json_t *x;
    json_array_foreach(subs, i, x)
        print_tree(x, indent, len, used + add, i + 1 == n, false);
}

static int cmd_tree(const struct command *c, int argc, char **argv)
{
    struct parsed p = parse_command(c, argc, argv, "", NULL);
    if (p.first < 0)
        return p.status;
    json_t *args = p.first < argc ? json_pack("{s:s}", "node", argv[p.first]) : json_object();
    json_t *reply = request("tree", args);
    if (json_out)
        return print_json(reply);
    json_t *roots = json_object_get(reply, "tree");
    size_t i;
    json_t *t;
    char indent[256];
    json_array_foreach(roots, i, t)
        print_tree(t, indent, sizeof(indent), 0, true, true);
    if (json_array_size(roots) == 0)
        printf("no node here manages another\n");
    json_decref(reply);
    return EXIT_OK;
}

/* -- medm -- */

static int cmd_medm(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"out", required_argument, NULL, 'o'},
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "o:", extra);
    if (p.first < 0)
        return p.status;
    json_t *reply = request("medm", NULL);
    if (json_out)
        return print_json(reply);
    const char *dir = p.out ? p.out : ".";
    size_t i;
    json_t *f;
    unsigned written = 0, n = 0;
    json_array_foreach(json_object_get(reply, "files"), i, f) {
        char err[512];
        const char *name = str(f, "name", "");
        /* The daemon's names: no directory part, ever. */
        if (!*name || strchr(name, '/') || name[0] == '.') {
            fprintf(stderr, "guardctl: medm: the daemon sent a bad file name '%s'\n", name);
            json_decref(reply);
            return EXIT_FAILED;
        }
        int w = medm_write_file(dir, name, str(f, "text", ""), err, sizeof(err));
        if (w < 0) {
            fprintf(stderr, "guardctl: medm: %s\n", err);
            json_decref(reply);
            return EXIT_FAILED;
        }
        written += (unsigned)w;
        n++;
        printf("%s/%s%s\n", dir, name, w ? "" : " (unchanged)");
    }
    printf("%u screens, %u written\n", n, written);
    json_decref(reply);
    return EXIT_OK;
}

/* -- request, mode, op -- */

static int cmd_control(const struct command *c, int argc, char **argv)
{
    struct parsed p = parse_command(c, argc, argv, "", NULL);
    if (p.first < 0)
        return p.status;
    const char *key = strcmp(c->name, "request") == 0 ? "state" : c->name;
    char value[256];
    snprintf(value, sizeof(value), "%s", argv[p.first + 1]);
    if (strcmp(c->name, "request") != 0) /* AUTO, auto, Auto: the same */
        for (char *q = value; *q; q++)
            *q = (char)(*q >= 'a' && *q <= 'z' ? *q - 32 : *q);
    json_t *reply = request(c->name, json_pack("{s:s,s:s}", "node", argv[p.first], key, value));
    if (json_out)
        return print_json(reply);
    /* As caput: the value before and after. */
    printf("%s: %s %s -> %s\n", argv[p.first], str(reply, "channel", c->name),
           str(reply, "old", "?"), str(reply, "value", value));
    json_decref(reply);
    return EXIT_OK;
}

/* -- log -- */

static int since_arg(const struct command *c, const struct parsed *p, json_t *args);

static int cmd_log(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"lines", required_argument, NULL, 'n'},
                                          {"follow", no_argument, NULL, 'f'},
                                          {"since", required_argument, NULL, 's'},
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "n:fs:", extra);
    if (p.first < 0)
        return p.status;
    /* --since alone: every line since then (up to the daemon's bound). */
    int n = p.since && !p.n_given ? ROWS_MAX : p.n;
    json_t *args = json_pack("{s:s,s:i,s:b}", "node", argv[p.first], "n", n, "follow", p.follow);
    int r = since_arg(c, &p, args);
    if (r) {
        json_decref(args);
        return r;
    }
    if (p.follow) {
        /* No SA_RESTART: SIGINT interrupts the wait, and we end cleanly. */
        struct sigaction sa = {.sa_handler = on_sigint};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    int fd = connect_daemon();
    json_t *reply = call(fd, "log", args);
    size_t i;
    json_t *x;
    if (json_out) {
        json_dumpf(reply, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        bool stored = json_is_true(json_object_get(reply, "stored"));
        json_t *lines = json_object_get(reply, "lines");
        if (json_object_get(reply, "warning"))
            fprintf(stderr, "guardctl: %s\n", str(reply, "warning", ""));
        if (json_is_false(json_object_get(reply, "running")))
            printf("(%s is not running: %s)\n", argv[p.first],
                   stored ? "its log from the database" : "its log from its last run");
        /* On stderr: stdout stays the lines alone, for grep and the like. */
        if (json_is_true(json_object_get(reply, "more")) && json_object_get(reply, "cut"))
            fprintf(stderr, "guardctl: %zu lines, the newest: cut by %s; older lines exist\n",
                    json_array_size(lines), str(reply, "cut", "the daemon"));
        else if (json_is_true(json_object_get(reply, "more")) && (p.n_given || p.since))
            fprintf(stderr, "guardctl: the last %zu lines; older lines exist: -n N or --since T\n",
                    json_array_size(lines));
        json_array_foreach(lines, i, x)
            printf("%s\n", json_string_value(x));
    }
    json_decref(reply);
    fflush(stdout);
    while (p.follow && !interrupted) {
        json_t *m = read_frame(fd, -1);
        if (!m) {
            if (!interrupted)
                fprintf(stderr, "guardctl: guardiand closed the connection\n");
            break;
        }
        bool end = json_object_get(m, "end") != NULL; /* the node went: the daemon closes */
        if (json_out) {
            json_dumpf(m, stdout, JSON_COMPACT);
            putchar('\n');
        } else if (json_object_get(m, "line")) {
            printf("%s\n", str(m, "line", ""));
        } else if (json_object_get(m, "dropped")) {
            fprintf(stderr, "guardctl: %lld lines dropped: this terminal fell behind\n",
                    (long long)json_integer_value(json_object_get(m, "dropped")));
        } else if (end) {
            fprintf(stderr, "guardctl: %s\n", str(m, "end", "the log ends here"));
        }
        fflush(stdout);
        json_decref(m);
        if (end)
            break;
    }
    close(fd);
    return interrupted || !p.follow ? EXIT_OK : EXIT_FAILED;
}

/* -- crashes, history, audit -- */

/* The options of the history queries, and the line that says rows were left out. */
#define ROWS_OPTIONS {"lines", required_argument, NULL, 'n'}, {"all", no_argument, NULL, 'a'}

static void rows_limit(const struct parsed *p, json_t *args)
{
    if (p->n_given)
        json_object_set_new(args, "limit", json_integer(p->n > 0 ? p->n : 1));
}

static void rows_footer(json_t *reply, const char *key)
{
    if (!json_is_true(json_object_get(reply, "more")))
        return;
    json_t *total = json_object_get(reply, "total");
    size_t shown = json_array_size(json_object_get(reply, key));
    if (json_is_integer(total))
        printf("(%zu of %s%lld shown, newest first: -n N or --all for more)\n", shown,
               json_is_true(json_object_get(reply, "total_exact")) ? "" : "more than ",
               (long long)json_integer_value(total));
    else
        printf("(%zu shown, newest first; there are older ones: -n N or --all)\n", shown);
}

static const char *signal_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
    if (sig == 0)
        snprintf(buf, len, "exit()"); /* a node's code ended the process (crash.h) */
    else if (abbrev)
        snprintf(buf, len, "SIG%s", abbrev);
    else
        snprintf(buf, len, "%d", sig);
    return buf;
}

static int since_arg(const struct command *c, const struct parsed *p, json_t *args)
{
    if (!p->since)
        return 0;
    double t;
    if (parse_since(p->since, &t) < 0)
        return usage_error(c, "--since: '%s': expected seconds since 1970, 30m/2h/7d ago, or "
                           "YYYY-MM-DD[ HH:MM[:SS]]", p->since);
    json_object_set_new(args, "since", json_real(t));
    return 0;
}

static int cmd_crashes(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"since", required_argument, NULL, 's'},
                                          {"backtrace", no_argument, NULL, 'b'}, ROWS_OPTIONS,
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "s:bn:", extra);
    if (p.first < 0)
        return p.status;
    json_t *args = json_object();
    if (p.first < argc)
        json_object_set_new(args, "node", json_string(argv[p.first]));
    rows_limit(&p, args);
    int r = since_arg(c, &p, args);
    if (r) {
        json_decref(args);
        return r;
    }
    json_t *reply = request("crashes", args);
    if (json_out)
        return print_json(reply);
    json_t *rows = json_object_get(reply, "crashes");
    if (!json_array_size(rows)) {
        printf("No crashes recorded.\n");
        json_decref(reply);
        return EXIT_OK;
    }
    printf("%-23s  %-16s  %-8s  %-24s  %-12s  %s\n", "TIME", "NODE", "SIGNAL", "STATE/PHASE",
           "UPTIME", "SINCE PREVIOUS");
    size_t i;
    json_t *x;
    json_array_foreach(rows, i, x) {
        char t[32], sig[16], up[32], prev[32], where[64];
        json_t *sp = json_object_get(x, "since_prev");
        snprintf(where, sizeof(where), "%s/%s", str(x, "state", "-"), str(x, "phase", "-"));
        printf("%-23s  %-16s  %-8s  %-24s  %-12s  %s%s\n",
               fmt_time(json_number_value(json_object_get(x, "time")), t, sizeof(t)),
               str(x, "node", "-"),
               signal_name((int)json_integer_value(json_object_get(x, "signal")), sig, sizeof(sig)),
               where, fmt_duration(json_number_value(json_object_get(x, "uptime")), up, sizeof(up)),
               json_is_null(sp) || !sp ? "(first)" : fmt_duration(json_number_value(sp), prev,
                                                                  sizeof(prev)),
               json_is_true(json_object_get(x, "complete")) ? "" : "  (record cut short)");
        if (p.backtrace && json_string_value(json_object_get(x, "backtrace")))
            printf("%s\n\n", str(x, "backtrace", ""));
    }
    rows_footer(reply, "crashes");
    json_decref(reply);
    return EXIT_OK;
}

static int cmd_history(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"since", required_argument, NULL, 's'}, ROWS_OPTIONS,
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "s:n:", extra);
    if (p.first < 0)
        return p.status;
    bool all = p.first >= argc; /* no NODE: every node, with a NODE column */
    json_t *args = all ? json_object() : json_pack("{s:s}", "node", argv[p.first]);
    rows_limit(&p, args);
    int r = since_arg(c, &p, args);
    if (r) {
        json_decref(args);
        return r;
    }
    json_t *reply = request("history", args);
    if (json_out)
        return print_json(reply);
    if (all)
        printf("%-24s  ", "NODE");
    printf("%-23s  %-20s  %-20s  %-20s  %s\n", "TIME", "FROM", "TO", "REQUEST", "HOW");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(reply, "history"), i, x) {
        char t[32];
        if (all)
            printf("%-24s  ", str(x, "node", "?"));
        printf("%-23s  %-20s  %-20s  %-20s  %s\n",
               fmt_time(json_number_value(json_object_get(x, "time")), t, sizeof(t)),
               str(x, "from", "-"), str(x, "to", "-"), str(x, "request", "-"), str(x, "how", "-"));
    }
    rows_footer(reply, "history");
    json_decref(reply);
    return EXIT_OK;
}

static int cmd_audit(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"since", required_argument, NULL, 's'}, ROWS_OPTIONS,
                                          {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "s:n:", extra);
    if (p.first < 0)
        return p.status;
    bool all = p.first >= argc; /* no NODE: every node, with a NODE column */
    json_t *args = all ? json_object() : json_pack("{s:s}", "node", argv[p.first]);
    rows_limit(&p, args);
    if (!all && p.first + 1 < argc)
        json_object_set_new(args, "channel", json_string(argv[p.first + 1]));
    int r = since_arg(c, &p, args);
    if (r) {
        json_decref(args);
        return r;
    }
    json_t *reply = request("audit", args);
    if (json_out)
        return print_json(reply);
    if (all)
        printf("%-24s  ", "NODE");
    printf("%-23s  %-14s  %-30s  %-24s  %s\n", "TIME", "CHANNEL", "OLD -> NEW", "USER@HOST",
           "RESULT");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(reply, "audit"), i, x) {
        char t[32], change[128], who[128];
        snprintf(change, sizeof(change), "%s -> %s", str(x, "old", "?"), str(x, "new", "?"));
        snprintf(who, sizeof(who), "%s@%s", str(x, "user", "?"), str(x, "host", "?"));
        if (all)
            printf("%-24s  ", str(x, "node", "?"));
        printf("%-23s  %-14s  %-30s  %-24s  %s\n",
               fmt_time(json_number_value(json_object_get(x, "time")), t, sizeof(t)),
               str(x, "channel", "-"), change, who,
               json_is_true(json_object_get(x, "accepted")) ? "accepted" : "REFUSED");
    }
    rows_footer(reply, "audit");
    json_decref(reply);
    return EXIT_OK;
}

/* -- spm -- */

static int cmd_spm(const struct command *c, int argc, char **argv)
{
    static const struct option extra[] = {{"accept", no_argument, NULL, 'A'}, {NULL, 0, NULL, 0}};
    struct parsed p = parse_command(c, argc, argv, "", extra);
    if (p.first < 0)
        return p.status;
    const char *node = argv[p.first];
    if (!p.accept && p.first + 1 < argc)
        return usage_error(c, "%s", "channels are given only with --accept");
    if (p.accept) {
        json_t *reply = request("spm-accept",
                                json_pack("{s:s,s:o}", "node", node, "channels",
                                          names_array(argc, argv, p.first + 1)));
        if (json_out)
            return print_json(reply);
        size_t i, n = json_array_size(json_object_get(reply, "accepted"));
        json_t *x;
        json_array_foreach(json_object_get(reply, "accepted"), i, x)
            printf("%s: %s: the current value is its set point now\n", node, json_string_value(x));
        if (!n)
            printf("%s: no channel watched\n", node);
        json_decref(reply);
        return EXIT_OK;
    }
    json_t *reply = request("spm", json_pack("{s:s}", "node", node));
    if (json_out)
        return print_json(reply);
    printf("%s: %lld channels watched, %lld changed\n", node,
           (long long)json_integer_value(json_object_get(reply, "total")),
           (long long)json_integer_value(json_object_get(reply, "changed")));
    printf("%-40s  %-16s  %-16s  %s\n", "CHANNEL", "SET", "NOW", "DIFFERS SINCE");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(reply, "channels"), i, x) {
        char t[32];
        const char *since = json_is_true(json_object_get(x, "ignored")) ? "(ignored)"
                            : json_is_true(json_object_get(x, "differs"))
                                ? fmt_time(json_number_value(json_object_get(x, "since")), t, sizeof(t))
                                : "-";
        printf("%-40s  %-16s  %-16s  %s\n", str(x, "channel", "?"), str(x, "set", "-"),
               str(x, "now", "(not connected)"), since);
    }
    json_decref(reply);
    return EXIT_OK;
}

static const struct command commands[] = {
    {"list", cmd_list, "[PATTERN...] [--failed] [--not-ok] [--error] [-w]",
     "One line per node: name, system, OP, MODE, STATE, REQUEST, OK, and since when it is in\n"
     "its state, then `modified' when its module file changed on disk since it was loaded (or\n"
     "is gone: LOAD_PENDING; a LOAD runs it). Stopped and disabled nodes are listed too.\n"
     "With PATTERNs (fnmatch, case ignored; quote them: 'SUS_*'), only the nodes that match\n"
     "one; with filters, only those that pass one of them. On a terminal OK is green or red,\n"
     "and a STATE red when the node is in error or failed, yellow when it is stalled or\n"
     "notifies.\n"
     "  --failed        nodes that could not start, or are quarantined\n"
     "  --not-ok        nodes whose OK is not True (stopped ones too)\n"
     "  --error         running nodes in ERROR (True, or Connect: channels not connected)\n"
     "  -w, --watch     draw the list again whenever a node changes (the daemon says so: no\n"
     "                  polling; at most 4 times a second) until Ctrl-C\n"
     "  --json          the daemon's reply as JSON (filtered; with -w one line a change)\n", 0, -1},
    {"status", cmd_status, "[NODE...] [-w]",
     "Without NODE: the daemon (version, uptime, nodes, loop utilisation and tick jitter,\n"
     "database, whether the last boot ended cleanly, CA clients). With NODEs: each node's\n"
     "state, request (and who set it, how long ago), target, the path from its state to its\n"
     "request, nominal, mode, op, error, notification, since when, the module file it runs\n"
     "(mtime, size and hash as loaded; whether it changed on disk since), crashes,\n"
     "quarantine, and its last 10 log lines. NODE may be a pattern ('SUS_*') or all.\n"
     "  -w, --watch     draw it again whenever it changes, until Ctrl-C\n"
     "  --json          the daemon's reply as JSON\n", 0, -1},
    {"snapshot", cmd_snapshot, "save NAME [--force] | list | diff NAME [NODE...] | "
     "restore NAME [--dry-run] [NODE...] | delete NAME",
     "Site snapshots, kept in the database until deleted (never pruned). save records every\n"
     "node's REQUEST, MODE and OP, whether it runs and is enabled, with who and when (an\n"
     "existing NAME only with --force). diff shows what differs now (NOW -> SNAPSHOT).\n"
     "restore puts it back through the same path as `guardctl request/mode/op/enable/start/\n"
     "stop` (validated, audited, access rules applied): only what differs, per node; a state\n"
     "that no longer exists in the node's system, or a node that no longer exists, is refused\n"
     "and said, the rest still restored (exit 1). Nodes that are not in the snapshot are left\n"
     "alone. --dry-run shows what would be done; NODE... limits it to those nodes. Names:\n"
     "1-64 of A-Z a-z 0-9 _ . -.\n", 1, -1},
    {"access", cmd_access, "NODE [USER[@HOST]]",
     "Who may write the node's REQUEST, MODE, OP, LOAD and MANAGER, and the access rule that\n"
     "says so (the configuration's [access] sections: guardiand.ini). With USER@HOST: whether\n"
     "that CA user, connecting from HOST (an address, or a name looked up here), may write\n"
     "each; USER alone means from this host, as `guardctl request` and the like write (as\n"
     "your Unix user, from 127.0.0.1). Hosts count by address, never by the name a client\n"
     "gives.\n", 1, 2},
    {"states", cmd_states, "NODE [--names]",
     "The states of the node's system, highest index first as Guardian prints them: index,\n"
     "requestable (*: in the REQUEST menu; any state can be requested), goto (reachable from\n"
     "every state), the edges leaving it (\"B (weight 5)\" for a weight that is not 1), and\n"
     "which is the node's current state, target, request and nominal; then the path from the\n"
     "current state to the request (the cheapest).\n"
     "  --names         only the requestable states' names, one a line (for completion)\n"
     "  --json          the daemon's reply as JSON\n", 1, 1},
    {"is-ok", cmd_is, "NODE... [-q]",
     "Print ok or not-ok for each node (with its name when there are several) and exit 0 when\n"
     "every one is OK, 3 when one is not (stopped, failed or quarantined nodes are not OK), as\n"
     "systemctl is-active does; 1 for an unknown node. NODE may be a pattern or all.\n"
     "  -q, --quiet     print nothing: the exit status says it\n", 1, -1},
    {"is-active", cmd_is, "NODE... [-q]",
     "Print active, inactive or failed for each node and exit 0 when every one is active\n"
     "(running and executing: ACTIVE True), 3 when one is not; 1 for an unknown node.\n"
     "  -q, --quiet     print nothing: the exit status says it\n", 1, -1},
    {"start", cmd_nodes_action, "NODE...",
     "Start registered nodes that are not running (in INIT, heading for their saved request).\n"
     "NODE may be a pattern ('B*': quote it) or all; a pattern that matches no node is an\n"
     "error (exit 1, nothing done).\n", 1, -1},
    {"stop", cmd_nodes_action, "NODE...",
     "Stop running nodes: their channels disconnect from clients. They stay registered (and\n"
     "enabled: they start with the daemon; see disable). NODE may be a pattern or all.\n", 1, -1},
    {"restart", cmd_nodes_action, "NODE...",
     "Load the node's system again from disk and run it from INIT, keeping its request, mode\n"
     "and op. Its channels disconnect and reconnect. NODE may be a pattern or all.\n", 1, -1},
    {"enable", cmd_nodes_action, "NODE...",
     "Make nodes start with the daemon (the registry; a stopped node is not started now).\n"
     "NODE may be a pattern or all.\n", 1, -1},
    {"disable", cmd_nodes_action, "NODE...",
     "Keep nodes from starting with the daemon (a running node keeps running until stopped).\n"
     "NODE may be a pattern or all.\n", 1, -1},
    {"reload", cmd_reload, "[NODE...] [--dry-run] [--force]",
     "Read the configuration file again and apply it, as SIGHUP does: nodes new to it start,\n"
     "nodes gone from it stop (their saved controls are kept, and come back if the file names\n"
     "them again), nodes whose system or arguments changed restart. Prints what changed; exit\n"
     "1 with file:line when the file does not parse (then nothing changes). A file that drops\n"
     "every node it named, or most of them, is refused in case it is the wrong one.\n"
     "With NODE: load each node's system module again (LOAD) after comparing it with the code\n"
     "running: prints states added and removed, edges added and removed, index and\n"
     "requestable changes. A module that would strand the node (its state, request or nominal\n"
     "state gone, or no path to the request) is refused; exit 1 if any node was not loaded.\n"
     "  --dry-run       (with NODE) compare and check only\n"
     "  --force         apply it all the same\n", 0, -1},
    {"create", cmd_create, "NODE SYSTEM [key=value...]",
     "Register a new node running SYSTEM with the given arguments, and start it. It survives\n"
     "restarts of the daemon (until destroyed).\n", 2, -1},
    {"destroy", cmd_one_node, "NODE",
     "Stop a node and remove it from the registry; its channels disconnect. Its history is kept.\n",
     1, 1},
    {"request", cmd_control, "NODE STATE",
     "Set the node's REQUEST, as a write to <IFO>:GRD-<NODE>_REQUEST would (validated and\n"
     "audited). An unknown state is refused with the list of valid ones.\n", 2, 2},
    {"mode", cmd_control, "NODE AUTO|MANAGED|MANUAL", "Set the node's MODE (audited).\n", 2, 2},
    {"op", cmd_control, "NODE STOP|PAUSE|EXEC", "Set the node's OP (audited).\n", 2, 2},
    {"log", cmd_log, "NODE [-n N] [--since T] [-f]",
     "The node's log lines, oldest first (the last 20). The last 128 of each node are kept\n"
     "in memory, across stop and restart; the database keeps every line for\n"
     "log_retention_days (14), across restarts of the daemon, also for stopped and destroyed\n"
     "nodes: more lines, or --since, are read from it.\n"
     "  -n, --lines N   show the last N lines (up to 100000)\n"
     "  --since T       the lines since T (all of them, unless -n): seconds since 1970,\n"
     "                  30m/2h/7d ago, or YYYY-MM-DD[ HH:MM[:SS]] (local time)\n"
     "  -f, --follow    then print new lines as they come, until interrupted (Ctrl-C) or\n"
     "                  the node stops running (then exit 1; a restart is followed)\n"
     "  --json          one JSON object per line of output\n", 1, 1},
    {"crashes", cmd_crashes, "[NODE] [--since T] [-n N | --all]",
     "Recorded crashes (newest first): time, node, signal, state and phase, uptime, and the\n"
     "time since the previous crash.\n"
     "  --since T       only later ones: seconds since 1970, 30m/2h/7d ago, or YYYY-MM-DD[ HH:MM]\n"
     "  -n, --lines N   at most N rows (default 100; a last line says when there are more)\n"
     "  --all           every row (up to 100000)\n"
     "  -b, --backtrace with each crash's backtrace\n"
     "  --json          the daemon's reply as JSON\n", 0, 1},
    {"history", cmd_history, "[NODE] [--since T] [-n N | --all]",
     "The node's state transitions (without NODE: every node's), newest first.\n"
     "  --since T       only later ones (as for crashes)\n"
     "  -n N, --all     how many (as for crashes)\n"
     "  --json          the daemon's reply as JSON\n", 0, 1},
    {"audit", cmd_audit, "[NODE [CHANNEL]] [--since T] [-n N | --all]",
     "Writes to the node's channels (REQUEST, MODE, OP, ...; without NODE: every node's),\n"
     "newest first: who wrote what, from which host and user, and whether it was accepted.\n"
     "  --since T       only later ones (as for crashes)\n"
     "  -n N, --all     how many (as for crashes)\n"
     "  --json          the daemon's reply as JSON\n", 0, 2},
    {"release", cmd_one_node, "NODE",
     "Lift a node's quarantine (after crashes, or as too slow): it runs again, and its\n"
     "earlier crashes no longer count.\n",
     1, 1},
    {"release-manager", cmd_one_node, "NODE",
     "Take the node back from the manager that claims it (its MANAGER empties; audited). That\n"
     "manager notices, notifies, and claims it again only when its code calls set_managed\n"
     "again (e.g. when it is restarted). REQUEST and MODE stay as they are.\n", 1, 1},
    {"medm", cmd_medm, "[--out DIR]",
     "Write the site's MEDM screens (.adl) into DIR (default: here): the overview\n"
     "<IFO>_GUARDIAN_OVERVIEW.adl, GUARDIAN_NODE.adl, GUARDIAN_STATES_<SYSTEM>.adl and\n"
     "<IFO>_GUARDIAND_SUPERVISOR.adl; each atomically, and only when it changed.\n"
     "  -o, --out DIR   where to write them\n"
     "  --json          the daemon's reply (the files' texts) as JSON\n", 0, 0},
    {"tree", cmd_tree, "[NODE]",
     "The hierarchy of managers and their subordinates (from NODE, or from every manager no\n"
     "node here manages): each node's state (-> its request when it differs), mode, OK and\n"
     "manager. Subordinates in another daemon are shown as their manager sees them.\n"
     "  --json          the daemon's reply as JSON\n", 0, 1},
    {"spm", cmd_spm, "NODE [--accept [CHANNEL...]]",
     "The set-point monitor: every channel the node wrote, with the value it wrote, the value\n"
     "now, and since when they differ (something else changed it).\n"
     "  --accept        take the current values (of the CHANNELs, or of all) as the set\n"
     "                  points (audited)\n"
     "  --json          the daemon's reply as JSON\n", 1, -1},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: guardctl [--socket PATH] [--json] COMMAND [ARGS...]\n\n"
               "Controls guardiand through its control socket.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].usage);
    fprintf(f, "\noptions:\n"
               "  --socket PATH   the control socket (else $GUARDIAND_SOCKET, else\n"
               "                  " CTL_DEFAULT_SOCKET ")\n"
               "  --json          print the daemon's replies as JSON\n"
               "  --no-pager      accepted, as systemctl takes it (guardctl never pages)\n"
               "  --no-color      no colour (else: on a terminal, unless $NO_COLOR is set)\n"
               "  -h, --help      this text; `guardctl COMMAND --help` explains a command\n\n"
               "NODE arguments of start, stop, restart, enable, disable, status, is-ok and\n"
               "is-active may be fnmatch patterns ('SUS_*', quoted) or all.\n\n"
               "exit status: 0 done, 1 failed (unknown node or state, ...), 2 usage,\n"
               "3 guardiand not running (is-ok, is-active: also a node not OK, not active),\n"
               "4 permission denied\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"socket", required_argument, NULL, 'S'},
                                             {"json", no_argument, NULL, 'J'},
                                             {"no-color", no_argument, NULL, 'C'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"no-pager", no_argument, NULL, 'P'},
                                             {NULL, 0, NULL, 0}};
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int ch;
    opterr = 0; /* one message for a bad option: ours, below */
    while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'S': socket_path = optarg; break;
        case 'J': json_out = true; break;
        case 'P': break; /* never a pager */
        case 'C': no_colour = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V':
            printf("guardctl %s (guardiand's control client)\n", GUARDIAND_VERSION);
            return EXIT_OK;
        default:
            fprintf(stderr, "guardctl: unknown option or missing value: '%s' (guardctl --help "
                    "lists the options)\n", argv[optind - 1 > 0 ? optind - 1 : 0]);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!socket_path)
        socket_path = getenv("GUARDIAND_SOCKET");
    if (!socket_path || !*socket_path)
        socket_path = CTL_DEFAULT_SOCKET;
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].fn(&commands[i], argc - optind, argv + optind);
    fprintf(stderr, "guardctl: unknown command '%s' (guardctl --help lists them)\n", name);
    return EXIT_USAGE;
}
