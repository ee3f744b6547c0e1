/* commands.c — the control socket's commands (protocol in proto.h): the command
 * table, who may run what, and one handler per command.
 *
 * Permissions: a command is a read (list, status, states, log, watch,
 * crashes, history, audit, tree, medm, spm) or a change (everything else).
 * Root may do everything; members of operator_group (the peer's effective
 * or supplementary group, from the socket's credentials at accept: ctl.c)
 * read and change; any other peer reads only. A refused request is logged
 * with the peer's uid (at a bounded rate) and answered EPERM.
 *
 * Every argument is checked before anything changes; a command naming
 * several nodes checks them all first, so an unknown one changes nothing.
 *
 * Running and registered: the supervisor's hash holds the nodes that run;
 * the registry (store_nodes, or the configuration file's nodes when there
 * is no database) holds every node that exists, running or not. `stop`
 * removes a node from the first and leaves it in the second. The registry
 * is read per command (one short query): operator commands are rare, and a
 * copy kept here would only be one more thing to keep in step.
 *
 * `watch` only marks the connection (peer.watch, peer.watch_nodes): ctl.c
 * sends the change frames. Node patterns are the client's business (guardctl
 * expands them): every command here takes exact names.
 *
 * REQUEST, MODE and OP are written through the node's channels exactly as a
 * CA client's put (pv_write_string with host "localhost" and the peer's user
 * name), so they get the same validation, the same access rules and the same
 * audit record. load and release-manager, which stand for writes of LOAD and
 * MANAGER, ask the same rules (policy_may_write) first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/access.h"
#include "plant/plant.h"
#include "store/store.h"
#include "ctl/ctl.h"

/* ---- the registry, copied out of store_nodes (its strings live only
 * during its callback, and its callback may not query the store) ---- */

struct reg_node {
    char *name, *system;
    char **args;
    unsigned n_args;
    bool enabled, runtime;
    char *request, *mode, *op, *state;
};

struct reg {
    struct reg_node *v;
    unsigned n, cap;
    bool oom;
};

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

static void reg_push(struct reg *r, const char *name, const char *system, const char *const *args,
                     unsigned n_args, bool enabled, bool runtime, const char *request,
                     const char *mode, const char *op, const char *state)
{
    if (r->n == r->cap) {
        unsigned cap = r->cap ? 2 * r->cap : 64;
        struct reg_node *grown = realloc(r->v, cap * sizeof(*grown));
        if (!grown) {
            r->oom = true;
            return;
        }
        r->v = grown;
        r->cap = cap;
    }
    struct reg_node *n = &r->v[r->n++];
    *n = (struct reg_node){.enabled = enabled, .runtime = runtime, .n_args = n_args};
    n->name = dup_or_null(name, &r->oom);
    n->system = dup_or_null(system, &r->oom);
    n->args = calloc(n_args + 1, sizeof(char *));
    if (!n->args)
        r->oom = true;
    for (unsigned i = 0; n->args && i < n_args; i++)
        n->args[i] = dup_or_null(args[i], &r->oom);
    n->request = dup_or_null(request, &r->oom);
    n->mode = dup_or_null(mode, &r->oom);
    n->op = dup_or_null(op, &r->oom);
    n->state = dup_or_null(state, &r->oom);
}

static void reg_free(struct reg *r)
{
    for (unsigned i = 0; i < r->n; i++) {
        struct reg_node *n = &r->v[i];
        free(n->name);
        free(n->system);
        for (unsigned j = 0; n->args && j < n->n_args; j++)
            free(n->args[j]);
        free(n->args);
        free(n->request);
        free(n->mode);
        free(n->op);
        free(n->state);
    }
    free(r->v);
    *r = (struct reg){0};
}

static int from_store(void *arg, const struct store_node *sn)
{
    reg_push(arg, sn->name, sn->system, sn->args, sn->n_args, sn->enabled, sn->runtime,
             sn->request, sn->mode, sn->op, sn->state);
    return 0;
}

/* NULL, or an error reply. */
static json_t *reg_load(sup *s, struct reg *r)
{
    *r = (struct reg){0};
    if (s->store) {
        int n = store_nodes(s->store, from_store, r);
        if (n < 0) {
            reg_free(r);
            return ctl_error("EIO", "cannot read the node registry: %s", store_errmsg(s->store));
        }
    } else {
        for (unsigned i = 0; i < s->cfg.n_nodes; i++) {
            const struct config_node *cn = &s->cfg.nodes[i];
            reg_push(r, cn->name, cn->system, (const char *const *)cn->args, cn->n_args, true,
                     false, NULL, NULL, NULL, NULL);
        }
    }
    if (r->oom) {
        reg_free(r);
        return ctl_error("ENOMEM", "out of memory");
    }
    return NULL;
}

static const struct reg_node *reg_find(const struct reg *r, const char *name)
{
    for (unsigned i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

/* ---- arguments ---- */

static json_t *unknown_node(const char *name)
{
    return ctl_error("EUNKNOWN_NODE", "unknown node '%s' (guardctl list shows the nodes)", name);
}

/* A required (or optional) string argument; NULL or an error reply. */
static json_t *arg_str(json_t *args, const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(args, key);
    *out = NULL;
    if (!v)
        return required ? ctl_error(CTL_EINVAL, "missing argument '%s'", key) : NULL;
    if (!json_is_string(v) || !*json_string_value(v))
        return ctl_error(CTL_EINVAL, "argument '%s' must be a non-empty string", key);
    *out = json_string_value(v);
    return NULL;
}

static json_t *arg_node_name(json_t *args, const char *key, bool required, const char **out)
{
    json_t *e = arg_str(args, key, required, out);
    if (!e && *out && !name_valid_node(*out))
        return unknown_node(*out);
    return e;
}

/* The list of node names in args.nodes (required: at least one). */
static json_t *arg_nodes(json_t *args, bool required, json_t **out)
{
    json_t *v = json_object_get(args, "nodes");
    *out = NULL;
    if (!v)
        return required ? ctl_error(CTL_EINVAL, "missing argument 'nodes'") : NULL;
    if (!json_is_array(v) || (required && json_array_size(v) == 0))
        return ctl_error(CTL_EINVAL, "argument 'nodes' must be a list of node names");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_string(x))
            return ctl_error(CTL_EINVAL, "argument 'nodes' must be a list of node names");
        if (!name_valid_node(json_string_value(x)))
            return unknown_node(json_string_value(x));
    }
    *out = v;
    return NULL;
}

static json_t *arg_number(json_t *args, const char *key, double min, double max, double *out)
{
    json_t *v = json_object_get(args, key);
    if (!v)
        return NULL;
    if (!json_is_number(v) || !(json_number_value(v) >= min && json_number_value(v) <= max))
        return ctl_error(CTL_EINVAL, "argument '%s' must be a number from %g to %g", key, min, max);
    *out = json_number_value(v);
    return NULL;
}

/* ---- who asks ---- */

/* The peer's user name, for audit records and log lines of changes: looked
 * up once per connection, and through ctl.c's cache, since a name-service
 * lookup may block the loop (ctl_user_name says when it happens). Only
 * commands that change things ask, i.e. root and operators. */
static const char *peer_user(struct ctl_peer *p)
{
    if (!p->user[0])
        ctl_user_name(p->ctl, p->uid, p->user, sizeof(p->user));
    return p->user;
}

/* Who asked, for the lifecycle's lines: "alice (uid 1000)". */
static const char *peer_who(struct ctl_peer *p, char *buf, size_t len)
{
    snprintf(buf, len, "%s (uid %u)", peer_user(p), (unsigned)p->uid);
    return buf;
}

/* Membership is decided at accept from the peer's own groups (ctl.c). */
static bool is_operator(const struct ctl_peer *p) { return p->operator_member; }

/* The control socket's caller as a writer: its Unix user, from this host. */
static pv_client peer_client(struct ctl_peer *p)
{
    return (pv_client){.host = PV_LOCAL_HOST, .user = peer_user(p), .ip = PV_LOCAL_IP};
}

/* NULL if the caller may write node's channel; else EPERM saying which
 * rule refuses, and the attempt audited as a refused write of `value`. */
static json_t *channel_refused(sup *s, struct ctl_peer *p, const char *node, const char *channel,
                               const char *value)
{
    pv_client who = peer_client(p);
    if (policy_may_write(s, node, channel, &who, NULL))
        return NULL;
    char why[1024];
    policy_refusal_text(s, node, channel, &who, why, sizeof(why));
    sup_log(SUP_NOTICE, "access: refused (control socket): %s", why);
    if (s->store) {
        struct store_audit a = {.node = node, .time = sup_wall(), .channel = channel,
                                .new_value = value, .host = PV_LOCAL_HOST, .user = who.user,
                                .accepted = false};
        store_audit(s->store, &a);
    }
    return ctl_error(CTL_EPERM, "%s", why);
}

/* ---- nodes as JSON ---- */


static json_t *state_name(const grd_state *st) { return st ? json_string(st->name) : json_null(); }

static json_t *opt_string(const char *s) { return s ? ctl_string(s) : json_null(); }

static json_t *args_json(char *const *args, unsigned n)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(a, ctl_string(args[i]));
    return a;
}

/* A running node's step times (sched.c), in seconds. */
static json_t *steps_json(const sup *s, const sup_node *sn)
{
    const struct sup_step_times *t = &sn->times;
    return json_pack("{s:I,s:f,s:f,s:f,s:I,s:f}", "count", (json_int_t)t->steps, "last", t->last,
                     "max", t->max, "mean", t->steps ? t->total / (double)t->steps : 0.0,
                     "over_budget", (json_int_t)t->overruns, "budget", s->cfg.step_budget);
}

/* The path from the current state to the request (node_path): names. */
static json_t *path_json(const node *n)
{
    const grd_state *path[GRD_MAX_STATES];
    unsigned len = node_path(n, path, GRD_MAX_STATES);
    json_t *a = json_array();
    for (unsigned i = 0; i < len; i++)
        json_array_append_new(a, json_string(path[i]->name));
    return a;
}

/* Who set the request the node has, and when: the newest accepted write of
 * it to REQUEST or REQUEST_ENUM in the audit ({"by": "user@host", "time":
 * t}), or null when the audit has none (no database; the system's initial
 * request) or the request came otherwise since. The audit rather than
 * CHANGED_BY: that one also names who last changed MODE or OP, and has no
 * time. A running node keeps what was found (sup_request_set). */
static int request_row(void *arg, const struct store_audit *a)
{
    struct sup_request_set *rs = arg;
    if (a->time > rs->time) { /* the newer of the REQUEST and REQUEST_ENUM writes */
        rs->time = a->time;
        snprintf(rs->by, sizeof(rs->by), "%.30s@%.30s", a->user ? a->user : "?",
                 a->host ? a->host : "?");
        snprintf(rs->value, sizeof(rs->value), "%s", a->new_value ? a->new_value : "");
    }
    return 1;
}

static json_t *request_set_json(sup *s, sup_node *sn, const char *node, const char *request)
{
    struct sup_request_set found = {0}, *rs = sn ? &sn->request_set : &found;
    if (!s->store || !request[0])
        return json_null();
    if (!rs->known) {
        *rs = (struct sup_request_set){0};
        if (store_audit_newest(s->store, node, "REQUEST", request_row, rs) >= 0 &&
            store_audit_newest(s->store, node, "REQUEST_ENUM", request_row, rs) >= 0)
            rs->known = true; /* else asked again next time */
    }
    if (!rs->by[0] || strcmp(rs->value, request) != 0)
        return json_null();
    return json_pack("{s:o,s:f}", "by", ctl_string(rs->by), "time", rs->time);
}

/* The module file the node runs, as loaded, and what is on disk now as the
 * last look found it (LOAD_PENDING, issue 13). */
static json_t *module_json(const sup_node *sn)
{
    struct node_module m;
    node_system_module(sn->sys, &m);
    char hash[17];
    snprintf(hash, sizeof(hash), "%016" PRIx64, m.hash);
    return json_pack("{s:o,s:f,s:I,s:s,s:s,s:b}", "path", ctl_string(m.path), "mtime", m.mtime,
                     "size", (json_int_t)m.size, "hash", hash, "state",
                     node_module_state_names[sn->module_shown], "pending",
                     sup_node_load_pending(sn));
}

/* One node: running (sn) and/or registered (rn). detail adds what `status`
 * shows: crashes, the last lines of its log, arguments, the path and who
 * set the request. */
static json_t *node_json(sup *s, sup_node *sn, const struct reg_node *rn, bool detail)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(sn ? sn->name : rn->name));
    json_object_set_new(j, "system", ctl_string(sn ? sn->system : rn->system));
    json_object_set_new(j, "running", json_boolean(sn != NULL));
    json_object_set_new(j, "registered", json_boolean(rn != NULL));
    json_object_set_new(j, "enabled", json_boolean(rn ? rn->enabled : true));
    json_object_set_new(j, "origin", json_string(rn && rn->runtime ? "runtime" : "config"));
    if (sn) {
        node *n = sn->node;
        json_object_set_new(j, "state", state_name(node_state(n)));
        /* REQUEST, MODE and OP as the channels hold them: a write just
         * accepted shows at once (the node applies it at its next cycle). */
        struct life_controls ctl;
        life_controls(s, sn, &ctl);
        json_object_set_new(j, "request", ctl.request[0] ? ctl_string(ctl.request) : json_null());
        json_object_set_new(j, "target", state_name(node_target(n)));
        json_object_set_new(j, "nominal", state_name(node_nominal(n)));
        json_object_set_new(j, "mode", json_string(ctl.mode));
        json_object_set_new(j, "op", json_string(ctl.op));
        json_object_set_new(j, "status", json_string(node_status_names[node_status(n)]));
        json_object_set_new(j, "ok", json_boolean(node_ok(n) && !sn->quarantined));
        json_object_set_new(j, "active", json_boolean(node_active(n) && !sn->quarantined));
        json_object_set_new(j, "error", json_boolean(node_error(n) == NODE_ERROR_TRUE));
        json_object_set_new(j, "error_message", ctl_string(node_error_message(n)));
        json_object_set_new(j, "connected", json_boolean(node_connected(n)));
        json_object_set_new(j, "spm_total", json_integer(node_spm_total(n)));
        json_object_set_new(j, "spm_changed", json_integer(node_spm_changed(n)));
        json_object_set_new(j, "notification", json_boolean(node_notification(n)));
        json_object_set_new(j, "usermsg", ctl_string(node_usermsg(n)));
        /* The last transition: now less the time spent in this state. */
        json_object_set_new(j, "since", json_real(sup_wall() - node_exectime(n)));
        json_object_set_new(j, "exectime", json_real(node_exectime(n)));
        json_object_set_new(j, "quarantined", json_boolean(sn->quarantined));
        json_object_set_new(j, "too_slow", json_boolean(sn->too_slow));
        json_object_set_new(j, "quarantine_reason", ctl_string(sn->quarantine_why));
        json_object_set_new(j, "steps", steps_json(s, sn));
        json_object_set_new(j, "manager", ctl_string(node_manager(n)));
        json_object_set_new(j, "stalled", json_boolean(node_stalled(n)));
        json_object_set_new(j, "unread_args", !sn->args_checked ? json_null()
                                              : ctl_string(sn->unread));
        unsigned not_ok, total = node_subnodes(n, &not_ok);
        json_object_set_new(j, "subnodes_total", json_integer(total));
        json_object_set_new(j, "subnodes_not_ok", json_integer(not_ok));
        json_object_set_new(j, "load_pending", json_boolean(sup_node_load_pending(sn)));
    } else {
        /* Not running: what was saved when it last ran, and why it could
         * not start if it should be running. */
        const char *why = sup_failed_why(s, rn->name);
        json_object_set_new(j, "failed", json_boolean(why != NULL));
        json_object_set_new(j, "failure", why ? ctl_string(why) : json_null());
        json_object_set_new(j, "state", opt_string(rn->state));
        json_object_set_new(j, "request", opt_string(rn->request));
        json_object_set_new(j, "mode", opt_string(rn->mode));
        json_object_set_new(j, "op", opt_string(rn->op));
        json_object_set_new(j, "ok", json_null());
        json_object_set_new(j, "since", json_null());
        json_object_set_new(j, "quarantined", json_false());
        json_object_set_new(j, "too_slow", json_false());
    }
    if (!detail)
        return j;
    json_object_set_new(j, "args", sn ? args_json(sn->args, sn->n_args)
                                      : args_json(rn->args, rn->n_args));
    const char *request = json_string_value(json_object_get(j, "request"));
    json_object_set_new(j, "request_set", request_set_json(s, sn,
                                                           sn ? sn->name : rn->name,
                                                           request ? request : ""));
    if (sn) {
        json_object_set_new(j, "path", path_json(sn->node));
        json_object_set_new(j, "module", module_json(sn));
    }
    int crashes = s->store ? store_crash_total(s->store, sn ? sn->name : rn->name) : 0;
    json_object_set_new(j, "crashes", json_integer(crashes > 0 ? crashes : 0));
    json_t *log = json_array();
    if (sn) {
        const char *lines[10];
        unsigned nl = node_log_lines(sn->node, lines, 10);
        for (unsigned i = 0; i < nl; i++)
            json_array_append_new(log, ctl_string(lines[i]));
    }
    json_object_set_new(j, "log", log);
    return j;
}

static json_t *ok_reply(void)
{
    json_t *r = json_object();
    json_object_set_new(r, "ok", json_true());
    return r;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                  json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

/* ---- read commands ---- */

static json_t *cmd_list(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p, (void)args;
    struct reg r;
    json_t *e = reg_load(s, &r);
    if (e)
        return e;
    unsigned cap = r.n + s->n_nodes, n = 0;
    json_t **items = calloc(cap ? cap : 1, sizeof(*items));
    if (!items) {
        reg_free(&r);
        return ctl_error("ENOMEM", "out of memory");
    }
    for (unsigned i = 0; i < r.n; i++)
        items[n++] = node_json(s, sup_node_find(s, r.v[i].name), &r.v[i], false);
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next)
        if (!reg_find(&r, sn->name))
            items[n++] = node_json(s, sn, NULL, false);
    qsort(items, n, sizeof(*items), by_name);
    json_t *list = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(list, items[i]);
    free(items);
    reg_free(&r);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "nodes", list);
    return reply;
}

static json_t *supervisor_json(sup *s)
{
    json_t *j = json_object();
    json_object_set_new(j, "version", json_string(GUARDIAND_VERSION));
    json_object_set_new(j, "pid", json_integer(getpid()));
    double up = sup_now() - s->started;
    json_object_set_new(j, "uptime", json_real(up));
    json_object_set_new(j, "started", json_real(sup_wall() - up));
    json_object_set_new(j, "config", ctl_string(s->cfg.path));
    json_object_set_new(j, "ifo", json_string(s->cfg.ifo));
    json_object_set_new(j, "nodes_running", json_integer(s->n_nodes));
    struct reg r;
    json_t *e = reg_load(s, &r);
    if (!e) {
        unsigned registered = r.n;
        for (sup_node *sn = s->nodes; sn; sn = sn->hh.next)
            registered += !reg_find(&r, sn->name);
        json_object_set_new(j, "nodes_registered", json_integer(registered));
        reg_free(&r);
    }
    json_decref(e);
    unsigned quarantined = 0, too_slow = 0;
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next) {
        quarantined += sn->quarantined;
        too_slow += sn->too_slow;
    }
    json_object_set_new(j, "quarantined", json_integer(quarantined));
    json_object_set_new(j, "too_slow", json_integer(too_slow));
    json_object_set_new(j, "step_budget", json_real(s->cfg.step_budget));
    json_object_set_new(j, "nodes_failed", json_integer(s->n_failed));
    json_object_set_new(j, "rate", json_real(s->cfg.rate));
    json_object_set_new(j, "loop_util", json_real(s->sched.util * 100));
    if (s->plant) {
        struct plant_stats ps;
        plant_get_stats(s->plant, &ps);
        json_t *pj = json_object();
        json_object_set_new(pj, "channels", json_integer(ps.channels));
        json_object_set_new(pj, "ca", json_integer(ps.ca));
        json_object_set_new(pj, "ca_connected", json_integer(ps.ca_connected));
        json_object_set_new(pj, "local", json_integer(ps.local));
        json_object_set_new(pj, "simulated", json_integer(ps.simulated));
        json_object_set_new(pj, "puts", json_integer((json_int_t)ps.puts));
        json_object_set_new(pj, "put_failures", json_integer((json_int_t)ps.put_failures));
        json_object_set_new(pj, "updates", json_integer((json_int_t)ps.updates));
        json_object_set_new(pj, "polls", json_integer((json_int_t)ps.polls));
        json_object_set_new(pj, "polls_put_off", json_integer((json_int_t)ps.polls_put_off));
        json_object_set_new(j, "plant", pj);
    }
    double p50, p99, max;
    sched_jitter(&s->sched, &p50, &p99, &max);
    json_object_set_new(j, "jitter_ms", json_pack("{s:f,s:f,s:f}", "p50", p50 * 1e3, "p99",
                                                  p99 * 1e3, "max", max * 1e3));
    json_object_set_new(j, "overruns", json_integer((json_int_t)s->sched.overruns));
    json_object_set_new(j, "skipped_cycles", json_integer((json_int_t)s->sched.skipped_cycles));
    json_t *db = json_object();
    json_object_set_new(db, "path", ctl_string(s->cfg.database));
    if (s->store) {
        struct store_status st;
        store_status(s->store, &st);
        json_object_set_new(db, "status", json_string(st.ok ? "OK" : "DEGRADED"));
        json_object_set_new(db, "message", ctl_string(st.error));
        json_object_set_new(db, "queued", json_integer((json_int_t)st.queued));
        json_object_set_new(db, "committed", json_integer((json_int_t)st.committed_total));
        json_object_set_new(db, "dropped", json_integer((json_int_t)st.dropped));
        json_object_set_new(db, "log_queued", json_integer((json_int_t)st.log_queued));
        json_object_set_new(db, "log_dropped", json_integer((json_int_t)st.log_dropped));
    } else {
        json_object_set_new(db, "status", json_string("NONE"));
        json_object_set_new(db, "message", ctl_string(s->store_problem));
    }
    json_object_set_new(j, "database", db);
    /* Without a database there is no record of the last boot to judge by. */
    json_object_set_new(j, "prev_boot", json_string(!s->store ? "unknown"
                                                    : s->prev_unclean ? "unclean" : "clean"));
    if (s->ca) {
        struct cas_stats st;
        cas_get_stats(s->ca, &st);
        json_object_set_new(j, "ca", json_pack("{s:I,s:I,s:I,s:i}", "clients",
                                               (json_int_t)st.clients, "channels",
                                               (json_int_t)st.channels, "subscriptions",
                                               (json_int_t)st.subscriptions, "port",
                                               (int)cas_tcp_port(s->ca)));
    }
    if (s->ctl)
        json_object_set_new(j, "control_socket", ctl_string(ctl_path(s->ctl)));
    const struct life_report *lr = &s->last_reload;
    if (lr->time > 0)
        json_object_set_new(j, "last_reload", json_pack(
            "{s:f,s:o,s:b,s:o,s:i,s:i,s:i,s:i,s:i}", "time", lr->time, "by", ctl_string(lr->who),
            "applied", lr->applied, "error", lr->error[0] ? ctl_string(lr->error) : json_null(),
            "nodes", lr->nodes, "started", lr->started, "stopped", lr->stopped, "restarted",
            lr->restarted, "failed", lr->failed));
    return j;
}

static json_t *cmd_status(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    json_t *names;
    json_t *e = arg_nodes(args, false, &names);
    if (e)
        return e;
    json_t *reply = ok_reply();
    if (!names || json_array_size(names) == 0) {
        json_object_set_new(reply, "supervisor", supervisor_json(s));
        return reply;
    }
    struct reg r;
    if ((e = reg_load(s, &r))) {
        json_decref(reply);
        return e;
    }
    /* Who set each request comes from the audit: a write just made must be
     * in it (one short commit, as for guardctl audit). */
    if (s->store)
        store_flush(s->store);
    json_t *list = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x) {
        const char *name = json_string_value(x);
        sup_node *sn = sup_node_find(s, name);
        const struct reg_node *rn = reg_find(&r, name);
        if (!sn && !rn) {
            json_decref(list);
            json_decref(reply);
            reg_free(&r);
            return unknown_node(name);
        }
        json_array_append_new(list, node_json(s, sn, rn, true));
    }
    reg_free(&r);
    json_object_set_new(reply, "nodes", list);
    return reply;
}

/* `log`: a node's last n lines, or those since a time. The ring (its last
 * NODE_LOG_RING lines, in memory, kept across stop and restart) answers when
 * it holds the n lines asked for and no since is given; otherwise the
 * database alone answers, after a flush, so that no line is given twice and
 * lines from before a restart of the daemon, or of a stopped, removed or
 * destroyed node, are there. Reading the database holds the loop: it stops
 * after LOG_READ_BUDGET or LOG_REPLY_BYTES of lines, newest kept, and says so. */
#define LOG_READ_BUDGET 0.25              /* seconds of database reading for one reply */
#define LOG_REPLY_BYTES (CTL_REPLY_MAX / 4) /* of line text: JSON escapes may double it */
#define LOG_CLOCK_EVERY 256               /* lines read between looks at the clock */

struct log_read {
    json_t *lines;      /* newest first */
    size_t want, bytes;
    double deadline;    /* sup_now() */
    bool more;          /* older lines exist than those given */
    const char *cut;    /* why the reply stops short of want, or NULL */
};

static int log_row(void *arg, double time, const char *line)
{
    (void)time;
    struct log_read *r = arg;
    size_t got = json_array_size(r->lines), len = strlen(line);
    if (got >= r->want) { /* the one line more that was asked for */
        r->more = true;
        return 1;
    }
    if (r->bytes + len > LOG_REPLY_BYTES)
        r->cut = "the reply's size limit";
    else if (got % LOG_CLOCK_EVERY == LOG_CLOCK_EVERY - 1 && sup_now() > r->deadline)
        r->cut = "the time the daemon gives one reply";
    if (r->cut) {
        r->more = true;
        return 1;
    }
    json_array_append_new(r->lines, ctl_string(line));
    r->bytes += len;
    return 0;
}

/* The node's lines from the database into reply; NULL or an error reply. */
static json_t *log_from_store(sup *s, const char *name, double since, size_t want, json_t *reply)
{
    /* What was just logged is in the answer (as for the history queries). */
    if (store_flush(s->store) != STORE_OK) {
        char why[512];
        snprintf(why, sizeof(why), "the database cannot be written (%s): the newest lines may be "
                 "missing", store_errmsg(s->store));
        json_object_set_new(reply, "warning", ctl_string(why));
    }
    struct log_read r = {.lines = json_array(), .want = want, .deadline = sup_now() + LOG_READ_BUDGET};
    int n = want ? store_log_lines(s->store, name, since, (unsigned)want + 1, log_row, &r) : 0;
    if (n < 0) {
        json_decref(r.lines);
        return ctl_error("EIO", "database: %s", store_errmsg(s->store));
    }
    json_t *lines = json_array(); /* oldest first, as the ring and stdout show them */
    for (size_t i = json_array_size(r.lines); i-- > 0;)
        json_array_append(lines, json_array_get(r.lines, i));
    json_decref(r.lines);
    json_object_set_new(reply, "lines", lines);
    json_object_set_new(reply, "stored", json_true());
    json_object_set_new(reply, "more", json_boolean(r.more));
    if (r.cut)
        json_object_set_new(reply, "cut", json_string(r.cut));
    return NULL;
}

static json_t *cmd_log(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    double n = 20, since = 0;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (!e)
        e = arg_number(args, "n", 0, STORE_ROWS_MAX, &n);
    if (!e)
        e = arg_number(args, "since", -1e12, 1e12, &since);
    bool has_since = json_object_get(args, "since") != NULL;
    json_t *follow = json_object_get(args, "follow");
    if (!e && follow && !json_is_boolean(follow))
        e = ctl_error(CTL_EINVAL, "argument 'follow' must be true or false");
    if (!e && has_since && !s->store)
        e = ctl_error("ENOSTORE", "guardiand runs without a database (%s): only the last %d lines "
                      "of each node are kept, in memory; --since and older lines need the database",
                      s->store_problem[0] ? s->store_problem : "none", NODE_LOG_RING);
    if (e)
        return e;
    sup_node *sn = sup_node_find(s, name);
    bool registered = sn != NULL;
    if (!sn) {
        struct reg r;
        if ((e = reg_load(s, &r)))
            return e;
        registered = reg_find(&r, name) != NULL;
        reg_free(&r);
        if (json_is_true(follow))
            return registered ? ctl_error("ENOTRUNNING", "node %s is not running: there is no log "
                                          "to follow (guardctl start %s)", name, name)
                              : unknown_node(name);
    }
    /* A node that does not run shows the lines of its last run. */
    const char *ring[NODE_LOG_RING];
    unsigned nring = sn ? node_log_lines(sn->node, ring, NODE_LOG_RING)
                        : life_kept_log(s, name, ring, NODE_LOG_RING);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "running", json_boolean(sn != NULL));
    json_object_set_new(reply, "node", json_string(name));
    if (s->store && (has_since || n > nring)) {
        if ((e = log_from_store(s, name, has_since ? since : 0, (size_t)n, reply))) {
            json_decref(reply);
            return e;
        }
    } else {
        json_t *lines = json_array();
        unsigned want = n < nring ? (unsigned)n : nring;
        for (unsigned i = nring - want; i < nring; i++)
            json_array_append_new(lines, ctl_string(ring[i]));
        json_object_set_new(reply, "lines", lines);
        json_object_set_new(reply, "stored", json_false());
        json_object_set_new(reply, "more", json_boolean(nring > want));
        if (!s->store && n > NODE_LOG_RING) {
            char why[768];
            snprintf(why, sizeof(why), "guardiand runs without a database (%s): only the last %d "
                     "lines of each node are kept, in memory; older lines need the database",
                     s->store_problem[0] ? s->store_problem : "none", NODE_LOG_RING);
            json_object_set_new(reply, "warning", ctl_string(why));
        }
    }
    if (!sn && !registered && json_array_size(json_object_get(reply, "lines")) == 0) {
        json_decref(reply);
        return unknown_node(name); /* no such node, and nothing of one was kept */
    }
    if (json_is_true(follow)) {
        /* ctl.c subscribes the connection once this reply is queued. */
        snprintf(p->follow, sizeof(p->follow), "%s", name);
        json_object_set_new(reply, "following", json_true());
    }
    return reply;
}

static json_t *need_store(sup *s)
{
    if (s->store)
        return NULL;
    return ctl_error("ENOSTORE", "guardiand runs without a database (%s): there is no node "
                     "registry or history", s->store_problem[0] ? s->store_problem : "none");
}

static int crash_row(void *arg, const struct store_crash *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(c->id));
    json_object_set_new(o, "boot", json_integer(c->boot_id));
    json_object_set_new(o, "time", json_real(c->time));
    json_object_set_new(o, "signal", json_integer(c->signal));
    json_object_set_new(o, "code", json_integer(c->code));
    json_object_set_new(o, "addr", opt_string(c->addr));
    json_object_set_new(o, "node", opt_string(c->node));
    json_object_set_new(o, "state", opt_string(c->state));
    json_object_set_new(o, "phase", opt_string(c->phase));
    json_object_set_new(o, "uptime", json_real(c->uptime));
    json_object_set_new(o, "since_prev", c->since_prev < 0 ? json_null() : json_real(c->since_prev));
    json_object_set_new(o, "backtrace", opt_string(c->backtrace));
    json_object_set_new(o, "complete", json_boolean(c->complete));
    json_array_append_new(arg, o);
    return 0;
}

static int transition_row(void *arg, const struct store_transition *t)
{
    json_array_append_new(arg, json_pack("{s:o,s:f,s:o,s:o,s:o,s:s}", "node", opt_string(t->node),
                                         "time", t->time, "from",
                                         opt_string(t->from && *t->from ? t->from : NULL), "to",
                                         opt_string(t->to), "request", opt_string(t->request),
                                         "how", store_how_name(t->how)));
    return 0;
}

static int audit_row(void *arg, const struct store_audit *a)
{
    json_array_append_new(arg, json_pack("{s:o,s:f,s:o,s:o,s:o,s:o,s:o,s:b}", "node",
                                         opt_string(a->node), "time", a->time,
                                         "channel", opt_string(a->channel), "old",
                                         opt_string(a->old_value), "new",
                                         opt_string(a->new_value), "host", opt_string(a->host),
                                         "user", opt_string(a->user), "accepted", a->accepted));
    return 0;
}

#define ROWS_COUNT_MAX 100000 /* rows a total counts at most (the store's own bound) */

/* Query replies: the rows, or EUNKNOWN_NODE when a node that does not
 * exist has none (a destroyed node's history stays readable). */
/* Queries ask the store for one row more than the limit: when it comes,
 * the reply says that older rows exist rather than stopping silently. */
static json_t *rows_reply(sup *s, const char *node, int n, json_t *rows, const char *key,
                          double limit, enum store_rows what, const char *channel, double since)
{
    if (n < 0) {
        json_decref(rows);
        return ctl_error("EIO", "database: %s", store_errmsg(s->store));
    }
    if (n == 0 && node && !sup_node_find(s, node)) {
        struct reg r;
        json_t *e = reg_load(s, &r);
        bool known = !e && reg_find(&r, node);
        json_decref(e);
        if (!e)
            reg_free(&r);
        if (!known) {
            json_decref(rows);
            return unknown_node(node);
        }
    }
    bool more = json_array_size(rows) > (size_t)limit;
    if (more)
        json_array_remove(rows, (size_t)limit);
    /* The total only when rows were left out (a count is one more walk of
     * the index), and no further than ROWS_COUNT_MAX: "of more than N". */
    int total = more ? store_count(s->store, what, node, channel, since, ROWS_COUNT_MAX)
                     : (int)json_array_size(rows);
    json_t *reply = ok_reply();
    json_object_set_new(reply, key, rows);
    json_object_set_new(reply, "more", json_boolean(more));
    if (total >= 0) {
        json_object_set_new(reply, "total", json_integer(total));
        json_object_set_new(reply, "total_exact", json_boolean(total < ROWS_COUNT_MAX));
    }
    return reply;
}

/* The arguments every history query takes: node (required or not), since
 * (when wanted), limit; and a database to ask. NULL when all is well. */
static json_t *query_args(sup *s, json_t *args, bool node_required, const char **node,
                          double *since, double *limit)
{
    json_t *e = arg_node_name(args, "node", node_required, node);
    if (!e && since)
        e = arg_number(args, "since", -1e12, 1e12, since);
    if (!e)
        e = arg_number(args, "limit", 1, 100000, limit);
    if (!e)
        e = need_store(s);
    /* What was just done is in the answer: the store commits its queue a
     * few times a second, and an operator who wrote a REQUEST and asks for
     * the audit at once must see it (one short commit; queries are rare). */
    if (!e)
        store_flush(s->store);
    return e;
}

static json_t *cmd_crashes(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *node;
    double since = 0, limit = 100;
    json_t *e = query_args(s, args, false, &node, &since, &limit);
    if (e)
        return e;
    json_t *rows = json_array();
    int n = store_crashes(s->store, node, since, (unsigned)limit + 1, crash_row, rows);
    return rows_reply(s, node, n, rows, "crashes", limit, STORE_ROWS_CRASHES, NULL, since);
}

static json_t *cmd_history(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *node;
    double since = 0, limit = 100;
    json_t *e = query_args(s, args, false, &node, &since, &limit); /* no node: every node */
    if (e)
        return e;
    json_t *rows = json_array();
    int n = store_history(s->store, node, since, (unsigned)limit + 1, transition_row, rows);
    return rows_reply(s, node, n, rows, "history", limit, STORE_ROWS_HISTORY, NULL, since);
}

static json_t *cmd_audit(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *node, *channel;
    double since = 0, limit = 100;
    json_t *e = query_args(s, args, false, &node, &since, &limit); /* no node: every node */
    if (!e)
        e = arg_str(args, "channel", false, &channel);
    if (e)
        return e;
    /* A node channel by its suffix, in any case; a plant channel (accepted
     * set points are audited under its name) by its full name. */
    if (channel && !strchr(channel, ':')) {
        const char *known = nodepv_writable_channel(channel);
        if (!known) {
            char list[256];
            nodepv_writable_list(list, sizeof(list));
            return ctl_error("EUNKNOWN_CHANNEL",
                             "unknown channel '%s': the audited node channels are %s; a plant "
                             "channel is given by its full name (IFO:...)", channel, list);
        }
        channel = known;
    }
    json_t *rows = json_array();
    int n = store_audit_list(s->store, node, channel, since, (unsigned)limit + 1, audit_row, rows);
    return rows_reply(s, node, n, rows, "audit", limit, STORE_ROWS_AUDIT, channel, since);
}

/* ---- changes: running nodes ---- */

/* A quarantined node takes no control until it is released: saying so is
 * better than accepting what would do nothing (its channels refuse writes
 * too: nodepv_quarantine). NULL if sn is not quarantined. */
static json_t *quarantined(const sup_node *sn, const char *what)
{
    if (!sn->quarantined)
        return NULL;
    return ctl_error("EQUARANTINED", "node %s is quarantined %s: it takes no %s until released "
                     "(guardctl release %s)", sn->name,
                     sn->too_slow ? "as too slow" : "after repeated crashes", what, sn->name);
}

/* The nodes named in args, each running or registered; NULL or an error. */
static json_t *known_nodes(sup *s, json_t *args, struct reg *r, json_t **names)
{
    json_t *e = arg_nodes(args, true, names);
    if (e || (e = reg_load(s, r)))
        return e;
    size_t i;
    json_t *x;
    json_array_foreach(*names, i, x) {
        const char *name = json_string_value(x);
        if (!sup_node_find(s, name) && !reg_find(r, name)) {
            reg_free(r);
            return unknown_node(name);
        }
    }
    return NULL;
}

/* Results per node; ok is false (code EFAILED) if any failed. */
static json_t *results_reply(json_t *results, unsigned failed, const char *first_error)
{
    json_t *reply = failed ? ctl_error("EFAILED", "%s", first_error) : ok_reply();
    json_object_set_new(reply, "results", results);
    return reply;
}

static void result(json_t *results, const char *node, const char *what)
{
    json_array_append_new(results, json_pack("{s:s,s:s}", "node", node, "result", what));
}

static void log_change(struct ctl_peer *p, const char *what, const char *node)
{
    sup_log(SUP_NOTICE, "control: %s (uid %u): %s: %s", peer_user(p), (unsigned)p->uid,
            node, what);
}

/* A command on several nodes: every name is checked first (an unknown one
 * changes nothing), then fn acts on each and says what happened in msg;
 * the reply has one result per node, EFAILED with the first failure's
 * message if any returned -1. */
struct node_act {
    sup *s;
    const char *name;
    sup_node *sn;                /* running, or NULL */
    const struct reg_node *rn;   /* registered, or NULL */
    const char *who;
    int what;                    /* the command's own: enum run_action, or enable */
};
typedef int (*node_act_fn)(const struct node_act *a, char *msg, size_t len);

static json_t *each_node(sup *s, struct ctl_peer *p, json_t *args, node_act_fn fn, int what)
{
    struct reg r;
    json_t *names;
    json_t *e = known_nodes(s, args, &r, &names);
    if (e)
        return e;
    json_t *results = json_array();
    unsigned failed = 0;
    char first[600] = "", who[128];
    peer_who(p, who, sizeof(who));
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x) {
        struct node_act a = {.s = s, .name = json_string_value(x), .who = who, .what = what};
        a.sn = sup_node_find(s, a.name);
        a.rn = reg_find(&r, a.name);
        char msg[600];
        if (fn(&a, msg, sizeof(msg)) < 0 && !failed++)
            snprintf(first, sizeof(first), "%s", msg);
        result(results, a.name, msg);
    }
    reg_free(&r);
    return results_reply(results, failed, first);
}

enum run_action { ACT_START, ACT_STOP, ACT_RESTART };

/* start, stop and restart, through lifecycle.c: a stop saves the node's
 * controls as its channels hold them, a restart keeps them. */
static int run_one(const struct node_act *a, char *msg, size_t len)
{
    sup *s = a->s;
    if (a->what == ACT_STOP) {
        if (!a->sn && sup_failed_why(s, a->name)) { /* not tried again at the next SIGHUP */
            sup_set_failed(s, a->name, NULL);
            sup_set_stopped(s, a->name, true);
            snprintf(msg, len, "stopped (it had failed to start)");
        } else if (!a->sn) {
            snprintf(msg, len, "not running");
        } else {
            life_stop(s, a->sn, a->who, true);
            snprintf(msg, len, "stopped");
        }
        return 0;
    }
    if (a->what == ACT_START && a->sn && !a->sn->quarantined) {
        snprintf(msg, len, "already running");
        return 0;
    }
    json_t *q = a->sn ? quarantined(a->sn, a->what == ACT_START ? "start" : "restart") : NULL;
    if (q) {
        snprintf(msg, len, "%s", json_string_value(json_object_get(q, "error")));
        json_decref(q);
        return -1;
    }
    /* (Re)start from the registry's definition (a node running from the
     * file while the registry was unreadable: its own). */
    const struct reg_node *rn = a->rn;
    struct sup_node_spec def = {.name = a->name, .enabled = true};
    if (rn) {
        def.system = rn->system;
        def.args = (const char *const *)rn->args;
        def.n_args = rn->n_args;
        def.request = rn->request;
        def.mode = rn->mode;
        def.op = rn->op;
    }
    bool restart = a->sn != NULL;
    int rc = restart ? life_restart(s, a->sn, rn ? &def : NULL, a->who, msg, len)
                     : life_start(s, &def, a->who, msg, len);
    if (rc == 0)
        snprintf(msg, len, "%s", restart ? "restarted" : "started");
    return rc;
}

static json_t *cmd_start(sup *s, struct ctl_peer *p, json_t *a) { return each_node(s, p, a, run_one, ACT_START); }
static json_t *cmd_stop(sup *s, struct ctl_peer *p, json_t *a) { return each_node(s, p, a, run_one, ACT_STOP); }
static json_t *cmd_restart(sup *s, struct ctl_peer *p, json_t *a) { return each_node(s, p, a, run_one, ACT_RESTART); }

static int enable_one(const struct node_act *a, char *msg, size_t len)
{
    bool enabled = a->what;
    if (life_set_enabled(a->s, a->name, enabled, a->who, msg, len))
        return -1;
    snprintf(msg, len, "%s", enabled ? "enabled" : "disabled");
    return 0;
}

static json_t *set_enabled(sup *s, struct ctl_peer *p, json_t *args, bool enabled)
{
    json_t *e = need_store(s);
    return e ? e : each_node(s, p, args, enable_one, enabled);
}

static json_t *cmd_enable(sup *s, struct ctl_peer *p, json_t *a) { return set_enabled(s, p, a, true); }
static json_t *cmd_disable(sup *s, struct ctl_peer *p, json_t *a) { return set_enabled(s, p, a, false); }

static json_t *diff_list(const struct node_diff_list *l)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < l->count && i < NODE_DIFF_MAX; i++)
        json_array_append_new(a, json_string(l->text[i]));
    return json_pack("{s:i,s:o}", "count", (json_int_t)l->count, "items", a);
}

/* guardctl reload NODE [--dry-run] [--force] (issue 13): the node's system
 * loaded again beside the old one, compared and checked; switched unless a
 * dry run, or the preflight refuses and it is not forced. */
static json_t *reload_node_cmd(sup *s, struct ctl_peer *p, json_t *args, bool force)
{
    const char *name;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e)
        return e;
    json_t *dry = json_object_get(args, "dry_run");
    if (dry && !json_is_boolean(dry))
        return ctl_error(CTL_EINVAL, "argument 'dry_run' must be true or false");
    if (!sup_node_find(s, name))
        return unknown_node(name);
    if (!json_is_true(dry) && (e = channel_refused(s, p, name, "LOAD", "True")))
        return e;
    char who[160], why[600];
    peer_who(p, who, sizeof(who));
    struct node_system_diff *d = calloc(1, sizeof(*d)); /* 10 kB: not on the stack */
    if (!d)
        return ctl_error("ENOMEM", "out of memory");
    int rc = sup_node_load(s, name, json_is_true(dry), force, d, why, sizeof(why));
    if (rc == -1) {
        free(d);
        return ctl_error("ELOAD", "%s: %s", name, why);
    }
    /* A refusal is an answer with the difference, which says why: the client
     * prints both (and exits 1). */
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "loaded", json_boolean(rc == 0));
    json_object_set_new(reply, "refused", rc == -2 ? ctl_string(why) : json_null());
    json_object_set_new(reply, "diff", json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}",
        "states_added", diff_list(&d->added), "states_removed", diff_list(&d->removed),
        "edges_added", diff_list(&d->edges_added), "edges_removed", diff_list(&d->edges_removed),
        "index", diff_list(&d->index), "requestable", diff_list(&d->requestable)));
    free(d);
    if (rc == 0)
        sup_log(SUP_INFO, "%s: reloaded by %s%s", name, who, force ? " (forced)" : "");
    return reply;
}

/* guardctl reload: the configuration file read again and applied, as
 * SIGHUP does; the reply says what changed per node. With a node: that
 * node's system loaded again (reload_node_cmd). */
static json_t *cmd_reload(sup *s, struct ctl_peer *p, json_t *args)
{
    json_t *force = json_object_get(args, "force");
    if (force && !json_is_boolean(force))
        return ctl_error(CTL_EINVAL, "argument 'force' must be true or false");
    if (json_object_get(args, "node"))
        return reload_node_cmd(s, p, args, json_is_true(force));
    char who[160];
    peer_who(p, who, sizeof(who));
    struct life_report r = {0};
    int rc = life_reload(s, who, json_is_true(force), &r);
    json_t *reply = rc < 0 ? ctl_error("ECONFIG", "%s", r.error) : ok_reply();
    json_t *changes = json_array();
    for (unsigned i = 0; i < r.n_changes; i++)
        json_array_append_new(changes, json_pack("{s:s,s:s,s:o}", "node", r.changes[i].name,
                                                 "what", r.changes[i].what, "why",
                                                 r.changes[i].why[0] ? ctl_string(r.changes[i].why)
                                                                     : json_null()));
    json_object_set_new(reply, "file", ctl_string(r.file));
    json_object_set_new(reply, "applied", json_boolean(r.applied));
    json_object_set_new(reply, "changes", changes);
    json_object_set_new(reply, "counts", json_pack("{s:i,s:i,s:i,s:i,s:i}", "nodes", r.nodes,
                                                   "started", r.started, "stopped", r.stopped,
                                                   "restarted", r.restarted, "failed", r.failed));
    life_report_free(&r);
    return reply;
}

/* ---- changes: the registry ---- */

/* key=value arguments: keys of A-Z a-z 0-9 _, unique, no newlines. */
static json_t *check_args(json_t *list, const char **out, unsigned *n)
{
    *n = 0;
    if (!list)
        return NULL;
    if (!json_is_array(list) || json_array_size(list) > CONFIG_ARGS_MAX)
        return ctl_error(CTL_EINVAL, "argument 'args' must be a list of at most %d key=value "
                         "strings", CONFIG_ARGS_MAX);
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        const char *a = json_string_value(x);
        const char *eq = a ? strchr(a, '=') : NULL;
        if (!a || !eq || eq == a || strchr(a, '\n') || strlen(a) > 4000)
            return ctl_error(CTL_EINVAL, "bad argument '%s': expected key=value", a ? a : "?");
        for (const char *c = a; c < eq; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_'))
                return ctl_error(CTL_EINVAL, "bad argument '%s': keys are A-Z a-z 0-9 _", a);
        if ((size_t)(eq - a) == 6 && strncmp(a, "system", 6) == 0)
            return ctl_error(CTL_EINVAL, "bad argument '%s': the system is given on its own", a);
        for (unsigned j = 0; j < *n; j++)
            if (strncmp(out[j], a, (size_t)(eq - a) + 1) == 0)
                return ctl_error(CTL_EINVAL, "argument key '%.*s' given twice", (int)(eq - a), a);
        out[(*n)++] = a;
    }
    return NULL;
}

static json_t *cmd_create(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name, *system;
    const char *argv[CONFIG_ARGS_MAX];
    unsigned argc;
    json_t *e = arg_str(args, "node", true, &name);
    if (!e && !name_valid_node(name))
        e = ctl_error(CTL_EINVAL, "bad node name '%s': 1-63 characters of A-Z, 0-9 and _", name);
    if (!e && !(e = arg_str(args, "system", true, &system)) && !name_valid_system(system))
        e = ctl_error(CTL_EINVAL, "bad system name '%s': 1-64 characters of A-Z a-z 0-9 _ . - "
                      "(not starting with . or -)",
                      system);
    if (!e)
        e = check_args(json_object_get(args, "args"), argv, &argc);
    if (e || (e = need_store(s)))
        return e;
    struct reg r;
    if ((e = reg_load(s, &r)))
        return e;
    bool exists = sup_node_find(s, name) || reg_find(&r, name);
    reg_free(&r);
    if (exists)
        return ctl_error("EEXIST", "node %s exists already", name);
    char err[512], who[128];
    struct sup_node_spec spec = {.name = name, .system = system, .args = argv, .n_args = argc,
                                 .enabled = true};
    const char *code = life_create(s, &spec, peer_who(p, who, sizeof(who)), err, sizeof(err));
    if (code)
        return ctl_error(code, "%s", err);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    return reply;
}

static json_t *cmd_destroy(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e || (e = need_store(s)))
        return e;
    char err[512], who[128];
    const char *code = life_destroy(s, name, peer_who(p, who, sizeof(who)), err, sizeof(err));
    if (code)
        return strcmp(code, "EUNKNOWN_NODE") == 0 ? unknown_node(name) : ctl_error(code, "%s", err);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    return reply;
}

static json_t *cmd_release(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e)
        return e;
    char err[512], who[128];
    bool was;
    const char *code = life_release(s, name, peer_who(p, who, sizeof(who)), &was, err,
                                    sizeof(err));
    if (code)
        return strcmp(code, "EUNKNOWN_NODE") == 0 ? unknown_node(name) : ctl_error(code, "%s", err);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "was_quarantined", json_boolean(was));
    return reply;
}

/* ---- changes: controls, through the node's channels ---- */

static json_t *running_node(sup *s, const char *name, sup_node **out)
{
    *out = sup_node_find(s, name);
    if (*out)
        return NULL;
    struct reg r;
    json_t *e = reg_load(s, &r);
    if (e)
        return e;
    bool known = reg_find(&r, name) != NULL;
    reg_free(&r);
    if (!known)
        return unknown_node(name);
    return ctl_error("ENOTRUNNING", "node %s is not running (guardctl start %s)", name, name);
}

static json_t *states_list(const sup_node *sn, char *text, size_t len)
{
    const grd_system *def = node_system_def(node_system_of(sn->node));
    json_t *valid = json_array();
    size_t used = 0;
    text[0] = 0;
    for (unsigned i = 0; def && def->states[i].name; i++) {
        json_array_append_new(valid, json_string(def->states[i].name));
        int w = snprintf(text + used, len - used, "%s%s", i ? " " : "", def->states[i].name);
        if (w > 0 && used + (size_t)w < len)
            used += (size_t)w;
    }
    return valid;
}

/* Write `value` to the node's channel `suffix` as a CA client would. */
static json_t *write_control(sup *s, struct ctl_peer *p, sup_node *sn, const char *suffix,
                             const char *value)
{
    json_t *q = quarantined(sn, suffix);
    if (q)
        return q;
    char chan[PV_NAME_MAX + 1];
    node_channel_name(chan, sizeof(chan), s->cfg.ifo, sn->name, suffix);
    pv *pv = pvdb_find(s->db, chan);
    if (!pv)
        return ctl_error("EFAILED", "channel %s is not served", chan);
    /* The value before, as caput shows it (an enum by its name). */
    char old[PV_STRING_SIZE] = "";
    if (pv_type(pv) == PV_ENUM) {
        const char *name = pv_enum_string(pv, (unsigned)pv_get_long(pv));
        if (name)
            snprintf(old, sizeof(old), "%.*s", (int)strnlen(name, PV_ENUM_STRING_SIZE), name);
    } else {
        snprintf(old, sizeof(old), "%.*s", PV_STRING_SIZE - 1, (const char *)pv_value(pv));
    }
    pv_client who = peer_client(p);
    int rc = pv_write_string(pv, value, &who);
    char what[PV_STRING_SIZE * 2 + 32];
    snprintf(what, sizeof(what), "%s %s -> %s%s", suffix, old, value,
             rc == PVDB_OK ? "" : " (refused)");
    log_change(p, what, sn->name);
    if (rc == PVDB_EACCESS) {
        char why[1024];
        policy_refusal_text(s, sn->name, suffix, &who, why, sizeof(why));
        return ctl_error(CTL_EPERM, "%s", why);
    }
    if (rc != PVDB_OK)
        return ctl_error("EFAILED", "node %s refused %s=%s: %s", sn->name, suffix, value,
                         pvdb_strerror(rc));
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(sn->name));
    json_object_set_new(reply, "channel", json_string(chan));
    json_object_set_new(reply, "old", ctl_string(old));
    json_object_set_new(reply, "value", ctl_string(value));
    return reply;
}

static json_t *cmd_request(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name, *state;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (!e)
        e = arg_str(args, "state", true, &state);
    if (e || (e = running_node(s, name, &sn)))
        return e;
    if (!node_system_state(node_system_of(sn->node), state) || strlen(state) >= PV_STRING_SIZE) {
        /* Audited as a refused write, as a CA put of it would be. */
        pv_client who = peer_client(p);
        char chan[PV_NAME_MAX + 1];
        node_channel_name(chan, sizeof(chan), s->cfg.ifo, sn->name, "REQUEST");
        pv *pv = pvdb_find(s->db, chan);
        if (pv && strlen(state) < PV_STRING_SIZE)
            pv_write_string(pv, state, &who);
        char text[2048];
        json_t *valid = states_list(sn, text, sizeof(text));
        json_t *r = ctl_error("EUNKNOWN_STATE", "unknown state '%s' of node %s (system %s); "
                              "valid states: %s", state, sn->name, sn->system, text);
        json_object_set_new(r, "valid", valid);
        return r;
    }
    return write_control(s, p, sn, "REQUEST", state);
}

static json_t *enum_control(sup *s, struct ctl_peer *p, json_t *args, const char *key,
                            const char *suffix, const char *const *names)
{
    const char *name, *value;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (!e)
        e = arg_str(args, key, true, &value);
    if (!e) {
        bool ok = false;
        for (unsigned i = 0; i < 3; i++)
            ok |= strcmp(names[i], value) == 0;
        if (!ok)
            e = ctl_error(CTL_EINVAL, "bad %s '%s': expected %s, %s or %s", key, value, names[0],
                          names[1], names[2]);
    }
    if (e || (e = running_node(s, name, &sn)))
        return e;
    return write_control(s, p, sn, suffix, value);
}

static json_t *cmd_mode(sup *s, struct ctl_peer *p, json_t *a) { return enum_control(s, p, a, "mode", "MODE", node_mode_names); }
static json_t *cmd_op(sup *s, struct ctl_peer *p, json_t *a) { return enum_control(s, p, a, "op", "OP", node_op_names); }

/* ---- managers: guardctl release-manager NODE, guardctl tree [NODE] ---- */

/* An operator takes a node back from its manager (node_release_manager):
 * audited as a write of "" to its MANAGER. */
static json_t *cmd_release_manager(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e || (e = running_node(s, name, &sn)))
        return e;
    char was[PV_STRING_SIZE];
    snprintf(was, sizeof(was), "%s", node_manager(sn->node));
    if (was[0] && (e = channel_refused(s, p, name, "MANAGER", "")))
        return e;
    if (was[0]) {
        node_release_manager(sn->node);
        nodepv_publish(sn->pv); /* MANAGER empties now, not at the next cycle */
        log_change(p, "release-manager", name);
        if (s->store) {
            char who[64];
            snprintf(who, sizeof(who), "%s", peer_user(p));
            struct store_audit a = {.node = name, .time = sup_wall(), .channel = "MANAGER",
                                    .old_value = was, .new_value = "", .host = "localhost",
                                    .user = who, .accepted = true};
            store_audit(s->store, &a);
        }
    }
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "was", ctl_string(was));
    return reply;
}

#define TREE_DEPTH 16 /* deeper is a loop (A manages B manages A) or a mistake */

/* One node of the tree: a node of this daemon with its subordinates, or a
 * subordinate elsewhere as its manager sees it (info; no further levels). */
static json_t *tree_json(sup *s, const char *name, const struct grd_sub *info, unsigned depth)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", ctl_string(name));
    sup_node *sn = sup_node_find(s, name);
    json_object_set_new(j, "local", json_boolean(sn != NULL));
    if (!sn) {
        json_object_set_new(j, "connected", json_boolean(info && info->connected));
        json_object_set_new(j, "state", ctl_string(info ? info->state : ""));
        json_object_set_new(j, "request", ctl_string(info ? info->request : ""));
        json_object_set_new(j, "mode", ctl_string(info ? info->mode : ""));
        json_object_set_new(j, "ok", json_boolean(info && info->ok));
        json_object_set_new(j, "manager", ctl_string(info ? info->manager : ""));
    } else {
        node *n = sn->node;
        json_object_set_new(j, "connected", json_true());
        json_object_set_new(j, "state", state_name(node_state(n)));
        json_object_set_new(j, "request", state_name(node_requested(n)));
        json_object_set_new(j, "mode", json_string(node_mode_names[node_mode(n)]));
        json_object_set_new(j, "ok", json_boolean(node_ok(n) && !sn->quarantined));
        json_object_set_new(j, "manager", ctl_string(node_manager(n)));
    }
    json_object_set_new(j, "fault", ctl_string(info ? info->fault : ""));
    json_t *subs = json_array();
    struct grd_sub sub;
    const char *sub_name;
    for (unsigned i = 0; sn && (sub_name = node_subnode(sn->node, i, &sub)); i++) {
        if (depth + 1 < TREE_DEPTH)
            json_array_append_new(subs, tree_json(s, sub_name, &sub, depth + 1));
    }
    json_object_set_new(j, "subnodes", subs);
    return j;
}

/* Whether `name` is a subordinate of a node of this daemon. */
static bool managed_here(sup *s, const char *name)
{
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next) {
        const char *sub;
        for (unsigned i = 0; (sub = node_subnode(sn->node, i, NULL)); i++)
            if (strcmp(sub, name) == 0)
                return true;
    }
    return false;
}

/* The hierarchy: from NODE, or from every manager that no node here manages. */
static json_t *cmd_tree(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *name = NULL;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", false, &name);
    if (e || (name && (e = running_node(s, name, &sn))))
        return e;
    json_t *roots = json_array();
    if (name) {
        json_array_append_new(roots, tree_json(s, name, NULL, 0));
    } else {
        for (sn = s->nodes; sn; sn = sn->hh.next)
            if (node_subnodes(sn->node, NULL) && !managed_here(s, sn->name))
                json_array_append_new(roots, tree_json(s, sn->name, NULL, 0));
    }
    json_t *reply = ok_reply();
    json_object_set_new(reply, "tree", roots);
    return reply;
}

/* ---- MEDM screens: guardctl medm [--out DIR] writes what this gives ---- */

static json_t *cmd_medm(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p, (void)args;
    struct medm_file *files;
    unsigned n;
    char err[256];
    if (sup_medm_files(s, &files, &n, err, sizeof(err)) != 0)
        return ctl_error("EFAILED", "MEDM screens: %s", err);
    json_t *list = json_array();
    for (unsigned i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s,s:s}", "name", files[i].name, "text",
                                              files[i].text));
    medm_files_free(files, n);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "files", list);
    return reply;
}

/* ---- guardctl states NODE: the node's system, as Guardian's guardutil
 * prints it, with where the node is ---- */

static bool same_state(const grd_state *a, const char *name)
{
    return a && name && strcmp(a->name, name) == 0;
}

static json_t *cmd_states(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *name;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e || (e = running_node(s, name, &sn)))
        return e;
    node *n = sn->node;
    const node_system *sys = node_system_of(n);
    const grd_system *def = node_system_def(sys);
    const grd_state *cur = node_state(n), *target = node_target(n), *nominal = node_nominal(n);
    struct life_controls ctl; /* the request as its channel holds it, as status shows it */
    life_controls(s, sn, &ctl);
    json_t *list = json_array();
    for (unsigned i = 0; def && def->states[i].name; i++) {
        const grd_state *st = &def->states[i];
        const grd_state *to[GRD_MAX_STATES];
        unsigned n_to = node_system_edges(sys, st, to, GRD_MAX_STATES);
        json_t *edges = json_array();
        for (unsigned k = 0; k < n_to; k++)
            json_array_append_new(edges, json_string(to[k]->name));
        /* the edges (listed, or to goto states) that do not weigh 1: {"B": 5} */
        double w[GRD_MAX_STATES];
        unsigned n_w = node_system_weighted(sys, st, to, w, GRD_MAX_STATES); /* to[] reused */
        json_t *weights = json_object();
        for (unsigned k = 0; k < n_w; k++)
            json_object_set_new(weights, to[k]->name, json_real(w[k]));
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(st->name));
        json_object_set_new(j, "index", json_integer(st->index));
        json_object_set_new(j, "requestable", json_boolean(st->request));
        json_object_set_new(j, "goto", json_boolean(st->goto_));
        json_object_set_new(j, "redirect", json_boolean(!st->no_redirect));
        json_object_set_new(j, "edges", edges);
        json_object_set_new(j, "weights", weights);
        json_object_set_new(j, "current", json_boolean(st == cur));
        json_object_set_new(j, "target", json_boolean(st == target));
        json_object_set_new(j, "request", json_boolean(same_state(st, ctl.request)));
        json_object_set_new(j, "nominal", json_boolean(st == nominal));
        json_array_append_new(list, j);
    }
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "system", ctl_string(sn->system));
    json_object_set_new(reply, "state", state_name(cur));
    json_object_set_new(reply, "target", state_name(target));
    json_object_set_new(reply, "request", ctl.request[0] ? ctl_string(ctl.request) : json_null());
    json_object_set_new(reply, "nominal", state_name(nominal));
    json_object_set_new(reply, "path", path_json(n));
    json_object_set_new(reply, "states", list);
    return reply;
}

/* ---- guardctl list -w, status -w: change frames (ctl.h, ctl.c) ---- */

static json_t *cmd_watch(sup *s, struct ctl_peer *p, json_t *args)
{
    json_t *names;
    json_t *e = arg_nodes(args, false, &names);
    if (e)
        return e;
    if (json_array_size(names) > CTL_WATCH_NODES)
        return ctl_error("EINVAL", "argument 'nodes': at most %d nodes (or none: all)",
                         CTL_WATCH_NODES);
    if (json_array_size(names)) {
        struct reg r;
        if ((e = known_nodes(s, args, &r, &names)))
            return e;
        reg_free(&r);
    }
    /* ctl.c subscribes the connection once this reply is queued. */
    json_decref(p->watch_nodes);
    p->watch_nodes = json_array_size(names) ? json_incref(names) : NULL;
    p->watch = true;
    json_t *reply = ok_reply();
    json_object_set_new(reply, "watching", json_true());
    json_object_set_new(reply, "rate", json_integer(CTL_WATCH_RATE));
    return reply;
}

/* ---- the set-point monitor: guardctl spm NODE [--accept [CHAN...]] ---- */

struct spm_walk {
    json_t *rows;       /* spm: one object per channel */
    json_t *accept;     /* spm-accept: the channels asked for, NULL for all */
    json_t *accepted;   /* spm-accept: what was taken */
    sup *s;
    struct ctl_peer *p;
    const char *node;
};

static bool wanted(json_t *list, const char *chan)
{
    size_t i;
    json_t *x;
    if (!list)
        return true;
    json_array_foreach(list, i, x) if (strcmp(json_string_value(x), chan) == 0) return true;
    return false;
}

static void spm_row(void *arg, const char *chan, void *handle)
{
    struct spm_walk *w = arg;
    if (!handle)
        return;
    struct plant_spm_info info;
    plant_spm_info(handle, &info);
    if (!info.tracked && !info.ignored)
        return;
    json_t *row = json_object();
    json_object_set_new(row, "channel", json_string(chan));
    json_object_set_new(row, "tracked", json_boolean(info.tracked));
    json_object_set_new(row, "ignored", json_boolean(info.ignored));
    json_object_set_new(row, "set", json_string(info.set));
    json_object_set_new(row, "now", info.now[0] ? json_string(info.now) : json_null());
    json_object_set_new(row, "differs", json_boolean(info.differs));
    if (info.differs)
        json_object_set_new(row, "since", json_real(info.since));
    json_array_append_new(w->rows, row);
}

static json_t *cmd_spm(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *name;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e || (e = running_node(s, name, &sn)))
        return e;
    struct spm_walk w = {.rows = json_array()};
    node_chan_foreach(sn->node, spm_row, &w);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "total", json_integer(node_spm_total(sn->node)));
    json_object_set_new(reply, "changed", json_integer(node_spm_changed(sn->node)));
    json_object_set_new(reply, "channels", w.rows);
    return reply;
}

static void spm_accept_one(void *arg, const char *chan, void *handle)
{
    struct spm_walk *w = arg;
    if (!handle || !wanted(w->accept, chan))
        return;
    struct plant_spm_info before;
    plant_spm_info(handle, &before);
    if (!before.tracked || plant_spm_accept(handle) < 0)
        return;
    json_array_append_new(w->accepted, json_string(chan));
    /* Audited as an operator's change of the node's set point. */
    if (w->s->store && before.differs) {
        char who[64];
        snprintf(who, sizeof(who), "%s", peer_user(w->p));
        struct store_audit a = {.node = w->node, .time = sup_wall(), .channel = chan,
                                .old_value = before.set, .new_value = before.now,
                                .host = "localhost", .user = who, .accepted = true};
        store_audit(w->s->store, &a);
    }
    if (before.differs)
        sup_log(SUP_NOTICE, "control: %s (uid %u): spm accept %s %s = %s (was set %s)",
                peer_user(w->p), (unsigned)w->p->uid, w->node, chan, before.now, before.set);
}

static json_t *cmd_spm_accept(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    sup_node *sn;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (e || (e = running_node(s, name, &sn)))
        return e;
    json_t *chans = json_object_get(args, "channels");
    size_t i;
    json_t *x;
    if (chans && (!json_is_array(chans) || json_array_size(chans) > 4096))
        return ctl_error(CTL_EINVAL, "channels: expected a list of at most 4096 channel names");
    json_array_foreach(chans, i, x) if (!json_is_string(x) ||
                                        !plant_valid_name(json_string_value(x))) return
        ctl_error(CTL_EINVAL, "channels: '%s' is not a channel name",
                  json_is_string(x) ? json_string_value(x) : "(not a string)");
    /* Every channel asked for must be watched, or nothing is taken. */
    struct spm_walk check = {.rows = json_array()};
    node_chan_foreach(sn->node, spm_row, &check);
    json_array_foreach(chans, i, x) {
        bool found = false;
        size_t j;
        json_t *row;
        json_array_foreach(check.rows, j, row) found |=
            json_is_true(json_object_get(row, "tracked")) &&
            json_equal(json_object_get(row, "channel"), x);
        if (!found) {
            json_decref(check.rows);
            return ctl_error("ENOENT", "%s does not watch %s (guardctl spm %s lists what it does)",
                             name, json_string_value(x), name);
        }
    }
    json_decref(check.rows);
    struct spm_walk w = {.accept = chans && json_array_size(chans) ? chans : NULL,
                         .accepted = json_array(), .s = s, .p = p, .node = name};
    node_chan_foreach(sn->node, spm_accept_one, &w);
    json_t *reply = ok_reply();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "accepted", w.accepted);
    return reply;
}

/* ---- site snapshots: guardctl snapshot save|list|diff|restore|delete ---- */

/* A node as a snapshot holds it, now or saved (strings owned). */
struct snap_node {
    char *node, *system, *request, *mode, *op;
    bool enabled, running;
};

struct snap_list {
    struct snap_node *v;
    unsigned n, cap;
    bool oom;
    double time;         /* the saved snapshot's head */
    char user[64];
};

static void snap_push(struct snap_list *l, const char *node, const char *system, bool enabled,
                      bool running, const char *request, const char *mode, const char *op)
{
    if (l->n == l->cap) {
        unsigned cap = l->cap ? 2 * l->cap : 64;
        struct snap_node *g = realloc(l->v, cap * sizeof(*g));
        if (!g) {
            l->oom = true;
            return;
        }
        l->v = g;
        l->cap = cap;
    }
    struct snap_node *x = &l->v[l->n++];
    *x = (struct snap_node){.enabled = enabled, .running = running};
    x->node = dup_or_null(node, &l->oom);
    x->system = dup_or_null(system, &l->oom);
    x->request = dup_or_null(request && *request ? request : NULL, &l->oom);
    x->mode = dup_or_null(mode, &l->oom);
    x->op = dup_or_null(op, &l->oom);
}

static void snap_free(struct snap_list *l)
{
    for (unsigned i = 0; i < l->n; i++) {
        free(l->v[i].node);
        free(l->v[i].system);
        free(l->v[i].request);
        free(l->v[i].mode);
        free(l->v[i].op);
    }
    free(l->v);
    *l = (struct snap_list){0};
}

static const struct snap_node *snap_find(const struct snap_list *l, const char *node)
{
    for (unsigned i = 0; i < l->n; i++)
        if (strcmp(l->v[i].node, node) == 0)
            return &l->v[i];
    return NULL;
}

/* Every node the daemon knows now: registered ones (running or not) and
 * running ones the registry does not hold; a running node's controls as
 * its channels hold them. NULL or an error reply. */
static json_t *snap_now(sup *s, struct snap_list *now)
{
    struct reg r;
    json_t *e = reg_load(s, &r);
    if (e)
        return e;
    *now = (struct snap_list){0};
    for (unsigned i = 0; i < r.n; i++) {
        const struct reg_node *rn = &r.v[i];
        sup_node *sn = sup_node_find(s, rn->name);
        if (sn) {
            struct life_controls c;
            life_controls(s, sn, &c);
            snap_push(now, rn->name, sn->system, rn->enabled, true, c.request, c.mode, c.op);
        } else {
            snap_push(now, rn->name, rn->system, rn->enabled, false, rn->request, rn->mode, rn->op);
        }
    }
    sup_node *sn, *tmp;
    HASH_ITER(hh, s->nodes, sn, tmp) {
        if (reg_find(&r, sn->name))
            continue;
        struct life_controls c;
        life_controls(s, sn, &c);
        snap_push(now, sn->name, sn->system, true, true, c.request, c.mode, c.op);
    }
    reg_free(&r);
    if (now->oom) {
        snap_free(now);
        return ctl_error("ENOMEM", "out of memory");
    }
    return NULL;
}

static json_t *arg_snapshot(json_t *args, const char **name)
{
    json_t *e = arg_str(args, "name", true, name);
    if (!e && !name_valid_snapshot(*name))
        e = ctl_error(CTL_EINVAL, "snapshot name '%s': 1-%d of A-Z a-z 0-9 _ . -, not "
                      "starting with . or -", *name, NAME_SNAPSHOT_MAX);
    return e;
}

static json_t *cmd_snapshot_save(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    json_t *e = need_store(s);
    json_t *force = json_object_get(args, "force");
    if (!e)
        e = arg_snapshot(args, &name);
    if (!e && force && !json_is_boolean(force))
        e = ctl_error(CTL_EINVAL, "argument 'force' must be true or false");
    struct snap_list now;
    if (e || (e = snap_now(s, &now)))
        return e;
    struct store_snapshot_node *rows = calloc(now.n ? now.n : 1, sizeof(*rows));
    if (!rows) {
        snap_free(&now);
        return ctl_error("ENOMEM", "out of memory");
    }
    for (unsigned i = 0; i < now.n; i++)
        rows[i] = (struct store_snapshot_node){
            .node = now.v[i].node, .system = now.v[i].system, .enabled = now.v[i].enabled,
            .running = now.v[i].running, .request = now.v[i].request, .mode = now.v[i].mode,
            .op = now.v[i].op};
    struct store_snapshot head = {.name = name, .time = sup_wall(), .user = peer_user(p),
                                  .nodes = now.n};
    int rc = store_snapshot_save(s->store, &head, rows, now.n, json_is_true(force));
    free(rows);
    unsigned n = now.n;
    snap_free(&now);
    if (rc == STORE_EEXIST)
        return ctl_error("EEXIST", "snapshot %s exists; --force replaces it", name);
    if (rc != STORE_OK)
        return ctl_error("EIO", "database: %s", store_errmsg(s->store));
    char what[160];
    snprintf(what, sizeof(what), "snapshot save %s (%u nodes)%s", name, n,
             json_is_true(force) ? " --force" : "");
    log_change(p, what, "site");
    json_t *reply = ok_reply();
    json_object_set_new(reply, "name", json_string(name));
    json_object_set_new(reply, "nodes", json_integer(n));
    return reply;
}

static int snapshot_row(void *arg, const struct store_snapshot *snap)
{
    json_array_append_new(arg, json_pack("{s:s,s:f,s:o,s:i}", "name", snap->name, "time",
                                         snap->time, "user", opt_string(snap->user), "nodes",
                                         (int)snap->nodes));
    return 0;
}

static json_t *cmd_snapshot_list(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p, (void)args;
    json_t *e = need_store(s);
    if (e)
        return e;
    json_t *rows = json_array();
    if (store_snapshot_list(s->store, snapshot_row, rows) < 0) {
        json_decref(rows);
        return ctl_error("EIO", "database: %s", store_errmsg(s->store));
    }
    json_t *reply = ok_reply();
    json_object_set_new(reply, "snapshots", rows);
    return reply;
}

static json_t *cmd_snapshot_delete(sup *s, struct ctl_peer *p, json_t *args)
{
    const char *name;
    json_t *e = need_store(s);
    if (e || (e = arg_snapshot(args, &name)))
        return e;
    int rc = store_snapshot_delete(s->store, name);
    if (rc == STORE_ENOENT)
        return ctl_error("ENOENT", "no snapshot %s (guardctl snapshot list shows them)", name);
    if (rc != STORE_OK)
        return ctl_error("EIO", "database: %s", store_errmsg(s->store));
    char what[120];
    snprintf(what, sizeof(what), "snapshot delete %s", name);
    log_change(p, what, "site");
    return ok_reply();
}

static int saved_head(void *arg, const struct store_snapshot *snap)
{
    struct snap_list *l = arg;
    l->time = snap->time;
    snprintf(l->user, sizeof(l->user), "%s", snap->user ? snap->user : "");
    return 0;
}

static int saved_node(void *arg, const struct store_snapshot_node *x)
{
    snap_push(arg, x->node, x->system, x->enabled, x->running, x->request, x->mode, x->op);
    return 0;
}

/* The saved snapshot `name` and the nodes now; NULL or an error reply. */
static json_t *snap_load(sup *s, const char *name, struct snap_list *saved, struct snap_list *now)
{
    json_t *e = need_store(s);
    if (e)
        return e;
    *saved = (struct snap_list){0};
    int rc = store_snapshot_get(s->store, name, saved_head, saved_node, saved);
    if (rc == STORE_ENOENT)
        return ctl_error("ENOENT", "no snapshot %s (guardctl snapshot list shows them)", name);
    if (rc != STORE_OK || saved->oom) {
        snap_free(saved);
        return rc != STORE_OK ? ctl_error("EIO", "database: %s", store_errmsg(s->store))
                              : ctl_error("ENOMEM", "out of memory");
    }
    if ((e = snap_now(s, now)))
        snap_free(saved);
    return e;
}

static bool same(const char *a, const char *b) { return !a || (b && strcmp(a, b) == 0); }

/* One difference: what, the snapshot's value, now's. */
static void difference(json_t *changes, const char *what, const char *then, const char *now)
{
    json_array_append_new(changes, json_pack("{s:s,s:o,s:o}", "what", what, "snapshot",
                                             opt_string(then), "now", opt_string(now)));
}

/* What differs for one node of the snapshot (x) from now (cur, NULL: gone). */
static json_t *node_differences(const struct snap_node *x, const struct snap_node *cur)
{
    json_t *changes = json_array();
    if (!cur) {
        difference(changes, "exists", "yes", "no");
        return changes;
    }
    if (x->enabled != cur->enabled)
        difference(changes, "enabled", x->enabled ? "yes" : "no", cur->enabled ? "yes" : "no");
    if (x->running != cur->running)
        difference(changes, "running", x->running ? "yes" : "no", cur->running ? "yes" : "no");
    if (strcmp(x->system, cur->system) != 0)
        difference(changes, "system", x->system, cur->system);
    if (!same(x->mode, cur->mode))
        difference(changes, "MODE", x->mode, cur->mode);
    if (!same(x->op, cur->op))
        difference(changes, "OP", x->op, cur->op);
    if (!same(x->request, cur->request))
        difference(changes, "REQUEST", x->request, cur->request);
    return changes;
}

/* The NODE... of restore: each in the snapshot or known now; NULL or an error. */
static json_t *snap_filter(json_t *args, const struct snap_list *saved,
                           const struct snap_list *now, json_t **only)
{
    *only = NULL;
    if (!json_object_get(args, "nodes"))
        return NULL;
    json_t *e = arg_nodes(args, false, only);
    size_t i;
    json_t *x;
    json_array_foreach(*only, i, x)
        if (!e && !snap_find(saved, json_string_value(x)))
            e = snap_find(now, json_string_value(x))
                    ? ctl_error(CTL_EINVAL, "node %s is not in the snapshot",
                                json_string_value(x))
                    : unknown_node(json_string_value(x));
    return e;
}

static bool wanted_node(json_t *only, const char *node)
{
    if (!only)
        return true;
    size_t i;
    json_t *x;
    json_array_foreach(only, i, x)
        if (strcmp(json_string_value(x), node) == 0)
            return true;
    return false;
}

/* diff (restore == false) and restore: per node of the snapshot, what
 * differs, and for restore what was done about each difference. */
static json_t *snapshot_apply(sup *s, struct ctl_peer *p, json_t *args, bool restore)
{
    const char *name;
    json_t *dry = json_object_get(args, "dry_run");
    json_t *e = arg_snapshot(args, &name);
    if (!e && dry && !json_is_boolean(dry))
        e = ctl_error(CTL_EINVAL, "argument 'dry_run' must be true or false");
    struct snap_list saved, now;
    if (e || (e = snap_load(s, name, &saved, &now)))
        return e;
    json_t *only;
    if ((e = snap_filter(args, &saved, &now, &only))) {
        snap_free(&saved);
        snap_free(&now);
        return e;
    }
    bool apply = restore && !json_is_true(dry);
    char who[128];
    peer_who(p, who, sizeof(who));
    json_t *nodes = json_array(), *extra = json_array();
    unsigned failed = 0;
    char first[700] = "";
    for (unsigned i = 0; i < saved.n; i++) {
        const struct snap_node *x = &saved.v[i];
        if (!wanted_node(only, x->node))
            continue;
        const struct snap_node *cur = snap_find(&now, x->node);
        json_t *changes = node_differences(x, cur);
        if (!json_array_size(changes)) {
            json_decref(changes);
            continue;
        }
        json_t *row = json_pack("{s:s,s:o}", "node", x->node, "changes", changes);
        json_array_append_new(nodes, row);
        if (!restore)
            continue;
        /* Each difference gets a result: done, would be done, or why not. */
        size_t k;
        json_t *c;
        sup_node *sn = sup_node_find(s, x->node);
        json_array_foreach(changes, k, c) {
            const char *what = json_string_value(json_object_get(c, "what"));
            char msg[600] = "";
            int rc = 0;
            if (strcmp(what, "exists") == 0) {
                snprintf(msg, sizeof(msg), "%s no longer exists (destroyed, or no longer in the "
                         "configuration); not restored", x->node);
                rc = -1;
            } else if (strcmp(what, "system") == 0) {
                snprintf(msg, sizeof(msg), "runs system %s now, %s then: left as it is",
                         cur->system, x->system);
            } else if (!apply) {
                snprintf(msg, sizeof(msg), "would be restored");
                pv_client me = peer_client(p);
                bool control = strcmp(what, "enabled") != 0 && strcmp(what, "running") != 0;
                if (strcmp(what, "REQUEST") == 0 && sn &&
                    !node_system_state(node_system_of(sn->node), x->request)) {
                    snprintf(msg, sizeof(msg), "state %s no longer exists in system %s; would "
                             "not be restored", x->request, sn->system);
                    rc = -1;
                } else if (control && !policy_may_write(s, x->node, what, &me, NULL)) {
                    char why[560];
                    policy_refusal_text(s, x->node, what, &me, why, sizeof(why));
                    snprintf(msg, sizeof(msg), "%s; would not be restored", why);
                    rc = -1;
                }
            } else if (strcmp(what, "enabled") == 0) {
                struct node_act a = {.s = s, .name = x->node, .who = who, .what = x->enabled};
                rc = enable_one(&a, msg, sizeof(msg));
            } else if (strcmp(what, "running") == 0) {
                struct reg r;
                json_t *re = reg_load(s, &r);
                if (re) {
                    snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(re, "error")));
                    json_decref(re);
                    rc = -1;
                } else {
                    struct node_act a = {.s = s, .name = x->node, .who = who,
                                         .what = x->running ? ACT_START : ACT_STOP,
                                         .sn = sup_node_find(s, x->node),
                                         .rn = reg_find(&r, x->node)};
                    rc = run_one(&a, msg, sizeof(msg));
                    reg_free(&r);
                }
                sn = sup_node_find(s, x->node);
            } else if (!sn) {
                /* Not running: what it will start with (the registry's saved controls),
                 * under the same rules and audit as a write to its channel. */
                bool req = strcmp(what, "REQUEST") == 0, mode = strcmp(what, "MODE") == 0;
                const char *v = req ? x->request : mode ? x->mode : x->op;
                json_t *refused = channel_refused(s, p, x->node, what, v);
                if (refused) {
                    snprintf(msg, sizeof(msg), "%s",
                             json_string_value(json_object_get(refused, "error")));
                    json_decref(refused);
                    rc = -1;
                } else {
                    rc = store_node_state(s->store, x->node, req ? v : NULL, mode ? v : NULL,
                                          !req && !mode ? v : NULL, NULL) == STORE_OK ? 0 : -1;
                    snprintf(msg, sizeof(msg), rc ? "could not be saved" : "saved for its next "
                             "start (it does not run)");
                    const char *was = req ? cur->request : mode ? cur->mode : cur->op;
                    struct store_audit a = {.node = x->node, .time = sup_wall(), .channel = what,
                                            .old_value = was, .new_value = v,
                                            .host = PV_LOCAL_HOST, .user = peer_user(p),
                                            .accepted = rc == 0};
                    store_audit(s->store, &a);
                }
            } else {
                bool req = strcmp(what, "REQUEST") == 0;
                const char *v = req ? x->request : strcmp(what, "MODE") == 0 ? x->mode : x->op;
                if (req && !node_system_state(node_system_of(sn->node), v)) {
                    snprintf(msg, sizeof(msg), "state %s no longer exists in system %s; not "
                             "restored", v, sn->system);
                    rc = -1;
                } else {
                    json_t *w = write_control(s, p, sn, what, v);
                    rc = json_is_true(json_object_get(w, "ok")) ? 0 : -1;
                    snprintf(msg, sizeof(msg), "%s", rc ? json_string_value(json_object_get(w, "error"))
                                                       : "restored");
                    json_decref(w);
                }
            }
            json_object_set_new(c, "result", json_string(msg));
            json_object_set_new(c, "failed", json_boolean(rc != 0));
            if (rc && !failed++)
                snprintf(first, sizeof(first), "%.63s: %.16s: %.599s", x->node, what, msg);
        }
    }
    for (unsigned i = 0; i < now.n; i++)
        if (!snap_find(&saved, now.v[i].node) && !only)
            json_array_append_new(extra, json_string(now.v[i].node));
    if (apply) {
        char what[160];
        snprintf(what, sizeof(what), "snapshot restore %s (%zu nodes differed, %u refused)", name,
                 json_array_size(nodes), failed);
        log_change(p, what, "site");
    }
    /* A refusal of some is an answer (each with its reason), not an error:
     * the client prints every result and exits 1. */
    json_t *reply = ok_reply();
    json_object_set_new(reply, "first_failure", failed ? ctl_string(first) : json_null());
    json_object_set_new(reply, "name", json_string(name));
    json_object_set_new(reply, "time", json_real(saved.time));
    json_object_set_new(reply, "user", ctl_string(saved.user));
    json_object_set_new(reply, "dry_run", json_boolean(restore && !apply));
    json_object_set_new(reply, "nodes", nodes);
    json_object_set_new(reply, "not_in_snapshot", extra);
    json_object_set_new(reply, "failed", json_integer(failed));
    snap_free(&saved);
    snap_free(&now);
    return reply;
}

static json_t *cmd_snapshot_diff(sup *s, struct ctl_peer *p, json_t *a) { return snapshot_apply(s, p, a, false); }
static json_t *cmd_snapshot_restore(sup *s, struct ctl_peer *p, json_t *a) { return snapshot_apply(s, p, a, true); }

/* ---- guardctl access NODE [USER@HOST] ---- */

/* Who may write each of the node's writable channels, and the rule that
 * says so; with a user (and a numeric IPv4 host: guardctl looks names up,
 * never the daemon), whether that user from that host may. */
static json_t *cmd_access(sup *s, struct ctl_peer *p, json_t *args)
{
    (void)p;
    const char *name, *user = NULL, *host = NULL;
    json_t *e = arg_node_name(args, "node", true, &name);
    if (!e)
        e = arg_str(args, "user", false, &user);
    if (!e)
        e = arg_str(args, "host", false, &host);
    if (e)
        return e;
    struct in_addr a = {0};
    if (host && inet_pton(AF_INET, host, &a) != 1)
        return ctl_error(CTL_EINVAL, "host '%s' is not an IPv4 address (a.b.c.d)", host);
    if (host && !user)
        return ctl_error(CTL_EINVAL, "a host without a user: give USER@HOST");
    if (user && strlen(user) > 200)
        return ctl_error(CTL_EINVAL, "user name longer than 200 characters");
    struct reg r;
    if ((e = reg_load(s, &r)))
        return e;
    bool known = reg_find(&r, name) || sup_node_find(s, name);
    reg_free(&r);
    if (!known)
        return unknown_node(name);
    pv_client who = {.host = "", .user = user ? user : "", .ip = host ? ntohl(a.s_addr) : 0};
    json_t *reply = ok_reply(), *chans = json_array();
    json_object_set_new(reply, "node", json_string(name));
    json_object_set_new(reply, "open", json_boolean(access_open(s->cfg.access)));
    json_object_set_new(reply, "user", user ? ctl_string(user) : json_null());
    json_object_set_new(reply, "host", host ? json_string(host) : json_null());
    static const char *const channels[] = {"REQUEST", "MODE", "OP", "LOAD", "MANAGER"};
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        struct access_why why;
        bool may = policy_may_write(s, name, channels[i], &who, &why);
        char allows[2048];
        access_explain(s->cfg.access, &why, allows, sizeof(allows));
        json_t *c = json_pack("{s:s,s:s}", "channel", channels[i], "allows", allows);
        if (why.file) {
            json_object_set_new(c, "file", ctl_string(why.file));
            json_object_set_new(c, "line", json_integer(why.line));
            json_object_set_new(c, "section", ctl_string(why.pattern));
            json_object_set_new(c, "key", ctl_string(why.key));
            json_object_set_new(c, "value", ctl_string(why.value));
        }
        if (user)
            json_object_set_new(c, "write", json_boolean(may));
        json_array_append_new(chans, c);
    }
    json_object_set_new(reply, "channels", chans);
    return reply;
}

/* ---- the command table ---- */

typedef json_t *(*ctl_handler)(sup *s, struct ctl_peer *p, json_t *args);

static const struct command {
    const char *name;
    bool change;                 /* false: a read anyone who can connect may run */
    ctl_handler fn;
    const char *keys[5];         /* the arguments it takes */
} commands[] = {
    {"list", false, cmd_list, {NULL}},
    {"status", false, cmd_status, {"nodes"}},
    {"log", false, cmd_log, {"node", "n", "since", "follow"}},
    {"crashes", false, cmd_crashes, {"node", "since", "limit"}},
    {"history", false, cmd_history, {"node", "since", "limit"}},
    {"audit", false, cmd_audit, {"node", "channel", "since", "limit"}},
    {"start", true, cmd_start, {"nodes"}},
    {"stop", true, cmd_stop, {"nodes"}},
    {"restart", true, cmd_restart, {"nodes"}},
    {"enable", true, cmd_enable, {"nodes"}},
    {"disable", true, cmd_disable, {"nodes"}},
    {"create", true, cmd_create, {"node", "system", "args"}},
    {"destroy", true, cmd_destroy, {"node"}},
    {"request", true, cmd_request, {"node", "state"}},
    {"mode", true, cmd_mode, {"node", "mode"}},
    {"op", true, cmd_op, {"node", "op"}},
    {"release", true, cmd_release, {"node"}},
    {"reload", true, cmd_reload, {"force", "node", "dry_run"}},
    {"release-manager", true, cmd_release_manager, {"node"}},
    {"tree", false, cmd_tree, {"node"}},
    {"medm", false, cmd_medm, {NULL}},
    {"spm", false, cmd_spm, {"node"}},
    {"spm-accept", true, cmd_spm_accept, {"node", "channels"}},
    {"states", false, cmd_states, {"node"}},
    {"watch", false, cmd_watch, {"nodes"}},
    {"access", false, cmd_access, {"node", "user", "host"}},
    {"snapshot-save", true, cmd_snapshot_save, {"name", "force"}},
    {"snapshot-list", false, cmd_snapshot_list, {NULL}},
    {"snapshot-diff", false, cmd_snapshot_diff, {"name", "nodes"}},
    {"snapshot-restore", true, cmd_snapshot_restore, {"name", "nodes", "dry_run"}},
    {"snapshot-delete", true, cmd_snapshot_delete, {"name"}},
};

json_t *ctlcmd_run(sup *s, struct ctl_peer *p, json_t *req)
{
    json_t *cmdv = json_object_get(req, "cmd"), *args = json_object_get(req, "args");
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v)
        if (strcmp(key, "cmd") != 0 && strcmp(key, "args") != 0)
            return ctl_error("EPROTO", "unknown request field '%s'", key);
    if (!json_is_string(cmdv))
        return ctl_error("EPROTO", "request without a \"cmd\" string");
    if (args && !json_is_object(args))
        return ctl_error("EPROTO", "\"args\" must be an object");
    const char *name = json_string_value(cmdv);
    const struct command *c = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]) && !c; i++)
        if (strcmp(commands[i].name, name) == 0)
            c = &commands[i];
    if (!c)
        return ctl_error(CTL_EUNKNOWN_CMD, "unknown command '%s'", name);
    json_object_foreach(args, key, v) {
        bool known = false;
        for (unsigned i = 0; i < 5 && c->keys[i] && !known; i++)
            known = strcmp(c->keys[i], key) == 0;
        if (!known)
            return ctl_error(CTL_EINVAL, "%s takes no argument '%s'", c->name, key);
    }
    if (c->change && p->uid != 0 && !is_operator(p)) {
        /* The uid only: a name would be a lookup an outsider could cause. */
        ctl_log_refusal(p->ctl, "permission denied: uid %u may not %s", (unsigned)p->uid,
                        c->name);
        return ctl_error(CTL_EPERM, "permission denied: %s changes the daemon; it takes root%s%s",
                         c->name, s->cfg.operator_group ? " or the group " : "",
                         s->cfg.operator_group ? s->cfg.operator_group : "");
    }
    json_t *empty = NULL;
    if (!args)
        args = empty = json_object();
    json_t *reply = c->fn(s, p, args);
    json_decref(empty);
    return reply ? reply : ctl_error("ENOMEM", "out of memory");
}
