/* cas.c — the CA server object: configuration, listeners, access rights and
 * the once-per-iteration flush.
 *
 * Single threaded: every client is served from the caller's libev loop. All
 * output is queued per client; one ev_prepare watcher (flush_cb) sends it
 * just before the loop sleeps, so many replies and monitor updates leave in
 * one write() per client per iteration.
 */
#include "ca/cas_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Log a line, at most LOG_BURST per second: a client sending garbage in a
 * loop must not flood the log (or the disk). What was held back is counted
 * and reported with the next line that gets through. */
#define LOG_BURST 20
void cas_log(cas *s, const char *fmt, ...)
{
    ev_tstamp now = s->loop ? ev_now(s->loop) : 0;
    if (now - s->log_window >= 1.0) {
        s->log_window = now;
        s->log_lines = 0;
    }
    if (s->log_lines >= LOG_BURST) {
        s->log_suppressed++;
        return;
    }
    s->log_lines++;
    if (s->log_suppressed) {
        fprintf(stderr, "%s: ca: (%u similar messages suppressed)\n",
                program_invocation_short_name, s->log_suppressed);
        s->log_suppressed = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    /* The program's name: the server also runs inside guardsim. */
    fprintf(stderr, "%s: ca: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- configuration ---- */

/* EPICS treats an empty variable as unset. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_port(const char *text, uint16_t *port)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* One address: dotted IPv4 or a host name, resolved once at start-up. */
static int parse_addr(const char *text, struct in_addr *out)
{
    if (inet_pton(AF_INET, text, out) == 1)
        return 0;
    struct addrinfo hints = {.ai_family = AF_INET}, *res;
    if (getaddrinfo(text, NULL, &hints, &res) != 0)
        return -1;
    *out = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

/* A whitespace-separated list of host[:port]; entries without a port get
 * default_port. Returns the count, or -1 with err naming the bad entry. */
static int parse_list(const char *var, struct sockaddr_in *out, unsigned max, uint16_t default_port,
                      bool ports, char *err, size_t errlen)
{
    const char *text = env(var);
    if (!text)
        return 0;
    char *copy = strdup(text), *save = NULL;
    if (!copy)
        return -1;
    int n = 0;
    for (char *tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if ((unsigned)n == max) {
            snprintf(err, errlen, "%s: more than %u entries", var, max);
            goto bad;
        }
        uint16_t port = default_port;
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = 0;
            if (!ports || parse_port(colon + 1, &port) < 0) {
                snprintf(err, errlen, "%s: bad port in '%s:%s'", var, tok, colon + 1);
                goto bad;
            }
        }
        memset(&out[n], 0, sizeof(out[n]));
        out[n].sin_family = AF_INET;
        out[n].sin_port = htons(port);
        if (parse_addr(tok, &out[n].sin_addr) < 0) {
            snprintf(err, errlen, "%s: cannot resolve '%s'", var, tok);
            goto bad;
        }
        n++;
    }
    free(copy);
    return n;
bad:
    free(copy);
    return -1;
}

static int parse_addr_list(const char *var, struct in_addr *out, unsigned max, char *err,
                           size_t errlen)
{
    struct sockaddr_in tmp[CAS_MAX_ADDRS];
    int n = parse_list(var, tmp, max < CAS_MAX_ADDRS ? max : CAS_MAX_ADDRS, 0, false, err, errlen);
    for (int i = 0; i < n; i++)
        out[i] = tmp[i].sin_addr;
    return n;
}

int cas_config_from_env(struct cas_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = CA_SERVER_PORT;
    cfg->beacon_port = CA_REPEATER_PORT;
    cfg->beacon_period = CA_BEACON_PERIOD_DEFAULT;
    cfg->max_array_bytes = CA_MAX_ARRAY_BYTES_DEFAULT;
    cfg->auto_array_bytes = true;
    cfg->auto_beacon = true;
    cfg->client_backlog = 1u << 20;
    cfg->max_circuits = CAS_DEFAULT_MAX_CIRCUITS;
    cfg->max_circuits_per_host = CAS_DEFAULT_MAX_CIRCUITS_PER_HOST;
    cfg->max_channels_per_circuit = CAS_DEFAULT_MAX_CHANNELS_PER_CIRCUIT;
    cfg->max_subs_per_channel = CAS_DEFAULT_MAX_SUBS_PER_CHANNEL;
    cfg->handshake_timeout = CAS_DEFAULT_HANDSHAKE_TIMEOUT;

    const char *v;
    if ((v = env("EPICS_CAS_SERVER_PORT") ? env("EPICS_CAS_SERVER_PORT")
                                          : env("EPICS_CA_SERVER_PORT")) &&
        parse_port(v, &cfg->port) < 0) {
        snprintf(err, errlen, "bad server port '%s'", v);
        return -1;
    }
    if ((v = env("EPICS_CAS_BEACON_PORT") ? env("EPICS_CAS_BEACON_PORT")
                                          : env("EPICS_CA_REPEATER_PORT")) &&
        parse_port(v, &cfg->beacon_port) < 0) {
        snprintf(err, errlen, "bad beacon port '%s'", v);
        return -1;
    }
    if ((v = env("EPICS_CAS_BEACON_PERIOD") ? env("EPICS_CAS_BEACON_PERIOD")
                                            : env("EPICS_CA_BEACON_PERIOD"))) {
        /* As rsrv: a period that is not a positive number becomes 15 s. */
        char *end;
        double p = strtod(v, &end);
        cfg->beacon_period = (end != v && p > 0 && p < 1e6) ? p : CA_BEACON_PERIOD_DEFAULT;
    }
    if ((v = env("EPICS_CA_MAX_ARRAY_BYTES"))) {
        char *end;
        unsigned long b = strtoul(v, &end, 10);
        if (end == v || *end || b > 0x7fffffffUL) {
            snprintf(err, errlen, "bad EPICS_CA_MAX_ARRAY_BYTES '%s'", v);
            return -1;
        }
        cfg->max_array_bytes = b < CA_MAX_ARRAY_BYTES_DEFAULT ? CA_MAX_ARRAY_BYTES_DEFAULT
                                                             : (uint32_t)b;
    }
    if ((v = env("EPICS_CA_AUTO_ARRAY_BYTES")))
        cfg->auto_array_bytes = strcasecmp(v, "NO") != 0;
    if ((v = env("EPICS_CAS_AUTO_BEACON_ADDR_LIST")))
        cfg->auto_beacon = strcasecmp(v, "YES") == 0;

    int n = parse_addr_list("EPICS_CAS_INTF_ADDR_LIST", cfg->intf, CAS_MAX_ADDRS, err, errlen);
    if (n < 0)
        return -1;
    cfg->n_intf = (unsigned)n;
    for (unsigned i = 0; i < cfg->n_intf; i++)
        if (cfg->intf[i].s_addr == htonl(INADDR_ANY) && cfg->n_intf > 1) {
            snprintf(err, errlen, "EPICS_CAS_INTF_ADDR_LIST: 0.0.0.0 with other addresses");
            return -1;
        }
    if ((n = parse_addr_list("EPICS_CAS_IGNORE_ADDR_LIST", cfg->ignore, CAS_MAX_ADDRS, err,
                             errlen)) < 0)
        return -1;
    cfg->n_ignore = (unsigned)n;
    if ((n = parse_list("EPICS_CAS_BEACON_ADDR_LIST", cfg->beacon, CAS_MAX_ADDRS, cfg->beacon_port,
                        true, err, errlen)) < 0)
        return -1;
    cfg->n_beacon = (unsigned)n;
    return 0;
}

/* ---- access rights ---- */

pv_client cas_client_who(const cas_client *c)
{
    return (pv_client){.host = c->host ? c->host : "", .user = c->user ? c->user : "",
                       .ip = ntohl(c->peer.sin_addr.s_addr)};
}

/* pvdb's access bits are CA's (a PV that can never be written is never
 * offered for writing: pv_access says so). */
_Static_assert(PV_ACCESS_READ == CA_ACCESS_READ && PV_ACCESS_WRITE == CA_ACCESS_WRITE,
               "pvdb and CA access bits differ");

unsigned cas_rights(cas *s, const pv *pv, const cas_client *c)
{
    (void)s;
    pv_client who = cas_client_who(c);
    return pv_access(pv, &who);
}

void cas_access_changed(cas *s)
{
    for (cas_client *c = s->clients; c; c = c->next) {
        cas_channel *ch, *tmp;
        HASH_ITER(hh, c->channels, ch, tmp) {
            unsigned r = cas_rights(s, ch->pv, c);
            if (r == ch->rights)
                continue;
            ch->rights = r;
            cas_send_access_rights(ch);
            cas_sub *sub, *stmp;
            HASH_ITER(hh, ch->subs, sub, stmp)
                cas_sub_post(sub);
        }
    }
}

/* ---- listeners ---- */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents);

/* Out of descriptors (or memory): stop accepting for a second, so the loop
 * does not spin on a listener that stays readable; connected clients are
 * served meanwhile. Logged once per episode. */
static void pause_accepting(cas *s, int err)
{
    if (!s->accept_paused)
        cas_log(s, "accept: %s; not accepting circuits until descriptors are free", strerror(err));
    s->accept_paused = true;
    for (unsigned i = 0; i < s->n_tcp; i++)
        ev_io_stop(s->loop, &s->tcp_io[i]);
    ev_timer_set(&s->accept_retry, 1.0, 0.0);
    ev_timer_start(s->loop, &s->accept_retry);
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    cas *s = w->data;
    for (unsigned i = 0; i < s->n_tcp; i++)
        ev_io_start(loop, &s->tcp_io[i]);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    cas *s = w->data;
    /* Take every waiting connection, but not forever: others wait too. */
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(w->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(s, errno);
            return;
        }
        if (s->accept_paused) {
            s->accept_paused = false;
            cas_log(s, "accepting circuits again");
        }
        cas_client_accept(s, fd, &peer);
    }
}

static int tcp_listen(struct in_addr addr, uint16_t port, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *bound = ntohs(sa.sin_port);
    return fd;
}

/* Bind the circuit listeners. Like rsrv, if the server port is taken for TCP
 * an ephemeral port is used and advertised instead (UDP keeps the port). */
static int open_listeners(cas *s, char *err, size_t errlen)
{
    struct in_addr any = {htonl(INADDR_ANY)};
    unsigned n = s->cfg.n_intf ? s->cfg.n_intf : 1;
    uint16_t want = s->cfg.port;
    for (unsigned i = 0; i < n; i++) {
        struct in_addr a = s->cfg.n_intf ? s->cfg.intf[i] : any;
        uint16_t bound = 0;
        int fd = tcp_listen(a, want, &bound);
        if (fd < 0 && i == 0 && (errno == EADDRINUSE || errno == EACCES)) {
            cas_log(s, "TCP port %u is in use; using an ephemeral port", want);
            fd = tcp_listen(a, 0, &bound);
        }
        if (fd < 0) {
            cas_log(s, "cannot listen on %s:%u: %s", inet_ntoa(a), want, strerror(errno));
            continue;
        }
        want = bound;
        s->tcp_port = bound;
        s->tcp_fd[s->n_tcp] = fd;
        ev_io_init(&s->tcp_io[s->n_tcp], accept_cb, fd, EV_READ);
        s->tcp_io[s->n_tcp].data = s;
        ev_io_start(s->loop, &s->tcp_io[s->n_tcp]);
        s->n_tcp++;
    }
    if (!s->n_tcp) {
        snprintf(err, errlen, "no TCP listener could be opened");
        return -1;
    }
    return 0;
}

/* Once per loop iteration, before it sleeps: flush each client that has
 * output or updates waiting. Each flush does bounded work; a client that
 * still has more (or that others gave more during this pass) is flushed in
 * the next iteration, which the idle watcher makes come at once. */
static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    cas *s = w->data;
    cas_client *list = s->dirty;
    s->dirty = NULL;
    while (list) {
        cas_client *c = list;
        list = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        cas_client_flush(c);
    }
    cas_client_reap(s);
    cas_cache_clear(s);
    if (s->dirty)
        ev_idle_start(loop, &s->again);
    else
        ev_idle_stop(loop, &s->again);
}

static void again_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop, (void)w, (void)revents; /* only keeps the loop from sleeping */
}

uint64_t cas_max_request(const cas *s)
{
    if (!s->cfg.auto_array_bytes)
        return s->cfg.max_array_bytes;
    /* The widest write: DBR_CTRL_DOUBLE's metadata and a 40-byte string per
     * element of the largest PV. Clients never send more (libca refuses a
     * count above the channel's). */
    uint64_t need = ca_align8(88 + (uint64_t)PV_STRING_SIZE * pvdb_max_count(s->db));
    return need > s->cfg.max_array_bytes ? need : s->cfg.max_array_bytes;
}

cas *cas_new(struct ev_loop *loop, pvdb *db, const struct cas_config *cfg, char *err,
             size_t errlen)
{
    cas *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->db = db;
    s->cfg = *cfg;
    s->beacon_fd = -1;
    /* Largest reply: a hard limit with AUTO_ARRAY_BYTES=NO, as in rsrv;
     * otherwise generous (a count above a PV's is legal and zero-filled, and
     * zero fill costs no memory) but bounded. */
    s->max_reply = cfg->auto_array_bytes && cfg->max_array_bytes < CAS_DEFAULT_MAX_REPLY
                       ? CAS_DEFAULT_MAX_REPLY
                       : cfg->max_array_bytes;
    ev_timer_init(&s->accept_retry, accept_retry_cb, 1.0, 0.0);
    s->accept_retry.data = s;
    ev_prepare_init(&s->flush, flush_cb);
    s->flush.data = s;
    ev_prepare_start(loop, &s->flush);
    ev_idle_init(&s->again, again_cb);
    if (open_listeners(s, err, errlen) < 0 || cas_udp_open(s, err, errlen) < 0) {
        cas_free(s);
        return NULL;
    }
    return s;
}

void cas_free(cas *s)
{
    if (!s)
        return;
    for (cas_client *c = s->clients; c; c = c->next)
        cas_client_close(c);
    cas_client_reap(s);
    cas_udp_close(s);
    for (unsigned i = 0; i < s->n_tcp; i++) {
        ev_io_stop(s->loop, &s->tcp_io[i]);
        close(s->tcp_fd[i]);
    }
    ev_timer_stop(s->loop, &s->accept_retry);
    ev_prepare_stop(s->loop, &s->flush);
    ev_idle_stop(s->loop, &s->again);
    cas_cache_clear(s);
    free(s->scratch);
    free(s);
}

uint16_t cas_tcp_port(const cas *s) { return s->tcp_port; }
uint16_t cas_udp_port(const cas *s) { return s->cfg.port; }

void cas_get_stats(const cas *s, struct cas_stats *st)
{
    *st = s->stats;
    st->clients = s->n_clients;
    st->channels = 0;
    st->subscriptions = 0;
    for (const cas_client *c = s->clients; c; c = c->next) {
        st->channels += c->n_channels;
        st->subscriptions += c->n_subs;
    }
}
