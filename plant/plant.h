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
 * But ca_poll() itself holds the loop while libca's receive thread works
 * through what has arrived (a burst of thousands of updates takes a
 * millisecond or more), so when the owner's next work is due within
 * PLANT_POLL_GUARD s (hooks.next_work), a wake-up is put off until the owner
 * has done that work and calls plant_work_done(): the wait then falls in the
 * gap after a tick rather than across it. The backstop's polls likewise.
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

#define PLANT_POLL_GUARD 0.0025

/* The owner's scheduled work is done: poll now if a wake-up was put off
 * for it. */
void plant_work_done(plant *p);

/* Set-point monitor (guardian.md Part B section 4): a ref its owner wrote
 * through is *tracked* with the value written. Once a second (and never
 * within PLANT_SPM_SETTLE s of the owner's own write, while the echo is on
 * its way) every tracked ref of a connected channel is compared with the
 * channel's value: numbers beyond a relative 1e-6 (what a FLOAT channel
 * keeps of a double), strings exactly. A difference the owner did not make
 * is reported until the value matches again, the owner writes again,
 * an operator accepts it (plant_spm_accept), or the owner ignores the
 * channel (plant_spm_ignore: channels other software also drives). */
enum plant_spm_event {
    PLANT_SPM_TRACKED,   /* the owner's first write: one more channel watched */
    PLANT_SPM_UNTRACKED, /* closed or ignored: one fewer (and no longer differing) */
    PLANT_SPM_DIFFERS,   /* the value differs from the set point */
    PLANT_SPM_MATCHES,   /* it matches again (or was accepted) */
};
#define PLANT_SPM_SETTLE 1.0
#define PLANT_SPM_PERIOD 1.0

struct plant_hooks {
    void *arg;
    /* A channel the owner refers to connected (up) or was lost. Not called
     * from inside plant_open (it says the state it returns with). */
    void (*connection)(void *arg, void *owner, const char *chan, bool up);
    /* A write the owner made could not be made or was refused; `why` names
     * the channel and the reason (the CA status text). lost: the cause is
     * the connection (lost, or never made within connect_timeout), not
     * the server refusing it. */
    void (*write_failed)(void *arg, void *owner, const char *chan, bool lost, const char *why);
    /* A value arrived on a channel the owner refers to. May be NULL. */
    void (*value)(void *arg, void *owner, plant_ref *ref);
    /* The set-point monitor's news about one of the owner's refs (below).
     * text: for PLANT_SPM_DIFFERS, "X1:CHAN is 0, set 1". May be NULL. */
    void (*spm)(void *arg, void *owner, const char *chan, enum plant_spm_event ev,
                const char *text);
    /* Seconds until the owner's next scheduled work (a node tick), for
     * polling libca between ticks (below). May be NULL: poll at once. */
    double (*next_work)(void *arg);
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
/* A number that changes whenever what plant_get returns may have (a new
 * value, a connection, the name served elsewhere), so that a reader can
 * skip reading what it has already; 0 while the channel cannot be read.
 * Cheaper than plant_get. */
uint64_t plant_version(plant_ref *r);

/* Write str when non-NULL (enum channels take a state name), else num.
 * `user` is who writes, for in-process writes' audit (the node's name).
 * GRD_OK when sent, done or waiting for the connection; otherwise a
 * grd_chan_status with the reason in why, without the channel's name (no
 * write access, not connected after having been, a value the channel
 * cannot take). Later failures go to
 * hooks.write_failed. */
int plant_put(plant_ref *r, const char *user, double num, const char *str, char *why,
              size_t whylen);

/* SPM of one ref: leave it out from now on (a tracked one is untracked),
 * accept the current value as its set point (0, or -1 when it is not
 * tracked or not connected), and what there is to say about it. */
void plant_spm_ignore(plant_ref *r);
int plant_spm_accept(plant_ref *r);
struct plant_spm_info {
    bool tracked, ignored, differs;
    char set[64];   /* the value written (text) */
    char now[64];   /* the channel's value, "" when not connected */
    double since;   /* when it started to differ, seconds since 1970 (ev_now); 0: it does not */
};
void plant_spm_info(const plant_ref *r, struct plant_spm_info *info);

/* Give a simulated channel a value (created if need be); -1 if not
 * simulating or the name is served otherwise. */
int plant_sim_set(plant *p, const char *name, double value);

struct plant_stats {
    unsigned channels;  /* shared channels */
    unsigned ca, ca_connected, local, simulated;
    unsigned refs;
    uint64_t puts, put_failures, updates;
    uint64_t polls, polls_put_off; /* ca_poll calls; wake-ups put off for the owner's work */
};
void plant_get_stats(const plant *p, struct plant_stats *st);

#endif
