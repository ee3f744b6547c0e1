/* nodes.c — the node registry and the services nodes get from the host.
 *
 * Nodes are found by name in a hash table; each has its channels (nodepv)
 * and a slot in the schedule. Adding or removing a node touches nothing
 * else: a module that fails to load is refused with its reason and the
 * other nodes run on.
 *
 * Plant channels are the plant module's (plant/plant.h): a node's handle
 * for a channel is its plant_ref, and the plant's news (connections, writes
 * refused later) go back to the node that holds the ref.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "plant/plant.h"
#include "store/store.h"
#include "supervisor/sup.h"

double sup_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double sup_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double host_now(void *arg) { (void)arg; return sup_now(); }
static double host_wall(void *arg) { (void)arg; return sup_wall(); }

/* Node log lines go to stdout through one buffer written once per loop
 * iteration (sup_log_flush from the scheduler's prepare watcher): a write()
 * per line was a third of the daemon's time with a thousand nodes. The
 * crash handler writes what is still buffered before its record. */
static char log_buf[64 * 1024];
static volatile size_t log_len;

void sup_log_flush(void)
{
    size_t done = 0;
    while (done < log_len) {
        ssize_t w = write(STDOUT_FILENO, log_buf + done, log_len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* stdout gone or full: drop rather than block the loop */
        done += (size_t)w;
    }
    log_len = 0;
}

static void host_log(void *arg, node *n, double wall, const char *line)
{
    sup *s = arg;
    if (s->log_tap) /* a control client follows a log (guardctl log -f) */
        s->log_tap(s->log_tap_arg, n, line);
    /* For `guardctl log` past the ring and across restarts: one copy into
     * the store's log queue, committed with the other history. */
    if (s->store && s->cfg.log_retention_days > 0)
        store_log_line(s->store, node_name(n), wall, line);
    size_t len = strlen(line);
    if (log_len + len + 1 > sizeof(log_buf))
        sup_log_flush();
    if (len + 1 > sizeof(log_buf))
        len = sizeof(log_buf) - 1;
    memcpy(log_buf + log_len, line, len);
    log_buf[log_len + len] = '\n';
    log_len += len + 1;
}

void sup_log_buffer(const char **buf, const volatile size_t **len)
{
    *buf = log_buf;
    *len = &log_len;
}

static node *host_find(void *arg, const char *name)
{
    sup_node *sn = sup_node_find(arg, name);
    return sn ? sn->node : NULL;
}

/* ---- plant channels (plant/plant.h): a node's handle is its plant_ref ---- */

static void *host_open(void *arg, node *n, const char *chan, bool *up, char *err, size_t errlen)
{
    sup *s = arg;
    if (!s->plant) {
        snprintf(err, errlen, "%s: no plant channels in this program", chan);
        return NULL;
    }
    return plant_open(s->plant, chan, n, up, err, errlen);
}

static void host_close(void *arg, node *n, void *handle)
{
    (void)arg, (void)n;
    plant_close(handle);
}

static int host_get(void *arg, node *n, const char *chan, void *handle, double *num, char *str,
                    size_t len)
{
    (void)arg, (void)n, (void)chan;
    return handle ? plant_get(handle, num, str, len) : GRD_EBADCHAN;
}

/* A node writes like any client: through the channel's rules (a manager
 * writing another node's REQUEST is validated by that node; a plant IOC
 * decides over CA). */
static int host_put(void *arg, node *n, const char *chan, void *handle, double num, const char *str,
                    char *why, size_t whylen)
{
    (void)arg, (void)chan;
    return handle ? plant_put(handle, node_name(n), num, str, why, whylen) : GRD_EBADCHAN;
}

static uint64_t host_version(void *arg, node *n, void *handle)
{
    (void)arg, (void)n;
    return handle ? plant_version(handle) : 0;
}

static void host_spm_ignore(void *arg, node *n, void *handle)
{
    (void)arg, (void)n;
    plant_spm_ignore(handle);
}

static void plant_connection(void *arg, void *owner, const char *chan, bool up)
{
    (void)arg;
    node_chan_connection(owner, chan, up);
}

static void plant_write_failed(void *arg, void *owner, const char *chan, bool lost, const char *why)
{
    (void)arg;
    node_write_failed(owner, chan, lost, why);
}

static void plant_spm(void *arg, void *owner, const char *chan, enum plant_spm_event ev,
                      const char *text)
{
    (void)arg;
    static const enum node_spm map[] = {
        [PLANT_SPM_TRACKED] = NODE_SPM_TRACKED, [PLANT_SPM_UNTRACKED] = NODE_SPM_UNTRACKED,
        [PLANT_SPM_DIFFERS] = NODE_SPM_DIFFERS, [PLANT_SPM_MATCHES] = NODE_SPM_MATCHES};
    node_spm(owner, chan, map[ev], text);
}

static double plant_next_work(void *arg)
{
    sup *s = arg;
    return s->sched.tick > 0 ? sched_next_due(s) - sup_now() : 1.0;
}

int sup_plant_init(sup *s, char *err, size_t errlen)
{
    char never[CONFIG_NAME_MAX + 16];
    node_channel_prefix(never, sizeof(never), s->cfg.ifo);
    /* Node channels are never simulated: a stand-in would take the name of
     * a node that is added later (or comes back after a reload). */
    struct plant_config pc = {.simulate = s->cfg.simulate_plant, .never_simulate = never,
                              .connect_timeout = s->cfg.plant_connect_timeout};
    struct plant_hooks hooks = {.arg = s, .connection = plant_connection,
                                .write_failed = plant_write_failed, .spm = plant_spm,
                                .next_work = plant_next_work};
    if (!(s->plant = plant_new(s->loop, s->db, &pc, &hooks, err, errlen)))
        return -1;
    return 0;
}

int sup_plant_set(sup *s, const char *chan, double value)
{
    return s->plant ? plant_sim_set(s->plant, chan, value) : -1;
}

void sup_host_init(sup *s)
{
    s->host = (node_host){.arg = s, .now = host_now, .wall = host_wall, .log = host_log,
                          .open = host_open, .close = host_close, .get = host_get,
                          .put = host_put, .spm_ignore = host_spm_ignore,
                          .version = host_version, .find = host_find};
}

sup_node *sup_node_find(sup *s, const char *name)
{
    sup_node *sn = NULL;
    HASH_FIND_STR(s->nodes, name, sn);
    return sn;
}

static void sup_node_destroy(sup *s, sup_node *sn)
{
    if (s->loop)
        ev_timer_stop(s->loop, &sn->load_timer);
    nodepv_free(sn->pv);
    node_free(sn->node);
    if (sn->sys)
        node_system_unref(sn->sys);
    free(sn->system);
    for (unsigned i = 0; i < sn->n_args; i++)
        free(sn->args[i]);
    free(sn->args);
    free(sn);
}

/* ---- LOAD (issue 13) ---- */

/* The phases a LOAD shows before its outcome (DONE or ERROR), in order. */
static const enum node_load_status load_steps[] = {NODE_LOAD_REQUEST, NODE_LOAD_SET,
                                                   NODE_LOAD_INPROGRESS};
#define LOAD_STEPS (sizeof(load_steps) / sizeof(load_steps[0]))

/* LOAD_STATUS to a phase of a LOAD under way, posted to its monitors now. */
static void load_phase(sup_node *sn, enum node_load_status phase)
{
    node_load_phase(sn->node, phase);
    nodepv_publish(sn->pv);
}

static void module_show(sup *s, sup_node *sn, bool loaded);

/* The LOAD itself: the module loaded, compared, checked and switched to;
 * LOAD_STATUS ends at DONE or ERROR (see sup_node_load). */
static int load_now(sup *s, sup_node *sn, bool dry_run, bool force,
                    struct node_system_diff *diff, char *why, size_t whylen)
{
    node *n = sn->node;
    char err[512];
    node_system *sys = node_system_load(sn->system, s->cfg.systems, err, sizeof(err));
    if (!sys) {
        snprintf(why, whylen, "%s", err);
        sup_log(SUP_ERR, "%s: reload of %s failed: %s", sn->name, sn->system, err);
        /* On the node itself, not only its channel: LOAD_STATUS=ERROR, ACTIVE=False and
         * USERMSG hold until a LOAD succeeds, and the node's log says why. */
        if (!dry_run)
            node_load_failed(n, err);
        return -1;
    }
    if (diff)
        node_system_compare(sn->sys, sys, diff);
    /* The preflight (issue 13): new code that would strand the node (its state,
     * request or nominal state gone, or no path left to the request) is refused
     * unless forced, and the old code runs on. */
    char check[400];
    int refused = node_reload_check(n, sys, check, sizeof(check)) != NODE_OK;
    if (refused)
        snprintf(why, whylen, "refused: %s", check);
    if (dry_run || (refused && !force)) {
        if (refused && !dry_run) {
            sup_log(SUP_ERR, "%s: reload %s", sn->name, why);
            node_load_failed(n, why);
        }
        node_system_unref(sys);
        return refused ? -2 : 1;
    }
    if (node_reload(n, sys, err, sizeof(err)) != NODE_OK) {
        snprintf(why, whylen, "%s", err);
        sup_log(SUP_ERR, "%s: reload refused: %s", sn->name, err);
        if (node_load_status(n) != NODE_LOAD_ERROR) /* not said yet (from its own code) */
            node_load_failed(n, err);
        node_system_unref(sys);
        return -1;
    }
    if (refused)
        node_log(n, "LOAD: forced over the preflight (%s)", check);
    node_system_unref(sn->sys);
    sn->sys = sys;
    nodepv_states_changed(sn->pv);
    module_show(s, sn, true);
    return 0;
}

int sup_node_load(sup *s, const char *name, bool dry_run, bool force,
                  struct node_system_diff *diff, char *why, size_t whylen)
{
    sup_node *sn = sup_node_find(s, name);
    if (!sn || !sn->node) {
        snprintf(why, whylen, "node %s is not running", name);
        return -1;
    }
    if (!dry_run) {
        /* Over a LOAD from CA still under way: this one is its outcome. */
        if (s->loop)
            ev_timer_stop(s->loop, &sn->load_timer);
        sn->load_step = 0;
        /* Each post is queued for each monitor on its own (CAS_SUB_QUEUE
         * updates a subscription, ca/monitor.c), so the three phases and the
         * outcome reach a monitor in order even within one loop iteration. */
        for (unsigned k = 0; k < LOAD_STEPS; k++)
            load_phase(sn, load_steps[k]);
    }
    int rc = load_now(s, sn, dry_run, force, diff, why, whylen);
    nodepv_publish(sn->pv);
    return rc;
}

/* The next phase of a LOAD over CA, one loop iteration after the last: a
 * timer of 0 s runs after the next poll, so the CA server's flush (an
 * ev_prepare) sends each phase before the next is posted, and the module is
 * loaded only once INPROGRESS is out. */
static void load_step_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    sup *s = w->data;
    sup_node *sn = (sup_node *)((char *)w - offsetof(sup_node, load_timer));
    unsigned k = sn->load_step;
    assert(k >= 1 && k <= LOAD_STEPS);
    if (k < LOAD_STEPS) {
        load_phase(sn, load_steps[k]);
        sn->load_step = k + 1;
        ev_timer_set(w, 0, 0);
        ev_timer_start(loop, w);
        return;
    }
    sn->load_step = 0;
    char why[512];
    load_now(s, sn, false, false, NULL, why, sizeof(why));
    nodepv_publish(sn->pv);
}

/* LOAD=True from a client: REQUEST at once, then SET, INPROGRESS and the
 * LOAD itself on the next loop iterations (load_step_cb). A LOAD over CA is
 * never forced; LOAD_STATUS says how it went. A LOAD while one is under way
 * is refused (the write fails). */
static int reload_node(node *n, void *arg)
{
    sup *s = arg;
    sup_node *sn = sup_node_find(s, node_name(n));
    if (!sn || !s->loop || sn->load_step)
        return -1;
    load_phase(sn, load_steps[0]);
    sn->load_step = 1;
    ev_timer_set(&sn->load_timer, 0, 0);
    ev_timer_start(s->loop, &sn->load_timer);
    return 0; /* the write is accepted; LOAD_STATUS says how it goes */
}

/* ---- LOAD_PENDING: the module file changed since it was loaded ---- */

bool sup_node_load_pending(const sup_node *sn)
{
    return sn->module_shown == NODE_MODULE_CHANGED || sn->module_shown == NODE_MODULE_MISSING;
}

/* LOAD_PENDING, the node's log and guardctl's watchers follow what
 * node_systems_check found of the node's module file; loaded: just (re)loaded,
 * which its own log line says. */
static void module_show(sup *s, sup_node *sn, bool loaded)
{
    struct node_module m;
    node_system_module(sn->sys, &m);
    if (m.state == sn->module_shown)
        return;
    bool was = sup_node_load_pending(sn);
    sn->module_shown = m.state;
    bool pending = sup_node_load_pending(sn);
    if (pending)
        node_log(sn->node, "LOAD_PENDING: %s: %s (LOAD to run it)",
                 node_module_state_text(m.state), m.path);
    else if (was && !loaded)
        node_log(sn->node, "LOAD_PENDING: cleared: %s holds the running code", m.path);
    nodepv_set_load_pending(sn->pv, pending);
    sup_changed(s, false);
}

/* Every SUP_MODULE_CHECK s on the loop: a stat() per module path, and a read
 * of a local .so only when its inode, mtime or size moved (node.h), which a
 * slow timer can afford; the nodes are walked only when a verdict changed. */
static void module_watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    sup *s = w->data;
    if (node_systems_check() == 0)
        return;
    sup_node *sn, *tmp;
    HASH_ITER(hh, s->nodes, sn, tmp)
        module_show(s, sn, false);
}

void sup_module_watch_start(sup *s)
{
    ev_timer_init(&s->module_watch, module_watch_cb, SUP_MODULE_CHECK, SUP_MODULE_CHECK);
    s->module_watch.data = s;
    ev_timer_start(s->loop, &s->module_watch);
}

void sup_module_watch_stop(sup *s)
{
    if (s->loop)
        ev_timer_stop(s->loop, &s->module_watch);
}

int sup_node_add(sup *s, const char *name, const char *system, const char *const *args,
                 unsigned n_args, char *err, size_t errlen)
{
    if (!name_valid_node(name)) {
        snprintf(err, errlen, "bad node name '%s' (1-63 characters of A-Z, 0-9, _)", name);
        return -1;
    }
    if (sup_node_find(s, name)) {
        snprintf(err, errlen, "node %s exists already", name);
        return -1;
    }
    sup_node *sn = calloc(1, sizeof(*sn));
    if (!sn || !(sn->system = strdup(system))) {
        free(sn);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(sn->name, sizeof(sn->name), "%s", name);
    ev_timer_init(&sn->load_timer, load_step_cb, 0, 0);
    sn->load_timer.data = s;
    sn->module_shown = NODE_MODULE_SAME;
    if (n_args && !(sn->args = calloc(n_args, sizeof(char *)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (; sn->n_args < n_args; sn->n_args++)
        if (!(sn->args[sn->n_args] = strdup(args[sn->n_args]))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    char why[512];
    if (!(sn->sys = node_system_load(system, s->cfg.systems, why, sizeof(why)))) {
        snprintf(err, errlen, "node %s: %s", name, why);
        goto fail;
    }
    if (!(sn->node = node_new(name, s->cfg.ifo, sn->sys, args, n_args, &s->host, why, sizeof(why)))) {
        snprintf(err, errlen, "node %s: %s", name, why);
        goto fail;
    }
    if (!(sn->pv = nodepv_new(s->db, s->cfg.ifo, sn->node, GUARDIAND_VERSION, reload_node, s, why,
                              sizeof(why)))) {
        snprintf(err, errlen, "node %s: %s", name, why);
        goto fail;
    }
    HASH_ADD_STR(s->nodes, name, sn);
    s->n_nodes++;
    sn->added = sup_now();
    sched_add(s, sn);
    sup_set_failed(s, name, NULL);
    sup_medm_changed(s);
    module_show(s, sn, true); /* a module rewritten in place since it was first loaded */
    return 0;
fail:
    sup_node_destroy(s, sn);
    return -1;
}

int sup_node_remove(sup *s, const char *name)
{
    sup_node *sn = sup_node_find(s, name);
    if (!sn)
        return -1;
    sched_remove(s, sn);
    HASH_DEL(s->nodes, sn);
    s->n_nodes--;
    sup_node_destroy(s, sn);
    sup_medm_changed(s);
    if (s->ctl)
        ctl_node_removed(s->ctl);
    return 0;
}

void sup_changed(sup *s, bool lifecycle)
{
    if (s->watch_tap)
        s->watch_tap(s->watch_tap_arg, lifecycle);
}

bool sup_is_stopped(sup *s, const char *name)
{
    struct sup_stopped *st = NULL;
    HASH_FIND_STR(s->stopped, name, st);
    return st != NULL;
}

void sup_set_stopped(sup *s, const char *name, bool stopped)
{
    struct sup_stopped *st = NULL;
    HASH_FIND_STR(s->stopped, name, st);
    if (stopped && !st && (st = calloc(1, sizeof(*st)))) {
        snprintf(st->name, sizeof(st->name), "%s", name);
        HASH_ADD_STR(s->stopped, name, st);
    } else if (!stopped && st) {
        HASH_DEL(s->stopped, st);
        free(st);
    }
}

const char *sup_failed_why(sup *s, const char *name)
{
    struct sup_failed *f = NULL;
    HASH_FIND_STR(s->failed, name, f);
    return f ? f->why : NULL;
}

void sup_set_failed(sup *s, const char *name, const char *why)
{
    struct sup_failed *f = NULL;
    HASH_FIND_STR(s->failed, name, f);
    if (why && !f && (f = calloc(1, sizeof(*f)))) {
        snprintf(f->name, sizeof(f->name), "%s", name);
        HASH_ADD_STR(s->failed, name, f);
        s->n_failed++;
    }
    if (why && f)
        snprintf(f->why, sizeof(f->why), "%s", why);
    if (!why && f) {
        HASH_DEL(s->failed, f);
        free(f);
        s->n_failed--;
    }
}

void sup_nodes_free(sup *s)
{
    struct sup_failed *f, *ftmp;
    HASH_ITER(hh, s->failed, f, ftmp) {
        HASH_DEL(s->failed, f);
        free(f);
    }
    s->n_failed = 0;
    struct sup_stopped *st, *stmp;
    HASH_ITER(hh, s->stopped, st, stmp) {
        HASH_DEL(s->stopped, st);
        free(st);
    }
    sup_node *sn, *tmp;
    HASH_ITER(hh, s->nodes, sn, tmp) {
        sched_remove(s, sn);
        HASH_DEL(s->nodes, sn);
        sup_node_destroy(s, sn);
    }
    s->n_nodes = 0;
}

void sup_plant_free(sup *s)
{
    plant_free(s->plant);
    s->plant = NULL;
}
