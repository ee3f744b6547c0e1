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
 * The ticks come from a timerfd armed at each tick's absolute due time and
 * watched by an ev_io: libev's own timers wake through epoll_wait, whose
 * timeout is whole milliseconds rounded up, which would make every tick
 * about half a millisecond late.
 *
 * Figures for the supervisor channels: the lateness of each tick (jitter),
 * overruns (a slot whose work ran past the next slot's start), and the
 * loop's utilisation (time between waking from poll and sleeping again).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "plant/plant.h"
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
        if (sn->quarantined)
            continue;
        crash_step_begin(sn->name);
        node_step(sn->node);
        crash_step_end();
        persist_after_step(s, sn);
        nodepv_publish(sn->pv);
        s->sched.steps++;
        /* For the watchdog's health check (sched_stale_node): O(1) here. */
        sn->stepped_cycle = s->sched.next / SCHED_SLOTS;
    }
}

static double due(const struct sched *sc, uint64_t k) { return sc->t0 + (double)k * sc->tick; }

/* Arm the timerfd for monotonic time t (absolute). */
static void arm(struct sched *sc, double t)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)t;
    its.it_value.tv_nsec = (long)((t - (double)its.it_value.tv_sec) * 1e9);
    if (its.it_value.tv_nsec >= 1000000000L)
        its.it_value.tv_nsec = 999999999L;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* zero would disarm it */
    timerfd_settime(sc->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

double sched_next_due(const sup *s)
{
    const struct sched *sc = &s->sched;
    return sc->t0 + (double)sc->next * sc->tick;
}

static void tick_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    sup *s = w->data;
    struct sched *sc = &s->sched;
    uint64_t expirations;
    if (read(sc->tfd, &expirations, sizeof(expirations)) < 0) {
        /* EAGAIN: woken for nothing; anything else: re-arm below anyway. */
    }
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
    arm(sc, due(sc, sc->next));
    /* A plant poll put off for this tick runs now, in the gap to the next. */
    plant_work_done(s->plant);
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
    sup_log_flush();
    double now = sup_now();
    if (sc->woke > 0)
        sc->busy += now - sc->woke;
    if (now - sc->window_start >= 1.0) {
        sc->util = sc->busy / (now - sc->window_start);
        sc->busy = 0;
        sc->window_start = now;
    }
}

int sched_start(sup *s)
{
    struct sched *sc = &s->sched;
    sc->tick = 1.0 / (s->cfg.rate * SCHED_SLOTS);
    sc->t0 = sup_now();
    sc->next = 0;
    sc->window_start = sc->t0;
    sc->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (sc->tfd < 0)
        return -1;
    ev_io_init(&sc->timer, tick_cb, sc->tfd, EV_READ);
    sc->timer.data = s;
    ev_io_start(s->loop, &sc->timer);
    arm(sc, due(sc, 0));
    ev_check_init(&sc->check, check_cb);
    ev_prepare_init(&sc->prepare, prepare_cb);
    sc->check.data = sc->prepare.data = s;
    ev_check_start(s->loop, &sc->check);
    ev_prepare_start(s->loop, &sc->prepare);
    return 0;
}

void sched_stop(sup *s)
{
    ev_io_stop(s->loop, &s->sched.timer);
    if (s->sched.tfd > 0)
        close(s->sched.tfd);
    s->sched.tfd = -1;
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
    sn->stepped_cycle = sc->next / SCHED_SLOTS; /* new: not stale before its first turn */
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

/* The watchdog's rule: a node that is not quarantined and has not stepped
 * in the last max_cycles cycles (counted from the clock, not from the ticks
 * run, so a loop that fell behind shows too). O(nodes); called once per
 * watchdog period. A quarantined node is marked as stepped now, so that
 * the moment it is released it is not already stale. */
sup_node *sched_stale_node(sup *s, unsigned max_cycles, double *since)
{
    struct sched *sc = &s->sched;
    if (sc->tick <= 0)
        return NULL; /* not started */
    double now = sup_now();
    if (now < sc->t0)
        return NULL;
    uint64_t cycle = (uint64_t)floor((now - sc->t0) / sc->tick) / SCHED_SLOTS;
    for (unsigned i = 0; i < SCHED_SLOTS; i++)
        for (sup_node *sn = sc->slots[i]; sn; sn = sn->slot_next) {
            if (sn->quarantined) {
                sn->stepped_cycle = cycle;
            } else if (cycle > sn->stepped_cycle + max_cycles) {
                *since = now - due(sc, (sn->stepped_cycle * SCHED_SLOTS) + sn->slot);
                return sn;
            }
        }
    return NULL;
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
