/* circuit.c — TCP circuits: reassembly, the request handlers, output queues.
 *
 * Each client has an input buffer (the byte stream is split and joined at
 * random, so messages are reassembled here) and an output buffer that every
 * handler appends to. Output leaves in cas_client_flush(), called once per
 * loop iteration and when the socket becomes writable again.
 *
 * Back-pressure: when a client's unsent output passes cfg.client_backlog we
 * stop reading its requests until it has drained half of it. Monitor updates
 * are moved into the output only below CAS_MONITOR_WATERMARK (monitor.c),
 * so requests always find room: a display that reads its monitors slowly
 * still has its puts and gets answered, while its updates coalesce. Nothing
 * waits on a socket, so a client that stops reading costs a bounded amount
 * of memory and never delays another client.
 *
 * What the kernel holds for a client is bounded too (TCP_NOTSENT_LOWAT): an
 * update waiting in our queues still coalesces with newer ones, one in the
 * kernel's cannot, and a reply is read after everything queued before it.
 *
 * Zero fill (a count above what a PV holds, ca-protocol.md 4.7) is queued as
 * runs of zero bytes that the flush sends from one static page, and one
 * flush sends at most FLUSH_MAX bytes to a client: what a request asks for
 * costs the loop bounded time per iteration, whatever its count.
 *
 * Requests on one circuit are handled strictly in order, and a write takes
 * effect before the next request is read, as CA clients expect.
 */
#include "ca/cas_priv.h"
#include "ca/dbr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define READ_MIN 4096             /* less room than this in `in`: grow it before reading */
#define LINGER_SECONDS 5.0
#define FLUSH_MAX (4u << 20)      /* bytes sent to one client per flush */
#define NOTSENT_LOWAT 16384       /* unsent bytes the kernel holds for a client */
#define REQUESTS_PER_PASS 512     /* requests handled before other clients get a turn, */
#define PASS_SECONDS 0.0005       /* or this much time spent on them */
#define ZERO_PAGE 65536
#define ZERO_INLINE 4096          /* zero fill up to this size is written as bytes */

static void process_input(cas_client *c);

/* ---- output ---- */

static const uint8_t zero_page[ZERO_PAGE];

bool cas_needs_ext(uint64_t size, uint32_t count) { return size >= 0xFFFF || count >= 0xFFFF; }

uint64_t cas_client_backlog(const cas_client *c) { return c->out_len - c->out_off + c->zeros; }

/* Move the unsent bytes to the front of the buffer (zero runs follow them). */
static void out_compact(cas_client *c)
{
    if (!c->out_off)
        return;
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    for (size_t i = c->run_head; i < c->n_runs; i++)
        c->runs[i].at -= c->out_off;
    c->out_len -= c->out_off;
    c->out_off = 0;
}

static uint8_t *out_reserve(cas_client *c, size_t n)
{
    if (c->dead)
        return NULL;
    if (c->out_len + n > c->out_cap) {
        out_compact(c);
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 16384;
            while (cap < c->out_len + n)
                cap *= 2;
            uint8_t *p = realloc(c->out, cap);
            if (!p) {
                cas_log(c->srv, "%s: out of memory for output; closing", c->peer_text);
                c->dead = true;
                return NULL;
            }
            c->out = p;
            c->out_cap = cap;
        }
    }
    uint8_t *p = c->out + c->out_len;
    c->out_len += n;
    cas_client_mark_dirty(c);
    return p;
}

void cas_put_zeros(cas_client *c, uint64_t n)
{
    if (!n || c->dead)
        return;
    if (n <= ZERO_INLINE) {
        uint8_t *p = out_reserve(c, (size_t)n);
        if (p)
            memset(p, 0, (size_t)n);
        return;
    }
    if (c->n_runs > c->run_head && c->runs[c->n_runs - 1].at == c->out_len) {
        c->runs[c->n_runs - 1].len += n;
    } else {
        if (c->run_head == c->n_runs)
            c->run_head = c->n_runs = 0;
        if (c->n_runs == c->runs_cap) {
            size_t cap = c->runs_cap ? 2 * c->runs_cap : 8;
            struct cas_zero_run *r = realloc(c->runs, cap * sizeof(*r));
            if (!r) {
                cas_log(c->srv, "%s: out of memory for output; closing", c->peer_text);
                c->dead = true;
                return;
            }
            c->runs = r;
            c->runs_cap = cap;
        }
        c->runs[c->n_runs++] = (struct cas_zero_run){.at = c->out_len, .len = n};
    }
    c->zeros += n;
    cas_client_mark_dirty(c);
}

uint8_t *cas_put_hdr_n(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                       uint32_t p1, uint32_t p2, size_t reserve)
{
    assert(reserve <= size);
    bool ext = cas_needs_ext(size, count);
    uint8_t *h = out_reserve(c, (ext ? CA_EXT_HDR_SIZE : CA_HDR_SIZE) + reserve);
    if (!h)
        return NULL;
    ca_put16(h, cmd);
    ca_put16(h + 2, ext ? 0xFFFF : (uint16_t)size);
    ca_put16(h + 4, type);
    ca_put16(h + 6, ext ? 0 : (uint16_t)count);
    ca_put32(h + 8, p1);
    ca_put32(h + 12, p2);
    if (!ext)
        return h + CA_HDR_SIZE;
    ca_put32(h + 16, size);
    ca_put32(h + 20, count);
    return h + CA_EXT_HDR_SIZE;
}

uint8_t *cas_put_hdr(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                     uint32_t p1, uint32_t p2)
{
    return cas_put_hdr_n(c, cmd, size, type, count, p1, p2, size);
}

void cas_send_hdr(cas_client *c, uint16_t cmd, uint32_t size, uint16_t type, uint32_t count,
                  uint32_t p1, uint32_t p2)
{
    uint8_t *p = cas_put_hdr(c, cmd, size, type, count, p1, p2);
    if (p && size)
        memset(p, 0, size);
}

/* ERROR: the offending request's header as received, then a text. rsrv caps
 * the whole payload at 512 bytes; so do we. */
void cas_send_error(cas_client *c, const uint8_t *req_hdr, size_t req_len, uint32_t cid,
                    uint32_t status, const char *fmt, ...)
{
    char text[512 - CA_EXT_HDR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t tlen = strlen(text) + 1;
    assert(req_len <= CA_EXT_HDR_SIZE);
    uint32_t size = (uint32_t)ca_align8(req_len + tlen); /* at most 512 */
    uint8_t *p = cas_put_hdr(c, CA_PROTO_ERROR, size, 0, 0, cid, status);
    if (!p)
        return;
    memset(p, 0, size);
    memcpy(p, req_hdr, req_len);
    memcpy(p + req_len, text, tlen);
    c->srv->stats.protocol_errors++;
}

void cas_send_access_rights(cas_channel *ch)
{
    cas_send_hdr(ch->client, CA_PROTO_ACCESS_RIGHTS, 0, 0, 0, ch->cid, ch->rights);
}

/* ---- client life cycle ---- */

void cas_client_mark_dirty(cas_client *c)
{
    if (c->dirty || c->dead)
        return;
    c->dirty = true;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

static void set_reading(cas_client *c, bool on)
{
    if (on == c->reading || c->eof)
        return;
    c->reading = on;
    if (on)
        ev_io_start(c->srv->loop, &c->rio);
    else
        ev_io_stop(c->srv->loop, &c->rio);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void handshake_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void halt_input(cas_client *c);

/* Circuits still served (refused ones linger until closed), in all and from
 * one address. O(clients), on accept only. */
static void count_circuits(const cas *s, struct in_addr a, unsigned *all, unsigned *from_host)
{
    *all = *from_host = 0;
    for (const cas_client *c = s->clients; c; c = c->next) {
        *all += !c->halt;
        *from_host += !c->halt && c->peer.sin_addr.s_addr == a.s_addr;
    }
}

/* Too many circuits: say why (libca prints it) and close once it is sent. */
static void refuse_circuit(cas_client *c, const char *why, unsigned limit)
{
    static const uint8_t no_request[CA_HDR_SIZE];
    cas_log(c->srv, "%s: circuit refused: %s (limit %u)", c->peer_text, why, limit);
    cas_send_error(c, no_request, sizeof(no_request), 0xFFFFFFFFu, ECA_ALLOCMEM,
                   "guardiand: %s (limit %u)", why, limit);
    halt_input(c);
}

void cas_client_accept(cas *s, int fd, const struct sockaddr_in *peer)
{
    cas_client *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    int lowat = NOTSENT_LOWAT;
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
    c->srv = s;
    c->fd = fd;
    c->peer = *peer;
    snprintf(c->peer_text, sizeof(c->peer_text), "%s:%u", inet_ntoa(peer->sin_addr),
             ntohs(peer->sin_port));
    unsigned all, from_host;
    count_circuits(s, peer->sin_addr, &all, &from_host);
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    /* Circuits' requests after node ticks and name searches of the same
     * iteration: a burst of requests is spread over iterations anyway
     * (REQUESTS_PER_PASS), and a search answered late slows every client's
     * connects (libca's search rounds wait for their replies). */
    ev_set_priority(&c->rio, -1);
    ev_timer_init(&c->linger, linger_cb, LINGER_SECONDS, 0);
    ev_timer_init(&c->handshake, handshake_cb, s->cfg.handshake_timeout, 0);
    c->rio.data = c->wio.data = c->linger.data = c->handshake.data = c;
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->n_clients++;
    set_reading(c, true);
    /* The server speaks first: its protocol version. */
    cas_send_hdr(c, CA_PROTO_VERSION, 0, 0, CA_MINOR_VERSION, 0, 0);
    if (all >= s->cfg.max_circuits)
        refuse_circuit(c, "too many circuits", s->cfg.max_circuits);
    else if (from_host >= s->cfg.max_circuits_per_host)
        refuse_circuit(c, "too many circuits from this host", s->cfg.max_circuits_per_host);
    else if (s->cfg.handshake_timeout > 0)
        ev_timer_start(s->loop, &c->handshake);
}

void cas_channel_free(cas_channel *ch)
{
    cas_client *c = ch->client;
    cas_sub *sub, *tmp;
    HASH_ITER(hh, ch->subs, sub, tmp)
        cas_sub_free(sub);
    cas_link_detach(ch);
    HASH_DEL(c->channels, ch);
    c->n_channels--;
    free(ch);
}

/* Mark the client for closing; it is freed at the next reap. */
void cas_client_close(cas_client *c)
{
    c->dead = true;
}

static void client_destroy(cas_client *c)
{
    cas *s = c->srv;
    cas_channel *ch, *tmp;
    HASH_ITER(hh, c->channels, ch, tmp)
        cas_channel_free(ch);
    assert(!c->links && !c->pend_head && !c->stale_head && c->queued == 0);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    ev_timer_stop(s->loop, &c->linger);
    ev_timer_stop(s->loop, &c->handshake);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_clients--;
    free(c->in);
    free(c->out);
    free(c->runs);
    free(c->host);
    free(c->user);
    free(c);
}

void cas_client_reap(cas *s)
{
    cas_client *c = s->clients;
    while (c) {
        cas_client *next = c->next;
        if (c->dead) {
            /* It may still sit on the dirty list. */
            for (cas_client **pp = &s->dirty; *pp; pp = &(*pp)->dirty_next)
                if (*pp == c) {
                    *pp = c->dirty_next;
                    break;
                }
            client_destroy(c);
        }
        c = next;
    }
}

/* Send queued bytes and zero runs, at most FLUSH_MAX bytes. Returns false if
 * the peer is gone. Watches for writability while anything is left. */
static bool send_out(cas_client *c)
{
    size_t budget = FLUSH_MAX;
    while (cas_client_backlog(c) && budget) {
        struct cas_zero_run *r = c->run_head < c->n_runs ? &c->runs[c->run_head] : NULL;
        bool zeros = r && r->at == c->out_off;
        const uint8_t *p = zeros ? zero_page : c->out + c->out_off;
        uint64_t n = zeros ? (r->len < ZERO_PAGE ? r->len : ZERO_PAGE)
                           : (r ? r->at : c->out_len) - c->out_off;
        if (n > budget)
            n = budget;
        ssize_t k = send(c->fd, p, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k > 0) {
            if (zeros) {
                r->len -= (uint64_t)k;
                c->zeros -= (uint64_t)k;
                c->run_head += r->len == 0;
            } else {
                c->out_off += (size_t)k;
            }
            budget -= (size_t)k;
            c->srv->stats.bytes_out += (uint64_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        c->dead = true; /* the peer is gone (EPIPE, ECONNRESET...) */
        return false;
    }
    if (cas_client_backlog(c)) {
        ev_io_start(c->srv->loop, &c->wio);
    } else {
        ev_io_stop(c->srv->loop, &c->wio);
        c->out_off = c->out_len = 0;
        c->run_head = c->n_runs = 0;
    }
    return true;
}

/* Send what is queued; resume requests held back by the backlog, then move
 * monitor updates into what room is left. Called once per loop iteration for
 * a dirty client and when its socket becomes writable; it does a bounded
 * amount of work and leaves the client dirty when more is waiting. */
void cas_client_flush(cas_client *c)
{
    if (c->dead || !send_out(c))
        return;
    if (c->held && !c->halt && cas_client_backlog(c) < c->srv->cfg.client_backlog / 2) {
        process_input(c); /* requests left over when we paused */
        if (c->dead)
            return;
    }
    cas_client_drain_subs(c);
    if (!send_out(c))
        return;
    if (!cas_client_backlog(c)) {
        if (c->out_cap > (4u << 20)) { /* give back the memory of a burst */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        if (c->eof && !c->held) {
            c->dead = true; /* everything it asked for has been sent */
            return;
        }
    }
    /* More updates wait: the next iteration goes on (above the watermark,
     * the socket becoming writable does). */
    if ((c->pend_head || c->stale_head) && !c->events_off &&
        cas_client_backlog(c) < CAS_MONITOR_WATERMARK)
        cas_client_mark_dirty(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    cas_client *c = w->data;
    cas_client_flush(c);
    cas_client_reap(c->srv);
}

static void handshake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    cas_client *c = w->data;
    cas_log(c->srv, "%s: no channel created within %g s; closing the circuit", c->peer_text,
            c->srv->cfg.handshake_timeout);
    c->dead = true;
    cas_client_reap(c->srv);
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    cas_client *c = w->data;
    c->dead = true; /* it closed its side and will not read what is left */
    cas_client_reap(c->srv);
}

/* Read and handle nothing more from this client; close it once what is
 * queued for it (an ERROR, usually) has been sent, or after the linger time. */
static void halt_input(cas_client *c)
{
    set_reading(c, false);
    c->halt = c->eof = true;
    ev_timer_start(c->srv->loop, &c->linger);
}

/* ---- request handlers ---- */

/* What a handler sees: the decoded header, its raw bytes (for ERROR copies)
 * and the payload. */
struct req {
    ca_hdr h;
    const uint8_t *raw;
    size_t raw_len;
    const uint8_t *payload;
};

static void bad_resource(cas_client *c, const struct req *r)
{
    cas_log(c->srv, "%s: bad resource id %u in command %u; closing the circuit", c->peer_text, r->h.p1,
            r->h.cmd);
    cas_send_error(c, r->raw, r->raw_len, 0xFFFFFFFFu, ECA_INTERNAL, "Bad Resource ID");
    halt_input(c);
}

static cas_channel *find_channel(cas_client *c, const struct req *r)
{
    cas_channel *ch = NULL;
    uint32_t sid = r->h.p1;
    HASH_FIND(hh, c->channels, &sid, sizeof(sid), ch);
    if (!ch)
        bad_resource(c, r);
    return ch;
}

static void on_version(cas_client *c, const struct req *r)
{
    if (r->h.count >= 4)
        c->minor = (uint16_t)r->h.count;
}

/* CLIENT_NAME and HOST_NAME: validated, then stored for access rules. */
static void on_name(cas_client *c, const struct req *r, char **slot)
{
    const char *what = r->h.cmd == CA_PROTO_CLIENT_NAME ? "user" : "host";
    size_t len = r->h.postsize ? strnlen((const char *)r->payload, r->h.postsize) : 0;
    if (len == r->h.postsize || len >= CAS_NAME_MAX) {
        cas_log(c->srv, "%s: bad (unterminated or very long) %s name; closing", c->peer_text, what);
        cas_send_error(c, r->raw, r->raw_len, 0xFFFFFFFFu, ECA_INTERNAL, "bad %s name", what);
        halt_input(c);
        return;
    }
    if (c->channels) {
        cas_send_error(c, r->raw, r->raw_len, 0xFFFFFFFFu, ECA_INTERNAL,
                       "%s name after the first channel ignored by server", what);
        return;
    }
    char *copy = strdup((const char *)r->payload);
    if (!copy)
        return;
    free(*slot);
    *slot = copy;
}

static uint32_t new_sid(cas_client *c)
{
    for (;;) {
        uint32_t sid = c->next_sid++;
        cas_channel *used = NULL;
        HASH_FIND(hh, c->channels, &sid, sizeof(sid), used);
        if (!used)
            return sid;
    }
}

static void on_create_chan(cas_client *c, const struct req *r)
{
    cas *s = c->srv;
    if (r->h.p2 >= 4 && r->h.p2 <= 0xFFFF)
        c->minor = (uint16_t)r->h.p2;
    ev_timer_stop(s->loop, &c->handshake);
    pv *pv = NULL;
    if (r->h.postsize) {
        char name[PV_NAME_MAX + 1];
        size_t n = strnlen((const char *)r->payload, r->h.postsize);
        if (n < sizeof(name)) {
            memcpy(name, r->payload, n);
            name[n] = 0;
            pv = pvdb_find(s->db, name);
        }
    }
    if (pv && c->n_channels >= s->cfg.max_channels_per_circuit) {
        if (!c->warned_channels)
            cas_log(s, "%s: more than %u channels on one circuit refused", c->peer_text,
                    s->cfg.max_channels_per_circuit);
        c->warned_channels = true;
        cas_send_error(c, r->raw, r->raw_len, 0xFFFFFFFFu, ECA_ALLOCMEM,
                       "guardiand: too many channels on this circuit (limit %u)",
                       s->cfg.max_channels_per_circuit);
        pv = NULL;
    }
    cas_channel *ch = pv ? calloc(1, sizeof(*ch)) : NULL;
    if (ch) {
        ch->client = c;
        ch->pv = pv;
        if (cas_link_attach(ch) < 0) {
            free(ch);
            ch = NULL;
        }
    }
    if (!ch) {
        cas_send_hdr(c, CA_PROTO_CREATE_CH_FAIL, 0, 0, 0, r->h.p1, 0);
        return;
    }
    ch->sid = new_sid(c);
    ch->cid = r->h.p1;
    ch->rights = cas_rights(s, pv, c);
    HASH_ADD(hh, c->channels, sid, sizeof(ch->sid), ch);
    c->n_channels++;
    uint32_t count = pv_count(pv);
    if (count >= 0xFFFF && c->minor < 9)
        count = 0xFFFE; /* an old client cannot be told more */
    cas_send_access_rights(ch);
    cas_send_hdr(c, CA_PROTO_CREATE_CHAN, 0, (uint16_t)pv_type(pv), count, ch->cid, ch->sid);
}

static void on_clear_channel(cas_client *c, const struct req *r)
{
    cas_channel *ch = find_channel(c, r);
    if (!ch)
        return;
    cas_channel_free(ch);
    cas_send_hdr(c, CA_PROTO_CLEAR_CHANNEL, 0, r->h.data_type, r->h.count, r->h.p1, r->h.p2);
}

/* Check the size of a reply (64 bits: it is computed from a wire count)
 * before anything is built. Sends the ERROR and returns its status. */
static uint32_t reply_check(cas_client *c, const struct req *r, cas_channel *ch, uint64_t size,
                            uint32_t count)
{
    if (size > c->srv->max_reply) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_TOLARGE,
                       "reply of %llu bytes is too large (max %llu)", (unsigned long long)size,
                       (unsigned long long)c->srv->max_reply);
        return ECA_TOLARGE;
    }
    if (cas_needs_ext(size, count) && c->minor < 9) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_16KARRAYCLIENT,
                       "client too old for a large array");
        return ECA_16KARRAYCLIENT;
    }
    return ECA_NORMAL;
}

/* READ_NOTIFY (and the obsolete READ, answered the same way but with the cid
 * in m_cid and errors as ERROR messages). */
static void on_read(cas_client *c, const struct req *r)
{
    cas_channel *ch = find_channel(c, r);
    if (!ch)
        return;
    uint16_t type = r->h.data_type;
    bool notify = r->h.cmd == CA_PROTO_READ_NOTIFY;
    if (!dbr_valid(type)) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_BADTYPE, "bad DBR type %u", type);
        return;
    }
    uint32_t count = cas_reply_count(ch->pv, r->h.count);
    uint64_t size = cas_payload_size(type, count);
    if (reply_check(c, r, ch, size, count) != ECA_NORMAL)
        return;
    if (!(ch->rights & CA_ACCESS_READ)) {
        if (notify) {
            cas_put_hdr_n(c, CA_PROTO_READ_NOTIFY, (uint32_t)size, type, count, ECA_NORDACCESS,
                          r->h.p2, 0);
            cas_put_zeros(c, size);
        } else {
            cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_NORDACCESS, "%s", pv_name(ch->pv));
        }
        return;
    }
    cas_msg *m = cas_msg_current(c->srv, ch->pv, type, count);
    if (!m) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_ALLOCMEM, "out of memory");
        return;
    }
    uint32_t status = cas_msg_status(m, count);
    if (notify)
        cas_put_msg(c, CA_PROTO_READ_NOTIFY, count, status, r->h.p2, m);
    else if (status == ECA_NORMAL)
        cas_put_msg(c, CA_PROTO_READ, count, ch->cid, r->h.p2, m);
    else /* READ has no status field: an ERROR instead */
        cas_send_error(c, r->raw, r->raw_len, ch->cid, status, "%s", pv_name(ch->pv));
    cas_msg_unref(m);
}

static uint8_t *scratch(cas *s, size_t n)
{
    if (n > s->scratch_cap) {
        uint8_t *p = realloc(s->scratch, n);
        if (!p)
            return NULL;
        s->scratch = p;
        s->scratch_cap = n;
    }
    return s->scratch;
}

/* Apply a write; returns an ECA status. */
static uint32_t do_write(cas_client *c, cas_channel *ch, const struct req *r)
{
    if (!(ch->rights & CA_ACCESS_WRITE) && !pv_writable(ch->pv))
        return ECA_NOWTACCESS;
    if (!dbr_valid(r->h.data_type))
        return ECA_BADTYPE;
    if (r->h.count == 0)
        return ECA_BADCOUNT;
    /* The PV's own size: bounded when it was defined (pvdb keeps it 32-bit). */
    size_t need = (size_t)pv_count(ch->pv) * pv_type_size(pv_type(ch->pv));
    uint8_t *buf = scratch(c->srv, need ? need : 1);
    if (!buf)
        return ECA_ALLOCMEM;
    uint32_t n = 0;
    uint32_t st = dbr_decode(buf, &n, ch->pv, r->h.data_type, r->h.count, r->payload,
                             r->h.postsize);
    if (st != ECA_NORMAL || n == 0) /* n == 0: an alarm acknowledgement, a no-op here */
        return st;
    pv_client who = cas_client_who(c);
    /* The rights the client was told decide (the policy's refused hook
     * hears of a refusal, with the value, for its audit). */
    int err = ch->rights & CA_ACCESS_WRITE ? pv_write(ch->pv, buf, n, &who)
                                           : pv_write_refused(ch->pv, buf, n, &who);
    if (err == PVDB_EREADONLY || err == PVDB_EACCESS)
        return ECA_NOWTACCESS;
    return err ? ECA_PUTFAIL : ECA_NORMAL;
}

static void on_write(cas_client *c, const struct req *r)
{
    cas_channel *ch = find_channel(c, r);
    if (!ch)
        return;
    uint32_t st = do_write(c, ch, r);
    if (r->h.cmd == CA_PROTO_WRITE_NOTIFY)
        cas_send_hdr(c, CA_PROTO_WRITE_NOTIFY, 0, r->h.data_type, r->h.count, st, r->h.p2);
    if (st == ECA_NORMAL)
        return; /* ch may be gone: a write handler may remove PVs, even its own */
    if (r->h.cmd == CA_PROTO_WRITE)
        cas_send_error(c, r->raw, r->raw_len, ch->cid, st, "%s", pv_name(ch->pv));
    if (st != ECA_NOWTACCESS)
        cas_log(c->srv, "%s: write to %s refused (status %u)", c->peer_text, pv_name(ch->pv), st);
}

static void on_event_add(cas_client *c, const struct req *r)
{
    cas_channel *ch = find_channel(c, r);
    if (!ch)
        return;
    uint16_t type = r->h.data_type;
    if (!dbr_valid(type)) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_BADTYPE, "bad DBR type %u", type);
        return;
    }
    /* libca sends the 16-byte mon_info; without it, use its default mask. */
    unsigned mask = r->h.postsize >= 16 ? ca_get16(r->payload + 12) : (PV_EV_VALUE | PV_EV_ALARM);
    mask &= PV_EV_VALUE | PV_EV_LOG | PV_EV_ALARM | PV_EV_PROPERTY;
    if (!mask) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_BADMASK, "event mask is empty");
        return;
    }
    uint32_t count = cas_reply_count(ch->pv, r->h.count);
    if (reply_check(c, r, ch, cas_payload_size(type, count), count) != ECA_NORMAL)
        return;
    cas_sub *old = NULL;
    uint32_t subid = r->h.p2;
    HASH_FIND(hh, ch->subs, &subid, sizeof(subid), old);
    if (old) {
        cas_sub_free(old); /* a client reusing a subid replaces the old one */
    } else if (ch->n_subs >= c->srv->cfg.max_subs_per_channel) {
        cas_log(c->srv, "%s: more than %u subscriptions on %s refused", c->peer_text,
                c->srv->cfg.max_subs_per_channel, pv_name(ch->pv));
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_ALLOCMEM,
                       "guardiand: too many subscriptions on this channel (limit %u)",
                       c->srv->cfg.max_subs_per_channel);
        return;
    }
    cas_sub *sub = cas_sub_new(ch, subid, type, r->h.count, mask);
    if (!sub) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_ALLOCMEM, "out of memory");
        return;
    }
    cas_sub_post(sub); /* the initial update, always */
}

static void on_event_cancel(cas_client *c, const struct req *r)
{
    cas_channel *ch = find_channel(c, r);
    if (!ch)
        return;
    cas_sub *sub = NULL;
    uint32_t subid = r->h.p2;
    HASH_FIND(hh, ch->subs, &subid, sizeof(subid), sub);
    if (!sub) {
        cas_send_error(c, r->raw, r->raw_len, ch->cid, ECA_BADMONID, "no subscription %u", subid);
        return;
    }
    uint16_t type = sub->type;
    uint32_t count = sub->count;
    cas_sub_free(sub);
    /* The confirmation: an EVENT_ADD with no payload, after any queued update. */
    cas_send_hdr(c, CA_PROTO_EVENT_ADD, 0, type, count, ch->sid, subid);
}

/* SEARCH over TCP (name-server mode, 4.12). */
static void on_search(cas_client *c, const struct req *r)
{
    char name[PV_NAME_MAX + 1] = "";
    size_t n = r->h.postsize ? strnlen((const char *)r->payload, r->h.postsize) : 0;
    bool found = false;
    if (n && n < sizeof(name)) {
        memcpy(name, r->payload, n);
        name[n] = 0;
        found = pvdb_find(c->srv->db, name) != NULL;
    }
    c->srv->stats.searches++;
    ev_timer_stop(c->srv->loop, &c->handshake);
    if (found) {
        c->srv->stats.search_hits++;
        cas_send_hdr(c, CA_PROTO_SEARCH, 0, c->srv->tcp_port, 0, 0xFFFFFFFFu, r->h.p2);
    } else if (r->h.data_type == CA_DOREPLY) {
        cas_send_hdr(c, CA_PROTO_NOT_FOUND, 0, r->h.data_type, r->h.count, r->h.p1, r->h.p2);
    }
}

static void on_echo(cas_client *c, const struct req *r)
{
    uint8_t *p = cas_put_hdr(c, r->h.cmd, r->h.postsize, r->h.data_type, r->h.count, r->h.p1, r->h.p2);
    if (p && r->h.postsize)
        memcpy(p, r->payload, r->h.postsize);
}

static void on_bad_command(cas_client *c, const struct req *r)
{
    cas_log(c->srv, "%s: invalid request code %u; closing the circuit", c->peer_text, r->h.cmd);
    /* libca indexes a table with the copied command: never copy one >= 28. */
    if (r->h.cmd <= CA_PROTO_LAST)
        cas_send_error(c, r->raw, r->raw_len, 0xFFFFFFFFu, ECA_INTERNAL,
                       "invalid (damaged?) request code from TCP");
    halt_input(c);
}

static void dispatch(cas_client *c, const struct req *r)
{
    c->srv->stats.messages_in++;
    if (c->minor == 0 && r->h.cmd != CA_PROTO_VERSION && r->h.cmd < CA_PROTO_LAST + 1 &&
        r->h.cmd != CA_PROTO_CREATE_CHAN && r->h.cmd != CA_PROTO_ECHO) {
        cas_send_error(c, r->raw, r->raw_len, 0xFFFFFFFFu, ECA_DEFUNCT,
                       "VERSION expected before command %u", r->h.cmd);
        return;
    }
    switch (r->h.cmd) {
    case CA_PROTO_VERSION: on_version(c, r); break;
    case CA_PROTO_CLIENT_NAME: on_name(c, r, &c->user); break;
    case CA_PROTO_HOST_NAME: on_name(c, r, &c->host); break;
    case CA_PROTO_CREATE_CHAN: on_create_chan(c, r); break;
    case CA_PROTO_CLEAR_CHANNEL: on_clear_channel(c, r); break;
    case CA_PROTO_READ:
    case CA_PROTO_READ_NOTIFY: on_read(c, r); break;
    case CA_PROTO_WRITE:
    case CA_PROTO_WRITE_NOTIFY: on_write(c, r); break;
    case CA_PROTO_EVENT_ADD: on_event_add(c, r); break;
    case CA_PROTO_EVENT_CANCEL: on_event_cancel(c, r); break;
    case CA_PROTO_EVENTS_OFF: c->events_off = true; break;
    case CA_PROTO_EVENTS_ON:
        c->events_off = false;
        cas_client_mark_dirty(c); /* send what was held back */
        break;
    case CA_PROTO_SEARCH: on_search(c, r); break;
    case CA_PROTO_READ_SYNC:
    case CA_PROTO_ECHO: on_echo(c, r); break;
    default: on_bad_command(c, r); break;
    }
}

/* ---- input ---- */

/* Decode a header at p (avail bytes). Returns the header length (16 or 24),
 * or 0 if more bytes are needed. */
static size_t parse_hdr(const cas_client *c, const uint8_t *p, size_t avail, ca_hdr *h)
{
    if (avail < CA_HDR_SIZE)
        return 0;
    h->cmd = ca_get16(p);
    h->postsize = ca_get16(p + 2);
    h->data_type = ca_get16(p + 4);
    h->count = ca_get16(p + 6);
    h->p1 = ca_get32(p + 8);
    h->p2 = ca_get32(p + 12);
    /* 0xFFFF marks the extended form for clients that know it (>= 4.9). */
    if (h->postsize != 0xFFFF || (c->minor && c->minor < 9))
        return CA_HDR_SIZE;
    if (avail < CA_EXT_HDR_SIZE)
        return 0;
    h->postsize = ca_get32(p + 16);
    h->count = ca_get32(p + 20);
    return CA_EXT_HDR_SIZE;
}

static bool ensure_in(cas_client *c, size_t need)
{
    if (need <= c->in_cap)
        return true;
    size_t cap = c->in_cap ? c->in_cap : READ_CHUNK;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(c->in, cap);
    if (!p)
        return false;
    c->in = p;
    c->in_cap = cap;
    return true;
}

/* Hold the rest of the input: stop reading until a flush resumes it. */
static void hold_input(cas_client *c)
{
    c->held = true;
    set_reading(c, false);
    cas_client_mark_dirty(c);
}

/* Handle the complete requests received, in order, until the output backlog
 * or the per-pass budget (requests or time) says to stop (then the input is held and a later
 * flush goes on): one client's requests cost bounded time per iteration. */
static void process_input(cas_client *c)
{
    size_t pos = 0;
    cas *s = c->srv;
    unsigned budget = REQUESTS_PER_PASS;
    ev_tstamp deadline = ev_time() + PASS_SECONDS;
    c->held = false;
    set_reading(c, true);
    while (!c->dead && !c->halt) {
        size_t avail = c->in_len - pos;
        if (c->discard) {
            size_t skip = c->discard < avail ? (size_t)c->discard : avail;
            pos += skip;
            c->discard -= skip;
            if (c->discard)
                break;
            continue;
        }
        /* Back-pressure: leave the rest until the client has read its replies. */
        if (cas_client_backlog(c) >= s->cfg.client_backlog || budget == 0) {
            if (avail >= CA_HDR_SIZE)
                hold_input(c);
            break;
        }
        struct req r;
        size_t hlen = parse_hdr(c, c->in + pos, avail, &r.h);
        if (!hlen)
            break;
        uint64_t max = cas_max_request(s);
        if (r.h.postsize > max) {
            cas_log(c->srv, "%s: request of %u bytes refused (max %llu)", c->peer_text,
                    r.h.postsize, (unsigned long long)max);
            cas_send_error(c, c->in + pos, hlen, 0xFFFFFFFFu, ECA_TOLARGE,
                           "Server unable to load large request message. Max bytes=%llu",
                           (unsigned long long)max);
            pos += hlen;
            c->discard = r.h.postsize;
            continue;
        }
        if ((uint64_t)avail < hlen + (uint64_t)r.h.postsize) {
            if (!ensure_in(c, hlen + (size_t)r.h.postsize)) {
                cas_log(c->srv, "%s: out of memory for a request; closing", c->peer_text);
                c->dead = true;
            }
            /* ensure_in may have moved the buffer; pos is an offset, so fine. */
            break;
        }
        r.raw = c->in + pos;
        r.raw_len = hlen;
        r.payload = c->in + pos + hlen;
        dispatch(c, &r);
        budget--;
        if (budget % 32 == 0 && ev_time() > deadline)
            budget = 0; /* slow requests (allocations, page faults): the time is up */
        pos += hlen + r.h.postsize;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    if (c->in_cap > 4 * READ_CHUNK && c->in_len < READ_CHUNK) {
        uint8_t *p = realloc(c->in, READ_CHUNK); /* give back a large request's memory */
        if (p) {
            c->in = p;
            c->in_cap = READ_CHUNK;
        }
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    cas_client *c = w->data;
    /* Read into the room left; grow only when little is left (a large
     * request grows the buffer to its size in process_input). */
    if (c->in_cap - c->in_len < READ_MIN && !ensure_in(c, c->in_len + READ_CHUNK)) {
        c->dead = true;
        cas_client_reap(c->srv);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        /* EOF: answer everything already received (a client often writes
         * and closes at once), then close when the replies are out. */
        set_reading(c, false);
        c->eof = true;
        if (n < 0)
            c->dead = true;
        else
            ev_timer_start(c->srv->loop, &c->linger);
    } else {
        c->in_len += (size_t)n;
    }
    process_input(c);
    if (c->eof && !c->dead)
        cas_client_mark_dirty(c);
    cas_client_reap(c->srv);
}
