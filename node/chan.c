/* chan.c — plant channels for state code: names, reads and writes.
 *
 * Every channel a node names (grd_chan) or uses (a read or write by name) is
 * interned per node in a hash table (uthash): state code typically builds the
 * same few names every cycle, and each must stay valid as long as the node,
 * so identical names share one copy and the table is bounded
 * (NODE_CHANS_MAX names; past that the name is refused with a node error).
 *
 * An entry holds the host's reference to the channel (host->open: the plant
 * in the daemon, which shares one channel per name between nodes). Reads and
 * writes go through host->get and host->put with it and never block: a read
 * returns the latest monitored value or GRD_ENOTCONN. The node shows
 * CONNECT=ERROR (ERROR=Connect) while any channel it holds is not connected
 * (the host says when, node_chan_connection), or in a cycle where a read
 * found one not connected; its log names the channels. Channels only ever
 * read with grd_read_* (a default when not connected) are optional: they are
 * left out of that count (struct node_chan's optional/strict, recount()).
 *
 * State code passes the names grd_chan gave it, so a read or write looks its
 * entry up by the address of the name first (a second table keyed by it): an
 * interned name's address is its entry's for as long as the node lives, and
 * hashing 8 bytes is cheaper than hashing and comparing the whole name, on the
 * path every read of every node takes. Other strings fall back to the name.
 *
 * A reload marks every entry unused; NODE_CHAN_SWEEP seconds later the
 * references the new code has not used are released (the names stay, as
 * state code may keep pointers to them), so a channel the new code no longer
 * uses is not held for ever.
 *
 * Every write is echoed to the log as Guardian's ezca does:
 * "[STATE.main] ezca: H1:SUS-ETMX_M0_DAMP_P_GAIN => 1". A write that fails
 * is an error of the node, as an ezca exception is in Guardian.
 */
#include "node/node_priv.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <uthash.h>

struct node_chan {
    UT_hash_handle hh;      /* n->chans, by name */
    UT_hash_handle by_ptr;  /* n->chans_by_ptr, by the address of name */
    const char *name_ptr;   /* == name: the key of by_ptr */
    void *handle;  /* the host's reference to the channel; NULL when not open */
    bool open;     /* host->open was called and succeeded (handle may be NULL) */
    bool down;     /* open and not connected */
    bool optional; /* read with grd_read_*: may stay unconnected without CONNECT=ERROR */
    bool strict;   /* read with grd_get_* or written: must connect */
    bool counted;  /* down, and not merely optional: counted in n->chans_down */
    bool used;     /* named or used since the last reload */
    bool spm_tracked, spm_differs; /* the host's set-point monitor says */
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

void node_error_as(node *n, bool conn, const char *fmt, ...)
{
    char msg[NODE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    node_format(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n->in_code) {
        if (!n->err_set) {
            snprintf(n->err_msg, sizeof(n->err_msg), "%s", msg);
            n->err_set = true;
            n->err_conn = conn;
        }
    } else if (conn) {
        node_fail_connection(n, "%s", msg);
    } else {
        node_fail(n, "%s", msg);
    }
}
#define chan_error(n, ...) node_error_as(n, false, __VA_ARGS__)

/* A channel counts against CONNECT while it is down, unless the only use
 * made of it is grd_read_* (optional channels: see guardian.h). */
static void recount(node *n, struct node_chan *c)
{
    bool count = c->down && (c->strict || !c->optional);
    if (c->counted == count)
        return;
    c->counted = count;
    if (count)
        n->chans_down++;
    else
        n->chans_down--;
    n->connected = n->chans_down == 0;
    if (count && !n->conn_grace_until)
        n->conn_grace_until = node_now(n) + NODE_CONNECT_GRACE;
    else if (!count && n->connected && !n->conn_logged)
        n->conn_grace_until = 0; /* e.g. opened, then found optional: no grace running */
}

static void set_down(node *n, struct node_chan *c, bool down)
{
    c->down = down;
    recount(n, c);
}

/* The channel is read strictly or written: from now on it must connect. */
static void set_strict(node *n, struct node_chan *c)
{
    if (!c->strict) {
        c->strict = true;
        recount(n, c);
    }
}

/* Open the host's reference to c (if not open). False if the host refused
 * the name; the reason is a node error. */
static bool chan_open(node *n, struct node_chan *c)
{
    c->used = true;
    if (c->open)
        return true;
    if (!n->host.open) {
        c->open = true; /* the host takes names (tests' tables) */
        return true;
    }
    char err[NODE_MSG_MAX / 2] = "";
    bool up = false;
    void *h = n->host.open(n->host.arg, n, c->name, &up, err, sizeof(err));
    if (!h) {
        chan_error(n, "%s", err[0] ? err : "channel refused");
        return false;
    }
    c->handle = h;
    c->open = true;
    set_down(n, c, !up);
    return true;
}

static void spm_forget(node *n, struct node_chan *c)
{
    if (c->spm_differs)
        n->spm_changed--;
    if (c->spm_tracked)
        n->spm_total--;
    c->spm_tracked = c->spm_differs = false;
}

static void chan_close(node *n, struct node_chan *c)
{
    if (c->open && c->handle && n->host.close)
        n->host.close(n->host.arg, n, c->handle);
    spm_forget(n, c);
    set_down(n, c, false);
    c->handle = NULL;
    c->open = false;
}

/* The node's entry for a channel name, interned and opened; NULL (with a
 * node error) when the name cannot be taken. */
static struct node_chan *chan_entry(node *n, const char *name)
{
    size_t nlen = strlen(name);
    struct node_chan *c = NULL;
    HASH_FIND(hh, n->chans, name, nlen, c);
    if (!c) {
        if (n->n_chans >= NODE_CHANS_MAX) {
            if (!n->chans_full_logged) {
                char prefix[GRD_NAME_MAX + 16];
                node_code_prefix(n, prefix, sizeof(prefix));
                node_log(n, "%smore than %d channel names: %s and later ones refused", prefix,
                         NODE_CHANS_MAX, name);
                n->chans_full_logged = true;
            }
            chan_error(n, "more than %d channels: %.80s refused", NODE_CHANS_MAX, name);
            return NULL;
        }
        if (!(c = calloc(1, sizeof(*c) + nlen + 1)))
            return NULL;
        memcpy(c->name, name, nlen + 1);
        c->name_ptr = c->name;
        HASH_ADD_KEYPTR(hh, n->chans, c->name, nlen, c);
        HASH_ADD(by_ptr, n->chans_by_ptr, name_ptr, sizeof(c->name_ptr), c);
        n->n_chans++;
    }
    return chan_open(n, c) ? c : NULL;
}

/* The entry for a name that state code passed, by its address first (see
 * the top of the file); NULL for a bad name, or with a node error when the
 * name cannot be taken. */
static struct node_chan *chan_use(node *n, const char *chan)
{
    struct node_chan *c = NULL;
    HASH_FIND(by_ptr, n->chans_by_ptr, &chan, sizeof(chan), c);
    if (c)
        return chan_open(n, c) ? c : NULL;
    return bad_name(chan) ? NULL : chan_entry(n, chan);
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
    struct node_chan *c = chan_entry(n, name);
    return c ? c->name : NULL;
}

void node_chan_connection(node *n, const char *chan, bool up)
{
    if (!n || n->magic != NODE_MAGIC || !chan)
        return;
    if (!up)
        manage_lost(n, chan); /* a subordinate's channel, maybe (state code's too) */
    struct node_chan *c = NULL;
    HASH_FIND(hh, n->chans, chan, strlen(chan), c);
    if (!c || !c->open || c->down == !up)
        return;
    bool counts = c->strict || !c->optional; /* an optional channel is not news */
    set_down(n, c, !up);
    if (!up && counts)
        node_log(n, "CONNECT: %s disconnected", chan);
    else if (n->conn_logged && counts)
        node_log(n, "CONNECT: %s connected", chan);
    if (n->chans_down == 0) {
        if (n->conn_logged)
            node_log(n, "CONNECT: OK");
        n->conn_logged = false;
        n->conn_grace_until = 0;
    }
}

void node_write_failed(node *n, const char *chan, bool lost, const char *why)
{
    if (!n || n->magic != NODE_MAGIC || !chan || !why)
        return;
    if (manage_write_failed(n, chan, lost, why))
        return;
    if (lost)
        node_fail_connection(n, "ezca: %s", why);
    else
        node_fail(n, "ezca: %s", why);
}

void node_spm(node *n, const char *chan, enum node_spm ev, const char *text)
{
    if (!n || n->magic != NODE_MAGIC || !chan)
        return;
    struct node_chan *c = NULL;
    HASH_FIND(hh, n->chans, chan, strlen(chan), c);
    if (!c || !c->open)
        return;
    switch (ev) {
    case NODE_SPM_TRACKED:
        if (!c->spm_tracked)
            n->spm_total++;
        c->spm_tracked = true;
        break;
    case NODE_SPM_UNTRACKED:
        spm_forget(n, c);
        break;
    case NODE_SPM_DIFFERS:
        if (!c->spm_tracked)
            break;
        if (!c->spm_differs)
            n->spm_changed++;
        c->spm_differs = true;
        snprintf(n->spm_text, sizeof(n->spm_text), "SPM: %s", text ? text : chan);
        node_log(n, "%s", n->spm_text);
        break;
    case NODE_SPM_MATCHES:
        if (c->spm_differs) {
            n->spm_changed--;
            node_log(n, "SPM: %s is at its set point again", chan);
        }
        c->spm_differs = false;
        break;
    }
    node_publish(n);
}

unsigned node_spm_total(const node *n) { return n ? n->spm_total : 0; }
unsigned node_spm_changed(const node *n) { return n ? n->spm_changed : 0; }

void node_chan_foreach(node *n, void (*fn)(void *arg, const char *chan, void *handle), void *arg)
{
    if (!n || n->magic != NODE_MAGIC)
        return;
    for (struct node_chan *c = n->chans; c; c = c->hh.next)
        fn(arg, c->name, c->open ? c->handle : NULL);
}

void node_chans_check(node *n)
{
    if (n->chans_down == 0 || n->conn_logged || node_now(n) < n->conn_grace_until)
        return;
    /* Say once which channels keep the node at CONNECT=ERROR. */
    char list[NODE_MSG_MAX] = "";
    size_t len = 0;
    unsigned shown = 0, down = 0;
    for (struct node_chan *c = n->chans; c; c = c->hh.next) {
        if (!c->counted)
            continue;
        down++;
        if (shown < 3 && len < sizeof(list)) {
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", shown ? ", " : "",
                                    c->name);
            shown++;
        }
    }
    if (down > shown && len < sizeof(list))
        snprintf(list + len, sizeof(list) - len, " and %u more", down - shown);
    node_log(n, "CONNECT: ERROR: not connected: %s", list);
    n->conn_logged = true;
}

void node_chans_reloaded(node *n)
{
    for (struct node_chan *c = n->chans; c; c = c->hh.next)
        c->used = false;
    n->chans_sweep_at = node_now(n) + NODE_CHAN_SWEEP;
}

void node_chans_sweep(node *n)
{
    if (!n->chans_sweep_at || node_now(n) < n->chans_sweep_at)
        return;
    n->chans_sweep_at = 0;
    for (struct node_chan *c = n->chans; c; c = c->hh.next)
        if (!c->used && c->open)
            chan_close(n, c); /* the name stays: state code may hold it */
}

void node_chans_free(node *n)
{
    struct node_chan *c, *tmp;
    HASH_CLEAR(by_ptr, n->chans_by_ptr);
    HASH_ITER(hh, n->chans, c, tmp) {
        chan_close(n, c);
        HASH_DEL(n->chans, c);
        free(c);
    }
    n->n_chans = 0;
    n->chans_down = 0;
    n->spm_total = n->spm_changed = 0;
}

/* ---- reads ---- */

/* Read chan; strict (grd_get_*) makes it a channel that must connect and a
 * read that finds it down shows CONNECT=ERROR this cycle; grd_read_* is not
 * strict (optional channels). */
static int get(node *n, const char *chan, bool strict, double *num, char *str, size_t len)
{
    struct node_chan *c = chan_use(n, chan);
    if (!c)
        return GRD_EBADCHAN;
    if (strict) {
        set_strict(n, c);
    } else {
        c->optional = true;
        recount(n, c);
    }
    int r = n->host.get ? known(n->host.get(n->host.arg, n, c->name, c->handle, num, str, len))
                        : GRD_ENOTCONN;
    if (r == GRD_ENOTCONN && strict)
        n->conn_fail = true;
    return r;
}

int node_chan_get(node *n, const char *chan, double *out)
{
    double v = 0;
    int r = get(n, chan, true, &v, NULL, 0);
    if (r == GRD_OK)
        *out = v;
    return r;
}

int grd_get_double(grd_node *g, const char *chan, double *out)
{
    node *n = node_live(g);
    return n && out ? node_chan_get(n, chan, out) : GRD_EINVAL;
}

/* v as a long, or GRD_ETYPE when it has none. */
static int to_long(double v, long *out)
{
    if (!isfinite(v) || v < (double)LONG_MIN || v >= (double)LONG_MAX)
        return GRD_ETYPE;
    *out = lround(v);
    return GRD_OK;
}

int grd_get_long(grd_node *g, const char *chan, long *out)
{
    node *n = node_live(g);
    if (!n || !out)
        return GRD_EINVAL;
    double v = 0;
    int r = node_chan_get(n, chan, &v);
    return r == GRD_OK ? to_long(v, out) : r;
}

int grd_get_string(grd_node *g, const char *chan, char *out, size_t len)
{
    node *n = node_live(g);
    if (!n || !out || !len)
        return GRD_EINVAL;
    out[0] = '\0';
    int r = get(n, chan, true, NULL, out, len);
    out[len - 1] = '\0';
    if (r != GRD_OK)
        out[0] = '\0';
    return r;
}

double grd_read_double(grd_node *g, const char *chan, double fallback)
{
    node *n = node_live(g);
    double v = 0;
    return n && get(n, chan, false, &v, NULL, 0) == GRD_OK ? v : fallback;
}

long grd_read_long(grd_node *g, const char *chan, long fallback)
{
    node *n = node_live(g);
    double v = 0;
    long l = fallback;
    if (n && get(n, chan, false, &v, NULL, 0) == GRD_OK && to_long(v, &l) == GRD_OK)
        return l;
    return fallback;
}

/* ---- writes ---- */

int node_chan_write(node *n, const char *chan, double num, const char *str, bool echo)
{
    char prefix[GRD_NAME_MAX + 16], value[NODE_MSG_MAX / 2], why[NODE_MSG_MAX / 2] = "";
    if (str)
        snprintf(value, sizeof(value), "%s", str);
    if (bad_name(chan))
        return GRD_EBADCHAN;
    struct node_chan *c = chan_use(n, chan);
    if (c)
        set_strict(n, c);
    int r = !c         ? GRD_EBADCHAN
            : n->host.put ? known(n->host.put(n->host.arg, n, c->name, c->handle, num,
                                              str ? value : NULL, why, sizeof(why)))
                          : GRD_ENOTCONN;
    if (r == GRD_OK && !echo)
        return r; /* a ramp's step: nothing formatted, nothing logged */
    if (!str)
        snprintf(value, sizeof(value), "%.15g", num);
    node_code_prefix(n, prefix, sizeof(prefix));
    if (r == GRD_OK) {
        node_log(n, "%sezca: %s => %s", prefix, chan, value);
        return r;
    }
    const char *reason = why[0] ? why : status_name(r);
    node_log(n, "%sezca: %s => %s: %s", prefix, chan, value, reason);
    /* As an ezca exception in Guardian: the write failing is an error. */
    if (c)
        node_error_as(n, r == GRD_ENOTCONN, "ezca: %s => %s: %s", chan, value, reason);
    return r;
}

/* A write by state code: it ends a ramp of the channel (ramp.c). */
static int put(node *n, const char *chan, double num, const char *str)
{
    if (n->n_ramps)
        node_ramp_cancel(n, chan, "cancelled by a write");
    return node_chan_write(n, chan, num, str, true);
}

int grd_put(grd_node *g, const char *chan, double value)
{
    node *n = node_live(g);
    return n ? put(n, chan, value, NULL) : GRD_EINVAL;
}

int grd_spm_ignore(grd_node *g, const char *chan)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    struct node_chan *c = chan_use(n, chan);
    if (!c)
        return GRD_EBADCHAN;
    if (c->handle && n->host.spm_ignore)
        n->host.spm_ignore(n->host.arg, n, c->handle);
    return GRD_OK;
}

int grd_put_string(grd_node *g, const char *chan, const char *value)
{
    node *n = node_live(g);
    return n && value ? put(n, chan, 0, value) : GRD_EINVAL;
}

const char *node_chan_intern(node *n, const char *chan)
{
    struct node_chan *c = chan_use(n, chan);
    return c ? c->name : NULL;
}
