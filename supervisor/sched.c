/* sched.c — the node schedule: every node steps once per cycle (16 Hz by
 * default), nodes spread over SCHED_SLOTS slots of the cycle.
 *
 * Tick k is due at t0 + k * tick, an absolute time, so the schedule never
 * drifts however late one tick runs. Each tick steps the nodes of slot
 * k mod SLOTS. When the loop falls behind (a slow node, a busy CA client),
 * the missed ticks are run at once, in order, so each node still steps once
 * per cycle; only when a whole cycle is lost are its ticks skipped (counted
 * as skipped cycles), so that no node ever steps twice in one cycle.
 *
 * Figures for the supervisor channels: the lateness of each tick (jitter),
 * overruns (a slot whose work ran past the next slot's start), and the
 * loop's utilisation (time between waking from poll and sleeping again).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/crash.h"
#include "supervisor/sup.h"

static void record_late(struct sched *sc, double late)
{
    sc->late[sc->late_pos] = late;
    sc->late_pos = (sc->late_pos + 1) % SCHED_SAMPLES;
    if (sc->n_late < SCHED_SAMPLES)
        sc->n_late++;
}

static void step_slot(sup *s, unsigned slot)
{
    for (sup_node *sn = s->sched.slots[slot]; sn; sn = sn->slot_next) {
        crash_step_begin(sn->name);
        node_step(sn->node);
        crash_step_end();
        nodepv_publish(sn->pv);
        s->sched.steps++;
    }
}

static double due(const struct sched *sc, uint64_t k) { return sc->t0 + (double)k * sc->tick; }

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    sup *s = w->data;
    struct sched *sc = &s->sched;
    double now = sup_now();
    uint64_t current = (uint64_t)floor((now - sc->t0) / sc->tick);
    /* More than a cycle behind: skip whole cycles rather than step twice. */
    if (current >= sc->next + SCHED_SLOTS) {
        uint64_t lost = (current - sc->next) / SCHED_SLOTS;
        sc->skipped_cycles += lost;
        sc->next += lost * SCHED_SLOTS;
    }
    while (sc->next <= current) {
        double start = sup_now();
        record_late(sc, start - due(sc, sc->next));
        step_slot(s, (unsigned)(sc->next % SCHED_SLOTS));
        sc->next++;
        if (sup_now() > due(sc, sc->next))
            sc->overruns++;
    }
    /* Sleep until the next tick is due (absolute, so no drift). */
    double wait = due(sc, sc->next) - sup_now();
    w->repeat = wait > 1e-6 ? wait : 1e-6;
    ev_timer_again(loop, w);
}

/* Loop utilisation: busy from the moment poll returns (check) to the moment
 * the loop is about to sleep again (prepare). */
static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop, (void)revents;
    sup *s = w->data;
    s->sched.woke = sup_now();
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop, (void)revents;
    sup *s = w->data;
    struct sched *sc = &s->sched;
    double now = sup_now();
    if (sc->woke > 0)
        sc->busy += now - sc->woke;
    if (now - sc->window_start >= 1.0) {
        sc->util = sc->busy / (now - sc->window_start);
        sc->busy = 0;
        sc->window_start = now;
    }
}

void sched_start(sup *s)
{
    struct sched *sc = &s->sched;
    sc->tick = 1.0 / (s->cfg.rate * SCHED_SLOTS);
    sc->t0 = sup_now();
    sc->next = 0;
    sc->window_start = sc->t0;
    ev_init(&sc->timer, tick_cb);
    sc->timer.data = s;
    sc->timer.repeat = sc->tick;
    ev_timer_again(s->loop, &sc->timer);
    ev_check_init(&sc->check, check_cb);
    ev_prepare_init(&sc->prepare, prepare_cb);
    sc->check.data = sc->prepare.data = s;
    ev_check_start(s->loop, &sc->check);
    ev_prepare_start(s->loop, &sc->prepare);
}

void sched_stop(sup *s)
{
    ev_timer_stop(s->loop, &s->sched.timer);
    ev_check_stop(s->loop, &s->sched.check);
    ev_prepare_stop(s->loop, &s->sched.prepare);
}

/* A new node goes to the emptiest slot, at the end of it. */
void sched_add(sup *s, sup_node *sn)
{
    struct sched *sc = &s->sched;
    unsigned best = 0;
    for (unsigned i = 1; i < SCHED_SLOTS; i++)
        if (sc->slot_count[i] < sc->slot_count[best])
            best = i;
    sn->slot = best;
    sn->slot_next = NULL;
    sup_node **pp = &sc->slots[best];
    while (*pp)
        pp = &(*pp)->slot_next;
    *pp = sn;
    sc->slot_count[best]++;
}

void sched_remove(sup *s, sup_node *sn)
{
    struct sched *sc = &s->sched;
    for (sup_node **pp = &sc->slots[sn->slot]; *pp; pp = &(*pp)->slot_next)
        if (*pp == sn) {
            *pp = sn->slot_next;
            sc->slot_count[sn->slot]--;
            return;
        }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void sched_jitter(const struct sched *sc, double *p50, double *p99, double *max)
{
    *p50 = *p99 = *max = 0;
    if (!sc->n_late)
        return;
    double *v = malloc(sc->n_late * sizeof(double));
    if (!v)
        return;
    memcpy(v, sc->late, sc->n_late * sizeof(double));
    qsort(v, sc->n_late, sizeof(double), cmp_double);
    *p50 = v[sc->n_late / 2];
    *p99 = v[(sc->n_late * 99) / 100];
    *max = v[sc->n_late - 1];
    free(v);
}
