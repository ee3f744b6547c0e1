/* repeater.c — a CA repeater served from the daemon's own loop.
 *
 * Clients bind ephemeral UDP ports, and an ordinary kernel gives a unicast
 * datagram to one socket only, so each host runs one repeater on port 5065
 * that fans beacons out to every registered client (ca-protocol.md 1.2).
 * Debian's EPICS packages ship no caRepeater; without one, libca clients on
 * this host never see beacons. If the port is already taken, another
 * repeater serves the host and we stay out of its way.
 *
 * Clients are forgotten when their port can be bound again (the process has
 * gone) or when a datagram to them is refused.
 */
#include "ca/cas_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPEATER_MAX_CLIENTS 1024
#define REPEATER_CHECK_PERIOD 10.0

struct cas_repeater {
    struct ev_loop *loop;
    int fd;
    ev_io io;
    ev_timer check;
    struct sockaddr_in clients[REPEATER_MAX_CLIENTS];
    unsigned n_clients;
    uint8_t buf[CA_MAX_UDP_RECV];
};

/* Registrations are taken only from this host's own addresses. */
static bool is_local(struct in_addr a)
{
    if ((ntohl(a.s_addr) >> 24) == 127)
        return true;
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) < 0)
        return false;
    for (i = ifs; i && !found; i = i->ifa_next)
        found = i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == a.s_addr;
    freeifaddrs(ifs);
    return found;
}

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

static void send_to(cas_repeater *r, unsigned i, const uint8_t *buf, size_t len)
{
    if (sendto(r->fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&r->clients[i],
               sizeof(r->clients[i])) < 0 &&
        errno == ECONNREFUSED)
        drop_client(r, i);
}

static void on_register(cas_repeater *r, const struct sockaddr_in *from)
{
    if (!is_local(from->sin_addr))
        return;
    bool known = false;
    for (unsigned i = 0; i < r->n_clients; i++)
        known = known || same(&r->clients[i], from);
    if (!known) {
        if (r->n_clients == REPEATER_MAX_CLIENTS) {
            fprintf(stderr, "guardiand: ca: repeater: %u clients registered; refusing more\n",
                    REPEATER_MAX_CLIENTS);
            return;
        }
        r->clients[r->n_clients++] = *from;
    }
    uint8_t confirm[CA_HDR_SIZE] = {0};
    ca_put16(confirm, CA_REPEATER_CONFIRM);
    memcpy(confirm + 12, &from->sin_addr.s_addr, 4); /* already network order */
    sendto(r->fd, confirm, sizeof(confirm), MSG_DONTWAIT, (const struct sockaddr *)from,
           sizeof(*from));
    /* As the EPICS repeater: a no-op VERSION to the others tells them we live. */
    uint8_t noop[CA_HDR_SIZE] = {0};
    for (unsigned i = r->n_clients; i-- > 0;)
        if (!same(&r->clients[i], from))
            send_to(r, i, noop, sizeof(noop));
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
    for (unsigned i = r->n_clients; i-- > 0;)
        if (!same(&r->clients[i], from))
            send_to(r, i, buf, len);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    cas_repeater *r = w->data;
    for (int n = 0; n < 64; n++) {
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t len = recvfrom(r->fd, r->buf, sizeof(r->buf), MSG_DONTWAIT,
                               (struct sockaddr *)&from, &flen);
        if (len < 0)
            return;
        if (flen == sizeof(from) && from.sin_family == AF_INET)
            on_datagram(r, r->buf, (size_t)len, &from);
    }
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    cas_repeater *r = w->data;
    for (unsigned i = r->n_clients; i-- > 0;)
        if (client_gone(&r->clients[i]))
            drop_client(r, i);
}

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
    ev_io_init(&r->io, io_cb, r->fd, EV_READ);
    ev_timer_init(&r->check, check_cb, REPEATER_CHECK_PERIOD, REPEATER_CHECK_PERIOD);
    r->io.data = r->check.data = r;
    ev_io_start(loop, &r->io);
    ev_timer_start(loop, &r->check);
    return r;
}

void cas_repeater_free(cas_repeater *r)
{
    if (!r)
        return;
    ev_io_stop(r->loop, &r->io);
    ev_timer_stop(r->loop, &r->check);
    close(r->fd);
    free(r);
}

unsigned cas_repeater_clients(const cas_repeater *r) { return r->n_clients; }
