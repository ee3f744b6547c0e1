/* repeater.c — a CA repeater served from the daemon's own loop.
 *
 * Clients bind ephemeral UDP ports, and an ordinary kernel gives a unicast
 * datagram to one socket only, so each host runs one repeater on port 5065
 * that fans beacons out to every registered client (ca-protocol.md 1.2):
 * every datagram is forwarded verbatim to every registered client but its
 * sender, a beacon whose m_available is 0 gets its source address there
 * first, and a REGISTER (or a zero-length datagram) from a local address is
 * answered with CONFIRM and announced to the others with a no-op VERSION.
 * Debian's EPICS packages ship no caRepeater; without one, libca clients on
 * this host never see beacons. If the port is already taken, another
 * repeater serves the host and we stay out of its way.
 *
 * EPICS's caRepeater has a process of its own; ours shares the loop that
 * steps the nodes, so nothing sent to the port may delay a node tick. A
 * datagram costs a read and a send per client, and both are bounded:
 *   - per callback: at most REPEATER_READS_PER_CALL datagrams and about
 *     REPEATER_SENDS_PER_CALL sends (a fraction of a millisecond; one
 *     datagram's fan-out is never split, so with more clients than that a
 *     callback forwards one datagram);
 *   - per second: REPEATER_READS_PER_SECOND datagrams and
 *     REPEATER_SENDS_PER_SECOND sends, given out per tenth of a second so
 *     that a flood costs short bursts spread over the second. When the
 *     tenth's share is spent the io watcher is stopped until the next one:
 *     the excess waits in the socket's buffer and the kernel drops what does
 *     not fit, at no cost to us. A datagram that waited more than
 *     REPEATER_MAX_AGE (its arrival time stamp) is read but not forwarded:
 *     after a flood the backlog is stale, and late beacons would only skew
 *     libca's estimate of each server's beacon period;
 *   - the watcher has libev's lowest priority, so when a node tick is due
 *     in the same iteration the tick runs first.
 * What is dropped is counted (the kernel's count from SO_RXQ_OVFL, and the
 * stale ones) and logged when a flood starts, then at most once a minute.
 * The fan-out is one sendmmsg() per datagram. On the 2-core VM of
 * bench-repeater a send costs about 2 us, so the budget is at most ~4 % of
 * a core (40 ms a second). A flood of 160 000 datagrams/s with 50 clients,
 * which kept the loop ~90 % busy before (about 2 000 tick overruns in
 * 10 s), now costs the daemon a few % of a core, and the overruns stay at
 * what the sender's own CPU use causes (bench-repeater's control row).
 *
 * Why the budget is safe for real sites: a server beacons every 15 s once
 * settled, so even 1 000 servers send ~70 beacons/s, forwarded within
 * budget to up to ~280 clients on this host (~1 000 clients with 300
 * servers). At start-up a server beacons 0.02 s apart, doubling: ~6 in its
 * first second, so a whole site restarting at once may pass the budget for
 * a few seconds. Losing some of those is harmless: a beacon only tells
 * libca that a server came up (it searches again) or is still there, the
 * next one follows within seconds, libca's searches find servers without
 * beacons, and connected circuits are watched with ECHO anyway.
 *
 * Registrations are taken only from this host's addresses: loopback, or one
 * of the interface addresses read at start and every
 * REPEATER_ADDR_REFRESH_SECONDS (libca retries each second, alternating with
 * 127.0.0.1, so a new address is accepted within that time) — not with a
 * getifaddrs() per datagram. Clients are forgotten when their port can be
 * bound again (the process has gone; each is checked once in
 * REPEATER_CHECK_SECONDS, a slice per tenth of a second).
 */
#include "ca/cas_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPEATER_MAX_CLIENTS 1024
#define REPEATER_READS_PER_CALL 32
#define REPEATER_SENDS_PER_CALL 256
#define REPEATER_READS_PER_SECOND 5000
#define REPEATER_SENDS_PER_SECOND 20000
/* The budget is given out in tenths of a second, so that a flood costs
 * short bursts spread over the second rather than one long one (which the
 * kernel's scheduler would also take for a CPU hog and preempt). */
#define REPEATER_PERIODS_PER_SECOND 10
#define REPEATER_PERIOD (1.0 / REPEATER_PERIODS_PER_SECOND)
#define REPEATER_READS_PER_PERIOD (REPEATER_READS_PER_SECOND / REPEATER_PERIODS_PER_SECOND)
#define REPEATER_SENDS_PER_PERIOD (REPEATER_SENDS_PER_SECOND / REPEATER_PERIODS_PER_SECOND)
_Static_assert(REPEATER_MAX_CLIENTS + 1 <= REPEATER_SENDS_PER_PERIOD,
               "a period's budget must cover one datagram to every client");
#define REPEATER_CHECK_SECONDS 10       /* every client checked for life once in this time */
#define REPEATER_CHECK_PERIODS (REPEATER_CHECK_SECONDS * REPEATER_PERIODS_PER_SECOND)
#define REPEATER_ADDR_REFRESH_SECONDS 10 /* between getifaddrs() */
#define REPEATER_MAX_ADDRS 64           /* local IPv4 addresses remembered */
#define REPEATER_LOG_INTERVAL 60.0      /* seconds between drop reports */
#define REPEATER_MAX_AGE 0.5            /* seconds a datagram may wait in the queue */

struct cas_repeater {
    struct ev_loop *loop;
    int fd;
    ev_io io;
    ev_timer period;           /* the budget's tenth of a second; life checks; addresses */
    struct sockaddr_in clients[REPEATER_MAX_CLIENTS];
    struct mmsghdr msgs[REPEATER_MAX_CLIENTS];  /* one fan-out's sendmmsg() */
    unsigned n_clients;
    unsigned check_next;       /* where the life check resumes */
    unsigned check_credit;     /* see check_some() */
    struct in_addr addrs[REPEATER_MAX_ADDRS]; /* this host's IPv4 addresses */
    unsigned n_addrs;
    unsigned periods;          /* since the last address refresh */
    /* The budget of the current period. */
    unsigned reads, sends;
    bool paused;               /* io stopped until the next period */
    /* Drops: what the kernel dropped for us (SO_RXQ_OVFL), reported together. */
    uint32_t kernel_drops;     /* the socket's counter as last seen */
    uint64_t dropped;          /* since the last report */
    uint64_t stale;            /* read but not forwarded: too old, since the last report */
    unsigned paused_periods;   /* periods whose budget ran out, since the last report */
    bool flooding;             /* since the line that said so */
    ev_tstamp last_report;     /* of the last line */
    ev_tstamp since;           /* start of what the next line covers */
    uint8_t buf[CA_MAX_UDP_RECV];
};

/* ---- this host's addresses ---- */

static void refresh_addrs(cas_repeater *r)
{
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) < 0)
        return; /* keep what we had */
    r->n_addrs = 0;
    for (struct ifaddrs *i = ifs; i && r->n_addrs < REPEATER_MAX_ADDRS; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
            r->addrs[r->n_addrs++] = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
    freeifaddrs(ifs);
}

static bool is_local(const cas_repeater *r, struct in_addr a)
{
    if ((ntohl(a.s_addr) >> 24) == 127)
        return true;
    for (unsigned i = 0; i < r->n_addrs; i++)
        if (r->addrs[i].s_addr == a.s_addr)
            return true;
    return false;
}

/* ---- clients ---- */

/* A client's port that can be bound again belongs to nobody: the client exited. */
static bool client_gone(const struct sockaddr_in *c)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool gone = bind(fd, (const struct sockaddr *)c, sizeof(*c)) == 0;
    close(fd);
    return gone;
}

static void drop_client(cas_repeater *r, unsigned i)
{
    r->clients[i] = r->clients[--r->n_clients];
}

static bool same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* Send buf to every client but `except` (NULL: to all), with one sendmmsg()
 * for up to all of them (a system call per client would cost about twice
 * as much). A send that fails (a full buffer) is skipped: UDP is lossy and
 * the next beacon follows. Our socket is not connected, so the kernel
 * reports no ICMP errors (refused ports) to it: clients that went away are
 * found by check_some(). */
static void fan_out(cas_repeater *r, const uint8_t *buf, size_t len,
                    const struct sockaddr_in *except)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_clients; i++)
        if (!except || !same(&r->clients[i], except))
            r->msgs[n++] = (struct mmsghdr){
                .msg_hdr = {.msg_name = &r->clients[i], .msg_namelen = sizeof(r->clients[i]),
                            .msg_iov = &iov, .msg_iovlen = 1}};
    r->sends += n;
    for (unsigned done = 0; done < n;) {
        int k = sendmmsg(r->fd, r->msgs + done, n - done, MSG_DONTWAIT);
        done += k > 0 ? (unsigned)k : 0;
        if (k <= 0 || done < n)
            done++; /* that one failed: skip it (each turn advances, so this ends) */
    }
}

static void on_register(cas_repeater *r, const struct sockaddr_in *from)
{
    if (!is_local(r, from->sin_addr))
        return;
    bool known = false;
    for (unsigned i = 0; i < r->n_clients && !known; i++)
        known = same(&r->clients[i], from);
    if (!known) {
        if (r->n_clients == REPEATER_MAX_CLIENTS) {
            fprintf(stderr, "%s: ca: repeater: %u clients registered; refusing more\n",
                    program_invocation_short_name, REPEATER_MAX_CLIENTS);
            return;
        }
        r->clients[r->n_clients++] = *from;
    }
    uint8_t confirm[CA_HDR_SIZE] = {0};
    ca_put16(confirm, CA_REPEATER_CONFIRM);
    memcpy(confirm + 12, &from->sin_addr.s_addr, 4); /* already network order */
    r->sends++;
    if (sendto(r->fd, confirm, sizeof(confirm), MSG_DONTWAIT, (const struct sockaddr *)from,
               sizeof(*from)) < 0) {
        /* lost: libca registers again each second until it is confirmed */
    }
    /* As the EPICS repeater: a no-op VERSION to the others tells them we live. */
    static const uint8_t noop[CA_HDR_SIZE] = {0};
    fan_out(r, noop, sizeof(noop), from);
}

static void on_datagram(cas_repeater *r, uint8_t *buf, size_t len, const struct sockaddr_in *from)
{
    if (len == 0 || (len >= CA_HDR_SIZE && ca_get16(buf) == CA_REPEATER_REGISTER)) {
        on_register(r, from);
        return;
    }
    /* libca takes a beacon's server address only from m_available. */
    if (len >= CA_HDR_SIZE && ca_get16(buf) == CA_PROTO_RSRV_IS_UP && ca_get32(buf + 12) == 0)
        memcpy(buf + 12, &from->sin_addr.s_addr, 4);
    fan_out(r, buf, len, from);
}

/* ---- what is dropped ---- */

/* At most one line a minute (and one when a flood starts): what was
 * dropped since the last line, or that a flood is over. */
static void report(cas_repeater *r, ev_tstamp now)
{
    if (now - r->last_report < REPEATER_LOG_INTERVAL)
        return;
    if (r->dropped || r->stale || r->paused_periods) {
        fprintf(stderr,
                "%s: ca: repeater: in the last %.0f s: budget used up in %u tenths of a "
                "second; %llu datagrams dropped unread (socket full), %llu read too late "
                "(queued > %.1f s) and not forwarded\n",
                program_invocation_short_name, now - r->since, r->paused_periods,
                (unsigned long long)r->dropped, (unsigned long long)r->stale, REPEATER_MAX_AGE);
    } else if (r->flooding) {
        fprintf(stderr, "%s: ca: repeater: no flood in the last %.0f s\n",
                program_invocation_short_name, now - r->since);
        r->flooding = false;
    } else {
        return;
    }
    r->last_report = r->since = now;
    r->dropped = r->stale = 0;
    r->paused_periods = 0;
}

/* The period's budget is spent: leave the rest to the kernel until the next. */
static void pause_reading(cas_repeater *r)
{
    ev_io_stop(r->loop, &r->io);
    r->paused = true;
    r->paused_periods++;
    if (!r->flooding) {
        ev_tstamp now = ev_now(r->loop);
        fprintf(stderr,
                "%s: ca: repeater: flood: more than %d datagrams or %d sends a second; "
                "the excess is dropped (counted, reported at most once a minute)\n",
                program_invocation_short_name, REPEATER_READS_PER_SECOND,
                REPEATER_SENDS_PER_SECOND);
        r->flooding = true;
        r->last_report = r->since = now;
    }
}

/* ---- reading, within the budget ---- */

/* One datagram into r->buf: its length, or -1 (nothing waiting, or an
 * error). Notes the kernel's drop counter when it comes with it, and sets
 * *stale when the datagram waited in the queue longer than
 * REPEATER_MAX_AGE (by its arrival time stamp, SO_TIMESTAMPNS). */
static ssize_t receive(cas_repeater *r, struct sockaddr_in *from, socklen_t *flen, bool *stale)
{
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = r->buf, .iov_len = sizeof(r->buf)};
    struct msghdr m = {.msg_name = from, .msg_namelen = sizeof(*from), .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof(control.buf)};
    ssize_t len = recvmsg(r->fd, &m, MSG_DONTWAIT);
    if (len < 0)
        return -1;
    *flen = m.msg_namelen;
    *stale = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t total;
            memcpy(&total, CMSG_DATA(c), sizeof(total));
            r->dropped += (uint32_t)(total - r->kernel_drops); /* wraps correctly */
            r->kernel_drops = total;
        } else if (c->cmsg_type == SCM_TIMESTAMPNS &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec arrived, now;
            memcpy(&arrived, CMSG_DATA(c), sizeof(arrived));
            clock_gettime(CLOCK_REALTIME, &now);
            double age = (double)(now.tv_sec - arrived.tv_sec) +
                         (double)(now.tv_nsec - arrived.tv_nsec) * 1e-9;
            *stale = age > REPEATER_MAX_AGE; /* a clock step back makes it negative: fresh */
        }
    }
    return len;
}

/* Whether the period's budget still covers one more datagram: its read and,
 * at worst, a send to every client (a registration: n - 1 no-ops and the
 * confirm). */
static bool period_has_room(const cas_repeater *r)
{
    return r->reads < REPEATER_READS_PER_PERIOD &&
           r->sends + r->n_clients + 1 <= REPEATER_SENDS_PER_PERIOD;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    cas_repeater *r = w->data;
    unsigned sends_at_start = r->sends;
    for (unsigned n = 0; n < REPEATER_READS_PER_CALL; n++) {
        if (!period_has_room(r)) {
            pause_reading(r);
            return;
        }
        /* The fan-out of a datagram is never split: stop before one that could
         * pass this call's share (but always do one, however many clients). */
        if (n > 0 && r->sends - sends_at_start + r->n_clients + 1 > REPEATER_SENDS_PER_CALL)
            return;
        struct sockaddr_in from;
        socklen_t flen = 0;
        bool stale;
        ssize_t len = receive(r, &from, &flen, &stale);
        if (len < 0)
            return;
        r->reads++;
        if (stale)
            r->stale++; /* queued while we paused: too late to tell anyone */
        else if (flen == sizeof(from) && from.sin_family == AF_INET)
            on_datagram(r, r->buf, (size_t)len, &from);
    }
}

/* ---- the period: budget, drop reports, life checks, addresses ---- */

/* A slice of the clients each period, so that each one is checked about
 * once in REPEATER_CHECK_SECONDS without one long callback: check_credit
 * gains n_clients each period and pays REPEATER_CHECK_PERIODS per check. */
static void check_some(cas_repeater *r)
{
    r->check_credit += r->n_clients;
    for (unsigned k = 0; k < REPEATER_MAX_CLIENTS && r->n_clients > 0 &&
                         r->check_credit >= REPEATER_CHECK_PERIODS; k++) {
        r->check_credit -= REPEATER_CHECK_PERIODS;
        if (r->check_next >= r->n_clients)
            r->check_next = 0;
        if (client_gone(&r->clients[r->check_next]))
            drop_client(r, r->check_next); /* the last one moved here: check it next */
        else
            r->check_next++;
    }
    if (r->n_clients == 0)
        r->check_credit = 0;
}

static void period_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    cas_repeater *r = w->data;
    r->reads = r->sends = 0;
    if (r->paused) {
        r->paused = false;
        ev_io_start(loop, &r->io);
    }
    report(r, ev_now(loop));
    check_some(r);
    if (++r->periods >= REPEATER_ADDR_REFRESH_SECONDS * REPEATER_PERIODS_PER_SECOND) {
        r->periods = 0;
        refresh_addrs(r);
    }
}

/* ---- the object ---- */

cas_repeater *cas_repeater_new(struct ev_loop *loop, uint16_t port, char *err, size_t errlen)
{
    cas_repeater *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->loop = loop;
    /* No SO_REUSEADDR: one repeater per host, whoever came first. */
    r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "UDP port %u: %s", port, strerror(errno));
        if (r->fd >= 0)
            close(r->fd);
        free(r);
        return NULL;
    }
    /* With each datagram: the kernel's drop counter (without it we count
     * none) and its arrival time (without it nothing is stale). */
    int one = 1;
    setsockopt(r->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    setsockopt(r->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    refresh_addrs(r);
    ev_io_init(&r->io, io_cb, r->fd, EV_READ);
    ev_set_priority(&r->io, EV_MINPRI); /* node ticks first */
    ev_timer_init(&r->period, period_cb, REPEATER_PERIOD, REPEATER_PERIOD);
    r->io.data = r->period.data = r;
    r->since = ev_now(loop);
    ev_io_start(loop, &r->io);
    ev_timer_start(loop, &r->period);
    return r;
}

void cas_repeater_free(cas_repeater *r)
{
    if (!r)
        return;
    ev_io_stop(r->loop, &r->io);
    ev_timer_stop(r->loop, &r->period);
    close(r->fd);
    free(r);
}

unsigned cas_repeater_clients(const cas_repeater *r) { return r->n_clients; }
