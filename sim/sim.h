/* sim.h — guardsim, the plant simulator: how its files fit together.
 *
 * guardsim serves, over its own Channel Access server (ca/ on pvdb/), the
 * plant channels that the nodes of a guardiand site file read and write, so
 * that guardiand (through libca) sees a live plant:
 *
 *   guardsim.c  options, the site file, the loop, signals, the ready line
 *   plant.c     which channels the site file asks for; the test channels;
 *               the tick that moves everything
 *   sus.c       one suspension per `sus` node: watchdog, damping gains,
 *               alignment offsets and outputs that follow them
 *   bench.c     the load channels of `bench` nodes, a random share of which
 *               changes each tick
 *   rng.c       the seeded random numbers (same seed, same plant)
 *
 * Words used here: *sim time* is seconds since the plant started (the ready
 * line); every random event is drawn in sim time from a PRNG stream of its
 * own, so a run's trips do not depend on how many other channels there are
 * or on what clients do.
 *
 * Single threaded: everything runs on the loop of guardsim.c.
 */
#ifndef GUARDIAND_SIM_H
#define GUARDIAND_SIM_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvdb/pvdb.h"
#include "supervisor/config.h"

/* The command line's settings (guardsim --help). */
struct sim_options {
    const char *config;   /* the site file */
    long port;            /* CA server port; 0: from the environment */
    double rate;          /* ticks per second */
    double tau;           /* seconds: time constant of the alignment outputs */
    double trip_rate;     /* watchdog trips per hour, per optic */
    double trip_reset;    /* seconds after a trip the watchdog resets itself; 0: never */
    double change;        /* share of the bench IN channels changed per tick, 0..1 */
    uint64_t seed;
    bool quiet;           /* no trip and reset lines on stdout */
};

/* ---- random numbers (rng.c): xoshiro256**, seeded through splitmix64 ---- */

struct sim_rng {
    uint64_t s[4];
};

/* A stream for (seed, name): the same pair always gives the same numbers, and
 * different names give independent streams. */
void sim_rng_seed(struct sim_rng *r, uint64_t seed, const char *name);
uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_uniform(struct sim_rng *r);            /* [0, 1) */
uint32_t sim_rng_below(struct sim_rng *r, uint32_t n); /* [0, n), n > 0 */
/* The wait to the next event of a Poisson process of `rate` events per
 * second (rate > 0): exponentially distributed, mean 1/rate. */
double sim_rng_exponential(struct sim_rng *r, double rate);

/* ---- what the models share ---- */

struct sim_ctx {
    struct ev_loop *loop;
    pvdb *db;
    double t0;                      /* ev_now() at sim time 0 */
    pv_group *group;                /* every channel: prefix "<IFO>:" */
    const char *ifo;
    const struct sim_options *opt;
};

static inline double sim_time(const struct sim_ctx *c) { return ev_now(c->loop) - c->t0; }

/* Add a channel to the group; on failure a message naming it goes to err. */
int sim_add(const struct sim_ctx *c, const pv_def *def, pv **out, char *err, size_t errlen);
/* A line on stdout (trips, resets), unless --quiet: "guardsim: t=<sim time> ...". */
void sim_event(const struct sim_ctx *c, double t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the plant (plant.c) ---- */

typedef struct sim_plant sim_plant;

/* Every channel the site file's nodes need, and the test channels, in
 * c->group. Returns NULL with a message naming the node and the problem
 * (a bad optic, reads= or writes=, say). */
sim_plant *sim_plant_new(const struct sim_ctx *c, const struct config *cfg, char *err,
                         size_t errlen);
/* Sim time starts now (c->t0 is set): schedule the first random events. */
void sim_plant_start(sim_plant *p);
/* One tick, at sim time t. */
void sim_plant_tick(sim_plant *p, double t);
/* Frees the models; the channels go with the pvdb. */
void sim_plant_free(sim_plant *p);

/* ---- suspensions (sus.c) ---- */

typedef struct sim_sus sim_sus;

/* Whether an optic name can be used: 1..60 of A-Z, a-z, 0-9, _ and -. */
bool sim_sus_valid_optic(const char *optic);
/* The channels <IFO>:SUS-<optic>_... (README, "guardsim"). */
sim_sus *sim_sus_new(const struct sim_ctx *c, const char *optic, char *err, size_t errlen);
void sim_sus_start(sim_sus *s);
void sim_sus_tick(sim_sus *s, double t, double dt);
void sim_sus_free(sim_sus *s);

/* ---- bench load channels (bench.c) ---- */

typedef struct sim_bench sim_bench;

#define SIM_BENCH_MAX 1000 /* reads= and writes= of one node */

sim_bench *sim_bench_new(const struct sim_ctx *c);
/* <IFO>:BENCH-<node>_IN0..IN<reads-1> (read-only), _OUT0..OUT<writes-1>. */
int sim_bench_add(sim_bench *b, const char *node, unsigned reads, unsigned writes, char *err,
                  size_t errlen);
size_t sim_bench_inputs(const sim_bench *b);
/* Give a share --change of the IN channels a new value. */
void sim_bench_tick(sim_bench *b);
void sim_bench_free(sim_bench *b);

#endif
