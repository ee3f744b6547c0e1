/* notify.c — the sd_notify protocol by hand, and the watchdog rule.
 *
 * One non-blocking AF_UNIX datagram socket, unconnected: each message is a
 * sendto() to $NOTIFY_SOCKET with MSG_DONTWAIT (a full queue at the manager
 * drops the message rather than stall the loop) and MSG_NOSIGNAL. Nothing
 * here is fatal; the first failed send is logged, the rest only counted.
 *
 * One ev_timer does the periodic work: at half of $WATCHDOG_USEC when the
 * watchdog is on (systemd's advice: ping at half the interval, so one late
 * ping is not a restart), else every NOTIFY_STATUS_PERIOD seconds. Each
 * firing pings if the nodes are healthy (or late only because of a node
 * over its step budget, which the scheduler is taking out) and, every NOTIFY_STATUS_PERIOD
 * seconds, refreshes STATUS= with the loop's figures (what `systemctl
 * status` shows).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/crash.h"
#include "supervisor/notify.h"

#define NOTIFY_STATUS_PERIOD 5.0 /* seconds between STATUS= refreshes */

struct notify {
    sup *sup;
    int fd;
    struct sockaddr_un addr;
    socklen_t addrlen;
    double watchdog;       /* seconds, 0: no watchdog */
    ev_timer timer;
    bool started;          /* the timer runs (after the first READY=1) */
    unsigned health;       /* enum health of the last check: logged when it changes */
    double last_status;    /* monotonic time of the last STATUS= refresh */
    unsigned long failures;
};

static void send_msg(struct notify *n, const char *msg)
{
    ssize_t r = sendto(n->fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL,
                       (const struct sockaddr *)&n->addr, n->addrlen);
    if (r >= 0)
        return;
    if (n->failures++ == 0)
        sup_log(SUP_ERR, "notify: cannot send to $NOTIFY_SOCKET: %s "
                         "(further failures are not logged)", strerror(errno));
}

/* "; configuration NOT applied: why" after a reload that changed nothing,
 * so `systemctl status` shows it until a reload works; else "". */
static const char *reload_problem(const sup *s, char *buf, size_t len)
{
    buf[0] = '\0';
    if (s->last_reload.time > 0 && !s->last_reload.applied &&
        snprintf(buf, len, "; configuration NOT applied (%s): %s", s->last_reload.who,
                 s->last_reload.error) >= (int)len)
        memcpy(buf + len - 4, "...", 4); /* cut: the whole reason is in guardctl status */
    return buf;
}

/* The loop's figures for STATUS=. */
static void format_status(struct notify *n, char *buf, size_t len)
{
    sup *s = n->sup;
    double p50, p99, max;
    sched_jitter(&s->sched, &p50, &p99, &max);
    unsigned quarantined = 0;
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next)
        quarantined += sn->quarantined;
    char problem[400];
    snprintf(buf, len, "STATUS=%u nodes (%u failed, %u quarantined), util %.1f%%, jitter p99 "
             "%.2f ms%s", s->n_nodes, s->n_failed, quarantined, s->sched.util * 100.0, p99 * 1e3,
             reload_problem(s, problem, sizeof(problem)));
}

/* The watchdog's verdict, logged when it changes. A stale node whose
 * staleness a node over its step budget caused is excused: the scheduler's
 * too-slow rule takes that node out within step_window, and restarting the
 * whole site would not make it faster. */
enum health { HEALTHY, EXCUSED, UNHEALTHY };

static enum health judge(struct notify *n)
{
    sup *s = n->sup;
    struct sched_health h;
    sched_health(s, NOTIFY_STALE_CYCLES, &h);
    enum health now = !h.stale ? HEALTHY : h.over_budget ? EXCUSED : UNHEALTHY;
    if (now == UNHEALTHY)
        crash_suspect(h.held_by ? h.held_by->name : NULL);
    else
        crash_suspect(NULL);
    if (now == n->health)
        return now;
    if (now == HEALTHY) {
        sup_log(SUP_NOTICE, "watchdog: every node steps again");
    } else if (now == EXCUSED) {
        sup_log(SUP_WARNING, "watchdog: node %s held the loop for %.2f s in one step "
                          "(budget %g s), so node %s has not stepped for %.2f s; WATCHDOG=1 still "
                          "sent: %s is taken out after %u such steps within %g s",
                h.held_by->name, h.held_for, s->cfg.step_budget, h.stale->name, h.since,
                h.held_by->name, s->cfg.step_overruns, s->cfg.step_window);
    } else if (h.held_by) {
        sup_log(SUP_WARNING, "watchdog: node %s held the loop for %.2f s in one step, so "
                             "node %s has not stepped for %.2f s; WATCHDOG=1 withheld until every "
                             "node steps again",
                h.held_by->name, h.held_for, h.stale->name, h.since);
    } else {
        sup_log(SUP_WARNING, "watchdog: node %s has not stepped for %.2f s; WATCHDOG=1 "
                             "withheld until every node steps again",
                h.stale->name, h.since);
    }
    n->health = now;
    return now;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    struct notify *n = w->data;
    double now = sup_now();
    char msg[640] = "";
    if (n->watchdog > 0 && judge(n) != UNHEALTHY)
        snprintf(msg, sizeof(msg), "WATCHDOG=1");
    if (now - n->last_status >= NOTIFY_STATUS_PERIOD) {
        size_t used = strlen(msg);
        if (used)
            msg[used++] = '\n'; /* one KEY=VALUE a line */
        format_status(n, msg + used, sizeof(msg) - used);
        n->last_status = now;
    }
    if (msg[0])
        send_msg(n, msg);
}

/* $WATCHDOG_USEC in seconds if it is meant for this process, else 0. */
static double watchdog_from_env(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!usec)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (errno || end == usec || *end || v == 0) {
        sup_log(SUP_WARNING, "notify: ignoring WATCHDOG_USEC='%s'", usec);
        return 0;
    }
    if (pid) {
        long p = strtol(pid, &end, 10);
        if (end == pid || *end || p != (long)getpid())
            return 0; /* meant for another process (our parent, say) */
    }
    return (double)v / 1e6;
}

struct notify *notify_new(sup *s)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return NULL;
    struct notify *n = calloc(1, sizeof(*n));
    if (!n)
        goto err;
    n->sup = s;
    n->fd = -1;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr.sun_path)) {
        sup_log(SUP_WARNING, "notify: NOTIFY_SOCKET='%s' is not a socket path; "
                          "not notifying", path);
        goto err;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL */
    /* A path's length includes its terminating NUL; an abstract name's does not. */
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0) {
        sup_log(SUP_ERR, "notify: socket: %s; not notifying", strerror(errno));
        goto err;
    }
    n->watchdog = watchdog_from_env();
    /* Nothing we start (a system's helper, say) may speak for us. */
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    double period = n->watchdog > 0 ? n->watchdog / 2 : NOTIFY_STATUS_PERIOD;
    ev_timer_init(&n->timer, timer_cb, period, period);
    n->timer.data = n;
    return n;
err:
    if (n && n->fd >= 0)
        close(n->fd);
    free(n);
    return NULL;
}

void notify_ready(struct notify *n, unsigned nodes, int failed)
{
    if (!n)
        return;
    char msg[640], problem[400];
    reload_problem(n->sup, problem, sizeof(problem));
    if (failed >= 0)
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%u nodes, %d failed%s", nodes, failed, problem);
    else
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%u nodes%s", nodes, problem);
    send_msg(n, msg);
    n->last_status = sup_now();
    if (!n->started) {
        ev_timer_start(n->sup->loop, &n->timer);
        n->started = true;
        /* The first ping now: the manager's watchdog has run since we started. */
        if (n->watchdog > 0)
            send_msg(n, "WATCHDOG=1");
    }
}

void notify_reloading(struct notify *n)
{
    if (!n)
        return;
    /* Newer systemd (253+) wants the time the reload began, on CLOCK_MONOTONIC. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[128];
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    send_msg(n, msg);
}

void notify_stopping(struct notify *n)
{
    if (n)
        send_msg(n, "STOPPING=1\nSTATUS=stopping");
}

void notify_free(struct notify *n)
{
    if (!n)
        return;
    if (n->started)
        ev_timer_stop(n->sup->loop, &n->timer);
    close(n->fd);
    free(n);
}
