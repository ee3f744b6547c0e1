/* monitor.c — subscriptions: per-subscription queues, coalescing, flushing.
 *
 * A PV change reaches each channel through its pv_watch; every subscription
 * of the channel whose mask matches queues the change. The payload is
 * encoded once per (PV, post, type, count) and shared by reference between
 * subscriptions (the cache below), so a hundred MEDM screens watching one
 * channel cost one encoding per change, not a hundred.
 *
 * Each subscription queues at most CAS_SUB_QUEUE updates. When the queue is
 * full, or the client asked for flow control (EVENTS_OFF) and one update is
 * already waiting, a new update replaces the newest queued one: the client
 * never loses the latest value, updates stay in order, and a client that
 * does not read costs a bounded amount of memory.
 */
#include "ca/cas_priv.h"
#include "ca/dbr.h"

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

void cas_msg_unref(cas_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

void cas_cache_clear(cas *s)
{
    for (unsigned i = 0; i < CAS_CACHE_SLOTS; i++) {
        cas_msg_unref(s->cache[i].msg);
        s->cache[i].msg = NULL;
        s->cache[i].pv = NULL;
    }
}

static cas_msg *msg_new(uint32_t size)
{
    cas_msg *m = malloc(sizeof(*m) + size);
    if (m)
        m->refs = 1;
    return m;
}

/* The current value of pv as `type` x count, encoded once per post. */
static cas_msg *encode_shared(cas *s, const pv *pv, uint16_t type, uint32_t count)
{
    uint64_t gen = pv_generation(pv);
    for (unsigned i = 0; i < CAS_CACHE_SLOTS; i++) {
        struct cas_cache_slot *e = &s->cache[i];
        if (e->msg && e->pv == pv && e->gen == gen && e->type == type && e->count == count) {
            e->msg->refs++;
            return e->msg;
        }
    }
    size_t used = dbr_struct_size_n(type, count);
    uint32_t size = ca_align8((uint32_t)used);
    cas_msg *m = msg_new(size);
    if (!m)
        return NULL;
    m->count = count;
    m->size = size;
    m->status = dbr_encode(m->data, type, count, pv);
    memset(m->data + used, 0, size - used);
    struct cas_cache_slot *e = &s->cache[s->cache_next];
    s->cache_next = (s->cache_next + 1) % CAS_CACHE_SLOTS;
    cas_msg_unref(e->msg);
    *e = (struct cas_cache_slot){.pv = pv, .gen = gen, .type = type, .count = count, .msg = m};
    m->refs++;
    return m;
}

/* A status-only update (no read access): a zeroed payload of the right size. */
static cas_msg *encode_denied(uint16_t type, uint32_t count)
{
    uint32_t size = ca_align8((uint32_t)dbr_struct_size_n(type, count));
    cas_msg *m = msg_new(size);
    if (!m)
        return NULL;
    m->count = count;
    m->size = size;
    m->status = ECA_NORDACCESS;
    memset(m->data, 0, size);
    return m;
}

static void pending_add(cas_sub *sub)
{
    cas_client *c = sub->ch->client;
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
    sub->subid = subid;
    sub->type = type;
    sub->count = count;
    sub->mask = mask;
    sub->ch = ch;
    HASH_ADD(hh, ch->subs, subid, sizeof(sub->subid), sub);
    ch->client->n_subs++;
    return sub;
}

void cas_sub_free(cas_sub *sub)
{
    pending_remove(sub);
    for (unsigned i = 0; i < sub->queued; i++)
        cas_msg_unref(sub->queue[i]);
    HASH_DEL(sub->ch->subs, sub);
    sub->ch->client->n_subs--;
    free(sub);
}

/* Queue the PV's current value (or a denial) for this subscription. */
void cas_sub_post(cas_sub *sub)
{
    cas_channel *ch = sub->ch;
    cas_client *c = ch->client;
    uint32_t count = cas_reply_count(ch->pv, sub->count);
    if (cas_needs_ext(ca_align8((uint32_t)dbr_struct_size_n(sub->type, count)), count) && c->minor < 9)
        return; /* refused at EVENT_ADD already; nothing a pre-4.9 client can take */
    cas_msg *m = (ch->rights & CA_ACCESS_READ) ? encode_shared(c->srv, ch->pv, sub->type, count)
                                                : encode_denied(sub->type, count);
    if (!m)
        return;
    if (sub->queued == CAS_SUB_QUEUE || (c->events_off && sub->queued >= 1)) {
        cas_msg_unref(sub->queue[sub->queued - 1]);
        sub->queue[sub->queued - 1] = m;
        c->srv->stats.updates_dropped++;
    } else {
        sub->queue[sub->queued++] = m;
    }
    pending_add(sub);
    cas_client_mark_dirty(c);
}

/* The pv_watch callback of a channel. */
void cas_channel_on_event(pv *pv, unsigned events, void *arg)
{
    (void)pv;
    cas_channel *ch = arg;
    if (events & PV_EV_DELETE) {
        /* The PV is gone (its group was removed): tell the client, which
         * searches for it again, and forget the channel. */
        cas_client *c = ch->client;
        cas_cache_clear(c->srv);
        cas_send_hdr(c, CA_PROTO_SERVER_DISCONN, 0, 0, 0, ch->cid, 0);
        ch->pv = NULL;
        cas_channel_free(ch);
        return;
    }
    if (!(ch->rights & CA_ACCESS_READ))
        return; /* no updates after the status-only one, until access changes */
    cas_sub *sub, *tmp;
    HASH_ITER(hh, ch->subs, sub, tmp)
        if (sub->mask & events)
            cas_sub_post(sub);
}

/* Move queued updates into the client's output, oldest subscription first,
 * while the client keeps up. */
void cas_client_drain_subs(cas_client *c)
{
    size_t limit = c->srv->cfg.client_backlog;
    while (c->pend_head && !c->events_off && c->out_len - c->out_off < limit && !c->dead) {
        cas_sub *sub = c->pend_head;
        pending_remove(sub);
        for (unsigned i = 0; i < sub->queued; i++) {
            cas_msg *m = sub->queue[i];
            uint8_t *p = cas_put_hdr(c, CA_PROTO_EVENT_ADD, m->size, sub->type, m->count,
                                     m->status, sub->subid);
            if (p) {
                memcpy(p, m->data, m->size);
                c->srv->stats.updates_sent++;
            }
            cas_msg_unref(m);
        }
        sub->queued = 0;
    }
}
