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
 *
 * Each node's step is timed (one clock read a step: a step begins when the
 * one before it ended). A node whose steps keep taking longer than
 * step_budget is quarantined as too slow (account(), sup_node_too_slow), so
 * one slow node cannot hold every other node back, nor starve the watchdog;
 * the node whose step made a tick late is kept (held_by) for the watchdog
 * to name.
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

/* The longest step of one run of ticks (tick_cb), for sched.held_by. */
struct run {
    sup_node *longest;
    double longest_for, longest_at;
};

/* One step's time into the node's figures, and the too-slow rule: a node
 * over step_budget step_overruns times within step_window is taken out.
 * The window opens at the first step over budget and closes step_window
 * later; the next one over budget opens a new one. So the verdict always
 * means "that many within the window", though a burst that straddles two
 * windows can take up to twice as long to be judged. */
static void account(sup *s, sup_node *sn, double took, double end)
{
    struct sup_step_times *t = &sn->times;
    t->last = took;
    t->total += took;
    t->steps++;
    if (took > t->max)
        t->max = took;
    double budget = s->cfg.step_budget;
    if (budget <= 0 || took <= budget)
        return;
    t->overruns++;
    if (t->streak == 0 || end - t->streak_start > s->cfg.step_window) {
        t->streak = 0;
        t->streak_start = end - took;
        t->streak_max = 0;
    }
    t->streak++;
    if (took > t->streak_max)
        t->streak_max = took;
    if (t->streak >= s->cfg.step_overruns)
        sup_node_too_slow(s, sn);
}

/* Step the nodes of one slot, starting at monotonic time t; returns the
 * time the last one ended. One clock read a step: each step starts when
 * the one before it ended, and its time includes saving and publishing
 * what it changed (that work is the node's too). */
static double step_slot(sup *s, unsigned slot, double t, struct run *run)
{
    for (sup_node *sn = s->sched.slots[slot]; sn; sn = sn->slot_next) {
        if (sn->quarantined)
            continue;
        crash_step_begin(sn->name, t);
        node_step(sn->node);
        crash_step_end();
        persist_after_step(s, sn);
        nodepv_publish(sn->pv);
        uint64_t gen = node_generation(sn->node);
        if (gen != sn->watch_gen) { /* it shows something new: tell the watchers */
            sn->watch_gen = gen;
            sup_changed(s, false);
        }
        s->sched.steps++;
        /* For the watchdog's health check (sched_health): O(1) here. */
        sn->stepped_cycle = s->sched.next / SCHED_SLOTS;
        double end = sup_now();
        if (end - t > run->longest_for) {
            run->longest = sn;
            run->longest_for = end - t;
            run->longest_at = end;
        }
        account(s, sn, end - t, end);
        t = end;
    }
    return t;
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
    struct run run = {0};
    uint64_t overruns = sc->overruns;
    double t = now;
    while (sc->next <= current) {
        record_late(sc, t - due(sc, sc->next));
        t = step_slot(s, (unsigned)(sc->next % SCHED_SLOTS), t, &run);
        sc->next++;
        if (t > due(sc, sc->next))
            sc->overruns++;
    }
    /* Work that ran into the next tick: remember whose step was longest,
     * so that the watchdog names the node that held the loop rather than
     * one that merely waited for it. */
    if (sc->overruns != overruns && run.longest) {
        sc->held_by = run.longest;
        sc->held_for = run.longest_for;
        sc->held_at = run.longest_at;
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
    if (sc->held_by == sn)
        sc->held_by = NULL;
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
void sched_health(sup *s, unsigned max_cycles, struct sched_health *h)
{
    struct sched *sc = &s->sched;
    memset(h, 0, sizeof(*h));
    if (sc->tick <= 0)
        return; /* not started */
    double now = sup_now();
    if (now < sc->t0)
        return;
    uint64_t cycle = (uint64_t)floor((now - sc->t0) / sc->tick) / SCHED_SLOTS;
    for (unsigned i = 0; i < SCHED_SLOTS; i++)
        for (sup_node *sn = sc->slots[i]; sn; sn = sn->slot_next) {
            if (sn->quarantined) {
                sn->stepped_cycle = cycle;
            } else if (!h->stale && cycle > sn->stepped_cycle + max_cycles) {
                h->stale = sn;
                h->since = now - due(sc, (sn->stepped_cycle * SCHED_SLOTS) + sn->slot);
            }
        }
    /* Whose step held the loop since the stale node's last turn. */
    if (h->stale && sc->held_by && sc->held_at >= now - h->since) {
        h->held_by = sc->held_by;
        h->held_for = sc->held_for;
        /* Over budget: the too-slow rule is counting that node, or has just
         * taken it out (the others are then late only until the next tick). */
        h->over_budget = s->cfg.step_budget > 0 && sc->held_for > s->cfg.step_budget;
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
