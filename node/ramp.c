/* ramp.c — ezca's helpers for state code: ramps and switch bits.
 *
 * A ramp moves a plant channel linearly from its value when the ramp starts
 * to a target over T seconds, as a front end's ramping gain does, without
 * blocking: the engine steps every ramp once per executing cycle, before the
 * state code runs, writing through the same path as grd_put (so the plant
 * and the set-point monitor see each step), and the state waits on
 * grd_ramping() with GRD_CONTINUE.
 *
 * Ramps belong to the node, like timers (timer.c): a fixed table of
 * NODE_RAMPS_MAX slots keyed by the interned channel name (chan.c: a name
 * interned once has one address for the node's life, so slots compare
 * pointers), and n_ramps counts the active ones so that a node with none
 * pays one test per cycle. A step computes one value and makes one write;
 * nothing is allocated.
 *
 * The time of a ramp is execution time: PAUSE freezes it (no writes, the
 * clock of the ramp stops) and EXEC resumes it. STOP, ERROR and a fresh
 * start at INIT abandon every ramp where it is; leaving a state does not
 * (a front end's ramp would go on too), nor does a reload that keeps the
 * state. The log gets one line when a ramp starts and one when it ends,
 * never one per step: 16 lines a second per ramp would drown the log.
 */
#include "node/node_priv.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define SWITCH_BITS_MAX 0xffffffffUL /* switch channels are 32-bit integers */

static struct node_ramp *ramp_of(node *n, const char *chan)
{
    if (!n->n_ramps || !chan)
        return NULL;
    for (unsigned i = 0; i < NODE_RAMPS_MAX; i++) {
        const char *c = n->ramps[i].chan;
        if (c && (c == chan || strncmp(c, chan, NODE_CHAN_MAX + 1) == 0))
            return &n->ramps[i];
    }
    return NULL;
}

/* The one line of a ramp's end: "ezca: CHAN => 0.75 (ramp done)". */
static void ramp_end(node *n, struct node_ramp *r, const char *why)
{
    char prefix[GRD_NAME_MAX + 16];
    node_code_prefix(n, prefix, sizeof(prefix));
    node_log(n, "%sezca: %s => %.15g (ramp %s)", prefix, r->chan, r->value, why);
    r->chan = NULL;
    assert(n->n_ramps > 0);
    n->n_ramps--;
}

void node_ramp_cancel(node *n, const char *chan, const char *why)
{
    struct node_ramp *r = ramp_of(n, chan);
    if (r)
        ramp_end(n, r, why);
}

void node_ramps_clear(node *n, const char *why)
{
    for (unsigned i = 0; i < NODE_RAMPS_MAX && n->n_ramps; i++)
        if (n->ramps[i].chan)
            ramp_end(n, &n->ramps[i], why);
}

/* A free slot, or NULL (a node error: too many ramps). */
static struct node_ramp *ramp_slot(node *n, const char *chan)
{
    for (unsigned i = 0; i < NODE_RAMPS_MAX; i++)
        if (!n->ramps[i].chan)
            return &n->ramps[i];
    node_error_as(n, false, "more than %d ramps running (starting %s)", NODE_RAMPS_MAX, chan);
    return NULL;
}

int grd_ramp(grd_node *g, const char *chan, double target, double seconds)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    if (!isfinite(target) || isinf(seconds))
        return GRD_ETYPE;
    if (!(seconds > 0)) /* 0, negative, NaN: the target at once, a plain write */
        return grd_put(g, chan, target);
    const char *name = node_chan_intern(n, chan);
    if (!name)
        return GRD_EBADCHAN;
    struct node_ramp *r = ramp_of(n, name);
    double from = 0;
    if (r) {
        from = r->value; /* retarget: from where it is */
    } else {
        int e = node_chan_get(n, name, &from);
        if (e != GRD_OK)
            return e;
        if (!isfinite(from))
            return GRD_ETYPE;
        if (!(r = ramp_slot(n, name)))
            return GRD_EBUSY;
        n->n_ramps++;
    }
    *r = (struct node_ramp){.chan = name, .from = from, .to = target, .seconds = seconds,
                            .last_at = node_now(n), .value = from};
    char prefix[GRD_NAME_MAX + 16];
    node_code_prefix(n, prefix, sizeof(prefix));
    node_log(n, "%sezca: %s => %.15g (ramp %g s from %.15g)", prefix, name, target, seconds, from);
    return GRD_OK;
}

bool grd_ramping(grd_node *g, const char *chan)
{
    node *n = node_live(g);
    return n && ramp_of(n, chan);
}

/* One step of a ramp: where it is after `elapsed` s of its `seconds`; the
 * target exactly once the time is up. */
static double ramp_value(const struct node_ramp *r)
{
    if (r->elapsed >= r->seconds)
        return r->to;
    return r->from + (r->to - r->from) * (r->elapsed / r->seconds);
}

void node_ramps_step(node *n)
{
    const char *why = n->op == NODE_OP_STOP ? "abandoned: STOP"
                      : n->error           ? "abandoned: ERROR"
                                           : NULL;
    if (why) {
        node_ramps_clear(n, why);
        return;
    }
    double now = node_now(n);
    for (unsigned i = 0; i < NODE_RAMPS_MAX && n->n_ramps; i++) {
        struct node_ramp *r = &n->ramps[i];
        if (!r->chan)
            continue;
        double dt = now - r->last_at;
        r->last_at = now;
        if (n->op != NODE_OP_EXEC || !(dt > 0))
            continue; /* PAUSE: frozen, its clock stopped */
        r->elapsed += dt;
        double v = ramp_value(r);
        if (node_chan_write(n, r->chan, v, NULL, false) != GRD_OK) {
            ramp_end(n, r, "abandoned: the write failed");
            node_ramps_clear(n, "abandoned: ERROR"); /* the failed write is the node's error */
            return;
        }
        r->value = v;
        if (v == r->to)
            ramp_end(n, r, "done");
    }
}

/* ---- switch bits ---- */

int grd_switch(grd_node *g, const char *chan, unsigned long mask, bool on)
{
    node *n = node_live(g);
    if (!n || mask > SWITCH_BITS_MAX)
        return GRD_EINVAL;
    const char *name = node_chan_intern(n, chan);
    if (!name)
        return GRD_EBADCHAN;
    double v = 0;
    int r = node_chan_get(n, name, &v);
    if (r != GRD_OK)
        return r;
    if (!(v >= 0 && v <= (double)SWITCH_BITS_MAX && v == floor(v)))
        return GRD_ETYPE;
    unsigned long was = (unsigned long)v, now = on ? was | mask : was & ~mask;
    if (now == was)
        return GRD_OK; /* nothing to change: no write */
    node_ramp_cancel(n, name, "cancelled by a write");
    r = node_chan_write(n, name, (double)now, NULL, false);
    if (r == GRD_OK) {
        char prefix[GRD_NAME_MAX + 16];
        node_code_prefix(n, prefix, sizeof(prefix));
        node_log(n, "%sezca: %s => %s: 0x%04lx", prefix, name, on ? "ON" : "OFF", now ^ was);
    }
    return r;
}
