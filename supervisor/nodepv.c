/* nodepv.c — a node's channels (guardian.md Part A), bound to the node.
 *
 * One pvdb group per node, prefix <IFO>:GRD-<NODE>_. The PVs are created
 * from one table so the channel set reads as a list; each has a slot in the
 * binding so publishing is a direct store, not a name lookup.
 */
#include "supervisor/nodepv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum chan {
    C_OP, C_MODE, C_REQUEST, C_REQUEST_S, C_REQUEST_N, C_REQUEST_ENUM,
    C_STATE, C_STATE_S, C_STATE_N, C_TARGET, C_TARGET_S, C_TARGET_N,
    C_NOMINAL, C_NOMINAL_S, C_NOMINAL_N, C_STATUS, C_ERROR, C_CONNECT, C_OK, C_ACTIVE,
    C_NOTIFICATION, C_USERMSG, C_LOAD, C_LOAD_STATUS, C_LOAD_TIME, C_EXECTIME,
    C_EXECTIME_LAST, C_VERSION, C_MANAGER, C_SUBNODES_TOTAL, C_SUBNODES_NOT_OK,
    C_SPM_TOTAL, C_SPM_CHANGED, C_CRASHES, C_QUARANTINED, C_STALLED, C_CHANGED_BY,
    C_SPM_MONITOR, C_LOAD_PENDING,
    C_COUNT
};

static const char *const error_strs[] = {"False", "True", "", "Connect"};
static const char *const connect_strs[] = {"OK", "ERROR"};
static const char *const bool_strs[] = {"False", "True"};
static const char *const load_strs[] = {"DONE", "REQUEST", "SET", "INPROGRESS", "ERROR"};

/* Alarm severities of the enum channels whose values mean trouble, one per
 * state, as an EPICS bi/mbbi record's ZSV, OSV... would give them: alarm-
 * coloured screen widgets and alarm tools see them (README, "Running
 * guardiand"). The alarm status is STATE whenever the severity is not NONE. */
#define NO PV_SEV_NONE
#define MINOR PV_SEV_MINOR
#define MAJOR PV_SEV_MAJOR
static const uint8_t ok_sev[] = {MAJOR, NO};                /* OK=False */
static const uint8_t error_sev[] = {NO, MAJOR, MAJOR, MAJOR}; /* ERROR != False */
static const uint8_t connect_sev[] = {NO, MAJOR};           /* CONNECT=ERROR */
static const uint8_t true_major[] = {NO, MAJOR};            /* QUARANTINED=True */
static const uint8_t true_minor[] = {NO, MINOR}; /* NOTIFICATION, STALLED, LOAD_PENDING=True */
#undef NO
#undef MINOR
#undef MAJOR

struct nodepv {
    node *node;
    pv_group *group;
    pv *pv[C_COUNT];
    const grd_state *menu[PV_ENUM_MAX]; /* REQUEST_ENUM index -> state */
    unsigned n_menu;
    uint64_t published;                 /* node generation last copied */
    double load_time;                   /* LOAD_TIME as last published */
    bool ever;                          /* published at least once */
    nodepv_load_fn on_load;
    void *arg;
    nodepv_audit_fn audit;
    void *audit_arg;
    bool quarantined;                   /* held out of execution: see nodepv_quarantine */
    char quarantine_msg[PV_STRING_SIZE];
    /* The latest claims refused, audited once each while they are retried. */
    char refused_claims[4][PV_STRING_SIZE];
    unsigned refused_next;
};

/* ---- write handlers: validate, hand to the node, let pvdb store ---- */

/* A value of an enum PV as text: its state string, or the number. */
static void enum_text(const pv *pv, unsigned v, char *buf, size_t len)
{
    const char *s = pv_enum_string(pv, v);
    if (s)
        snprintf(buf, len, "%.*s", PV_ENUM_STRING_SIZE, s);
    else
        snprintf(buf, len, "%u", v);
}

/* Tell the audit hook of a write: the channel, old and new values as text,
 * who wrote, and whether it was accepted. Returns `result`. */
static int audited(nodepv *np, pv *pv, const char *new_text, const pv_client *who, int result)
{
    if (!np->audit)
        return result;
    char old_text[PV_STRING_SIZE];
    if (pv_type(pv) == PV_ENUM)
        enum_text(pv, (unsigned)pv_get_long(pv), old_text, sizeof(old_text));
    else
        snprintf(old_text, sizeof(old_text), "%s", (const char *)pv_value(pv));
    const char *channel = pv_name(pv) + strlen(pv_group_prefix(np->group));
    np->audit(np->audit_arg, np->node, channel, old_text, new_text, who, result == 0);
    return result;
}

static int audited_enum(nodepv *np, pv *pv, uint16_t v, const pv_client *who, int result)
{
    char text[PV_STRING_SIZE];
    enum_text(pv, v, text, sizeof(text));
    return audited(np, pv, text, who, result);
}

/* An accepted change of OP, MODE or REQUEST: CHANGED_BY names who made it
 * (user@host), so that a manager can say who changed its subordinate. */
static int changed_by(nodepv *np, const pv_client *who, int result)
{
    if (result == 0 && who) {
        char text[PV_STRING_SIZE];
        snprintf(text, sizeof(text), "%.20s@%.18s", who->user ? who->user : "",
                 who->host ? who->host : "");
        pv_set_string(np->pv[C_CHANGED_BY], text);
    }
    return result;
}

static int write_op(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n;
    nodepv *np = arg;
    uint16_t v;
    memcpy(&v, value, sizeof(v));
    int r = !np->quarantined && node_set_op(np->node, (enum node_op)v) == NODE_OK ? 0
                                                                                 : PVDB_EREJECT;
    return changed_by(np, who, audited_enum(np, pv, v, who, r));
}

static int write_mode(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n;
    nodepv *np = arg;
    uint16_t v;
    memcpy(&v, value, sizeof(v));
    int r = !np->quarantined && node_set_mode(np->node, (enum node_mode)v) == NODE_OK ? 0
                                                                                     : PVDB_EREJECT;
    return changed_by(np, who, audited_enum(np, pv, v, who, r));
}

/* A written STRING value, terminated. */
static void string_value(const void *value, char name[PV_STRING_SIZE])
{
    memcpy(name, value, PV_STRING_SIZE);
    name[PV_STRING_SIZE - 1] = 0;
}

static int write_request(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n;
    nodepv *np = arg;
    char name[PV_STRING_SIZE];
    string_value(value, name);
    int r = !np->quarantined && node_request(np->node, name) == NODE_OK ? 0 : PVDB_EREJECT;
    return changed_by(np, who, audited(np, pv, name, who, r));
}

static int write_request_enum(pv *pv, const void *value, uint32_t n, const pv_client *who,
                              void *arg)
{
    (void)n;
    nodepv *np = arg;
    uint16_t v;
    memcpy(&v, value, sizeof(v));
    if (v >= np->n_menu)
        return audited_enum(np, pv, v, who, PVDB_ERANGE);
    int r = !np->quarantined && node_request(np->node, np->menu[v]->name) == NODE_OK
                ? 0 : PVDB_EREJECT;
    return changed_by(np, who, audited_enum(np, pv, v, who, r));
}

/* MANAGER: a manager's claim (node_claim), renewed by writing it again each
 * NODE_CLAIM_RENEW s; "" releases. Renewals, and a refused claim tried again
 * and again, are audited once, not once a second. */
static int write_manager(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n;
    nodepv *np = arg;
    char name[PV_STRING_SIZE];
    string_value(value, name);
    bool renewal = name[0] && strcmp(name, node_manager(np->node)) == 0;
    int r = node_claim(np->node, name) == NODE_OK ? 0 : PVDB_EREJECT;
    if (r == 0 && renewal)
        return 0;
    const size_t n_refused = sizeof(np->refused_claims) / sizeof(np->refused_claims[0]);
    for (size_t i = 0; i < n_refused; i++) {
        if (strcmp(np->refused_claims[i], name) != 0)
            continue;
        if (r != 0)
            return r; /* retried: audited already */
        np->refused_claims[i][0] = '\0'; /* taken at last: a later refusal is news */
    }
    if (r != 0) {
        snprintf(np->refused_claims[np->refused_next], PV_STRING_SIZE, "%s", name);
        np->refused_next = (np->refused_next + 1) % n_refused;
    }
    return audited(np, pv, name, who, r);
}

/* LOAD is momentary: True asks for a reload, and the channel reads False
 * again at once (LOAD_STATUS tells how the reload goes). */
static int write_load(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n;
    nodepv *np = arg;
    uint16_t v;
    memcpy(&v, value, sizeof(v));
    if (v == 1) {
        if (np->quarantined || !np->on_load || np->on_load(np->node, np->arg) != 0)
            return audited_enum(np, pv, v, who, PVDB_EREJECT);
    }
    audited_enum(np, pv, v, who, 0);
    pv_set_enum(pv, 0); /* stored by us: pvdb keeps it, not the written 1 */
    return 0;
}

/* ---- access ---- */

static const char owner_kind; /* tags the PV groups nodepv owns (pv_group_set_owner) */

static nodepv *owner(const pv *pv) { return pv_group_owner(pv_get_group(pv), &owner_kind); }

bool nodepv_identify(const pv *pv, const char **node, const char **channel)
{
    const nodepv *np = owner(pv);
    if (!np)
        return false;
    *node = node_name(np->node);
    *channel = pv_name(pv) + strlen(pv_group_prefix(np->group));
    return true;
}

void nodepv_refused(pv *pv, const void *value, uint32_t n, const pv_client *who)
{
    (void)n;
    nodepv *np = owner(pv);
    if (!np)
        return;
    if (pv_type(pv) == PV_ENUM) {
        uint16_t v;
        memcpy(&v, value, sizeof(v));
        audited_enum(np, pv, v, who, PVDB_EACCESS);
    } else if (pv_type(pv) == PV_STRING) {
        char text[PV_STRING_SIZE];
        string_value(value, text);
        audited(np, pv, text, who, PVDB_EACCESS);
    }
}

/* ---- the channel table ---- */

struct chan_def {
    enum chan id;
    const char *suffix;
    enum pv_type type;
    const char *const *enums;
    unsigned n_enums;
    pv_write_fn on_write;
    const char *units;
    int16_t precision;
    const uint8_t *severity; /* per enum state (n_enums of them), or NULL: none */
};

#define ENUM(strs) PV_ENUM, strs, sizeof(strs) / sizeof(strs[0])
static const struct chan_def chans[] = {
    {C_OP, "OP", ENUM(node_op_names), write_op, NULL, 0, NULL},
    {C_MODE, "MODE", ENUM(node_mode_names), write_mode, NULL, 0, NULL},
    {C_REQUEST, "REQUEST", PV_STRING, NULL, 0, write_request, NULL, 0, NULL},
    {C_REQUEST_S, "REQUEST_S", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_REQUEST_N, "REQUEST_N", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_REQUEST_ENUM, "REQUEST_ENUM", PV_ENUM, NULL, 0, write_request_enum, NULL, 0, NULL},
    {C_STATE, "STATE", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_STATE_S, "STATE_S", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_STATE_N, "STATE_N", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_TARGET, "TARGET", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_TARGET_S, "TARGET_S", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_TARGET_N, "TARGET_N", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_NOMINAL, "NOMINAL", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_NOMINAL_S, "NOMINAL_S", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_NOMINAL_N, "NOMINAL_N", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_STATUS, "STATUS", ENUM(node_status_names), NULL, NULL, 0, NULL},
    {C_ERROR, "ERROR", ENUM(error_strs), NULL, NULL, 0, error_sev},
    {C_CONNECT, "CONNECT", ENUM(connect_strs), NULL, NULL, 0, connect_sev},
    {C_OK, "OK", ENUM(bool_strs), NULL, NULL, 0, ok_sev},
    {C_ACTIVE, "ACTIVE", ENUM(bool_strs), NULL, NULL, 0, NULL},
    {C_NOTIFICATION, "NOTIFICATION", ENUM(bool_strs), NULL, NULL, 0, true_minor},
    {C_USERMSG, "USERMSG", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_LOAD, "LOAD", ENUM(bool_strs), write_load, NULL, 0, NULL},
    {C_LOAD_STATUS, "LOAD_STATUS", ENUM(load_strs), NULL, NULL, 0, NULL},
    {C_LOAD_TIME, "LOAD_TIME", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_EXECTIME, "EXECTIME", PV_DOUBLE, NULL, 0, NULL, "seconds", 3, NULL},
    {C_EXECTIME_LAST, "EXECTIME_LAST", PV_DOUBLE, NULL, 0, NULL, "seconds", 3, NULL},
    {C_VERSION, "VERSION", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    {C_MANAGER, "MANAGER", PV_STRING, NULL, 0, write_manager, NULL, 0, NULL},
    {C_SUBNODES_TOTAL, "SUBNODES_TOTAL", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_SUBNODES_NOT_OK, "SUBNODES_NOT_OK", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_SPM_TOTAL, "SPM_TOTAL", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_SPM_CHANGED, "SPM_CHANGED", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_CRASHES, "CRASHES", PV_LONG, NULL, 0, NULL, NULL, 0, NULL},
    {C_QUARANTINED, "QUARANTINED", ENUM(bool_strs), NULL, NULL, 0, true_major},
    {C_STALLED, "STALLED", ENUM(bool_strs), NULL, NULL, 0, true_minor},
    {C_CHANGED_BY, "CHANGED_BY", PV_STRING, NULL, 0, NULL, NULL, 0, NULL},
    /* KAGRA's Guardian screens read it: True while the set-point monitor
     * watches a channel (SPM_TOTAL > 0). */
    {C_SPM_MONITOR, "SPM_MONITOR", ENUM(bool_strs), NULL, NULL, 0, NULL},
    /* Issue 13: True while the module file on disk is not the code that
     * runs (changed or gone since it was loaded): a LOAD would run it. */
    {C_LOAD_PENDING, "LOAD_PENDING", ENUM(bool_strs), NULL, NULL, 0, true_minor},
};
#undef ENUM

/* An enum channel's value, with the severity its table gives that value. */
static void set_enum(nodepv *np, enum chan c, unsigned v)
{
    pv_set_enum(np->pv[c], v);
    const uint8_t *sev = chans[c].severity;
    if (sev && v < chans[c].n_enums)
        pv_set_alarm(np->pv[c], sev[v] ? PV_ALARM_STATE : PV_ALARM_NONE, sev[v]);
}

const char *nodepv_writable_channel(const char *suffix)
{
    for (size_t i = 0; suffix && i < sizeof(chans) / sizeof(chans[0]); i++)
        if (chans[i].on_write && strcasecmp(chans[i].suffix, suffix) == 0)
            return chans[i].suffix;
    return NULL;
}

void nodepv_writable_list(char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
        if (!chans[i].on_write)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", chans[i].suffix);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

/* REQUEST_ENUM lists the requestable states by index (at most 16). */
static void build_menu(nodepv *np)
{
    const grd_state *states[PV_ENUM_MAX];
    np->n_menu = node_system_requestable(node_system_of(np->node), states, PV_ENUM_MAX);
    const char *names[PV_ENUM_MAX];
    for (unsigned i = 0; i < np->n_menu; i++) {
        np->menu[i] = states[i];
        names[i] = states[i]->name;
    }
    pv_set_enums(np->pv[C_REQUEST_ENUM], names, np->n_menu);
}

void nodepv_states_changed(nodepv *np)
{
    build_menu(np);
    np->ever = false; /* republish everything */
}

nodepv *nodepv_new(pvdb *db, const char *ifo, node *n, const char *version,
                   nodepv_load_fn on_load, void *arg, char *err, size_t errlen)
{
    nodepv *np = calloc(1, sizeof(*np));
    char prefix[128];
    node_channel_name(prefix, sizeof(prefix), ifo, node_name(n), "");
    if (!np || !(np->group = pvdb_group_new(db, prefix))) {
        snprintf(err, errlen, "out of memory");
        free(np);
        return NULL;
    }
    np->node = n;
    pv_group_set_owner(np->group, &owner_kind, np);
    np->on_load = on_load;
    np->arg = arg;
    static_assert(sizeof(chans) / sizeof(chans[0]) == C_COUNT, "one table entry a channel");
    for (size_t i = 0; i < sizeof(chans) / sizeof(chans[0]); i++) {
        const struct chan_def *c = &chans[i];
        assert(c->id == (enum chan)i); /* set_enum finds a channel's entry by its id */
        pv_def def = {.name = c->suffix, .type = c->type, .enums = c->enums,
                      .n_enums = c->n_enums, .writable = c->on_write != NULL,
                      .on_write = c->on_write, .arg = np, .units = c->units,
                      .precision = c->precision};
        int e = pv_group_add(np->group, &def, &np->pv[c->id]);
        if (e) {
            snprintf(err, errlen, "channel %s%s: %s", prefix, c->suffix, pvdb_strerror(e));
            nodepv_free(np);
            return NULL;
        }
    }
    build_menu(np);
    pv_set_string(np->pv[C_VERSION], version);
    pv_set_string(np->pv[C_MANAGER], "");
    pv_set_string(np->pv[C_USERMSG], "");
    pv_set_string(np->pv[C_CHANGED_BY], "");
    long zero_longs[] = {C_SUBNODES_TOTAL, C_SUBNODES_NOT_OK, C_SPM_TOTAL, C_SPM_CHANGED,
                         C_CRASHES};
    for (size_t i = 0; i < sizeof(zero_longs) / sizeof(zero_longs[0]); i++)
        pv_set_long(np->pv[zero_longs[i]], 0);
    set_enum(np, C_QUARANTINED, 0);
    set_enum(np, C_LOAD, 0);
    set_enum(np, C_LOAD_PENDING, 0);
    nodepv_publish(np);
    return np;
}

void nodepv_free(nodepv *np)
{
    if (!np)
        return;
    pv_group_free(np->group);
    free(np);
}

static void set_state_triplet(nodepv *np, enum chan name, enum chan s, enum chan idx,
                              const grd_state *st)
{
    pv_set_string(np->pv[name], st ? st->name : "");
    pv_set_string(np->pv[s], st ? st->name : "");
    pv_set_long(np->pv[idx], st ? st->index : -1);
}

static void publish_load_time(nodepv *np)
{
    if (np->ever && node_load_time(np->node) == np->load_time)
        return; /* formatting a time for every state change was measurable */
    np->load_time = node_load_time(np->node);
    time_t t = (time_t)np->load_time;
    struct tm tm;
    char buf[PV_STRING_SIZE];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
    pv_set_string(np->pv[C_LOAD_TIME], buf);
}

void nodepv_publish(nodepv *np)
{
    node *n = np->node;
    pv_set_double(np->pv[C_EXECTIME], node_exectime(n));
    uint64_t gen = node_generation(n);
    if (np->ever && gen == np->published)
        return;
    np->published = gen;
    np->ever = true;
    const grd_state *req = node_requested(n);
    set_state_triplet(np, C_REQUEST, C_REQUEST_S, C_REQUEST_N, req);
    set_state_triplet(np, C_STATE, C_STATE_S, C_STATE_N, node_state(n));
    set_state_triplet(np, C_TARGET, C_TARGET_S, C_TARGET_N, node_target(n));
    set_state_triplet(np, C_NOMINAL, C_NOMINAL_S, C_NOMINAL_N, node_nominal(n));
    bool in_menu = false;
    for (unsigned i = 0; i < np->n_menu; i++)
        if (np->menu[i] == req) {
            set_enum(np, C_REQUEST_ENUM, i);
            in_menu = true;
        }
    /* A request by name of a state that is not requestable (INIT, say)
     * has no menu entry: the menu's value is then stale, and says so. */
    pv_set_alarm(np->pv[C_REQUEST_ENUM], in_menu ? PV_ALARM_NONE : PV_ALARM_STATE,
                 in_menu ? PV_SEV_NONE : PV_SEV_INVALID);
    set_enum(np, C_OP, node_op(n));
    set_enum(np, C_MODE, node_mode(n));
    enum node_status trail[NODE_STATUS_TRAIL];
    unsigned passed = node_take_status_trail(n, trail, NODE_STATUS_TRAIL);
    for (unsigned i = 0; i < passed; i++) /* each a monitor update of its own */
        set_enum(np, C_STATUS, trail[i]);
    set_enum(np, C_STATUS, node_status(n));
    set_enum(np, C_ERROR, node_error(n));
    set_enum(np, C_CONNECT, node_connected(n) ? 0 : 1);
    pv_set_long(np->pv[C_SPM_TOTAL], (long)node_spm_total(n));
    pv_set_long(np->pv[C_SPM_CHANGED], (long)node_spm_changed(n));
    set_enum(np, C_OK, node_ok(n));
    set_enum(np, C_ACTIVE, node_active(n));
    set_enum(np, C_NOTIFICATION, node_notification(n));
    pv_set_string(np->pv[C_USERMSG], node_usermsg(n));
    set_enum(np, C_LOAD_STATUS, node_load_status(n));
    pv_set_double(np->pv[C_EXECTIME_LAST], node_exectime_last(n));
    pv_set_string(np->pv[C_MANAGER], node_manager(n));
    set_enum(np, C_STALLED, node_stalled(n));
    set_enum(np, C_SPM_MONITOR, node_spm_total(n) > 0);
    unsigned not_ok, total = node_subnodes(n, &not_ok);
    pv_set_long(np->pv[C_SUBNODES_TOTAL], (long)total);
    pv_set_long(np->pv[C_SUBNODES_NOT_OK], (long)not_ok);
    publish_load_time(np);
    if (np->quarantined) {
        /* The node does not run: say so where operators look. */
        set_enum(np, C_OK, 0);
        set_enum(np, C_ACTIVE, 0);
        set_enum(np, C_NOTIFICATION, 1);
        pv_set_string(np->pv[C_USERMSG], np->quarantine_msg);
    }
}

void nodepv_set_crashes(nodepv *np, long crashes) { pv_set_long(np->pv[C_CRASHES], crashes); }
void nodepv_set_load_pending(nodepv *np, bool pending) { set_enum(np, C_LOAD_PENDING, pending); }

void nodepv_set_audit(nodepv *np, nodepv_audit_fn fn, void *arg)
{
    np->audit = fn;
    np->audit_arg = arg;
}

void nodepv_quarantine(nodepv *np, bool q, const char *usermsg)
{
    np->quarantined = q;
    snprintf(np->quarantine_msg, sizeof(np->quarantine_msg), "%s", q && usermsg ? usermsg : "");
    set_enum(np, C_QUARANTINED, q);
    np->ever = false; /* republish: USERMSG, OK, ACTIVE change */
    nodepv_publish(np);
}
