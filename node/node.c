/* node.c — a node's life, its operator controls and what it shows.
 *
 * Controls (REQUEST, MODE, OP) are validated here and stored as pending;
 * engine.c applies them at the start of the next cycle. That keeps every
 * change of execution inside node_step(), so a control may come at any time,
 * even from a host callback that state code triggered. node_reload and
 * node_start_at act at once but refuse to run while the node's own state
 * code is running; node_claim acts at once from anywhere.
 *
 * What a node shows is read through the accessors below; after anything that
 * may change it, node_publish() compares it with the last snapshot and bumps
 * the generation, so the channel layer can skip nodes that did nothing.
 */
#include "node/node_priv.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

node *node_live(const grd_node *g)
{
    node *n = (node *)g;
    return n && n->magic == NODE_MAGIC ? n : NULL;
}

double node_now(const node *n) { return n->host.now(n->host.arg); }

const char *node_state_name_at(const node *n, int pos)
{
    const grd_state *st = node_system_at(n->sys, pos);
    return st ? st->name : "";
}

/* ---- names ---- */

const char *const node_op_names[NODE_OPS] = {"STOP", "PAUSE", "EXEC"};
const char *const node_mode_names[NODE_MODES] = {"AUTO", "MANAGED", "MANUAL"};
const char *const node_status_names[NODE_STATUSES] = {"ENTER", "MAIN", "RUN", "DONE",
                                                      "JUMP", "REDIRECT", "EDGE", "INIT"};

const char *node_op_name(long v) { return v >= 0 && v < NODE_OPS ? node_op_names[v] : NULL; }
const char *node_mode_name(long v) { return v >= 0 && v < NODE_MODES ? node_mode_names[v] : NULL; }

static int value_of(const char *const *names, int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

int node_op_value(const char *name) { return value_of(node_op_names, NODE_OPS, name); }
int node_mode_value(const char *name) { return value_of(node_mode_names, NODE_MODES, name); }

int node_channel_name(char *out, size_t len, const char *ifo, const char *node,
                      const char *suffix)
{
    return snprintf(out, len, NODE_CHANNEL_FMT, ifo, node, suffix);
}

int node_channel_prefix(char *out, size_t len, const char *ifo)
{
    /* The format up to the node's name, so that it has one home. */
    int n = snprintf(out, len, NODE_CHANNEL_FMT, ifo, "", "");
    if (n > 0 && (size_t)n <= len)
        out[n - 1] = '\0'; /* the "_" before the (empty) suffix */
    return n - 1;
}

unsigned node_unread_args(const node *n, const char **keys, unsigned max)
{
    unsigned k = 0;
    for (unsigned i = 0; n && i < n->n_args && k < max; i++)
        if (!n->args[i].read)
            keys[k++] = n->args[i].key;
    return k;
}

/* ---- creation ---- */

static int parse_args(node *n, const char *const *args, unsigned n_args, char *err, size_t errlen)
{
    if (n_args > NODE_ARGS_MAX) {
        snprintf(err, errlen, "node %s: %u arguments, at most %d", n->name, n_args, NODE_ARGS_MAX);
        return NODE_EINVAL;
    }
    if (n_args && !args) {
        snprintf(err, errlen, "node %s: arguments missing", n->name);
        return NODE_EINVAL;
    }
    if (n_args && !(n->args = calloc(n_args, sizeof(*n->args)))) {
        snprintf(err, errlen, "node %s: out of memory", n->name);
        return NODE_ENOMEM;
    }
    for (unsigned i = 0; i < n_args; i++) {
        const char *a = args[i];
        const char *eq = a ? memchr(a, '=', strnlen(a, NODE_ARG_MAX + 1)) : NULL;
        if (!a || strnlen(a, NODE_ARG_MAX + 1) > NODE_ARG_MAX || !eq || eq == a) {
            snprintf(err, errlen, "node %s: argument %u is not key=value (at most %d characters)",
                     n->name, i + 1, NODE_ARG_MAX);
            return NODE_EINVAL;
        }
        size_t klen = (size_t)(eq - a);
        for (unsigned j = 0; j < n->n_args; j++) {
            if (strlen(n->args[j].key) == klen && memcmp(n->args[j].key, a, klen) == 0) {
                snprintf(err, errlen, "node %s: argument '%.*s' given twice", n->name, (int)klen, a);
                return NODE_EINVAL;
            }
        }
        n->args[i].key = strndup(a, klen);
        n->args[i].value = strdup(eq + 1);
        n->n_args++;
        if (!n->args[i].key || !n->args[i].value) {
            snprintf(err, errlen, "node %s: out of memory", n->name);
            return NODE_ENOMEM;
        }
    }
    return NODE_OK;
}

static void call_hook(node *n, void (*hook)(grd_node *), enum node_ctx ctx)
{
    if (!hook)
        return;
    n->ctx = ctx;
    n->in_code = true;
    n->err_set = false;
    node_exec_enter(n, ctx);
    hook((grd_node *)n);
    node_exec_leave();
    n->in_code = false;
    n->ctx = CTX_NONE;
    if (n->err_set && ctx == CTX_INIT) {
        n->error = true;
        node_log(n, "ERROR in [%s.init]: %s", node_state_name_at(n, n->cur), n->err_msg);
    }
}

node *node_new(const char *name, const char *ifo, node_system *sys, const char *const *args,
               unsigned n_args, const node_host *host, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen)
        err = dummy, errlen = sizeof(dummy);
    if (!name_valid_node(name)) {
        snprintf(err, errlen, "bad node name (1-%d characters of A-Z, 0-9, _)", NAME_NODE_MAX);
        return NULL;
    }
    if (!name_valid_ifo(ifo)) {
        snprintf(err, errlen, "node %s: bad IFO (1-%d characters of A-Z, 0-9)", name,
                 NAME_IFO_MAX);
        return NULL;
    }
    if (!sys) {
        snprintf(err, errlen, "node %s: no system", name);
        return NULL;
    }
    if (!host || !host->now || !host->wall) {
        snprintf(err, errlen, "node %s: the host gives no clock", name);
        return NULL;
    }
    node *n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "node %s: out of memory", name);
        return NULL;
    }
    snprintf(n->name, sizeof(n->name), "%s", name);
    snprintf(n->ifo, sizeof(n->ifo), "%s", ifo);
    n->host = *host;
    n->magic = NODE_MAGIC;
    n->logged_from = n->logged_to = n->logged_target = -1;
    n->jump_to = -1;
    if (parse_args(n, args, n_args, err, errlen) != NODE_OK)
        goto err;
    size_t psize = node_system_def(sys)->priv_size;
    if (psize && !(n->priv = calloc(1, psize))) {
        snprintf(err, errlen, "node %s: out of memory for %zu bytes of private data", name, psize);
        goto err;
    }
    node_system_ref(sys);
    n->sys = sys;
    n->op = NODE_OP_EXEC;
    n->mode = NODE_MODE_AUTO;
    n->load_status = NODE_LOAD_DONE;
    n->load_time = n->host.wall(n->host.arg);
    n->connected = true;
    n->req = sys->request >= 0 ? sys->request : sys->init;
    n->cur = n->target = sys->init;
    engine_restart_init(n, "", sys->init, NODE_STATUS_INIT);
    call_hook(n, node_system_def(sys)->node_init, CTX_INIT);
    n->shown.cur = -2; /* anything: the first publish counts as a change */
    node_publish(n);
    return n;
err:
    node_free(n);
    return NULL;
}

void node_free(node *n)
{
    if (!n || n->magic != NODE_MAGIC)
        return;
    if (n->sys) {
        call_hook(n, node_system_def(n->sys)->node_fini, CTX_FINI);
        node_system_unref(n->sys);
    }
    for (unsigned i = 0; i < n->n_args; i++) {
        free(n->args[i].key);
        free(n->args[i].value);
    }
    free(n->args);
    free(n->priv);
    manage_free(n);
    node_chans_free(n);
    node_log_free(n);
    n->magic = 0;
    free(n);
}

/* ---- operator controls ---- */

static bool mode_valid(int mode)
{
    return mode == NODE_MODE_AUTO || mode == NODE_MODE_MANAGED || mode == NODE_MODE_MANUAL;
}

static bool op_valid(int op)
{
    return op == NODE_OP_STOP || op == NODE_OP_PAUSE || op == NODE_OP_EXEC;
}

int node_request(node *n, const char *state)
{
    if (!n || n->magic != NODE_MAGIC || !state)
        return NODE_EINVAL;
    int pos = node_system_pos(n->sys, state);
    if (pos < 0)
        return NODE_ENOSTATE;
    n->req_pending = true;
    n->req_next = pos;
    return NODE_OK;
}

int node_set_mode(node *n, enum node_mode mode)
{
    if (!n || n->magic != NODE_MAGIC || !mode_valid((int)mode))
        return NODE_EINVAL;
    n->mode_pending = true;
    n->mode_next = mode;
    return NODE_OK;
}

int node_start_with(node *n, const char *request, int mode, int op)
{
    if (!n || n->magic != NODE_MAGIC || n->stepped || n->in_code ||
        (mode != -1 && !mode_valid(mode)) || (op != -1 && !op_valid(op)))
        return NODE_EINVAL;
    int pos = request ? node_system_pos(n->sys, request) : n->req;
    if (pos < 0)
        return NODE_ENOSTATE;
    assert(n->cur == n->sys->init);
    bool changed = pos != n->req;
    n->req = pos;
    if (mode != -1)
        n->mode = (enum node_mode)mode;
    if (op != -1) {
        n->op = (enum node_op)op;
        n->stopped = n->op == NODE_OP_STOP;
    }
    /* As a request given at the first cycle would: MANUAL goes straight to it. */
    if (request && (changed || n->req == n->cur || n->mode == NODE_MODE_MANUAL))
        n->react = true;
    node_log(n, "starts with REQUEST %s, MODE %s, OP %s", node_state_name_at(n, n->req),
             node_mode_names[n->mode], node_op_names[n->op]);
    engine_repath(n);
    node_publish(n);
    return NODE_OK;
}

int node_set_op(node *n, enum node_op op)
{
    if (!n || n->magic != NODE_MAGIC || !op_valid((int)op))
        return NODE_EINVAL;
    n->op_pending = true;
    n->op_next = op;
    if (op == NODE_OP_STOP)
        n->stop_seen = true; /* STOP then EXEC before a cycle still restarts */
    return NODE_OK;
}

int node_claim(node *n, const char *manager)
{
    if (!n || n->magic != NODE_MAGIC || !manager)
        return NODE_EINVAL;
    double now = node_now(n);
    if (!manager[0]) {
        if (n->manager[0]) {
            node_log(n, "MANAGER: %s released", n->manager);
            n->manager[0] = '\0';
            node_publish(n);
        }
        return NODE_OK;
    }
    if (!name_valid_node(manager))
        return NODE_EINVAL;
    if (strcmp(manager, n->manager) == 0) {
        n->manager_until = now + NODE_CLAIM_LEASE;
        return NODE_OK;
    }
    if (n->manager[0] && now < n->manager_until)
        return NODE_EBUSY;
    if (n->manager[0])
        node_log(n, "MANAGER: %s (the claim of %s had lapsed)", manager, n->manager);
    else
        node_log(n, "MANAGER: %s", manager);
    snprintf(n->manager, sizeof(n->manager), "%s", manager);
    n->manager_until = now + NODE_CLAIM_LEASE;
    node_publish(n);
    return NODE_OK;
}

int node_release_manager(node *n)
{
    if (!n || n->magic != NODE_MAGIC)
        return NODE_EINVAL;
    if (!n->manager[0])
        return NODE_OK;
    node_log(n, "MANAGER: %s released by an operator", n->manager);
    n->manager[0] = '\0';
    node_publish(n);
    return NODE_OK;
}

void node_claim_check(node *n)
{
    if (!n->manager[0] || node_now(n) < n->manager_until)
        return;
    node_log(n, "MANAGER: the claim of %s lapsed (not renewed for %.0f s)", n->manager,
             NODE_CLAIM_LEASE);
    n->manager[0] = '\0';
    node_publish(n);
}

int node_start_at(node *n, const char *state, const char *request)
{
    if (!n || n->magic != NODE_MAGIC || !state || n->in_code)
        return NODE_EINVAL;
    int s = node_system_pos(n->sys, state);
    int r = request ? node_system_pos(n->sys, request) : s;
    if (s < 0 || r < 0)
        return NODE_ENOSTATE;
    if (!node_system_has_path(n->sys, state, request ? request : state))
        return NODE_ENOPATH;
    n->req = r;
    n->req_pending = false;
    char from[GRD_NAME_MAX + 1];
    snprintf(from, sizeof(from), "%s", node_state_name_at(n, n->cur));
    engine_restart_init(n, from, s, NODE_STATUS_INIT);
    node_publish(n);
    return NODE_OK;
}

/* ---- reload ---- */

static int map_pos(const node_system *from, const node_system *to, int pos)
{
    return node_system_pos(to, node_system_at(from, pos) ? node_system_at(from, pos)->name : NULL);
}

void node_load_failed(node *n, const char *why)
{
    if (!n || n->magic != NODE_MAGIC)
        return;
    char msg[NODE_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", why ? why : "unknown reason");
    n->load_status = NODE_LOAD_ERROR;
    node_log(n, "LOAD ERROR: %s", msg);
    /* The log has it all; USERMSG shows its start until a LOAD succeeds. */
    char shown[NODE_MSG_MAX + 16];
    snprintf(shown, sizeof(shown), "LOAD ERROR: %s", msg);
    node_usermsg_cut(n->load_msg, shown);
    node_publish(n);
}

int node_load_phase(node *n, enum node_load_status phase)
{
    if (!n || n->magic != NODE_MAGIC)
        return NODE_EINVAL;
    if (phase != NODE_LOAD_REQUEST && phase != NODE_LOAD_SET && phase != NODE_LOAD_INPROGRESS)
        return NODE_EINVAL; /* DONE and ERROR: node_reload and node_load_failed say */
    n->load_status = phase;
    node_publish(n);
    return NODE_OK;
}

int node_reload_check(const node *n, const node_system *sys, char *why, size_t whylen)
{
    char dummy[1];
    if (!why || !whylen)
        why = dummy, whylen = sizeof(dummy);
    if (!n || n->magic != NODE_MAGIC || !sys) {
        snprintf(why, whylen, "no node or no system");
        return NODE_EINVAL;
    }
    const node_system *old = n->sys;
    /* The request the node heads for: a new one waits for the next cycle. */
    int req = n->req_pending ? n->req_next : n->req;
    struct { const char *what; int pos; } keep[] = {
        {"current state", n->cur}, {"request", req}, {"nominal state", old->nominal},
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        if (keep[i].pos < 0) /* no nominal state: nothing to keep */
            continue;
        if (map_pos(old, sys, keep[i].pos) < 0) {
            snprintf(why, whylen, "%s %s is not in the new code", keep[i].what,
                     node_state_name_at(n, keep[i].pos));
            return NODE_EREFUSED;
        }
    }
    int path[GRD_MAX_STATES];
    if (!graph_path(sys, map_pos(old, sys, n->cur), map_pos(old, sys, req), path)) {
        snprintf(why, whylen, "no path from %s to %s in the new code",
                 node_state_name_at(n, n->cur), node_state_name_at(n, req));
        return NODE_EREFUSED;
    }
    return NODE_OK;
}

int node_reload(node *n, node_system *sys, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen)
        err = dummy, errlen = sizeof(dummy);
    if (!n || n->magic != NODE_MAGIC) {
        snprintf(err, errlen, "no node");
        return NODE_EINVAL;
    }
    if (n->in_code) {
        snprintf(err, errlen, "node %s: cannot reload from its own state code", n->name);
        return NODE_EINVAL;
    }
    if (!sys) {
        snprintf(err, errlen, "node %s: no system to load", n->name);
        node_load_failed(n, err);
        return NODE_ENOSYS;
    }
    node_system *old = n->sys;
    const grd_system *od = node_system_def(old), *nd = node_system_def(sys);
    /* Private data: kept as it is when the size is the same; otherwise a new
     * zeroed block, node_fini on the old code and node_init on the new. */
    bool new_priv = nd->priv_size != od->priv_size;
    void *priv = NULL;
    if (new_priv && nd->priv_size && !(priv = calloc(1, nd->priv_size))) {
        snprintf(err, errlen, "node %s: out of memory for %zu bytes of private data", n->name,
                 nd->priv_size);
        node_load_failed(n, err);
        return NODE_ENOMEM;
    }
    if (new_priv) {
        call_hook(n, od->node_fini, CTX_FINI);
        free(n->priv);
        n->priv = priv;
    }
    char was[GRD_NAME_MAX + 1];
    snprintf(was, sizeof(was), "%s", node_state_name_at(n, n->cur));
    int cur = map_pos(old, sys, n->cur);
    int req = map_pos(old, sys, n->req);
    if (n->req_pending && (n->req_next = map_pos(old, sys, n->req_next)) < 0)
        n->req_pending = false;
    node_system_ref(sys);
    n->sys = sys;
    n->req = req >= 0 ? req : sys->request >= 0 ? sys->request : sys->init;
    n->error = false;
    n->logged_from = n->logged_to = n->logged_target = -1; /* positions changed meaning */
    n->load_status = NODE_LOAD_DONE; /* a failed LOAD before is over */
    n->load_msg[0] = '\0';
    n->load_time = n->host.wall(n->host.arg);
    node_log(n, "LOAD: %s%s%s", nd->name, sys->path[0] ? " from " : "", sys->path);
    node_chans_reloaded(n);
    if (cur >= 0) {
        n->cur = n->target = cur; /* same state, same phase */
        engine_repath(n);
    } else {
        n->cur = n->target = sys->init;
        node_log(n, "LOAD: state %s is not in the new code: going to INIT", was);
        engine_restart_init(n, was, sys->init, NODE_STATUS_INIT);
    }
    if (new_priv)
        call_hook(n, nd->node_init, CTX_INIT);
    node_system_unref(old);
    node_publish(n);
    return NODE_OK;
}

/* An error from outside the node's code: conn says a lost connection caused
 * it (ERROR=Connect, which clears itself: engine.c). The first error held is
 * the one shown; every one is logged. */
static void fail_from_outside(node *n, bool conn, const char *fmt, va_list ap)
{
    char msg[NODE_MSG_MAX];
    node_format(msg, sizeof(msg), fmt, ap);
    node_log(n, "ERROR%s: %s", conn ? " (Connect)" : "", msg);
    if (n->error)
        return;
    snprintf(n->err_msg, sizeof(n->err_msg), "%s", msg);
    n->error = true;
    n->conn_error = conn;
    n->done = false;
    node_publish(n);
}

void node_fail(node *n, const char *fmt, ...)
{
    if (!n || n->magic != NODE_MAGIC || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    fail_from_outside(n, false, fmt, ap);
    va_end(ap);
}

void node_fail_connection(node *n, const char *fmt, ...)
{
    if (!n || n->magic != NODE_MAGIC || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    fail_from_outside(n, true, fmt, ap);
    va_end(ap);
}

/* ---- transitions ---- */

void node_record(node *n, const char *from, int to, enum node_transition how)
{
    if (n->trans_count == NODE_TRANSITIONS_MAX) {
        n->trans_first = (n->trans_first + 1) % NODE_TRANSITIONS_MAX;
        n->trans_count--;
    }
    struct node_transition_info *t =
        &n->trans[(n->trans_first + n->trans_count) % NODE_TRANSITIONS_MAX];
    snprintf(t->from, sizeof(t->from), "%s", from);
    snprintf(t->to, sizeof(t->to), "%s", node_state_name_at(n, to));
    snprintf(t->request, sizeof(t->request), "%s", node_state_name_at(n, n->req));
    t->how = how;
    t->wall = n->host.wall(n->host.arg);
    n->trans_count++;
}

unsigned node_take_transitions(node *n, struct node_transition_info *out, unsigned max)
{
    if (!n || n->magic != NODE_MAGIC || !out)
        return 0;
    unsigned k = 0;
    for (; k < max && n->trans_count; k++) {
        out[k] = n->trans[n->trans_first];
        n->trans_first = (n->trans_first + 1) % NODE_TRANSITIONS_MAX;
        n->trans_count--;
    }
    return k;
}

/* ---- what a node shows ---- */

const char *node_name(const node *n) { return n ? n->name : ""; }
const node_system *node_system_of(const node *n) { return n ? n->sys : NULL; }
const grd_state *node_state(const node *n) { return n ? node_system_at(n->sys, n->cur) : NULL; }
const grd_state *node_target(const node *n) { return n ? node_system_at(n->sys, n->target) : NULL; }
const grd_state *node_requested(const node *n) { return n ? node_system_at(n->sys, n->req) : NULL; }
const grd_state *node_nominal(const node *n)
{
    return n ? node_system_at(n->sys, n->sys->nominal) : NULL;
}
enum node_op node_op(const node *n) { return n ? n->op : NODE_OP_STOP; }
enum node_mode node_mode(const node *n) { return n ? n->mode : NODE_MODE_AUTO; }
enum node_status node_status(const node *n) { return n ? n->status : NODE_STATUS_INIT; }

unsigned node_take_status_trail(node *n, enum node_status *out, unsigned max)
{
    if (!n || !out)
        return 0;
    unsigned count = n->n_trail < max ? n->n_trail : max;
    memcpy(out, n->trail + (n->n_trail - count), count * sizeof(*out));
    n->n_trail = 0;
    return count;
}
enum node_load_status node_load_status(const node *n) { return n ? n->load_status : NODE_LOAD_ERROR; }
bool node_connected(const node *n) { return n && n->connected; }
bool node_stalled(const node *n) { return n && n->stalled; }
/* A failed LOAD is the node's notification until a LOAD succeeds, over any of the
 * old code's (which it keeps making: USERMSG shows the load error instead). */
/* load_msg is set by node_load_failed and cleared by a good LOAD only: a new
 * LOAD under way (REQUEST...INPROGRESS) does not end the failure yet. */
static bool load_failed(const node *n) { return n->load_msg[0] != '\0'; }
bool node_notification(const node *n) { return n && (n->notification || load_failed(n)); }
const char *node_usermsg(const node *n)
{
    if (!n)
        return "";
    return load_failed(n) ? n->load_msg : n->notification ? n->usermsg : "";
}
const char *node_error_message(const node *n) { return n && n->error ? n->err_msg : ""; }
double node_exectime_last(const node *n) { return n ? n->exectime_last : 0; }
const char *node_manager(const node *n) { return n ? n->manager : ""; }
double node_load_time(const node *n) { return n ? n->load_time : 0; }
uint64_t node_generation(const node *n) { return n ? n->generation : 0; }

enum node_error node_error(const node *n)
{
    if (!n)
        return NODE_ERROR_TRUE;
    if (n->error)
        return n->conn_error ? NODE_ERROR_CONNECT : NODE_ERROR_TRUE;
    return !n->connected ? NODE_ERROR_CONNECT : NODE_ERROR_NONE;
}

double node_exectime(const node *n)
{
    if (!n)
        return 0;
    double t = node_now(n) - n->entered_at;
    return t > 0 ? t : 0;
}

static bool running_mode(const node *n)
{
    return n->op == NODE_OP_EXEC && (n->mode == NODE_MODE_AUTO || n->mode == NODE_MODE_MANAGED);
}

bool node_ok(const node *n)
{
    return n && n->sys->nominal >= 0 && running_mode(n) && n->req == n->sys->nominal &&
           n->cur == n->sys->nominal && n->status == NODE_STATUS_DONE && !n->error && n->connected;
}

bool node_active(const node *n)
{
    return n && running_mode(n) && !load_failed(n) && !n->error && n->connected;
}

bool node_done(const node *n)
{
    return n && n->op == NODE_OP_EXEC && n->cur == n->req && n->status == NODE_STATUS_DONE &&
           !n->error;
}

void node_publish(node *n)
{
    struct node_shown s = {
        .cur = n->cur, .target = n->target, .req = n->req,
        .op = n->op, .mode = n->mode, .status = n->status, .error = node_error(n),
        .load_status = n->load_status, .connected = n->connected, .ok = node_ok(n),
        .spm_total = n->spm_total, .spm_changed = n->spm_changed,
        .active = node_active(n), .notification = node_notification(n), .stalled = n->stalled,
        .exectime_last = n->exectime_last, .load_time = n->load_time, .sys = n->sys,
        .subs_total = n->n_subs, .subs_not_ok = n->subs_not_ok,
    };
    snprintf(s.usermsg, sizeof(s.usermsg), "%s", node_usermsg(n));
    memcpy(s.manager, n->manager, sizeof(s.manager));
    const struct node_shown *o = &n->shown;
    bool same = n->n_trail == 0 && s.cur == o->cur && s.target == o->target && s.req == o->req && s.op == o->op &&
                s.mode == o->mode && s.status == o->status && s.error == o->error &&
                s.load_status == o->load_status && s.connected == o->connected && s.ok == o->ok &&
                s.spm_total == o->spm_total && s.spm_changed == o->spm_changed &&
                s.active == o->active && s.notification == o->notification &&
                s.stalled == o->stalled && s.exectime_last == o->exectime_last &&
                s.load_time == o->load_time && s.sys == o->sys &&
                s.subs_total == o->subs_total && s.subs_not_ok == o->subs_not_ok &&
                strcmp(s.usermsg, o->usermsg) == 0 && strcmp(s.manager, o->manager) == 0;
    if (!same) {
        n->generation++;
        n->shown = s;
    }
}
