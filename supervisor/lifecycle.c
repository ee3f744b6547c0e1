/* lifecycle.c — the one home of a node's lifecycle.
 *
 * Every way a node starts or stops goes through here: the daemon's start,
 * SIGHUP and `guardctl reload`, `guardctl start/stop/restart`, create and
 * destroy, enable and disable, quarantine and release. So each one keeps
 * what operators set the same way, and says the same thing:
 *
 *   - A node that stops (for any reason) first saves REQUEST, MODE and OP as
 *     its channels hold them: a write is applied by the node at its next
 *     cycle, but its channel has it at once, so a stop right after an
 *     accepted write keeps it. A restart carries them over the same way.
 *   - Each change is one line on stderr, "guardiand: NODE: stopped by WHO",
 *     and the same words in the node's own log, which outlives the run:
 *     the lines of a stopped node are kept and a start puts them back before
 *     its new ones (guardctl log of a stopped node shows them).
 *   - A node that cannot start is marked failed with why (nodes.c), shown
 *     by list and status until it starts or is destroyed.
 *
 * The registry rule (which nodes exist) is the store's (store.h,
 * store_seed); which of them run is decided here: enabled ones not stopped
 * by an operator. A disable keeps a running node running (guardctl disable
 * --help): only its next start is affected.
 *
 * A configuration file that suddenly drops most of the nodes it named
 * before is more likely a mistake (the wrong file, an edit gone wrong) than
 * a decommissioning: it is not applied without force (LIFE_DROP_*), and
 * the nodes run on as they were.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "supervisor/sup.h"

/* ---- saying what happened ---- */

/* One line on stderr and, when the node runs, the same in its log; and,
 * since every lifecycle change says itself here, the one place that tells
 * the control socket's watchers (sup_changed). */
static void say(sup *s, enum sup_level level, sup_node *sn, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void say(sup *s, enum sup_level level, sup_node *sn, const char *name,
                const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sup_log(level, "%s: %s", name, msg);
    if (sn)
        node_log(sn->node, "%s", msg);
    sup_changed(s, true);
}

/* ---- the log of a node that does not run ---- */

struct sup_kept_log {
    char name[CONFIG_NAME_MAX];
    char *lines[NODE_LOG_RING];
    unsigned n;
    UT_hash_handle hh;
};

static void kept_free(sup *s, struct sup_kept_log *k)
{
    HASH_DEL(s->kept_logs, k);
    for (unsigned i = 0; i < k->n; i++)
        free(k->lines[i]);
    free(k);
}

static struct sup_kept_log *kept_find(sup *s, const char *name)
{
    struct sup_kept_log *k = NULL;
    HASH_FIND_STR(s->kept_logs, name, k);
    return k;
}

/* Keep a stopping node's lines (a copy: its ring goes with it). Out of
 * memory, the log starts afresh: nothing else depends on it. */
static void keep_log(sup *s, sup_node *sn)
{
    struct sup_kept_log *k = kept_find(s, sn->name);
    if (k)
        kept_free(s, k);
    if (!(k = calloc(1, sizeof(*k))))
        return;
    snprintf(k->name, sizeof(k->name), "%s", sn->name);
    const char *lines[NODE_LOG_RING];
    unsigned n = node_log_lines(sn->node, lines, NODE_LOG_RING);
    for (unsigned i = 0; i < n; i++)
        if ((k->lines[k->n] = strdup(lines[i])))
            k->n++;
    HASH_ADD_STR(s->kept_logs, name, k);
}

unsigned life_kept_log(sup *s, const char *name, const char **out, unsigned max)
{
    struct sup_kept_log *k = kept_find(s, name);
    unsigned n = k ? (k->n < max ? k->n : max) : 0;
    for (unsigned i = 0; i < n; i++)
        out[i] = k->lines[k->n - n + i];
    return n;
}

void life_forget_logs(sup *s)
{
    struct sup_kept_log *k, *tmp;
    HASH_ITER(hh, s->kept_logs, k, tmp)
        kept_free(s, k);
}

/* ---- controls ---- */

void life_controls(sup *s, const sup_node *sn, struct life_controls *c)
{
    char chan[PV_NAME_MAX + 1];
    const grd_state *req = node_requested(sn->node);
    snprintf(c->request, sizeof(c->request), "%s", req ? req->name : "");
    snprintf(c->mode, sizeof(c->mode), "%s", node_mode_name(node_mode(sn->node)));
    snprintf(c->op, sizeof(c->op), "%s", node_op_name(node_op(sn->node)));
    /* What the channels hold is newer than what the node applied. */
    node_channel_name(chan, sizeof(chan), s->cfg.ifo, sn->name, "REQUEST");
    pv *pv = pvdb_find(s->db, chan);
    if (pv && *(const char *)pv_value(pv))
        snprintf(c->request, sizeof(c->request), "%s", (const char *)pv_value(pv));
    node_channel_name(chan, sizeof(chan), s->cfg.ifo, sn->name, "MODE");
    if ((pv = pvdb_find(s->db, chan)) && node_mode_name((int)pv_get_long(pv)))
        snprintf(c->mode, sizeof(c->mode), "%s", node_mode_name((int)pv_get_long(pv)));
    node_channel_name(chan, sizeof(chan), s->cfg.ifo, sn->name, "OP");
    if ((pv = pvdb_find(s->db, chan)) && node_op_name((int)pv_get_long(pv)))
        snprintf(c->op, sizeof(c->op), "%s", node_op_name((int)pv_get_long(pv)));
}

/* Save a stopping node: its last state and transitions, and the controls
 * it was last given (queued; the store commits them shortly). */
static void save(sup *s, sup_node *sn, const struct life_controls *c)
{
    persist_after_step(s, sn);
    if (s->store)
        store_node_state(s->store, sn->name, c->request[0] ? c->request : NULL, c->mode, c->op,
                         NULL);
}

/* ---- start, stop, restart ---- */

static int start(sup *s, const struct sup_node_spec *spec, const char *verb, const char *who,
                 char *err, size_t errlen)
{
    assert(spec && spec->name && spec->system && who);
    if (sup_node_add(s, spec->name, spec->system, spec->args, spec->n_args, err, errlen) < 0) {
        sup_set_failed(s, spec->name, err);
        say(s, SUP_ERR, NULL, spec->name, "FAILED to start (%s): %s; the other nodes run", who,
            err);
        return -1;
    }
    sup_node *sn = sup_node_find(s, spec->name);
    struct sup_kept_log *k = kept_find(s, spec->name);
    if (k) {
        node_log_adopt(sn->node, (const char *const *)k->lines, k->n);
        kept_free(s, k);
    }
    sup_set_stopped(s, spec->name, false);
    persist_node_started(s, sn, spec);
    /* Start-up says nothing per node on stderr (a thousand lines); the
     * node's log still has it. */
    if (strcmp(who, LIFE_BOOT) == 0)
        node_log(sn->node, "%s at start-up", verb);
    else
        say(s, SUP_NOTICE, sn, sn->name, "%s by %s", verb, who);
    return 0;
}

int life_start(sup *s, const struct sup_node_spec *spec, const char *who, char *err,
               size_t errlen)
{
    return start(s, spec, "started", who, err, errlen);
}

void life_stop(sup *s, sup_node *sn, const char *who, bool by_operator)
{
    assert(sn && who);
    struct life_controls c;
    life_controls(s, sn, &c);
    save(s, sn, &c);
    say(s, SUP_NOTICE, sn, sn->name, "stopped by %s", who);
    keep_log(s, sn);
    char name[CONFIG_NAME_MAX];
    snprintf(name, sizeof(name), "%s", sn->name);
    sup_node_remove(s, name);
    if (by_operator) { /* not started again by a SIGHUP, nor tried again if it had failed */
        sup_set_stopped(s, name, true);
        sup_set_failed(s, name, NULL);
    }
}

int life_restart(sup *s, sup_node *sn, const struct sup_node_spec *def, const char *who,
                 char *err, size_t errlen)
{
    assert(sn && who);
    /* Copies: the node's own strings go with it. */
    struct life_controls c;
    life_controls(s, sn, &c);
    char name[CONFIG_NAME_MAX];
    snprintf(name, sizeof(name), "%s", sn->name);
    char *system = strdup(def ? def->system : sn->system);
    unsigned n_args = def ? def->n_args : sn->n_args;
    char **args = calloc(n_args + 1, sizeof(*args));
    bool oom = !system || !args;
    for (unsigned i = 0; !oom && i < n_args; i++)
        oom = !(args[i] = strdup(def ? def->args[i] : sn->args[i]));
    int r = -1;
    if (oom) {
        snprintf(err, errlen, "node %s: out of memory (it runs on as it was)", name);
    } else {
        save(s, sn, &c);
        say(s, SUP_NOTICE, sn, name, "restarting (by %s)", who);
        keep_log(s, sn);
        sup_node_remove(s, name);
        struct sup_node_spec spec = {.name = name, .system = system,
                                     .args = (const char *const *)args, .n_args = n_args,
                                     .enabled = true, .request = c.request[0] ? c.request : NULL,
                                     .mode = c.mode, .op = c.op};
        r = start(s, &spec, "restarted", who, err, errlen);
    }
    for (unsigned i = 0; args && i < n_args; i++)
        free(args[i]);
    free(args);
    free(system);
    return r;
}

/* ---- quarantine ---- */

void life_quarantine(sup *s, sup_node *sn, const char *usermsg, const char *why)
{
    sn->quarantined = true;
    snprintf(sn->quarantine_why, sizeof(sn->quarantine_why), "%s", why);
    nodepv_quarantine(sn->pv, true, usermsg);
    say(s, SUP_WARNING, sn, sn->name, "QUARANTINED: %s; the other nodes run on, this one is not "
        "run until released (guardctl release %s)", why, sn->name);
}

const char *life_release(sup *s, const char *name, const char *who, bool *was, char *err,
                         size_t errlen)
{
    sup_node *sn = sup_node_find(s, name);
    *was = sn && sn->quarantined;
    int rc = s->store ? store_release(s->store, name, sup_wall()) : STORE_ENOENT;
    if (!sn && rc == STORE_ENOENT) {
        snprintf(err, errlen, "unknown node '%s'", name);
        return "EUNKNOWN_NODE";
    }
    if (rc != STORE_OK && rc != STORE_ENOENT) {
        snprintf(err, errlen, "release of %s not saved: %s", name, store_errmsg(s->store));
        if (!sn)
            return "EIO";
        sup_log(SUP_ERR, "%s: %s", name, err); /* it runs again all the same */
    }
    if (sn && sn->quarantined) {
        say(s, SUP_NOTICE, sn, name, "released from quarantine (%s) by %s", sn->quarantine_why, who);
        sn->quarantined = sn->too_slow = false;
        sn->quarantine_why[0] = '\0';
        sn->times.streak = 0; /* a fresh window: judged again from now */
        nodepv_quarantine(sn->pv, false, NULL);
    } else {
        say(s, SUP_NOTICE, sn, name, "released by %s (it was not quarantined%s)", who,
            sn ? "" : "; its earlier crashes no longer count");
    }
    return NULL;
}

/* ---- the registry: create, destroy, enable ---- */

const char *life_create(sup *s, const struct sup_node_spec *spec, const char *who, char *err,
                        size_t errlen)
{
    if (!s->store) {
        snprintf(err, errlen, "no database: nodes are created in the registry");
        return "ENOSTORE";
    }
    /* Loaded first: a system that does not load is refused before the
     * registry knows of it. */
    if (sup_node_add(s, spec->name, spec->system, spec->args, spec->n_args, err, errlen) < 0)
        return "EUNKNOWN_SYSTEM";
    struct store_node_def def = {.name = spec->name, .system = spec->system, .args = spec->args,
                                 .n_args = spec->n_args};
    int rc = store_node_create(s->store, &def);
    if (rc != STORE_OK) {
        sup_node_remove(s, spec->name);
        snprintf(err, errlen, "node %s not created: %s", spec->name,
                 rc == STORE_EEXIST ? "it exists already" : store_errmsg(s->store));
        return rc == STORE_EEXIST ? "EEXIST" : "EIO";
    }
    sup_node *sn = sup_node_find(s, spec->name);
    struct sup_kept_log *k = kept_find(s, spec->name);
    if (k) /* a log of an earlier node of that name is not this one's */
        kept_free(s, k);
    sup_set_stopped(s, spec->name, false);
    persist_node_started(s, sn, spec);
    say(s, SUP_NOTICE, sn, spec->name, "created (system %s) and started by %s", spec->system, who);
    return NULL;
}

const char *life_destroy(sup *s, const char *name, const char *who, char *err, size_t errlen)
{
    if (!s->store) {
        snprintf(err, errlen, "no database: nodes are destroyed in the registry");
        return "ENOSTORE";
    }
    sup_node *sn = sup_node_find(s, name);
    int rc = store_node_destroy(s->store, name);
    if (rc == STORE_ENOENT && !sn) {
        snprintf(err, errlen, "unknown node '%s'", name);
        return "EUNKNOWN_NODE";
    }
    if (rc != STORE_OK && rc != STORE_ENOENT) {
        snprintf(err, errlen, "node %s not destroyed: %s", name, store_errmsg(s->store));
        return "EIO";
    }
    say(s, SUP_NOTICE, sn, name, "destroyed by %s", who);
    if (sn)
        sup_node_remove(s, name); /* its channels disconnect from clients */
    struct sup_kept_log *k = kept_find(s, name);
    if (k)
        kept_free(s, k);
    sup_set_failed(s, name, NULL);
    sup_set_stopped(s, name, false);
    return NULL;
}

const char *life_set_enabled(sup *s, const char *name, bool enabled, const char *who, char *err,
                             size_t errlen)
{
    if (!s->store) {
        snprintf(err, errlen, "no database: whether a node starts is kept in the registry");
        return "ENOSTORE";
    }
    int rc = store_node_set_enabled(s->store, name, enabled);
    if (rc != STORE_OK) {
        snprintf(err, errlen, "%s: %s", name,
                 rc == STORE_ENOENT ? "not in the registry" : store_errmsg(s->store));
        return rc == STORE_ENOENT ? "EUNKNOWN_NODE" : "EIO";
    }
    sup_node *sn = sup_node_find(s, name);
    say(s, SUP_NOTICE, sn, name, "%s by %s%s", enabled ? "enabled" : "disabled", who,
        enabled ? "" : sn ? " (it runs on until stopped; it will not start with the daemon)" : "");
    return NULL;
}

/* ---- applying the configuration file (start-up, SIGHUP, guardctl reload) ---- */

void life_report_free(struct life_report *r)
{
    free(r->changes);
    r->changes = NULL;
    r->n_changes = r->cap_changes = 0;
}

static void change(struct life_report *r, const char *name, const char *what, const char *why)
{
    if (r->n_changes == r->cap_changes) {
        unsigned cap = r->cap_changes ? 2 * r->cap_changes : 16;
        struct life_change *grown = realloc(r->changes, cap * sizeof(*grown));
        if (!grown)
            return; /* the counts stay right; only the list misses it */
        r->changes = grown;
        r->cap_changes = cap;
    }
    struct life_change *c = &r->changes[r->n_changes++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->what, sizeof(c->what), "%s", what);
    snprintf(c->why, sizeof(c->why), "%s", why ? why : "");
}

/* Whether a running node was started as spec says (system and arguments). */
static bool same_node(const sup_node *sn, const struct sup_node_spec *spec)
{
    if (strcmp(sn->system, spec->system) != 0 || sn->n_args != spec->n_args)
        return false;
    for (unsigned i = 0; i < sn->n_args; i++)
        if (strcmp(sn->args[i], spec->args[i]) != 0)
            return false;
    return true;
}

struct apply {
    struct life_report *rep;
    const char *who;
    sup_node **keep; /* running nodes the list has */
    unsigned n_keep, cap_keep;
    bool oom;
};

static void keep(struct apply *a, sup_node *sn)
{
    if (a->n_keep == a->cap_keep) {
        unsigned cap = a->cap_keep ? 2 * a->cap_keep : 64;
        sup_node **grown = realloc(a->keep, cap * sizeof(*grown));
        if (!grown) {
            a->oom = true; /* then nothing is stopped: see life_apply */
            return;
        }
        a->keep = grown;
        a->cap_keep = cap;
    }
    a->keep[a->n_keep++] = sn;
}

/* One node of the list: start it, keep it, or restart it if its system or
 * arguments changed. */
static void apply_spec(sup *s, const struct sup_node_spec *spec, void *arg)
{
    struct apply *a = arg;
    struct life_report *r = a->rep;
    char err[512];
    sup_node *sn = sup_node_find(s, spec->name);
    if (sn && same_node(sn, spec)) {
        keep(a, sn); /* disabled too: a disable never stops a running node */
        return;
    }
    if (sn && !spec->enabled) {
        keep(a, sn); /* changed, but it starts again only when enabled */
        return;
    }
    if (sn) {
        keep(a, sn);
        if (life_restart(s, sn, spec, a->who, err, sizeof(err)) < 0) {
            r->failed++;
            change(r, spec->name, "failed", err);
            a->n_keep--; /* it is gone (or runs on as it was when out of memory) */
            if ((sn = sup_node_find(s, spec->name)))
                keep(a, sn);
        } else {
            r->restarted++;
            change(r, spec->name, "restarted", "its system or arguments changed");
            a->keep[a->n_keep - 1] = sup_node_find(s, spec->name);
        }
        return;
    }
    if (!spec->enabled || sup_is_stopped(s, spec->name))
        return; /* disabled, or an operator stopped it: only guardctl start runs it */
    if (life_start(s, spec, a->who, err, sizeof(err)) < 0) {
        r->failed++;
        change(r, spec->name, "failed", err);
        return;
    }
    keep(a, sup_node_find(s, spec->name));
    r->started++;
    if (strcmp(a->who, LIFE_BOOT) != 0)
        change(r, spec->name, "started", NULL);
}

/* The config nodes the registry has, or (without a store) the file's
 * nodes now running: what the file named before. */
struct before {
    char (*names)[CONFIG_NAME_MAX];
    unsigned n, cap;
    bool oom;
};

static void before_add(struct before *b, const char *name)
{
    if (b->n == b->cap) {
        unsigned cap = b->cap ? 2 * b->cap : 64;
        char (*grown)[CONFIG_NAME_MAX] = realloc(b->names, cap * sizeof(*grown));
        if (!grown) {
            b->oom = true;
            return;
        }
        b->names = grown;
        b->cap = cap;
    }
    snprintf(b->names[b->n++], CONFIG_NAME_MAX, "%s", name);
}

static int before_from_store(void *arg, const struct store_node *n)
{
    if (!n->runtime)
        before_add(arg, n->name);
    return 0;
}

static bool file_names(const struct config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->n_nodes; i++)
        if (strcmp(cfg->nodes[i].name, name) == 0)
            return true;
    return false;
}

/* Whether cfg drops so many of the nodes named before that it is more
 * likely a mistake; if so, why in err. */
static bool drops_too_many(sup *s, const struct config *cfg, char *err, size_t errlen)
{
    struct before b = {0};
    if (s->store) {
        if (store_nodes(s->store, before_from_store, &b) < 0)
            b.n = 0; /* an unreadable registry: the list below falls back to the file */
    } else if (cfg != &s->cfg) {
        for (unsigned i = 0; i < s->cfg.n_nodes; i++)
            before_add(&b, s->cfg.nodes[i].name);
    }
    unsigned dropped = 0;
    char missing[256] = "";
    for (unsigned i = 0; i < b.n; i++) {
        if (file_names(cfg, b.names[i]))
            continue;
        if (dropped++ < 5)
            snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
                     dropped > 1 ? ", " : "", b.names[i]);
    }
    bool refuse = b.n > 0 && (dropped == b.n || (dropped >= LIFE_DROP_MIN &&
                                                 dropped * 2 > b.n));
    if (refuse)
        snprintf(err, errlen, "%s names %u nodes and drops %u of the %u it named before (%s%s): "
                 "not applied, in case it is the wrong file; `guardctl reload --force` (or "
                 "guardiand --force) applies it",
                 cfg->path ? cfg->path : "the configuration", cfg->n_nodes, dropped, b.n,
                 missing, dropped > 5 ? ", ..." : "");
    free(b.names);
    return refuse;
}

int life_apply(sup *s, struct config *fresh, bool force, const char *who, struct life_report *r)
{
    assert(who && r);
    life_report_free(r);
    *r = (struct life_report){.time = sup_wall(), .applied = true};
    snprintf(r->who, sizeof(r->who), "%s", who);
    const struct config *cfg = fresh ? fresh : &s->cfg;
    snprintf(r->file, sizeof(r->file), "%s", cfg->path ? cfg->path : "");
    bool boot = !fresh;
    bool seed = true;
    if (!force && drops_too_many(s, cfg, r->error, sizeof(r->error))) {
        r->applied = false;
        sup_log(SUP_ERR, "%s", r->error);
        if (!boot) {
            r->nodes = s->n_nodes;
            return -1; /* nothing changed */
        }
        seed = false; /* start-up: the registry's nodes run as they were */
    }
    if (fresh) {
        if (strcmp(fresh->ifo, s->cfg.ifo) != 0 || fresh->rate != s->cfg.rate)
            sup_log(SUP_WARNING, "%s: a new ifo or rate takes effect at the next start",
                    who);
        /* Running nodes keep the prefix and rate they were started with. */
        free(fresh->ifo);
        fresh->ifo = s->cfg.ifo;
        s->cfg.ifo = NULL;
        fresh->rate = s->cfg.rate;
        struct config old = s->cfg;
        s->cfg = *fresh;
        *fresh = (struct config){0};
        config_free(&old);
    }

    struct apply a = {.rep = r, .who = who};
    persist_node_list(s, seed, apply_spec, &a);
    /* Then the running nodes the list no longer has stop (not when a
     * list of the kept ones could not be made: stopping a node by mistake
     * is worse than keeping one). */
    sup_node *sn, *tmp;
    HASH_ITER(hh, s->nodes, sn, tmp) {
        bool kept = a.oom;
        for (unsigned i = 0; i < a.n_keep && !kept; i++)
            kept = a.keep[i] == sn;
        if (!kept) {
            char name[CONFIG_NAME_MAX];
            snprintf(name, sizeof(name), "%s", sn->name);
            char why[160];
            snprintf(why, sizeof(why), "%s: no longer in the configuration file", who);
            life_stop(s, sn, why, false);
            r->stopped++;
            change(r, name, "stopped", "no longer in the configuration file");
        }
    }
    free(a.keep);
    r->nodes = s->n_nodes;
    if (!boot)
        sup_log(SUP_NOTICE, "%s: %s applied: %u nodes (%u started, %u stopped, %u restarted, "
                "%u failed)", who, s->cfg.path ? s->cfg.path : "the configuration", s->n_nodes,
                r->started, r->stopped, r->restarted, r->failed);
    return 0;
}

void life_note_reload(sup *s, const struct life_report *r)
{
    life_report_free(&s->last_reload);
    s->last_reload = *r;
    s->last_reload.changes = NULL;
    s->last_reload.n_changes = s->last_reload.cap_changes = 0;
}

int life_reload(sup *s, const char *who, bool force, struct life_report *r)
{
    assert(who && r);
    life_report_free(r);
    *r = (struct life_report){.time = sup_wall(), .nodes = s->n_nodes};
    snprintf(r->who, sizeof(r->who), "%s", who);
    snprintf(r->file, sizeof(r->file), "%s", s->cfg.path ? s->cfg.path : "");
    struct config fresh = {0};
    int rc = -1;
    if (!s->reread_config || !s->cfg.path) {
        snprintf(r->error, sizeof(r->error), "no configuration file to read again (guardiand "
                 "was started without --config)");
    } else if (s->reread_config(s, &fresh, r->error, sizeof(r->error)) < 0) {
        sup_log(SUP_ERR, "%s: %s: configuration not applied; nothing changed", who,
                r->error);
    } else {
        rc = life_apply(s, &fresh, force, who, r); /* takes fresh when it applies it */
        if (rc == 0)
            policy_changed(s, who);
    }
    config_free(&fresh);
    life_note_reload(s, r);
    return rc;
}
