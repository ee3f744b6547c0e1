/* persist.c — the supervisor's side of persistence: what it saves, when, and
 * what it does with what was saved.
 *
 * Saved: each node's REQUEST, MODE, OP and STATE (queued when they change,
 * checked after every step by comparing with what was queued last), its
 * transitions and state-code errors, and every write to a node channel with
 * the client's host and user (nodepv's audit hook), and every node log line
 * (nodes.c, host_log; not when log_retention_days is 0). The store commits
 * the queue a few times a second; nothing here waits for the disk.
 *
 * At start: the crash journal of the previous run is imported, this boot is
 * recorded, the registry is seeded from the file, and every enabled node is
 * started in INIT heading for its saved REQUEST (Guardian's rule: INIT
 * decides where the plant is), with its saved MODE and OP. A node that was
 * executing in quarantine_crashes crashes within quarantine_window starts
 * quarantined: its channels are served, it is not stepped. The scheduler
 * quarantines a node whose steps are too slow the same way while it runs
 * (sup_node_too_slow; a fault is recorded); that is not saved: a restart
 * gives the node a fresh chance, judged again within seconds.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/store.h"
#include "supervisor/sup.h"

static void store_log(void *arg, const char *line)
{
    (void)arg;
    sup_log(SUP_NOTICE, "database: %s", line);
}

/* ---- audit: every write to a node channel ---- */

static void audit(void *arg, node *n, const char *channel, const char *old_value,
                  const char *new_value, const pv_client *who, bool accepted)
{
    sup *s = arg;
    if (!s->store)
        return;
    /* The host as the client names it, and the address it wrote from (what
     * access rules go by: a client can name its host anything). */
    char host[300];
    if (who && who->ip && who->ip != PV_LOCAL_IP)
        snprintf(host, sizeof(host), "%.256s%s%u.%u.%u.%u%s", who->host ? who->host : "",
                 who->host && *who->host ? " (" : "", who->ip >> 24, (who->ip >> 16) & 255,
                 (who->ip >> 8) & 255, who->ip & 255, who->host && *who->host ? ")" : "");
    else
        snprintf(host, sizeof(host), "%.256s", who && who->host ? who->host : "");
    struct store_audit a = {.node = node_name(n), .time = sup_wall(), .channel = channel,
                            .old_value = old_value, .new_value = new_value,
                            .host = who ? host : NULL, .user = who ? who->user : NULL,
                            .accepted = accepted};
    store_audit(s->store, &a);
    sup_node *sn = accepted && (strcmp(channel, "REQUEST") == 0 ||
                                strcmp(channel, "REQUEST_ENUM") == 0)
                       ? sup_node_find(s, a.node) : NULL;
    if (sn) {
        struct sup_request_set *rs = &sn->request_set;
        rs->known = true;
        snprintf(rs->by, sizeof(rs->by), "%.30s@%.30s", a.user ? a.user : "?",
                 a.host ? a.host : "?");
        snprintf(rs->value, sizeof(rs->value), "%s", new_value ? new_value : "");
        rs->time = a.time;
    }
}

/* ---- open and close ---- */

static double next_busy(void *arg)
{
    const sup *s = arg;
    return s->sched.tick > 0 ? sched_next_due(s) : 0;
}

/* The database's lock: <database>.lock, locked (flock, not waiting) for the
 * daemon's life and holding its PID for the message of the next one. The
 * kernel drops the lock when the process ends, however it ends. 0, or -1
 * with the reason in err when another process holds it; a lock file that
 * cannot be made (a read-only folder) is no reason to refuse: the store
 * then says what is wrong with the database itself. */
static int lock_database(sup *s, char *err, size_t errlen)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s.lock", s->cfg.database);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        snprintf(err, errlen, "database %s is in use by another guardiand (pid %s; its lock is "
                 "%s): refusing to start", s->cfg.database, pid[0] ? pid : "unknown", path);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        sup_log(SUP_ERR, "database lock %s: cannot write the PID: %s", path,
                strerror(errno));
    s->db_lock_fd = fd;
    return 0;
}

int persist_open(sup *s, char *err, size_t errlen)
{
    if (lock_database(s, err, errlen) != 0)
        return -1;
    if (s->cfg.crash_journal)
        snprintf(s->journal, sizeof(s->journal), "%s", s->cfg.crash_journal);
    else
        snprintf(s->journal, sizeof(s->journal), "%s.crashes", s->cfg.database);

    /* Flushes fit in the gaps between node ticks (the scheduler's jitter
     * target is 2 ms): the store asks when the next tick is due. */
    struct store_options opt = {.path = s->cfg.database, .retention_days = s->cfg.retention_days,
                                .log_retention_days = s->cfg.log_retention_days, /* 0: the store's */
                                .log = store_log, .next_busy = next_busy, .busy_arg = s};
    int code = 0;
    char why[512];
    s->store = store_open(s->loop, &opt, &code, why, sizeof(why));
    if (!s->store) {
        if (code == STORE_ENEWER) {
            snprintf(err, errlen, "%s", why);
            return -1;
        }
        snprintf(s->store_problem, sizeof(s->store_problem), "%s", why);
        sup_log(SUP_ERR, "database: %s", why);
        sup_log(SUP_WARNING, "running WITHOUT persistence: nodes start from the configuration "
                "file, nothing is saved, and the file is left as it is");
        return 0;
    }
    /* Test hook: make the first N flushes fail as an I/O error would. */
    const char *inject = getenv("GUARDIAND_TEST_FAIL_FLUSHES");
    if (inject && atoi(inject) > 0)
        store_fail_next_flushes(s->store, (unsigned)atoi(inject));
    int n = store_import_journal(s->store, s->journal, why, sizeof(why));
    if (n < 0) /* the store logged the imports themselves */
        sup_log(SUP_ERR, "crash journal: %s (left for the next start)", why);
    s->imported_crashes = n > 0 ? (unsigned)n : 0;
    bool unclean = false;
    int64_t boot = store_boot_begin(s->store, GUARDIAND_VERSION, (int)getpid(), &unclean);
    if (boot < 0)
        sup_log(SUP_ERR, "database: cannot record this boot: %s",
                store_errmsg(s->store));
    s->prev_unclean = unclean;
    return 0;
}

void persist_unlock(sup *s)
{
    if (s->db_lock_fd >= 0)
        close(s->db_lock_fd); /* the lock goes with it; the file stays for the next start */
    s->db_lock_fd = -1;
}

void persist_close(sup *s, bool clean)
{
    if (!s->store) {
        persist_unlock(s);
        return;
    }
    /* Queue the final state of every node, then flush and end the boot. The
     * controls as the channels hold them: a write accepted just before the
     * signal is applied by the node only at its next cycle, which will not
     * come, and must not be lost (as at a stop: lifecycle.c). */
    sup_node *sn, *tmp;
    HASH_ITER(hh, s->nodes, sn, tmp) {
        persist_after_step(s, sn);
        struct life_controls c;
        life_controls(s, sn, &c);
        store_node_state(s->store, sn->name, c.request[0] ? c.request : NULL, c.mode, c.op, NULL);
    }
    store_boot_end(s->store, clean);
    store_close(s->store);
    s->store = NULL;
    persist_unlock(s);
}

/* ---- the node list ---- */

struct list_ctx {
    sup *s;
    void (*fn)(sup *s, const struct sup_node_spec *spec, void *arg);
    void *arg;
};

static int from_store(void *arg, const struct store_node *sn)
{
    struct list_ctx *c = arg;
    struct sup_node_spec spec = {.name = sn->name, .system = sn->system, .args = sn->args,
                                 .n_args = sn->n_args, .enabled = sn->enabled,
                                 .request = sn->request, .mode = sn->mode, .op = sn->op};
    c->fn(c->s, &spec, c->arg);
    return 0;
}

int persist_node_list(sup *s, bool seed,
                      void (*fn)(sup *s, const struct sup_node_spec *spec, void *arg), void *arg)
{
    if (s->store && !seed) {
        struct list_ctx c = {s, fn, arg};
        if (store_nodes(s->store, from_store, &c) >= 0)
            return 0;
    } else if (s->store) {
        struct store_node_def *defs = calloc(s->cfg.n_nodes + 1, sizeof(*defs));
        if (!defs)
            return -1;
        for (unsigned i = 0; i < s->cfg.n_nodes; i++) {
            const struct config_node *cn = &s->cfg.nodes[i];
            defs[i] = (struct store_node_def){.name = cn->name, .system = cn->system,
                                              .args = (const char *const *)cn->args,
                                              .n_args = cn->n_args};
        }
        int r = store_seed(s->store, defs, s->cfg.n_nodes);
        free(defs);
        if (r == STORE_OK) {
            struct list_ctx c = {s, fn, arg};
            if (store_nodes(s->store, from_store, &c) >= 0)
                return 0;
        }
        /* The registry cannot be read now: run the file's nodes, as without
         * a store; what they change is still queued for later. */
        sup_log(SUP_ERR, "database: node registry unavailable (%s): using the file",
                store_errmsg(s->store));
    }
    for (unsigned i = 0; i < s->cfg.n_nodes; i++) {
        const struct config_node *cn = &s->cfg.nodes[i];
        struct sup_node_spec spec = {.name = cn->name, .system = cn->system,
                                     .args = (const char *const *)cn->args,
                                     .n_args = cn->n_args, .enabled = true};
        fn(s, &spec, arg);
    }
    return 0;
}

/* ---- a node starts ---- */

void persist_node_started(sup *s, sup_node *sn, const struct sup_node_spec *spec)
{
    nodepv_set_audit(sn->pv, audit, s);
    /* Saved controls: validated against the system as it is now, and in
     * force (and on the channels) before the first step. */
    const char *request = spec->request;
    if (request && !node_system_state(sn->sys, request)) {
        sup_log(SUP_WARNING, "%s: saved request %s is not a state of %s now; keeping %s",
                sn->name, request, sn->system, node_requested(sn->node)->name);
        request = NULL;
    }
    int rc = node_start_with(sn->node, request, node_mode_value(spec->mode),
                             node_op_value(spec->op));
    assert(rc == NODE_OK);
    (void)rc;
    nodepv_publish(sn->pv);
    if (!s->store)
        return;
    int total = store_crash_total(s->store, sn->name);
    if (total > 0)
        nodepv_set_crashes(sn->pv, total);
    int recent = store_crash_count(s->store, sn->name, sup_wall() - s->cfg.quarantine_window);
    if (recent >= (int)s->cfg.quarantine_crashes) {
        char usermsg[PV_STRING_SIZE], why[128];
        snprintf(usermsg, sizeof(usermsg), "QUARANTINED: %d crashes", recent);
        snprintf(why, sizeof(why), "executing in %d crashes within %g s", recent,
                 s->cfg.quarantine_window);
        life_quarantine(s, sn, usermsg, why);
    }
}

void sup_node_too_slow(sup *s, sup_node *sn)
{
    struct sup_step_times *t = &sn->times;
    double span = sup_now() - t->streak_start;
    snprintf(sn->quarantine_why, sizeof(sn->quarantine_why),
             "too slow: %u steps took longer than the %g s budget within %.1f s (the longest "
             "%.3f s)", t->streak, s->cfg.step_budget, span, t->streak_max);
    char msg[64]; /* USERMSG shows 39 characters: this fits for budgets of 1 ms and more */
    snprintf(msg, sizeof(msg), "TOO SLOW: step %.3g s, budget %.3g s", t->streak_max,
             s->cfg.step_budget);
    char why[sizeof(sn->quarantine_why)];
    snprintf(why, sizeof(why), "%s", sn->quarantine_why);
    sn->too_slow = true;
    t->streak = 0;
    life_quarantine(s, sn, msg, why);
    if (!s->store)
        return;
    const grd_state *st = node_state(sn->node);
    struct store_fault f = {.node = sn->name, .time = sup_wall(), .state = st ? st->name : NULL,
                            .kind = "too slow", .message = sn->quarantine_why};
    store_fault(s->store, &f);
}

/* ---- after each step ---- */

static enum store_how how_of(enum node_transition t)
{
    switch (t) {
    case NODE_TRANS_EDGE: return STORE_HOW_EDGE;
    case NODE_TRANS_JUMP: return STORE_HOW_JUMP;
    case NODE_TRANS_REDIRECT: return STORE_HOW_REDIRECT;
    default: return STORE_HOW_INIT;
    }
}

/* Arguments the system never read: said once, in the log and on stderr. */
static void check_args(sup *s, sup_node *sn)
{
    const grd_state *st = node_state(sn->node);
    if (st && strcmp(st->name, "INIT") == 0 && sup_now() - sn->added < SUP_ARGS_CHECK_AFTER)
        return;
    sn->args_checked = true;
    const char *keys[CONFIG_ARGS_MAX];
    unsigned n = node_unread_args(sn->node, keys, CONFIG_ARGS_MAX);
    size_t used = 0;
    for (unsigned i = 0; i < n && used < sizeof(sn->unread); i++)
        used += (size_t)snprintf(sn->unread + used, sizeof(sn->unread) - used, "%s%s",
                                 i ? ", " : "", keys[i]);
    if (n) {
        sup_log(SUP_WARNING, "%s: WARNING: system %s did not read argument%s %s (a mistyped "
                             "key?)", sn->name, sn->system, n > 1 ? "s" : "", sn->unread);
        node_log(sn->node, "WARNING: system %s did not read argument%s %s (a mistyped key?)",
                 sn->system, n > 1 ? "s" : "", sn->unread);
    }
    (void)s;
}

void persist_after_step(sup *s, sup_node *sn)
{
    node *n = sn->node;
    if (!sn->args_checked)
        check_args(s, sn);
    uint64_t gen = node_generation(n);
    if (!s->store || gen == sn->saved_gen)
        return;
    sn->saved_gen = gen;

    struct node_transition_info tr[NODE_TRANSITIONS_MAX];
    unsigned nt = node_take_transitions(n, tr, NODE_TRANSITIONS_MAX);
    for (unsigned i = 0; i < nt; i++) {
        struct store_transition t = {.node = sn->name, .time = tr[i].wall, .from = tr[i].from,
                                     .to = tr[i].to, .request = tr[i].request,
                                     .how = how_of(tr[i].how)};
        store_transition(s->store, &t);
    }

    const grd_state *req = node_requested(n), *st = node_state(n);
    int mode = (int)node_mode(n), op = (int)node_op(n);
    if (req != sn->saved_req || st != sn->saved_state || mode != sn->saved_mode ||
        op != sn->saved_op) {
        store_node_state(s->store, sn->name, req ? req->name : NULL, node_mode_names[mode],
                         node_op_names[op], st ? st->name : NULL);
        sn->saved_req = req;
        sn->saved_state = st;
        sn->saved_mode = mode;
        sn->saved_op = op;
    }

    bool error = node_error(n) == NODE_ERROR_TRUE;
    if (error && !sn->saved_error) {
        struct store_fault f = {.node = sn->name, .time = sup_wall(),
                                .state = st ? st->name : NULL, .kind = "error",
                                .message = node_error_message(n)};
        store_fault(s->store, &f);
    }
    sn->saved_error = error;
}
