/* plant.h — the channels nodes read and write: the plant over Channel Access
 * (EPICS Base's libca), and this daemon's own PVs in-process.
 *
 * One plant object per daemon. A node refers to a channel through a
 * plant_ref; every node naming the same channel shares one plant channel
 * (one CA channel per name per daemon), which lives while any ref does.
 *
 * Routing: a name that this daemon's pvdb serves (other nodes' GRD-
 * channels, the supervisor channels) is read and written in-process through
 * pvdb, with the same write rules as a CA client; never through a loopback
 * circuit to ourselves. Every other name is a CA channel. A channel follows
 * its name when that changes: a PV added here later takes over from the CA
 * channel, and a PV removed here hands the name to CA.
 *
 * libca on the loop: one context, created with ca_disable_preemptive_callback.
 * libca runs I/O threads of its own; it delivers our callbacks only while
 * the loop thread waits inside ca_poll(), and those callbacks do no more than
 * note what arrived in the channel (newest value, connection, put status).
 * Everything else (waking nodes, SPM, logging) runs on the loop thread after
 * ca_poll() returns. The loop watches libca's wake-up socket
 * (ca_add_fd_registration) and polls every 100 ms as a backstop; requests
 * made during a loop iteration are flushed (ca_flush_io) before the loop
 * sleeps. Nothing here waits: no ca_pend_io, no ca_pend_event with a real
 * timeout, no blocking get.
 *
 * Values: a CA channel is subscribed with DBR_TIME_<native type> (DBE_VALUE |
 * DBE_ALARM); enum channels also fetch their state strings at each
 * connection. Reads return the newest value at once, or GRD_ENOTCONN. Arrays:
 * numbers read the first element; char arrays read as strings.
 *
 * Writes: to a connected channel they are sent in the same loop iteration
 * (ca_array_put_callback). A write to a channel that has not connected yet
 * waits up to connect_timeout for it (the newest value per ref wins); a write
 * that cannot be made or that the server refuses reaches the owner through
 * hooks.write_failed, naming the channel and the CA status.
 *
 * Simulation (tests, `guardiand --run`, config `simulate_plant`): a name that
 * nothing serves is created here as a writable DOUBLE PV (0) and served over
 * our CA server, so a CA client can move the "plant". Never without it.
 *
 * Single threaded: every function is called on the loop thread.
 */
#ifndef GUARDIAND_PLANT_H
#define GUARDIAND_PLANT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvdb/pvdb.h"

#define PLANT_NAME_MAX 255   /* longest channel name */
#define PLANT_TEXT_MAX 255   /* longest string read (char arrays are cut there) */

typedef struct plant plant;
typedef struct plant_ref plant_ref;

struct plant_hooks {
    void *arg;
    /* A channel the owner refers to connected (up) or was lost. Not called
     * from inside plant_open (it says the state it returns with). */
    void (*connection)(void *arg, void *owner, const char *chan, bool up);
    /* A write the owner made could not be made or was refused; `why` names
     * the channel and the reason (the CA status text). */
    void (*write_failed)(void *arg, void *owner, const char *chan, const char *why);
    /* A value arrived on a channel the owner refers to (SPM). May be NULL. */
    void (*value)(void *arg, void *owner, plant_ref *ref);
};

struct plant_config {
    bool simulate;                 /* simulate channels nothing serves (see above) */
    const char *never_simulate;    /* a name prefix never simulated ("X1:GRD-"), or NULL */
    double connect_timeout;        /* seconds a write waits for a channel to connect */
};
#define PLANT_CONNECT_TIMEOUT 5.0

/* The plant of a daemon whose own PVs are in db. With cfg->simulate the CA
 * client is never started. NULL with a reason in err on failure. */
plant *plant_new(struct ev_loop *loop, pvdb *db, const struct plant_config *cfg,
                 const struct plant_hooks *hooks, char *err, size_t errlen);
/* Every ref must have been closed. */
void plant_free(plant *p);

/* A valid EPICS channel name: 1..PLANT_NAME_MAX characters of A-Z a-z 0-9
 * and _ - + : ; . [ ] < > { }, not starting with '.'. */
bool plant_valid_name(const char *name);

/* A reference for owner to the channel `name`. *up says whether it can be
 * read now. NULL with a reason in err for an invalid name or no memory. */
plant_ref *plant_open(plant *p, const char *name, void *owner, bool *up, char *err,
                      size_t errlen);
void plant_close(plant_ref *r);
const char *plant_ref_name(const plant_ref *r);
bool plant_ref_up(const plant_ref *r);

/* The newest value: num (when non-NULL) as a number, str (when non-NULL and
 * len > 0) as text (enum channels give the state name). Returns GRD_OK,
 * GRD_ENOTCONN, or GRD_ETYPE (a string that is not a number, asked for num). */
int plant_get(plant_ref *r, double *num, char *str, size_t len);
/* Write str when non-NULL (enum channels take a state name), else num.
 * `user` is who writes, for in-process writes' audit (the node's name).
 * GRD_OK when sent, done or waiting for the connection; otherwise a
 * grd_chan_status with the reason in why (no write access, not connected
 * after having been, a value the channel cannot take). Later failures go to
 * hooks.write_failed. */
int plant_put(plant_ref *r, const char *user, double num, const char *str, char *why,
              size_t whylen);

/* Give a simulated channel a value (created if need be); -1 if not
 * simulating or the name is served otherwise. */
int plant_sim_set(plant *p, const char *name, double value);

struct plant_stats {
    unsigned channels;  /* shared channels */
    unsigned ca, ca_connected, local, simulated;
    unsigned refs;
    uint64_t puts, put_failures, updates;
};
void plant_get_stats(const plant *p, struct plant_stats *st);

#endif
