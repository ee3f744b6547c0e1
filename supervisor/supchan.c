/* supchan.c — the supervisor's own channels, under a configurable prefix
 * (default <IFO>:GUARDIAND-): how many nodes run, how busy the loop is, how
 * late the node ticks run, and the CA server's load. Refreshed once a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "supervisor/sup.h"

enum { S_NODES, S_LOOP_UTIL, S_JITTER_P50, S_JITTER_P99, S_JITTER_MAX, S_OVERRUNS, S_SKIPPED,
       S_UPTIME, S_VERSION, S_RATE, S_CA_CLIENTS, S_CA_CHANNELS, S_DB_STATUS, S_DB_MESSAGE,
       S_DB_QUEUED, S_DB_COMMITTED, S_PREV_BOOT, S_QUARANTINED, S_COUNT };

#define SUP_DB_MESSAGE_MAX 256 /* characters of DB_MESSAGE, with its NUL */

static const char *const db_status_strs[] = {"OK", "DEGRADED", "NONE"};
static const char *const boot_strs[] = {"CLEAN", "UNCLEAN"};

struct supchan {
    sup *sup;
    pv_group *group;
    pv *pv[S_COUNT];
    ev_timer timer;
};

static const struct {
    int id;
    const char *name;
    enum pv_type type;
    const char *units;
    int16_t prec;
    const char *const *enums;
    unsigned n_enums;
    uint32_t count; /* elements of an array; 0: one */
} defs[] = {
    {S_NODES, "NODES", PV_LONG, NULL, 0, NULL, 0, 0},
    {S_LOOP_UTIL, "LOOP_UTIL", PV_DOUBLE, "%", 1, NULL, 0, 0},
    {S_JITTER_P50, "JITTER_P50", PV_DOUBLE, "ms", 3, NULL, 0, 0},
    {S_JITTER_P99, "JITTER_P99", PV_DOUBLE, "ms", 3, NULL, 0, 0},
    {S_JITTER_MAX, "JITTER_MAX", PV_DOUBLE, "ms", 3, NULL, 0, 0},
    {S_OVERRUNS, "OVERRUNS", PV_LONG, NULL, 0, NULL, 0, 0},
    {S_SKIPPED, "SKIPPED_CYCLES", PV_LONG, NULL, 0, NULL, 0, 0},
    {S_UPTIME, "UPTIME", PV_DOUBLE, "s", 0, NULL, 0, 0},
    {S_VERSION, "VERSION", PV_STRING, NULL, 0, NULL, 0, 0},
    {S_RATE, "RATE", PV_DOUBLE, "Hz", 2, NULL, 0, 0},
    {S_CA_CLIENTS, "CA_CLIENTS", PV_LONG, NULL, 0, NULL, 0, 0},
    {S_CA_CHANNELS, "CA_CHANNELS", PV_LONG, NULL, 0, NULL, 0, 0},
    /* The database: OK, DEGRADED (writes failing, being retried: MAJOR
     * alarm) or NONE (running without one: MAJOR alarm), and why. */
    {S_DB_STATUS, "DB_STATUS", PV_ENUM, NULL, 0, db_status_strs, 3, 0},
    /* A long string (a CHAR array, `caget -S`): a database error rarely
     * fits the 39 characters of a STRING. */
    {S_DB_MESSAGE, "DB_MESSAGE", PV_CHAR, NULL, 0, NULL, 0, SUP_DB_MESSAGE_MAX},
    {S_DB_QUEUED, "DB_QUEUED", PV_LONG, NULL, 0, NULL, 0, 0},
    {S_DB_COMMITTED, "DB_COMMITTED", PV_LONG, NULL, 0, NULL, 0, 0},
    {S_PREV_BOOT, "PREV_BOOT", PV_ENUM, NULL, 0, boot_strs, 2, 0},
    {S_QUARANTINED, "QUARANTINED", PV_LONG, NULL, 0, NULL, 0, 0},
};

unsigned supchan_channels(struct medm_chan *out, unsigned max)
{
    unsigned n = sizeof(defs) / sizeof(defs[0]);
    for (unsigned i = 0; i < n && i < max; i++)
        out[i] = (struct medm_chan){.suffix = defs[i].name,
                                    .text = defs[i].type == PV_STRING || defs[i].type == PV_ENUM ||
                                            defs[i].type == PV_CHAR,
                                    .alarm = defs[i].id == S_DB_STATUS};
    return n;
}

void supchan_prefix(const sup *s, char *out, size_t len)
{
    if (s->cfg.supervisor_prefix)
        snprintf(out, len, "%s", s->cfg.supervisor_prefix);
    else
        snprintf(out, len, "%s:GUARDIAND-", s->cfg.ifo);
}

static void refresh_db(struct supchan *sc)
{
    sup *s = sc->sup;
    unsigned status = 2;
    char msg[SUP_DB_MESSAGE_MAX] = ""; /* NUL-padded: the whole array is sent */
    if (snprintf(msg, sizeof(msg), "%s", s->store_problem) >= (int)sizeof(msg))
        msg[sizeof(msg) - 1] = '\0'; /* cut: the whole of it is in the log */
    if (s->store) {
        struct store_status st;
        store_status(s->store, &st);
        status = st.ok ? 0 : 1;
        memset(msg, 0, sizeof(msg));
        if (snprintf(msg, sizeof(msg), "%s", st.ok ? "" : st.error) >= (int)sizeof(msg))
            msg[sizeof(msg) - 1] = '\0';
        pv_set_long(sc->pv[S_DB_QUEUED], (long)st.queued);
        pv_set_long(sc->pv[S_DB_COMMITTED], (long)st.committed_total);
    }
    pv_set_enum(sc->pv[S_DB_STATUS], status);
    pv_set_alarm(sc->pv[S_DB_STATUS], status ? PV_ALARM_STATE : PV_ALARM_NONE,
                 status ? PV_SEV_MAJOR : PV_SEV_NONE);
    pv_set_array(sc->pv[S_DB_MESSAGE], msg, sizeof(msg));
    pv_set_enum(sc->pv[S_PREV_BOOT], s->prev_unclean);
    long quarantined = 0;
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next)
        quarantined += sn->quarantined;
    pv_set_long(sc->pv[S_QUARANTINED], quarantined);
}

static void refresh(struct supchan *sc)
{
    sup *s = sc->sup;
    double p50, p99, max;
    sched_jitter(&s->sched, &p50, &p99, &max);
    pv_set_long(sc->pv[S_NODES], (long)s->n_nodes);
    pv_set_double(sc->pv[S_LOOP_UTIL], s->sched.util * 100);
    pv_set_double(sc->pv[S_JITTER_P50], p50 * 1e3);
    pv_set_double(sc->pv[S_JITTER_P99], p99 * 1e3);
    pv_set_double(sc->pv[S_JITTER_MAX], max * 1e3);
    pv_set_long(sc->pv[S_OVERRUNS], (long)s->sched.overruns);
    pv_set_long(sc->pv[S_SKIPPED], (long)s->sched.skipped_cycles);
    pv_set_double(sc->pv[S_UPTIME], sup_now() - s->started);
    pv_set_double(sc->pv[S_RATE], s->cfg.rate);
    if (s->ca) {
        struct cas_stats st;
        cas_get_stats(s->ca, &st);
        pv_set_long(sc->pv[S_CA_CLIENTS], (long)st.clients);
        pv_set_long(sc->pv[S_CA_CHANNELS], (long)st.channels);
    }
    refresh_db(sc);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    refresh(w->data);
}

struct supchan *supchan_new(sup *s, char *err, size_t errlen)
{
    struct supchan *sc = calloc(1, sizeof(*sc));
    char prefix[128];
    supchan_prefix(s, prefix, sizeof(prefix));
    if (!sc || !(sc->group = pvdb_group_new(s->db, prefix))) {
        free(sc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    sc->sup = s;
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        int e = pv_group_add(sc->group, &(pv_def){.name = defs[i].name, .type = defs[i].type,
                                                 .units = defs[i].units, .precision = defs[i].prec,
                                                 .enums = defs[i].enums,
                                                 .n_enums = defs[i].n_enums,
                                                 .count = defs[i].count},
                             &sc->pv[defs[i].id]);
        if (e) {
            snprintf(err, errlen, "supervisor channel %s%s: %s", prefix, defs[i].name,
                     pvdb_strerror(e));
            supchan_free(sc);
            return NULL;
        }
    }
    pv_set_string(sc->pv[S_VERSION], GUARDIAND_VERSION);
    refresh(sc);
    ev_timer_init(&sc->timer, timer_cb, 1.0, 1.0);
    sc->timer.data = sc;
    ev_timer_start(s->loop, &sc->timer);
    return sc;
}

void supchan_free(struct supchan *sc)
{
    if (!sc)
        return;
    ev_timer_stop(sc->sup->loop, &sc->timer);
    pv_group_free(sc->group);
    free(sc);
}
