/* sup.h — the supervisor: the one context of a guardiand process.
 *
 * The supervisor owns the loop, the PV database, the CA server, the nodes
 * and their schedule, and is passed down explicitly; it is the only mutable
 * state that is not local to a module object.
 *
 * Files: main.c (options, start-up, shutdown), nodes.c (the node registry,
 * the host services nodes use, the simulated plant), sched.c (the 16 Hz
 * slotted schedule and its timing figures), supchan.c (the supervisor's own
 * channels), nodepv.c (each node's channels), config.c, demo.c.
 */
#ifndef GUARDIAND_SUP_H
#define GUARDIAND_SUP_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "ca/cas.h"
#include "node/node.h"
#include "pvdb/pvdb.h"
#include "supervisor/config.h"
#include "supervisor/nodepv.h"

#define GUARDIAND_VERSION "0.2.0"
#define SCHED_SLOTS 16          /* slots per cycle: nodes are spread over them */
#define SCHED_SAMPLES 4096      /* tick lateness samples kept for the jitter figures */

struct demo;
struct supchan;

/* A node as the supervisor holds it. */
typedef struct sup_node {
    char name[CONFIG_NAME_MAX];
    char *system;               /* system name, for reloads */
    node *node;
    node_system *sys;
    nodepv *pv;
    unsigned slot;
    struct sup_node *slot_next; /* nodes of one slot, in step order */
    UT_hash_handle hh;
} sup_node;

/* The slotted schedule: tick k of cycle c is due at t0 + (c*SLOTS + k) * tick. */
struct sched {
    ev_timer timer;
    double tick;                /* seconds between slots */
    double t0;                  /* monotonic time of tick 0 */
    uint64_t next;              /* index of the next tick to run */
    sup_node *slots[SCHED_SLOTS];
    unsigned slot_count[SCHED_SLOTS];
    /* figures */
    double late[SCHED_SAMPLES]; /* lateness of recent ticks, seconds */
    unsigned n_late, late_pos;
    uint64_t overruns, skipped_cycles, steps;
    ev_prepare prepare;         /* loop utilisation: busy from check to prepare */
    ev_check check;
    double busy, woke, window_start;
    double util;                /* fraction of the last window spent busy */
};

typedef struct sup {
    struct ev_loop *loop;
    struct config cfg;
    pvdb *db;
    cas *ca;
    cas_repeater *repeater;
    ev_signal sigterm, sigint;
    struct demo *demo;
    sup_node *nodes;            /* uthash by name */
    unsigned n_nodes;
    node_host host;
    pv_group *sim;              /* the simulated plant's channels */
    struct sched sched;
    struct supchan *supchan;
    double started;             /* monotonic */
} sup;

/* nodes.c */
void sup_host_init(sup *s);
double sup_now(void);
double sup_wall(void);
/* Add a node running `system` (loaded from cfg.systems) with key=value args.
 * Returns 0, or -1 with the reason in err; other nodes are not disturbed. */
int sup_node_add(sup *s, const char *name, const char *system, const char *const *args,
                 unsigned n_args, char *err, size_t errlen);
/* Remove a node: its channels disconnect from clients. -1 if unknown. */
int sup_node_remove(sup *s, const char *name);
sup_node *sup_node_find(sup *s, const char *name);
/* Give a simulated plant channel a value (created if need be). -1 if the
 * name is a channel of ours (a node's, a demo PV) or not acceptable. */
int sup_plant_set(sup *s, const char *chan, double value);
void sup_nodes_free(sup *s);

/* sched.c */
void sched_start(sup *s);
void sched_stop(sup *s);
void sched_add(sup *s, sup_node *sn);
void sched_remove(sup *s, sup_node *sn);
/* Jitter percentiles over the recent ticks, in seconds. */
void sched_jitter(const struct sched *sc, double *p50, double *p99, double *max);

/* supchan.c */
struct supchan *supchan_new(sup *s, char *err, size_t errlen);
void supchan_free(struct supchan *sc);

/* demo.c: the demo PV set of docs/demo-pvs.md. */
struct demo *demo_new(sup *s, unsigned count, char *err, size_t errlen);
void demo_free(struct demo *d);
unsigned demo_access(const pv *pv, const char *host, const char *user, void *arg);

#endif
