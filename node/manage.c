/* manage.c — a manager's subordinates (guardian.h, "subordinates").
 *
 * A subordinate is reached only through its node channels
 * <IFO>:GRD-<SUB>_<SUFFIX>, opened with the host's open/get/put like any plant
 * channel: the daemon's plant serves them in-process when the subordinate
 * runs here and over CA when it runs elsewhere, so this file has one code
 * path for both. Its refs are kept apart from the state code's channels:
 * they do not count in CONNECT (a subordinate that is away is a fault of the
 * subordinate, reported as such) nor in the set-point monitor (a manager's
 * REQUEST being changed is reported by name, below).
 *
 * Each executing cycle (manage_cycle, before the state code) every
 * subordinate's channels are read into its grd_sub, claims are made and
 * renewed, requests waiting for a connection are sent, and someone else's
 * changes are noticed. Writes that fail are the subordinate's news
 * (sub_refused), never a silent fight: a claim refused names the holder,
 * a request refused is an error of the manager.
 */
#include "node/node_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds a request may take to show in the subordinate's REQUEST before
 * another value there counts as someone else's change (a CA round trip
 * takes milliseconds; a busy daemon a cycle or two). */
#define SUB_SETTLE 2.0

enum sub_chan {
    S_STATE, S_REQUEST, S_TARGET, S_STATUS, S_MODE, S_MANAGER, S_OK, S_ERROR, S_CONNECT,
    S_NOTIFICATION, S_USERMSG, S_STALLED, S_CHANGED_BY, S_SPM_CHANGED,
    S_COUNT
};
static const char *const suffixes[S_COUNT] = {
    [S_STATE] = "STATE", [S_REQUEST] = "REQUEST", [S_TARGET] = "TARGET",
    [S_STATUS] = "STATUS", [S_MODE] = "MODE", [S_MANAGER] = "MANAGER", [S_OK] = "OK",
    [S_ERROR] = "ERROR", [S_CONNECT] = "CONNECT", [S_NOTIFICATION] = "NOTIFICATION",
    [S_USERMSG] = "USERMSG", [S_STALLED] = "STALLED", [S_CHANGED_BY] = "CHANGED_BY",
    [S_SPM_CHANGED] = "SPM_CHANGED",
};

struct node_sub {
    char name[NODE_NAME_MAX + 1];
    char chan[S_COUNT][NODE_CHAN_MAX + 1];
    void *handle[S_COUNT];
    bool open[S_COUNT];
    char val[S_COUNT][64]; /* each channel's newest text, "" when it cannot be read */
    bool have[S_COUNT];    /* ... it could be read */
    uint64_t ver[S_COUNT]; /* ... the host's version of it then (node_host.version) */
    struct grd_sub st;   /* the newest reading, from val */

    /* the claim */
    bool claim;          /* grd_set_managed: hold it */
    bool was_held;       /* MANAGER named this node at the last reading */
    bool tried;          /* a claim was written since grd_set_managed */
    bool released;       /* an operator took it back: not claimed again until set_managed */
    bool refused;        /* the last claim was refused (logged once) */
    bool mode_sent;      /* MODE=MANAGED written under this claim */
    bool mode_seen;      /* ... and read back */
    double renew_at;     /* next claim write */
    double renewed_at;   /* the last one */
    /* the manager's request */
    bool revived;        /* revived during the stall it shows (cleared when it ends) */
    bool req_unsent;     /* to be written when connected */
    bool req_seen;       /* REQUEST read back as requested */
    double req_at;       /* when it was written */
    /* what was logged, so that each change is logged once */
    bool was_busy, was_overridden, was_mode_overridden, was_connected, ever_connected;
    bool busy, overridden, mode_overridden;
};

/* ---- finding and declaring ---- */

static struct node_sub *find_sub(node *n, const char *name)
{
    if (!name)
        return NULL;
    for (unsigned i = 0; i < n->n_subs; i++)
        if (strcmp(n->subs[i].name, name) == 0)
            return &n->subs[i];
    return NULL;
}

#define sub_error(n, ...) node_error_as(n, false, __VA_ARGS__)

static int add_sub(node *n, const char *name)
{
    if (find_sub(n, name))
        return GRD_OK;
    if (n->n_subs == GRD_SUBNODES_MAX) {
        sub_error(n, "more than %d subordinates (at %s)", GRD_SUBNODES_MAX, name);
        return GRD_EBADCHAN;
    }
    if (n->n_subs == n->subs_cap) {
        unsigned cap = n->subs_cap ? 2 * n->subs_cap : 8;
        struct node_sub *subs = realloc(n->subs, cap * sizeof(*subs));
        if (!subs) {
            sub_error(n, "out of memory for subordinate %s", name);
            return GRD_EBADCHAN;
        }
        n->subs = subs;
        n->subs_cap = cap;
    }
    struct node_sub *s = &n->subs[n->n_subs];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    for (int c = 0; c < S_COUNT; c++) {
        node_channel_name(s->chan[c], sizeof(s->chan[c]), n->ifo, name, suffixes[c]);
        if (!n->host.open)
            continue;
        bool up = false;
        char err[256];
        s->handle[c] = n->host.open(n->host.arg, n, s->chan[c], &up, err, sizeof(err));
        if (!s->handle[c]) {
            for (int k = 0; k < c; k++)
                if (n->host.close)
                    n->host.close(n->host.arg, n, s->handle[k]);
            sub_error(n, "subordinate %s: %s", name, err);
            return GRD_EBADCHAN;
        }
        s->open[c] = true;
        if (n->host.spm_ignore) /* changes are reported by name here, not as set points */
            n->host.spm_ignore(n->host.arg, n, s->handle[c]);
    }
    n->n_subs++;
    node_log(n, "subordinate: %s", name);
    return GRD_OK;
}

int grd_subnodes(grd_node *g, const char *names)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    if (!names && !(names = grd_arg(g, "nodes")))
        names = "";
    const char *sep = ", \t";
    for (const char *p = names + strspn(names, sep); *p; p += strspn(p, sep)) {
        size_t len = strcspn(p, sep);
        char name[NODE_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%.*s", (int)(len < sizeof(name) ? len : sizeof(name) - 1), p);
        if (len > NODE_NAME_MAX || !name_valid_node(name)) {
            sub_error(n, "bad subordinate name '%s%s'", name, len > NODE_NAME_MAX ? "..." : "");
            return GRD_EBADCHAN;
        }
        int r = add_sub(n, name);
        if (r != GRD_OK)
            return r;
        p += len;
    }
    return (int)n->n_subs;
}

unsigned grd_subnode_count(const grd_node *g)
{
    node *n = node_live(g);
    return n ? n->n_subs : 0;
}

const char *grd_subnode(const grd_node *g, unsigned i)
{
    node *n = node_live(g);
    return n && i < n->n_subs ? n->subs[i].name : NULL;
}

/* ---- reading ---- */

/* Channel c's newest text into s->val[c], unless the host's version says it
 * is what was read last time; whether it could be read. */
static bool read_chan(node *n, struct node_sub *s, enum sub_chan c)
{
    if (n->host.version) {
        uint64_t v = n->host.version(n->host.arg, n, s->handle[c]);
        if (v != 0 && v == s->ver[c])
            return s->have[c];
        s->ver[c] = v;
    }
    char *out = s->val[c];
    int r = n->host.get ? n->host.get(n->host.arg, n, s->chan[c], s->handle[c], NULL, out,
                                      sizeof(s->val[c]))
                        : GRD_ENOTCONN;
    if (r != GRD_OK)
        out[0] = '\0';
    return s->have[c] = r == GRD_OK;
}

static bool is_true(const char *v) { return strcmp(v, "True") == 0; }

/* src into dst, cut to fit (the field sizes of grd_sub). */
static void text_to(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The subordinate's channels into s->st; false (and st mostly empty) when
 * any is not connected. A manager reads every subordinate every cycle: with
 * the host's versions, only what changed is read again. */
static bool read_sub(node *n, struct node_sub *s)
{
    bool up = true;
    for (int c = 0; c < S_COUNT; c++)
        up &= read_chan(n, s, (enum sub_chan)c);
    struct grd_sub *st = &s->st;
    const char(*v)[sizeof(s->val[0])] = s->val;
    text_to(st->state, sizeof(st->state), v[S_STATE]);
    text_to(st->request, sizeof(st->request), v[S_REQUEST]);
    text_to(st->target, sizeof(st->target), v[S_TARGET]);
    text_to(st->status, sizeof(st->status), v[S_STATUS]);
    text_to(st->mode, sizeof(st->mode), v[S_MODE]);
    text_to(st->manager, sizeof(st->manager), v[S_MANAGER]);
    text_to(st->changed_by, sizeof(st->changed_by), v[S_CHANGED_BY]);
    st->connected = up;
    st->ok = up && is_true(v[S_OK]);
    st->error = up && v[S_ERROR][0] && strcmp(v[S_ERROR], "False") != 0;
    st->plant_connected = up && strcmp(v[S_CONNECT], "OK") == 0;
    st->notification = up && is_true(v[S_NOTIFICATION]);
    st->stalled = up && is_true(v[S_STALLED]);
    st->spm_changed = up ? strtol(v[S_SPM_CHANGED], NULL, 10) : 0;
    text_to(st->usermsg, sizeof(st->usermsg), st->notification ? v[S_USERMSG] : "");
    st->held = up && strcmp(st->manager, n->name) == 0;
    const char *want = st->requested[0] ? st->requested : st->request;
    st->arrived = up && !s->req_unsent && want[0] && strcmp(st->state, want) == 0;
    st->done = st->arrived && strcmp(st->status, "DONE") == 0;
    return up;
}

/* Why a subordinate counts as not OK for its manager, "" if it does not. */
static void set_fault(struct node_sub *s)
{
    struct grd_sub *st = &s->st;
    if (!st->connected)
        snprintf(st->fault, sizeof(st->fault), "%s disconnected", s->name);
    else if (s->busy)
        snprintf(st->fault, sizeof(st->fault), "%s managed by %s", s->name, st->manager);
    else if (st->error)
        snprintf(st->fault, sizeof(st->fault), "%s in ERROR", s->name);
    else if (!st->plant_connected)
        snprintf(st->fault, sizeof(st->fault), "%s CONNECT ERROR", s->name);
    else if (st->stalled)
        snprintf(st->fault, sizeof(st->fault), "%s stalled in %s", s->name, st->state);
    else if (st->notification)
        snprintf(st->fault, sizeof(st->fault), "%s: %s", s->name, st->usermsg);
    else if (st->spm_changed > 0)
        snprintf(st->fault, sizeof(st->fault), "%s SPM changed (%ld)", s->name, st->spm_changed);
    else if (!st->ok)
        snprintf(st->fault, sizeof(st->fault), "%s not OK", s->name);
    else
        st->fault[0] = '\0';
}

/* ---- writing ---- */

static void sub_refused(node *n, struct node_sub *s, enum sub_chan c, const char *why);

/* Write a subordinate's channel; true when sent. A write refused now is
 * handled as one refused later; one that cannot be made for want of a
 * connection is tried again by the caller. */
static bool sub_put(node *n, struct node_sub *s, enum sub_chan c, const char *value)
{
    if (!n->host.put)
        return false;
    char why[256] = "";
    int r = n->host.put(n->host.arg, n, s->chan[c], s->handle[c], 0, value, why, sizeof(why));
    if (r == GRD_OK)
        return true;
    if (r != GRD_ENOTCONN)
        sub_refused(n, s, c, why);
    return false;
}

static void send_request(node *n, struct node_sub *s)
{
    if (sub_put(n, s, S_REQUEST, s->st.requested)) {
        s->req_unsent = false;
        s->req_at = node_now(n);
        node_log(n, "%s: REQUEST => %s", s->name, s->st.requested);
    }
}

static void sub_refused(node *n, struct node_sub *s, enum sub_chan c, const char *why)
{
    switch (c) {
    case S_MANAGER:
        if (!s->refused)
            node_log(n, "%s: claim refused: %s", s->name, why);
        s->refused = true;
        break;
    case S_REQUEST:
        sub_error(n, "%s refused the request %s: %s", s->name, s->st.requested, why);
        s->st.requested[0] = '\0';
        s->req_unsent = false;
        break;
    default:
        node_log(n, "%s: %s write refused: %s", s->name, suffixes[c], why);
        break;
    }
}

bool manage_write_failed(node *n, const char *chan, bool lost, const char *why)
{
    for (unsigned i = 0; i < n->n_subs; i++) {
        struct node_sub *s = &n->subs[i];
        for (int c = 0; c < S_COUNT; c++) {
            if (strcmp(s->chan[c], chan) != 0)
                continue;
            if (lost) {           /* never arrived: the cycle sends it again */
                if (c == S_REQUEST && s->st.requested[0])
                    s->req_unsent = true;
                else if (c == S_MODE)
                    s->mode_sent = false;
            } else {
                sub_refused(n, s, (enum sub_chan)c, why);
            }
            return true;
        }
    }
    return false;
}

/* A subordinate's channel was lost (its daemon or its node went, even for
 * less than a cycle: an in-process node restarted by an operator is removed
 * and added again at once). Its claim is then no longer this node's to
 * keep: an empty MANAGER afterwards is a restart, not an operator's release. */
void manage_lost(node *n, const char *chan)
{
    for (unsigned i = 0; i < n->n_subs; i++)
        if (strcmp(n->subs[i].chan[S_MANAGER], chan) == 0)
            n->subs[i].was_held = false;
}

/* ---- each cycle ---- */

/* The claim: held (renew), free (take), or another's (busy: after the one
 * attempt that puts this node's wish on record (refused, and audited by the
 * subordinate), nothing is written while the other claim holds; once it
 * lapses or is released, MANAGER reads empty and the node is taken at the
 * next renewal).
 *
 * A claim this node held, renewed within the lease and seen emptied while
 * the subordinate stayed connected, was released by an operator: a lapse
 * takes NODE_CLAIM_LEASE s without renewals (this node frozen, or its
 * writes not arriving), and a restarted subordinate is seen disconnecting
 * first. Then the node is not claimed again until grd_set_managed. */
static void keep_claim(node *n, struct node_sub *s, double now)
{
    struct grd_sub *st = &s->st;
    bool was_held = s->was_held;
    s->was_held = st->held;
    s->busy = false;
    if (!s->claim)
        return;
    if (was_held && !st->manager[0] && now - s->renewed_at < NODE_CLAIM_LEASE) {
        s->claim = false;
        s->released = true;
        node_log(n, "%s: released by an operator: not claimed again until set_managed", s->name);
        return;
    }
    s->busy = st->manager[0] && !st->held;
    if (s->busy && s->tried)
        return;
    if (st->held) {
        s->refused = false;
        if (!s->mode_sent && sub_put(n, s, S_MODE, node_mode_names[NODE_MODE_MANAGED]))
            s->mode_sent = true;
    }
    if (now >= s->renew_at && sub_put(n, s, S_MANAGER, n->name)) {
        s->renew_at = now + NODE_CLAIM_RENEW;
        s->renewed_at = now;
        s->tried = true;
    }
}

/* Someone else's change of REQUEST or MODE: allowed, and reported. */
static void notice_changes(node *n, struct node_sub *s, double now)
{
    struct grd_sub *st = &s->st;
    s->overridden = false;
    if (st->requested[0] && !s->req_unsent) {
        if (strcmp(st->request, st->requested) == 0)
            s->req_seen = true;
        else
            s->overridden = s->req_seen || now - s->req_at > SUB_SETTLE;
    }
    if (s->mode_sent && strcmp(st->mode, node_mode_names[NODE_MODE_MANAGED]) == 0)
        s->mode_seen = true;
    s->mode_overridden = s->mode_seen && strcmp(st->mode, node_mode_names[NODE_MODE_MANAGED]) != 0;
    const char *who = st->changed_by[0] ? st->changed_by : "someone else";
    if (s->overridden && !s->was_overridden)
        node_log(n, "%s: REQUEST changed to %s by %s (this manager requested %s)", s->name,
                 st->request, who, st->requested);
    if (s->mode_overridden && !s->was_mode_overridden)
        node_log(n, "%s: MODE changed to %s by %s", s->name, st->mode, who);
    s->was_overridden = s->overridden;
    s->was_mode_overridden = s->mode_overridden;
}

void manage_cycle(node *n)
{
    if (!n->n_subs)
        return;
    double now = node_now(n);
    unsigned not_ok = 0;
    for (unsigned i = 0; i < n->n_subs; i++) {
        struct node_sub *s = &n->subs[i];
        bool up = read_sub(n, s);
        if (up != s->was_connected && (s->ever_connected || up))
            node_log(n, "%s: %s", s->name, up ? "connected" : "disconnected");
        s->was_connected = up;
        s->ever_connected |= up;
        if (!up)
            s->was_held = false; /* an empty MANAGER after this is a restart, not a release */
        if (!s->st.stalled)
            s->revived = false;
        if (up) {
            keep_claim(n, s, now);
            if (s->req_unsent && !s->busy)
                send_request(n, s);
            notice_changes(n, s, now);
        }
        if (s->busy) /* another manager's node is not where this one sent it */
            s->st.arrived = s->st.done = false;
        if (s->busy && !s->was_busy)
            node_log(n, "%s: managed by %s: its claim holds", s->name, s->st.manager);
        s->was_busy = s->busy;
        set_fault(s);
        not_ok += s->st.fault[0] != '\0';
    }
    n->subs_not_ok = not_ok;
    n->priority_msg[0] = '\0';
    for (unsigned i = 0; i < n->n_subs && !n->priority_msg[0]; i++)
        if (n->subs[i].busy)
            snprintf(n->priority_msg, sizeof(n->priority_msg), "%s is managed by %s",
                     n->subs[i].name, n->subs[i].st.manager);
    for (unsigned i = 0; i < n->n_subs && !n->priority_msg[0]; i++)
        if (n->subs[i].overridden)
            snprintf(n->priority_msg, sizeof(n->priority_msg), "%s request changed by %s",
                     n->subs[i].name, n->subs[i].st.changed_by[0] ? n->subs[i].st.changed_by
                                                                 : "someone else");
}

/* A subordinate held by another manager, or whose request someone else
 * changed, is shown above all else (who holds a node must never go unseen):
 * manage_cycle sets it as the node's priority notification, which state
 * code's grd_notify does not replace. A change of MODE or an operator's
 * release is shown unless the state code notified. */
void manage_notify(node *n)
{
    if (n->priority_msg[0]) {
        engine_notify(n, n->priority_msg);
        return;
    }
    for (unsigned i = 0; i < n->n_subs && !n->notified; i++) {
        struct node_sub *s = &n->subs[i];
        const struct grd_sub *st = &s->st;
        const char *who = st->changed_by[0] ? st->changed_by : "someone else";
        char msg[NODE_MSG_MAX];
        if (s->mode_overridden)
            snprintf(msg, sizeof(msg), "%s mode changed by %s", s->name, who);
        else if (s->released)
            snprintf(msg, sizeof(msg), "%s released by an operator", s->name);
        else
            continue;
        engine_notify(n, msg);
    }
}

/* ---- claims and requests from state code ---- */

int grd_set_managed(grd_node *g)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    for (unsigned i = 0; i < n->n_subs; i++) {
        struct node_sub *s = &n->subs[i];
        if (!s->claim || s->released)
            node_log(n, "%s: claiming (MANAGER => %s, MODE => MANAGED)", s->name, n->name);
        s->claim = true;
        s->released = s->refused = s->tried = false;
        s->mode_sent = s->mode_seen = false;
        s->renew_at = 0; /* claim in this cycle's pass, or now if connected */
        if (s->st.connected && sub_put(n, s, S_MANAGER, n->name)) {
            s->renewed_at = node_now(n);
            s->renew_at = s->renewed_at + NODE_CLAIM_RENEW;
            s->tried = true;
        }
    }
    return GRD_OK;
}

static void release_sub(node *n, struct node_sub *s)
{
    if (s->claim)
        read_sub(n, s); /* the newest MANAGER: "" only over this node's own claim */
    if (s->claim && s->st.held && sub_put(n, s, S_MANAGER, ""))
        node_log(n, "%s: released", s->name);
    s->claim = false;
    s->busy = false;
}

int grd_release(grd_node *g)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    for (unsigned i = 0; i < n->n_subs; i++)
        release_sub(n, &n->subs[i]);
    return GRD_OK;
}

int grd_sub_request(grd_node *g, const char *sub, const char *state)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    struct node_sub *s = find_sub(n, sub);
    if (!s || !state || !node_valid_word(state, GRD_NAME_MAX))
        return GRD_EBADCHAN;
    if (s->busy)
        return GRD_EBUSY;
    bool same = strcmp(s->st.requested, state) == 0;
    if (same && s->overridden)
        return GRD_EBUSY; /* someone else's request stands: see guardian.h */
    snprintf(s->st.requested, sizeof(s->st.requested), "%s", state);
    s->req_seen = false;
    s->overridden = s->was_overridden = false;
    if (same && !s->req_unsent && strcmp(s->st.request, state) == 0)
        return GRD_OK; /* already its request: nothing to write (revive writes again) */
    s->req_unsent = true;
    if (s->st.connected)
        send_request(n, s);
    return GRD_OK;
}

static int revive(node *n, struct node_sub *s)
{
    if (s->busy)
        return GRD_EBUSY;
    if (!s->st.requested[0])
        snprintf(s->st.requested, sizeof(s->st.requested), "%s", s->st.request);
    if (!s->st.requested[0])
        return GRD_ENOTCONN;
    node_log(n, "%s: revive (%s)", s->name, s->st.requested);
    s->revived = s->st.stalled;
    s->req_seen = false;
    s->overridden = s->was_overridden = false;
    s->req_unsent = true;
    if (s->st.connected)
        send_request(n, s);
    return GRD_OK;
}

int grd_revive(grd_node *g, const char *sub)
{
    node *n = node_live(g);
    if (!n)
        return GRD_EINVAL;
    if (sub) {
        struct node_sub *s = find_sub(n, sub);
        if (!s)
            return GRD_EBADCHAN;
        int r = revive(n, s);
        return r == GRD_OK ? 1 : r;
    }
    /* Once per stall: a node revived in a state that cannot be redirected
     * (sus's TRIPPED) shows STALLED until that state completes, with the
     * request waiting in it. */
    int count = 0;
    for (unsigned i = 0; i < n->n_subs; i++) {
        struct node_sub *s = &n->subs[i];
        if (s->st.stalled && !s->revived && revive(n, s) == GRD_OK)
            count++;
    }
    return count;
}

/* ---- what state code reads ---- */

int grd_sub_status(grd_node *g, const char *sub, struct grd_sub *out)
{
    node *n = node_live(g);
    if (!n || !out)
        return GRD_EINVAL;
    struct node_sub *s = find_sub(n, sub);
    if (!s)
        return GRD_EBADCHAN;
    *out = s->st;
    return s->st.connected ? GRD_OK : GRD_ENOTCONN;
}

/* Every subordinate arrived, and with `done` completed too. */
static bool all_arrived(grd_node *g, bool done)
{
    node *n = node_live(g);
    if (!n)
        return false;
    for (unsigned i = 0; i < n->n_subs; i++)
        if (!(done ? n->subs[i].st.done : n->subs[i].st.arrived))
            return false;
    return true;
}

bool grd_arrived(grd_node *g) { return all_arrived(g, false); }
bool grd_completed(grd_node *g) { return all_arrived(g, true); }

bool grd_sub_stalled(grd_node *g, const char *sub)
{
    node *n = node_live(g);
    struct node_sub *s = n ? find_sub(n, sub) : NULL;
    return s && s->st.stalled;
}

unsigned grd_sub_faults(grd_node *g, char *text, size_t len)
{
    node *n = node_live(g);
    if (text && len)
        text[0] = '\0';
    if (!n)
        return 0;
    unsigned count = 0;
    size_t used = 0;
    for (unsigned i = 0; i < n->n_subs; i++) {
        const char *fault = n->subs[i].st.fault;
        if (!fault[0])
            continue;
        if (text && used + 1 < len) {
            int w = snprintf(text + used, len - used, "%s%s", count ? ", " : "", fault);
            used += w > 0 ? (size_t)w : 0;
        }
        count++;
    }
    return count;
}

/* ---- for the host ---- */

unsigned node_subnodes(const node *n, unsigned *not_ok)
{
    if (not_ok)
        *not_ok = n ? n->subs_not_ok : 0;
    return n ? n->n_subs : 0;
}

const char *node_subnode(const node *n, unsigned i, struct grd_sub *out)
{
    if (!n || i >= n->n_subs)
        return NULL;
    if (out)
        *out = n->subs[i].st;
    return n->subs[i].name;
}

void manage_stop(node *n)
{
    n->priority_msg[0] = '\0';
    for (unsigned i = 0; i < n->n_subs; i++)
        release_sub(n, &n->subs[i]);
}

void manage_free(node *n)
{
    manage_stop(n);
    for (unsigned i = 0; i < n->n_subs; i++)
        for (int c = 0; c < S_COUNT; c++)
            if (n->subs[i].open[c] && n->host.close)
                n->host.close(n->host.arg, n, n->subs[i].handle[c]);
    free(n->subs);
    n->subs = NULL;
    n->n_subs = n->subs_cap = 0;
}
