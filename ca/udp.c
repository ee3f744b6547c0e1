/* udp.c — the CA name service (UDP searches) and beacons.
 *
 * Searches are answered only for names the pvdb serves, from the socket bound
 * to the server port, one reply datagram per request datagram (more if the
 * replies do not fit in 1024 bytes). Beacons start fast and back off by
 * doubling to the beacon period, as rsrv does, so that clients notice a new
 * server at once and idle circuits stay alive.
 */
#include "ca/cas_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A reply datagram being built for one requester. */
struct search_reply {
    uint8_t buf[CA_MAX_UDP_SEND];
    size_t len;
    bool with_version;   /* client >= 4.11: start with VERSION + sequence */
    uint32_t seq;
};

static void reply_start(struct search_reply *r)
{
    r->len = 0;
    if (r->with_version) {
        uint8_t *h = r->buf;
        memset(h, 0, CA_HDR_SIZE);
        ca_put16(h + 0, CA_PROTO_VERSION);
        ca_put16(h + 4, CA_SEQUENCE_VALID);
        ca_put16(h + 6, CA_MINOR_VERSION);
        ca_put32(h + 8, r->seq);
        r->len = CA_HDR_SIZE;
    }
}

static void reply_send(cas *s, int fd, struct search_reply *r, const struct sockaddr_in *to)
{
    size_t empty = r->with_version ? CA_HDR_SIZE : 0;
    if (r->len > empty &&
        sendto(fd, r->buf, r->len, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof(*to)) < 0)
        s->stats.protocol_errors++; /* a full socket buffer: the client searches again */
    reply_start(r);
}

static void reply_add(cas *s, int fd, struct search_reply *r, const struct sockaddr_in *to,
                      uint32_t cid)
{
    if (r->len + 24 > sizeof(r->buf))
        reply_send(s, fd, r, to);
    uint8_t *m = r->buf + r->len;
    memset(m, 0, 24);
    ca_put16(m + 0, CA_PROTO_SEARCH);
    ca_put16(m + 2, 8);
    ca_put16(m + 4, s->tcp_port);
    ca_put32(m + 8, 0xFFFFFFFFu); /* "use the source address of this datagram" */
    ca_put32(m + 12, cid);
    ca_put16(m + 16, CA_MINOR_VERSION);
    r->len += 24;
}

static bool ignored(const cas *s, const struct sockaddr_in *from)
{
    for (unsigned i = 0; i < s->cfg.n_ignore; i++)
        if (s->cfg.ignore[i].s_addr == from->sin_addr.s_addr)
            return true;
    return false;
}

/* Handle one datagram: VERSION and SEARCH messages back to back. Anything
 * else ends the datagram, as in rsrv; so does a message that claims more
 * bytes than remain. Replies leave through fd to `from`. Not static: the
 * fuzz target tests/fuzz/ca_udp.c feeds it datagrams directly. */
void cas_udp_handle(cas *s, int fd, const uint8_t *buf, size_t len,
                    const struct sockaddr_in *from)
{
    struct search_reply r = {.with_version = false};
    bool started = false, saw_version = false;
    size_t off = 0;
    while (len - off >= CA_HDR_SIZE) {
        const uint8_t *h = buf + off;
        uint16_t cmd = ca_get16(h), size = ca_get16(h + 2);
        if (size == 0xFFFF || size > len - off - CA_HDR_SIZE)
            break;
        const uint8_t *payload = h + CA_HDR_SIZE;
        off += CA_HDR_SIZE + size;
        if (cmd == CA_PROTO_VERSION) {
            /* The sequence number is echoed so the client can time its searches. */
            uint16_t minor = ca_get16(h + 6);
            if (!started) {
                r.with_version = minor >= 11;
                r.seq = ca_get32(h + 8);
                saw_version = true;
            }
            continue;
        }
        if (cmd != CA_PROTO_SEARCH)
            break;
        if (!started) {
            /* Lenient: a SEARCH with no VERSION before it takes the client's
             * version from its own m_count. */
            if (!saw_version)
                r.with_version = ca_get16(h + 6) >= 11;
            reply_start(&r);
            started = true;
        }
        s->stats.searches++;
        if (size <= 1)
            continue;
        char name[CA_MAX_UDP_SEND];
        size_t n = size < sizeof(name) ? size : sizeof(name);
        memcpy(name, payload, n);
        name[n - 1] = 0;
        if (!pvdb_find(s->db, name))
            continue;
        s->stats.search_hits++;
        reply_add(s, fd, &r, from, ca_get32(h + 12));
    }
    if (started)
        reply_send(s, fd, &r, from);
}

static void udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    cas *s = w->data;
    uint8_t *buf = s->udp_buf;
    /* Bounded: a flood of datagrams must not starve the circuits. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(w->fd, buf, CA_MAX_UDP_RECV, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return;
        if (flen != sizeof(from) || from.sin_family != AF_INET || ignored(s, &from))
            continue;
        cas_udp_handle(s, w->fd, buf, (size_t)n, &from);
    }
}

static int udp_bind(struct in_addr addr, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Several CA servers on one host share the search port. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void add_udp(cas *s, int fd)
{
    ev_io_init(&s->udp_io[s->n_udp], udp_cb, fd, EV_READ);
    s->udp_io[s->n_udp].data = s;
    ev_io_start(s->loop, &s->udp_io[s->n_udp]);
    s->udp_fd[s->n_udp++] = fd;
}

/* The broadcast address of the interface that owns addr, if it has one. */
static bool intf_broadcast(struct in_addr addr, struct in_addr *bcast)
{
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) < 0)
        return false;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_BROADCAST) ||
            !i->ifa_broadaddr)
            continue;
        if (((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == addr.s_addr) {
            *bcast = ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr;
            found = true;
        }
    }
    freeifaddrs(ifs);
    return found;
}

static void add_beacon_dst(cas *s, struct in_addr a, uint16_t port)
{
    for (unsigned i = 0; i < s->n_beacon_dst; i++)
        if (s->beacon_dst[i].sin_addr.s_addr == a.s_addr && s->beacon_dst[i].sin_port == htons(port))
            return;
    if (s->n_beacon_dst == sizeof(s->beacon_dst) / sizeof(s->beacon_dst[0]))
        return;
    struct sockaddr_in *d = &s->beacon_dst[s->n_beacon_dst++];
    memset(d, 0, sizeof(*d));
    d->sin_family = AF_INET;
    d->sin_port = htons(port);
    d->sin_addr = a;
}

static bool intf_selected(const cas *s, struct in_addr a)
{
    if (!s->cfg.n_intf || s->cfg.intf[0].s_addr == htonl(INADDR_ANY))
        return true;
    for (unsigned i = 0; i < s->cfg.n_intf; i++)
        if (s->cfg.intf[i].s_addr == a.s_addr)
            return true;
    return false;
}

/* EPICS_CAS_AUTO_BEACON_ADDR_LIST: the broadcast address (or the peer of a
 * point-to-point link) of every interface that is up, except loopback. */
static void auto_beacon_addrs(cas *s)
{
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) < 0)
        return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
            (i->ifa_flags & IFF_LOOPBACK) || !i->ifa_broadaddr ||
            !intf_selected(s, ((struct sockaddr_in *)i->ifa_addr)->sin_addr))
            continue;
        if (i->ifa_flags & (IFF_BROADCAST | IFF_POINTOPOINT))
            add_beacon_dst(s, ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr,
                           s->cfg.beacon_port);
    }
    freeifaddrs(ifs);
}

static void beacon_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    cas *s = w->data;
    uint8_t b[CA_HDR_SIZE] = {0};
    ca_put16(b + 0, CA_PROTO_RSRV_IS_UP);
    ca_put16(b + 4, CA_MINOR_VERSION);
    ca_put16(b + 6, s->tcp_port);
    ca_put32(b + 8, s->beacon_id++);
    /* m_available 0: the repeater fills in our address from the datagram. */
    for (unsigned i = 0; i < s->n_beacon_dst; i++)
        sendto(s->beacon_fd, b, sizeof(b), MSG_DONTWAIT, (struct sockaddr *)&s->beacon_dst[i],
               sizeof(s->beacon_dst[i]));
    s->beacon_delay *= 2;
    if (s->beacon_delay > s->cfg.beacon_period)
        s->beacon_delay = s->cfg.beacon_period;
    w->repeat = s->beacon_delay;
    ev_timer_again(loop, w);
}

static int open_beacons(cas *s)
{
    for (unsigned i = 0; i < s->cfg.n_beacon; i++)
        add_beacon_dst(s, s->cfg.beacon[i].sin_addr, ntohs(s->cfg.beacon[i].sin_port));
    if (s->cfg.auto_beacon)
        auto_beacon_addrs(s);
    s->beacon_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->beacon_fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->beacon_fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
    if (s->cfg.n_intf && s->cfg.intf[0].s_addr != htonl(INADDR_ANY)) {
        /* Beacons leave from the served interface, so the repeater's idea of
         * our address is the one clients connect to. */
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = s->cfg.intf[0]};
        bind(s->beacon_fd, (struct sockaddr *)&sa, sizeof(sa));
    }
    s->beacon_delay = CA_BEACON_FIRST_DELAY;
    ev_init(&s->beacon_timer, beacon_cb);
    s->beacon_timer.data = s;
    s->beacon_timer.repeat = 0.0001; /* the first beacon goes out at once */
    ev_timer_again(s->loop, &s->beacon_timer);
    return 0;
}

int cas_udp_open(cas *s, char *err, size_t errlen)
{
    struct in_addr any = {htonl(INADDR_ANY)};
    unsigned n = s->cfg.n_intf ? s->cfg.n_intf : 1;
    for (unsigned i = 0; i < n; i++) {
        struct in_addr a = s->cfg.n_intf ? s->cfg.intf[i] : any;
        int fd = udp_bind(a, s->cfg.port);
        if (fd < 0) {
            cas_log(s, "cannot bind UDP %s:%u: %s", inet_ntoa(a), s->cfg.port, strerror(errno));
            continue;
        }
        add_udp(s, fd);
        /* A socket bound to a unicast address hears no broadcasts; bind the
         * interface's broadcast address too. */
        struct in_addr bcast;
        if (a.s_addr != any.s_addr && intf_broadcast(a, &bcast) && (fd = udp_bind(bcast, s->cfg.port)) >= 0)
            add_udp(s, fd);
    }
    if (!s->n_udp) {
        snprintf(err, errlen, "no UDP socket could be bound on port %u", s->cfg.port);
        return -1;
    }
    if (open_beacons(s) < 0) {
        snprintf(err, errlen, "beacon socket: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void cas_udp_close(cas *s)
{
    for (unsigned i = 0; i < s->n_udp; i++) {
        ev_io_stop(s->loop, &s->udp_io[i]);
        close(s->udp_fd[i]);
    }
    s->n_udp = 0;
    if (s->beacon_fd >= 0) {
        ev_timer_stop(s->loop, &s->beacon_timer);
        close(s->beacon_fd);
        s->beacon_fd = -1;
    }
}
