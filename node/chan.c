/* chan.c — plant channels for state code: names, reads and writes.
 *
 * Reads and writes go through host->get and host->put (libca in the daemon,
 * a table in tests) and never block: a read returns the latest monitored
 * value or GRD_ENOTCONN. A read that finds its channel not connected marks
 * the cycle, and the engine shows CONNECT=ERROR (ERROR=Connect) until a
 * cycle without one.
 *
 * grd_chan() names are interned per node in a hash table (uthash): state
 * code typically builds the same few names every cycle, and each must stay
 * valid as long as the node, so identical names share one copy and the
 * table is bounded (NODE_CHANS_MAX names; past that grd_chan returns NULL,
 * logged once).
 *
 * Every write is echoed to the log as Guardian's ezca does:
 * "[STATE.main] ezca: H1:SUS-ETMX_M0_DAMP_P_GAIN => 1".
 */
#include "node/node_priv.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct node_chan {
    UT_hash_handle hh;
    char name[];
};

static const char *status_name(int r)
{
    switch (r) {
    case GRD_ENOTCONN:
        return "not connected";
    case GRD_EBADCHAN:
        return "no such channel";
    case GRD_ETYPE:
        return "wrong type";
    default:
        return "invalid argument";
    }
}

/* A host's answer as a grd_chan_status. */
static int known(int r)
{
    return r == GRD_OK || r == GRD_ENOTCONN || r == GRD_EBADCHAN || r == GRD_ETYPE ||
                   r == GRD_EINVAL
               ? r
               : GRD_EBADCHAN;
}

static bool bad_name(const char *chan)
{
    return !chan || !chan[0] || strnlen(chan, NODE_CHAN_MAX + 1) > NODE_CHAN_MAX;
}

const char *grd_chan(grd_node *g, const char *fmt, ...)
{
    node *n = node_live(g);
    if (!n || !fmt)
        return NULL;
    char name[NODE_CHAN_MAX + 1];
    int len = snprintf(name, sizeof(name), "%s:", n->ifo);
    va_list ap;
    va_start(ap, fmt);
    node_format(name + len, sizeof(name) - (size_t)len, fmt, ap);
    va_end(ap);
    size_t nlen = strlen(name);
    struct node_chan *c = NULL;
    HASH_FIND(hh, n->chans, name, nlen, c);
    if (c)
        return c->name;
    if (n->n_chans >= NODE_CHANS_MAX) {
        if (!n->chans_full_logged) {
            char prefix[GRD_NAME_MAX + 16];
            node_code_prefix(n, prefix, sizeof(prefix));
            node_log(n, "%smore than %d channel names: %s and later ones refused", prefix,
                     NODE_CHANS_MAX, name);
            n->chans_full_logged = true;
        }
        return NULL;
    }
    if (!(c = malloc(sizeof(*c) + nlen + 1)))
        return NULL;
    memcpy(c->name, name, nlen + 1);
    HASH_ADD_KEYPTR(hh, n->chans, c->name, nlen, c);
    n->n_chans++;
    return c->name;
}

void node_chans_free(node *n)
{
    struct node_chan *c, *tmp;
    HASH_ITER(hh, n->chans, c, tmp) {
        HASH_DEL(n->chans, c);
        free(c);
    }
    n->n_chans = 0;
}

/* ---- reads ---- */

static int get(node *n, const char *chan, double *num, char *str, size_t len)
{
    if (bad_name(chan))
        return GRD_EBADCHAN;
    int r = n->host.get ? known(n->host.get(n->host.arg, n, chan, num, str, len)) : GRD_ENOTCONN;
    if (r == GRD_ENOTCONN)
        n->conn_fail = true;
    return r;
}

int grd_get_double(grd_node *g, const char *chan, double *out)
{
    node *n = node_live(g);
    if (!n || !out)
        return GRD_EINVAL;
    double v = 0;
    int r = get(n, chan, &v, NULL, 0);
    if (r == GRD_OK)
        *out = v;
    return r;
}

int grd_get_long(grd_node *g, const char *chan, long *out)
{
    node *n = node_live(g);
    if (!n || !out)
        return GRD_EINVAL;
    double v = 0;
    int r = get(n, chan, &v, NULL, 0);
    if (r != GRD_OK)
        return r;
    if (!isfinite(v) || v < (double)LONG_MIN || v >= (double)LONG_MAX)
        return GRD_ETYPE;
    *out = lround(v);
    return GRD_OK;
}

int grd_get_string(grd_node *g, const char *chan, char *out, size_t len)
{
    node *n = node_live(g);
    if (!n || !out || !len)
        return GRD_EINVAL;
    out[0] = '\0';
    int r = get(n, chan, NULL, out, len);
    out[len - 1] = '\0';
    if (r != GRD_OK)
        out[0] = '\0';
    return r;
}

/* ---- writes ---- */

static int put(node *n, const char *chan, double num, const char *str)
{
    char prefix[GRD_NAME_MAX + 16], value[NODE_MSG_MAX / 2];
    if (str)
        snprintf(value, sizeof(value), "%s", str);
    else
        snprintf(value, sizeof(value), "%.15g", num);
    if (bad_name(chan))
        return GRD_EBADCHAN;
    int r = n->host.put ? known(n->host.put(n->host.arg, n, chan, num, str ? value : NULL))
                        : GRD_ENOTCONN;
    node_code_prefix(n, prefix, sizeof(prefix));
    if (r == GRD_OK)
        node_log(n, "%sezca: %s => %s", prefix, chan, value);
    else
        node_log(n, "%sezca: %s => %s: %s", prefix, chan, value, status_name(r));
    return r;
}

int grd_put(grd_node *g, const char *chan, double value)
{
    node *n = node_live(g);
    return n ? put(n, chan, value, NULL) : GRD_EINVAL;
}

int grd_put_string(grd_node *g, const char *chan, const char *value)
{
    node *n = node_live(g);
    return n && value ? put(n, chan, 0, value) : GRD_EINVAL;
}
