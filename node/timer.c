/* timer.c — state-code timers (Guardian's self.timer['name'] = seconds).
 *
 * A node has NODE_TIMERS_MAX named countdowns on host->now, kept across
 * states (cleared only when the node starts afresh). A fixed table searched
 * linearly: a handful of timers per node is the norm, and expired slots are
 * reused, so state code that names its timers after, say, a counter cannot
 * grow memory. A timer that was never started reads as expired, so reusing
 * an expired slot changes nothing state code can see.
 */
#include "node/node_priv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void timer_key(const char *name, char *key)
{
    size_t i = 0;
    for (; name[i] && i < GRD_NAME_MAX; i++)
        key[i] = ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '\'') ? '?' : name[i];
    key[i] = '\0';
}

static struct node_timer *timer_find(node *n, const char *key)
{
    for (unsigned i = 0; i < NODE_TIMERS_MAX; i++)
        if (n->timers[i].name[0] && strcmp(n->timers[i].name, key) == 0)
            return &n->timers[i];
    return NULL;
}

void grd_timer_start(grd_node *g, const char *name, double seconds)
{
    node *n = node_live(g);
    if (!n)
        return;
    if (!name || !name[0]) {
        if (n->in_code && !n->err_set) {
            snprintf(n->err_msg, sizeof(n->err_msg), "grd_timer_start() without a name");
            n->err_set = true;
        }
        return;
    }
    char key[GRD_NAME_MAX + 1];
    timer_key(name, key);
    double now = node_now(n);
    struct node_timer *t = timer_find(n, key);
    for (unsigned i = 0; !t && i < NODE_TIMERS_MAX; i++)
        if (!n->timers[i].name[0])
            t = &n->timers[i];
    for (unsigned i = 0; !t && i < NODE_TIMERS_MAX; i++)
        if (n->timers[i].expiry <= now)
            t = &n->timers[i];
    if (!t) {
        if (n->in_code && !n->err_set) {
            snprintf(n->err_msg, sizeof(n->err_msg), "more than %d timers running (starting '%s')",
                     NODE_TIMERS_MAX, key);
            n->err_set = true;
        }
        return;
    }
    snprintf(t->name, sizeof(t->name), "%s", key);
    t->expiry = now + (seconds > 0 ? seconds : 0); /* NaN and negatives: expired */
    t->reported = false;
    char prefix[GRD_NAME_MAX + 16];
    node_code_prefix(n, prefix, sizeof(prefix));
    node_log(n, "%stimer['%s'] = %g", prefix, key, isnan(seconds) ? 0.0 : seconds);
}

bool grd_timer_done(grd_node *g, const char *name)
{
    node *n = node_live(g);
    if (!n || !name)
        return true;
    char key[GRD_NAME_MAX + 1];
    timer_key(name, key);
    struct node_timer *t = timer_find(n, key);
    if (!t)
        return true;
    if (node_now(n) < t->expiry)
        return false;
    if (!t->reported) {
        t->reported = true;
        char prefix[GRD_NAME_MAX + 16];
        node_code_prefix(n, prefix, sizeof(prefix));
        node_log(n, "%stimer['%s'] done", prefix, key);
    }
    return true;
}

void node_timers_clear(node *n)
{
    memset(n->timers, 0, sizeof(n->timers));
}
