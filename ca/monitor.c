/* monitor.c — encodings, links and subscriptions: what a post costs.
 *
 * Encodings. A PV's value is encoded once per (PV, post, DBR type) and
 * shared by reference (the cache below) between every reply and update that
 * wants it, whatever their element counts: the encoding of k elements is a
 * prefix of the encoding of more, and elements past the valid ones are zero
 * (dbr_encode_prefix). So a hundred MEDM screens watching one channel cost
 * one encoding per change, and a request for 2^29 elements of a scalar costs
 * one element and a count of zero bytes (cas_put_zeros), never 4 GiB.
 *
 * Links. A client's channels to one PV share one link, and only links watch
 * PVs, with the union of their subscriptions' masks. A link without
 * subscriptions watches with mask 0, which pvdb never walks: catime's 10 000
 * channels on one PV make its puts cost nothing here. A post costs one call
 * per client watching, then one step per subscription that wants it.
 *
 * Behind. A client that cannot take more (flow control, output above the
 * watermark, or CAS_QUEUE_BUDGET updates already queued) is not given
 * updates one by one: the post marks its link stale, O(1), and when the
 * client drains it catches up with each stale subscription's latest value
 * (skipping those that already have it). So the work one client causes per
 * post is bounded by the budget, whatever it subscribed to.
 *
 * Queues. Each subscription queues at most CAS_SUB_QUEUE updates; a new one
 * then replaces the newest queued one: the client never loses the latest
 * value and updates stay in order (ca-protocol.md 5.4).
 */
#include "ca/cas_priv.h"
#include "ca/dbr.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>


uint32_t cas_reply_count(const pv *pv, uint32_t requested)
{
    if (requested)
        return requested;
    /* Count 0: what is valid now; at least one element, since a zero-length
     * update means "cancel confirmed" to libca. */
    uint32_t n = pv_nelm(pv);
    return n ? n : 1;
}

uint64_t cas_payload_size(uint16_t type, uint32_t count)
{
    size_t n = dbr_struct_size_n(type, count);
    return n == SIZE_MAX ? UINT64_MAX : ca_align8((uint64_t)n);
}

/* ---- encodings ---- */

void cas_msg_unref(cas_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

void cas_cache_clear(cas *s)
{
    for (unsigned i = 0; i < CAS_CACHE_SLOTS; i++) {
        cas_msg_unref(s->cache[i].msg);
        s->cache[i] = (struct cas_cache_slot){0};
    }
}

static uint32_t valid_elems(const pv *pv)
{
    uint32_t v = pv_nelm(pv) < pv_count(pv) ? pv_nelm(pv) : pv_count(pv);
    return v ? v : 1;
}

static cas_msg *msg_encode(const pv *pv, uint16_t type, uint32_t elems)
{
    size_t len = dbr_struct_size_n(type, elems);
    assert(len != SIZE_MAX);
    cas_msg *m = malloc(sizeof(*m) + len);
    if (!m)
        return NULL;
    *m = (cas_msg){.refs = 1, .type = type, .valid = valid_elems(pv), .elems = elems, .len = len};
    dbr_encode_prefix(m->data, type, elems, pv, &m->good);
    return m;
}

cas_msg *cas_msg_current(cas *s, const pv *pv, uint16_t type, uint32_t count)
{
    uint32_t valid = valid_elems(pv);
    uint32_t need = count < valid ? count : valid;
    uint64_t gen = pv_generation(pv);
    struct cas_cache_slot *slot = NULL;
    for (unsigned i = 0; i < CAS_CACHE_SLOTS && !slot; i++) {
        struct cas_cache_slot *e = &s->cache[i];
        if (e->msg && e->pv == pv && e->gen == gen && e->msg->type == type)
            slot = e;
    }
    if (slot && slot->msg->elems >= need) {
        slot->msg->refs++;
        return slot->msg;
    }
    cas_msg *m = msg_encode(pv, type, need);
    if (!m)
        return NULL;
    if (!slot) {
        slot = &s->cache[s->cache_next];
        s->cache_next = (s->cache_next + 1) % CAS_CACHE_SLOTS;
    }
    cas_msg_unref(slot->msg); /* a shorter encoding: replies holding it keep it */
    *slot = (struct cas_cache_slot){.pv = pv, .gen = gen, .msg = m};
    m->refs++;
    return m;
}

/* A status-only update (no read access). */
static cas_msg *msg_denied(const pv *pv, uint16_t type)
{
    cas_msg *m = malloc(sizeof(*m));
    if (m)
        *m = (cas_msg){.refs = 1, .type = type, .denied = true, .valid = valid_elems(pv)};
    return m;
}

uint32_t cas_msg_status(const cas_msg *m, uint32_t count)
{
    if (m->denied)
        return ECA_NORDACCESS;
    uint32_t need = count < m->valid ? count : m->valid;
    return need <= m->good ? ECA_NORMAL : ECA_GETFAIL;
}

void cas_put_msg(cas_client *c, uint16_t cmd, uint32_t count, uint32_t p1, uint32_t p2,
                 const cas_msg *m)
{
    uint64_t size = cas_payload_size(m->type, count);
    assert(size <= UINT32_MAX);
    size_t want = dbr_struct_size_n(m->type, count);
    size_t copy = cas_msg_status(m, count) != ECA_NORMAL ? 0 : want < m->len ? want : m->len;
    uint8_t *p = cas_put_hdr_n(c, cmd, (uint32_t)size, m->type, count, p1, p2, copy);
    if (!p)
        return;
    memcpy(p, m->data, copy);
    cas_put_zeros(c, size - copy);
}

/* ---- links ---- */

static const unsigned event_bits[4] = {PV_EV_VALUE, PV_EV_LOG, PV_EV_ALARM, PV_EV_PROPERTY};

static void link_on_event(pv *pv, unsigned events, void *arg);

static void link_update_mask(cas_link *l, unsigned mask, int delta)
{
    unsigned now = 0;
    for (int i = 0; i < 4; i++) {
        if (mask & event_bits[i])
            l->mask_users[i] = (unsigned)((int)l->mask_users[i] + delta);
        if (l->mask_users[i])
            now |= event_bits[i];
    }
    if (now != l->watch.mask)
        pv_watch_set_mask(&l->watch, now);
}

static void stale_remove(cas_link *l)
{
    cas_client *c = l->client;
    if (!l->stale)
        return;
    if (l->stale_prev)
        l->stale_prev->stale_next = l->stale_next;
    else
        c->stale_head = l->stale_next;
    if (l->stale_next)
        l->stale_next->stale_prev = l->stale_prev;
    else
        c->stale_tail = l->stale_prev;
    l->stale_prev = l->stale_next = NULL;
    l->stale = 0;
    l->cursor = NULL;
}

/* The client missed `events` on this link: it catches up when it drains. */
static void stale_mark(cas_link *l, unsigned events)
{
    cas_client *c = l->client;
    if (!l->stale) {
        l->stale_prev = c->stale_tail;
        l->stale_next = NULL;
        if (c->stale_tail)
            c->stale_tail->stale_next = l;
        else
            c->stale_head = l;
        c->stale_tail = l;
    }
    assert(events != 0); /* cas_priv.h: stale iff link->stale is not 0 */
    l->stale |= events;
    l->cursor = l->subs; /* from the start: subs that have the latest are skipped */
    cas_client_mark_dirty(c);
}

int cas_link_attach(cas_channel *ch)
{
    cas_client *c = ch->client;
    cas_link *l = NULL;
    HASH_FIND(hh, c->links, &ch->pv, sizeof(ch->pv), l);
    if (!l) {
        l = calloc(1, sizeof(*l));
        if (!l)
            return -1;
        l->client = c;
        l->pv = ch->pv;
        pv_watch_init(&l->watch, link_on_event, l, 0);
        pv_watch_start(l->pv, &l->watch);
        HASH_ADD(hh, c->links, pv, sizeof(l->pv), l);
    }
    ch->link = l;
    ch->link_prev = NULL;
    ch->link_next = l->channels;
    if (l->channels)
        l->channels->link_prev = ch;
    l->channels = ch;
    return 0;
}

void cas_link_detach(cas_channel *ch)
{
    cas_link *l = ch->link;
    if (!l)
        return;
    assert(!ch->subs);
    if (ch->link_prev)
        ch->link_prev->link_next = ch->link_next;
    else
        l->channels = ch->link_next;
    if (ch->link_next)
        ch->link_next->link_prev = ch->link_prev;
    ch->link = NULL;
    if (l->channels)
        return;
    stale_remove(l);
    pv_watch_stop(&l->watch);
    HASH_DEL(l->client->links, l);
    free(l);
}

/* The PV is gone (its group was removed): tell the client about each
 * channel, so that it searches again, and forget them. */
static void link_disconnect(cas_link *l)
{
    cas_client *c = l->client;
    cas_cache_clear(c->srv);
    while (l->channels) {
        cas_channel *ch = l->channels;
        bool last = !ch->link_next;
        cas_send_hdr(c, CA_PROTO_SERVER_DISCONN, 0, 0, 0, ch->cid, 0);
        cas_channel_free(ch); /* frees the link with its last channel */
        if (last)
            break;
    }
}

static bool client_behind(const cas_client *c)
{
    return c->events_off || c->queued >= CAS_QUEUE_BUDGET ||
           cas_client_backlog(c) >= CAS_MONITOR_WATERMARK;
}

static void link_on_event(pv *pv, unsigned events, void *arg)
{
    (void)pv;
    cas_link *l = arg;
    if (events & PV_EV_DELETE) {
        link_disconnect(l);
        return;
    }
    cas_client *c = l->client;
    if (client_behind(c)) {
        stale_mark(l, events);
        return;
    }
    for (cas_sub *sub = l->subs; sub; sub = sub->link_next) {
        if ((sub->mask & events) && (sub->ch->rights & CA_ACCESS_READ))
            cas_sub_post(sub);
        if (c->queued >= CAS_QUEUE_BUDGET && sub->link_next) {
            stale_mark(l, events); /* the rest when it drains */
            return;
        }
    }
}

/* ---- subscriptions ---- */

static bool on_pending(const cas_sub *sub)
{
    return sub->pend_prev || sub->ch->client->pend_head == sub;
}

static void pending_add(cas_sub *sub)
{
    cas_client *c = sub->ch->client;
    assert(sub->queued > 0); /* cas_priv.h: pending iff its queue is not empty */
    if (sub->pend_prev || c->pend_head == sub)
        return;
    sub->pend_next = NULL;
    sub->pend_prev = c->pend_tail;
    if (c->pend_tail)
        c->pend_tail->pend_next = sub;
    else
        c->pend_head = sub;
    c->pend_tail = sub;
}

static void pending_remove(cas_sub *sub)
{
    cas_client *c = sub->ch->client;
    if (!sub->pend_prev && c->pend_head != sub)
        return;
    if (sub->pend_prev)
        sub->pend_prev->pend_next = sub->pend_next;
    else
        c->pend_head = sub->pend_next;
    if (sub->pend_next)
        sub->pend_next->pend_prev = sub->pend_prev;
    else
        c->pend_tail = sub->pend_prev;
    sub->pend_prev = sub->pend_next = NULL;
}

cas_sub *cas_sub_new(cas_channel *ch, uint32_t subid, uint16_t type, uint32_t count, unsigned mask)
{
    cas_sub *sub = calloc(1, sizeof(*sub));
    if (!sub)
        return NULL;
    cas_link *l = ch->link;
    sub->subid = subid;
    sub->type = type;
    sub->count = count;
    sub->mask = mask;
    sub->ch = ch;
    HASH_ADD(hh, ch->subs, subid, sizeof(sub->subid), sub);
    ch->n_subs++;
    sub->link_next = l->subs;
    if (l->subs)
        l->subs->link_prev = sub;
    l->subs = sub;
    link_update_mask(l, mask, +1);
    ch->client->n_subs++;
    return sub;
}

void cas_sub_free(cas_sub *sub)
{
    cas_channel *ch = sub->ch;
    cas_link *l = ch->link;
    cas_client *c = ch->client;
    pending_remove(sub);
    for (unsigned i = 0; i < sub->queued; i++)
        cas_msg_unref(sub->queue[i]);
    c->queued -= sub->queued;
    if (l->cursor == sub)
        l->cursor = sub->link_next;
    if (sub->link_prev)
        sub->link_prev->link_next = sub->link_next;
    else
        l->subs = sub->link_next;
    if (sub->link_next)
        sub->link_next->link_prev = sub->link_prev;
    link_update_mask(l, sub->mask, -1);
    HASH_DEL(ch->subs, sub);
    ch->n_subs--;
    c->n_subs--;
    free(sub);
}

void cas_sub_post(cas_sub *sub)
{
    cas_channel *ch = sub->ch;
    cas_client *c = ch->client;
    uint32_t count = cas_reply_count(ch->pv, sub->count);
    if (cas_needs_ext(cas_payload_size(sub->type, count), count) && c->minor < 9)
        return; /* refused at EVENT_ADD already; nothing a pre-4.9 client can take */
    cas_msg *m = (ch->rights & CA_ACCESS_READ) ? cas_msg_current(c->srv, ch->pv, sub->type, count)
                                                : msg_denied(ch->pv, sub->type);
    if (!m)
        return;
    sub->gen = pv_generation(ch->pv);
    if (sub->queued == CAS_SUB_QUEUE || (c->events_off && sub->queued >= 1)) {
        cas_msg_unref(sub->queue[sub->queued - 1]);
        sub->queue[sub->queued - 1] = m;
        c->srv->stats.updates_dropped++;
    } else {
        sub->queue[sub->queued++] = m;
        c->queued++;
    }
    pending_add(sub);
    assert(on_pending(sub) && sub->queued > 0);
    cas_client_mark_dirty(c);
}

/* Catch up on one stale link: queue the latest value for each subscription
 * that wants the missed events and does not have it yet, until the client
 * holds `room` more updates; the link stays stale where it stopped. */
static void catch_up(cas_link *l, size_t room)
{
    cas_client *c = l->client;
    uint64_t gen = pv_generation(l->pv);
    size_t limit = c->queued + room;
    while (l->cursor && c->queued < limit) {
        cas_sub *sub = l->cursor;
        l->cursor = sub->link_next;
        if ((sub->mask & l->stale) && sub->gen != gen && (sub->ch->rights & CA_ACCESS_READ))
            cas_sub_post(sub);
    }
    if (!l->cursor)
        stale_remove(l);
}

/* Move queued updates into the client's output, oldest subscription first,
 * then catch up on stale links, while the client keeps up: up to the
 * watermark, so that a client that reads its monitors slowly still has its
 * requests answered, and so that one client's updates cost bounded time
 * per loop iteration. */
void cas_client_drain_subs(cas_client *c)
{
    uint64_t limit = CAS_MONITOR_WATERMARK; /* the rest of the backlog is for replies */
    while (!c->events_off && !c->dead && cas_client_backlog(c) < limit) {
        if (!c->pend_head) {
            if (!c->stale_head)
                break;
            catch_up(c->stale_head, 256);
            continue;
        }
        cas_sub *sub = c->pend_head;
        pending_remove(sub);
        for (unsigned i = 0; i < sub->queued; i++) {
            cas_msg *m = sub->queue[i];
            uint32_t count = sub->count ? sub->count : m->valid;
            cas_put_msg(c, CA_PROTO_EVENT_ADD, count, cas_msg_status(m, count), sub->subid, m);
            c->srv->stats.updates_sent++;
            cas_msg_unref(m);
        }
        c->queued -= sub->queued;
        sub->queued = 0;
        assert(!on_pending(sub));
    }
}
