/* sus.c — one simulated suspension: what systems/sus.c reads and writes.
 *
 * Channels, <IFO>:SUS-<optic>_...:
 *   WD_STATE                      ENUM TRIPPED(0)/OK(1), writable: the watchdog
 *   M0_DAMP_{P,Y,L}_GAIN          DOUBLE, writable: damping gains
 *   M0_OPTICALIGN_{P,Y}_OFFSET    DOUBLE, writable: alignment set points (urad)
 *   M0_OPTICALIGN_{P,Y}_OUTPUT    DOUBLE, read-only: the drive, which follows
 *                                 its OFFSET as a first-order lag (--tau)
 *
 * The watchdog trips as a Poisson process of --trip-rate per hour, drawn in
 * sim time from the optic's own PRNG stream, so a seed gives the same trips
 * whatever else runs. A trip does what a real watchdog and its "down" script
 * do: WD_STATE goes TRIPPED and the damping gains go to 0. A trip that falls
 * while the watchdog is already tripped changes nothing (there is nothing
 * left to trip), and the schedule goes on regardless, so that operator
 * resets do not move later trips. With --trip-reset S the watchdog comes
 * back to OK by itself S seconds after a trip; the gains stay 0 (a node has
 * to damp the optic again). An operator resets a trip by writing OK (1), or
 * trips the watchdog by writing TRIPPED (0).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

enum { WD_TRIPPED = 0, WD_OK = 1 };

/* Alignment set points beyond this are refused: the model needs finite
 * numbers, and no optic is driven by a million microradians. */
#define OFFSET_MAX 1e6
/* An output this close to its set point has settled: it takes the set point
 * and stops posting (a first-order lag never quite gets there). */
#define SETTLED 1e-9

struct sim_sus {
    const struct sim_ctx *c;
    char optic[64];
    pv *wd;
    pv *gain[3];   /* P, Y, L */
    pv *offset[2]; /* P, Y */
    pv *output[2];
    double out[2]; /* the outputs, as the filter holds them */
    struct sim_rng rng;
    double next_trip; /* sim time; INFINITY without --trip-rate */
    double reset_at;  /* sim time of the automatic reset; INFINITY if none is due */
};

bool sim_sus_valid_optic(const char *optic)
{
    size_t n = strlen(optic);
    if (n < 1 || n > 60)
        return false;
    for (const char *p = optic; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool tripped(const sim_sus *s) { return pv_get_long(s->wd) != WD_OK; }

/* The client's name, or "", fit for one log line (it comes from the wire). */
static void who_text(const pv_client *who, char *out, size_t len)
{
    snprintf(out, len, " by %s@%s", who && who->user && *who->user ? who->user : "?",
             who && who->host && *who->host ? who->host : "?");
    for (char *p = out; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
}

static void trip(sim_sus *s, double t, const char *by)
{
    if (tripped(s))
        return;
    pv_set_enum(s->wd, WD_TRIPPED);
    for (int i = 0; i < 3; i++)
        pv_set_double(s->gain[i], 0);
    double reset = s->c->opt->trip_reset;
    s->reset_at = reset > 0 ? t + reset : INFINITY;
    sim_event(s->c, t, "trip %s: TRIPPED%s, damping gains zeroed", pv_name(s->wd), by);
}

static void reset(sim_sus *s, double t, const char *by)
{
    s->reset_at = INFINITY;
    if (!tripped(s))
        return;
    pv_set_enum(s->wd, WD_OK);
    sim_event(s->c, t, "reset %s: OK%s", pv_name(s->wd), by);
}

/* An operator's write: pvdb has checked the range (0 or 1). */
static int wd_write(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)pv, (void)n;
    sim_sus *s = arg;
    uint16_t v;
    memcpy(&v, value, sizeof(v));
    char by[128];
    who_text(who, by, sizeof(by));
    if (v == WD_TRIPPED)
        trip(s, sim_time(s->c), by);
    else if (tripped(s))
        reset(s, sim_time(s->c), by);
    return 0;
}

static int offset_write(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)pv, (void)n, (void)who, (void)arg;
    double v;
    memcpy(&v, value, sizeof(v));
    return isfinite(v) && fabs(v) <= OFFSET_MAX ? 0 : PVDB_EREJECT;
}

static const char *const wd_states[] = {"TRIPPED", "OK"};
static const char axes[] = "PYL";

sim_sus *sim_sus_new(const struct sim_ctx *c, const char *optic, char *err, size_t errlen)
{
    sim_sus *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->c = c;
    snprintf(s->optic, sizeof(s->optic), "%s", optic);
    s->next_trip = s->reset_at = INFINITY;
    char name[128];
    snprintf(name, sizeof(name), "SUS-%s_WD_STATE", optic);
    pv_def wd = {.name = name, .type = PV_ENUM, .enums = wd_states, .n_enums = 2,
                 .writable = true, .on_write = wd_write, .arg = s};
    if (sim_add(c, &wd, &s->wd, err, errlen) < 0)
        goto err;
    pv_set_enum(s->wd, WD_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "SUS-%s_M0_DAMP_%c_GAIN", optic, axes[i]);
        pv_def gain = {.name = name, .type = PV_DOUBLE, .precision = 3, .writable = true};
        if (sim_add(c, &gain, &s->gain[i], err, errlen) < 0)
            goto err;
        pv_set_double(s->gain[i], 0);
    }
    pv_limits range = {.disp_hi = OFFSET_MAX, .disp_lo = -OFFSET_MAX,
                       .ctrl_hi = OFFSET_MAX, .ctrl_lo = -OFFSET_MAX};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof(name), "SUS-%s_M0_OPTICALIGN_%c_OFFSET", optic, axes[i]);
        pv_def offset = {.name = name, .type = PV_DOUBLE, .units = "urad", .precision = 3,
                         .limits = range, .writable = true, .on_write = offset_write};
        if (sim_add(c, &offset, &s->offset[i], err, errlen) < 0)
            goto err;
        pv_set_double(s->offset[i], 0);
        snprintf(name, sizeof(name), "SUS-%s_M0_OPTICALIGN_%c_OUTPUT", optic, axes[i]);
        pv_def output = {.name = name, .type = PV_DOUBLE, .units = "urad", .precision = 3,
                         .limits = range};
        if (sim_add(c, &output, &s->output[i], err, errlen) < 0)
            goto err;
        pv_set_double(s->output[i], 0);
    }
    return s;
err:
    /* The channels already added stay in the group, which goes with the
     * pvdb; their write handlers are never called again (guardsim exits). */
    free(s);
    return NULL;
}

void sim_sus_start(sim_sus *s)
{
    double rate = s->c->opt->trip_rate / 3600.0;
    if (rate <= 0)
        return;
    char stream[96];
    snprintf(stream, sizeof(stream), "sus:%s", s->optic);
    sim_rng_seed(&s->rng, s->c->opt->seed, stream);
    s->next_trip = sim_rng_exponential(&s->rng, rate);
}

/* The outputs move towards their set points: first order, time constant
 * tau, exact for any step dt (so late ticks do not change the curve). */
static void follow(sim_sus *s, double dt)
{
    double tau = s->c->opt->tau;
    double a = tau > 0 ? -expm1(-dt / tau) : 1.0;
    for (int i = 0; i < 2; i++) {
        double target = pv_get_double(s->offset[i]);
        double d = target - s->out[i];
        if (d == 0)
            continue;
        s->out[i] = fabs(d) * (1 - a) < SETTLED ? target : s->out[i] + a * d;
        pv_set_double(s->output[i], s->out[i]);
    }
}

void sim_sus_tick(sim_sus *s, double t, double dt)
{
    /* Trips and automatic resets in the order they fell due. */
    for (;;) {
        double due = fmin(s->next_trip, s->reset_at);
        if (due > t)
            break;
        if (s->reset_at <= s->next_trip) {
            reset(s, s->reset_at, " (automatic)");
        } else {
            trip(s, s->next_trip, "");
            s->next_trip += sim_rng_exponential(&s->rng, s->c->opt->trip_rate / 3600.0);
        }
    }
    follow(s, dt);
}

void sim_sus_free(sim_sus *s) { free(s); }
