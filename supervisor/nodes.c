/* nodes.c — the node registry and the services nodes get from the host.
 *
 * Nodes are found by name in a hash table; each has its channels (nodepv)
 * and a slot in the schedule. Adding or removing a node touches nothing
 * else: a module that fails to load is refused with its reason and the
 * other nodes run on.
 *
 * Plant channels are, for now, simulated in this process: the first read or
 * write of a channel that the PV database does not serve creates it as a
 * writable DOUBLE PV (value 0) served over CA, so operators and tests can
 * move the "plant" with caput. Channels the database already serves (other
 * nodes' channels, say) are read and written directly. Outbound channels to
 * real IOCs through libca replace the simulation in a later issue; the
 * node_host get/put interface stays.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static void host_log(void *arg, node *n, const char *line)
{
    sup *s = arg;
    if (s->log_tap) /* a control client follows a log (guardctl log -f) */
        s->log_tap(s->log_tap_arg, n, line);
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

/* The PV behind a plant channel, created in the simulated plant if needed. */
static pv *plant_pv(sup *s, const char *chan)
{
    pv *p = pvdb_find(s->db, chan);
    if (p)
        return p;
    /* Node channels are never simulated: a stand-in would take the name of
     * a node that is added later (or comes back after a reload). */
    size_t ifo_len = strlen(s->cfg.ifo);
    if (strncmp(chan, s->cfg.ifo, ifo_len) == 0 && strncmp(chan + ifo_len, ":GRD-", 5) == 0)
        return NULL;
    if (!s->sim && !(s->sim = pvdb_group_new(s->db, "")))
        return NULL;
    if (pv_group_add(s->sim, &(pv_def){.name = chan, .type = PV_DOUBLE, .writable = true,
                                       .precision = 3, .class_name = "ao"},
                     &p) != PVDB_OK)
        return NULL;
    pv_set_double(p, 0);
    return p;
}

int sup_plant_set(sup *s, const char *chan, double value)
{
    pv *p = plant_pv(s, chan);
    if (!p || pv_get_group(p) != s->sim)
        return -1;
    return pv_set_double(p, value) == PVDB_OK ? 0 : -1;
}

static int host_get(void *arg, node *n, const char *chan, double *num, char *str, size_t len)
{
    (void)n;
    pv *p = plant_pv(arg, chan);
    if (!p)
        return GRD_EBADCHAN;
    if (num)
        *num = pv_get_double(p);
    if (str && len) {
        if (pv_type(p) == PV_STRING)
            snprintf(str, len, "%s", (const char *)pv_value(p));
        else if (pv_type(p) == PV_ENUM && pv_enum_string(p, (unsigned)pv_get_long(p)))
            snprintf(str, len, "%.*s", PV_ENUM_STRING_SIZE, pv_enum_string(p, (unsigned)pv_get_long(p)));
        else
            snprintf(str, len, "%g", pv_get_double(p));
    }
    return GRD_OK;
}

/* A node writes like any client: through the PV's write rules and handler
 * (a manager writing another node's REQUEST is validated by that node). */
static int host_put(void *arg, node *n, const char *chan, double num, const char *str)
{
    pv *p = plant_pv(arg, chan);
    if (!p)
        return GRD_EBADCHAN;
    pv_client who = {.host = "localhost", .user = node_name(n)};
    int err = str ? pv_write_string(p, str, &who) : pv_write_double(p, num, &who);
    return err == PVDB_OK ? GRD_OK : GRD_ETYPE;
}

void sup_host_init(sup *s)
{
    s->host = (node_host){.arg = s, .now = host_now, .wall = host_wall, .log = host_log,
                          .get = host_get, .put = host_put, .find = host_find};
}

sup_node *sup_node_find(sup *s, const char *name)
{
    sup_node *sn = NULL;
    HASH_FIND_STR(s->nodes, name, sn);
    return sn;
}

static void sup_node_destroy(sup_node *sn)
{
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

/* LOAD=True from a client: load the system again and switch the node to it. */
static int reload_node(node *n, void *arg)
{
    sup *s = arg;
    sup_node *sn = sup_node_find(s, node_name(n));
    if (!sn)
        return -1;
    char err[512];
    node_system *sys = node_system_load(sn->system, s->cfg.systems, err, sizeof(err));
    if (!sys) {
        fprintf(stderr, "guardiand: %s: reload of %s failed: %s\n", sn->name, sn->system, err);
        nodepv_set_load_status(sn->pv, NODE_LOAD_ERROR);
        return 0; /* the write is accepted; LOAD_STATUS says how it went */
    }
    if (node_reload(n, sys, err, sizeof(err)) != NODE_OK) {
        fprintf(stderr, "guardiand: %s: reload refused: %s\n", sn->name, err);
        node_system_unref(sys);
        return 0;
    }
    node_system_unref(sn->sys);
    sn->sys = sys;
    nodepv_states_changed(sn->pv);
    return 0;
}

int sup_node_add(sup *s, const char *name, const char *system, const char *const *args,
                 unsigned n_args, char *err, size_t errlen)
{
    if (!config_valid_node_name(name)) {
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
    sched_add(s, sn);
    return 0;
fail:
    sup_node_destroy(sn);
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
    sup_node_destroy(sn);
    return 0;
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

void sup_nodes_free(sup *s)
{
    struct sup_stopped *st, *stmp;
    HASH_ITER(hh, s->stopped, st, stmp) {
        HASH_DEL(s->stopped, st);
        free(st);
    }
    sup_node *sn, *tmp;
    HASH_ITER(hh, s->nodes, sn, tmp) {
        sched_remove(s, sn);
        HASH_DEL(s->nodes, sn);
        sup_node_destroy(sn);
    }
    s->n_nodes = 0;
    pv_group_free(s->sim);
    s->sim = NULL;
}
