/* sus.c — one suspension: the device node of the guardiand examples.
 *
 * Node arguments:
 *   optic=<NAME>    the optic, e.g. ETMX (required)
 *   pitch=, yaw=    alignment offsets written in ALIGNED (default 0)
 *   misalign=       offset added to pitch in MISALIGNED (default 100)
 *   gain=           damping gain written in DAMPED (default 1)
 *   settle=         seconds DAMPED waits for the damping to settle (default 2)
 *
 * Plant channels, <IFO>:SUS-<optic>_...:
 *   WD_STATE                    the watchdog: 1 = OK, anything else = tripped
 *   M0_DAMP_{P,Y,L}_GAIN        damping loop gains
 *   M0_OPTICALIGN_{P,Y}_OFFSET  alignment offsets
 *
 * The graph:  INIT (goto)   TRIPPED -> SAFE <-> DAMPED <-> ALIGNED
 *                                                  <-> MISALIGNED
 * INIT finds out where the plant is; DAMPED, ALIGNED and MISALIGNED are
 * guarded by the watchdog_ok check, which jumps to TRIPPED when the watchdog
 * trips. TRIPPED cannot be redirected: it waits for the watchdog to be
 * reset, then completes, and the node goes on to its request through SAFE.
 *
 * Build: gcc -fPIC -shared -I<prefix>/include -o sus.so sus.c
 */
#if __has_include("node/guardian.h")
#include "node/guardian.h" /* in the guardiand tree */
#else
#include <guardian.h>
#endif

#define WD_OK 1

/* Channel names, built once per node (grd_chan names live with the node). */
struct sus {
    const char *optic;
    const char *wd;
    const char *gain[3];   /* P, Y, L */
    const char *offset[2]; /* P, Y */
};

static void sus_init(grd_node *n)
{
    struct sus *s = grd_priv(n);
    s->optic = grd_arg(n, "optic");
    if (!s->optic || !*s->optic)
        return; /* INIT reports it */
    s->wd = grd_chan(n, "SUS-%s_WD_STATE", s->optic);
    s->gain[0] = grd_chan(n, "SUS-%s_M0_DAMP_P_GAIN", s->optic);
    s->gain[1] = grd_chan(n, "SUS-%s_M0_DAMP_Y_GAIN", s->optic);
    s->gain[2] = grd_chan(n, "SUS-%s_M0_DAMP_L_GAIN", s->optic);
    s->offset[0] = grd_chan(n, "SUS-%s_M0_OPTICALIGN_P_OFFSET", s->optic);
    s->offset[1] = grd_chan(n, "SUS-%s_M0_OPTICALIGN_Y_OFFSET", s->optic);
}

static void put_gains(grd_node *n, double gain)
{
    struct sus *s = grd_priv(n);
    for (int i = 0; i < 3; i++)
        grd_put(n, s->gain[i], gain);
}

static void put_offsets(grd_node *n, double pitch, double yaw)
{
    struct sus *s = grd_priv(n);
    grd_put(n, s->offset[0], pitch);
    grd_put(n, s->offset[1], yaw);
}

/* A check on every state but INIT (which reports it itself): without an
 * optic there are no channels, and a state started directly (guardiand --run
 * sus SAFE) must not report success having written nothing. */
static grd_ret optic_given(grd_node *n)
{
    struct sus *s = grd_priv(n);
    if (!s->optic || !*s->optic)
        return grd_error(n, "argument optic=<NAME> missing");
    return GRD_CONTINUE;
}

/* A check (Guardian's decorator): before every main and run of the states
 * that need a working suspension. */
static grd_ret watchdog_ok(grd_node *n)
{
    struct sus *s = grd_priv(n);
    long wd;
    if (grd_get_long(n, s->wd, &wd) != GRD_OK)
        return GRD_CONTINUE; /* not connected: the runtime shows CONNECT=ERROR */
    if (wd != WD_OK) {
        grd_log(n, "watchdog tripped (WD_STATE=%ld)", wd);
        return grd_jump(n, "TRIPPED");
    }
    return GRD_CONTINUE;
}

static grd_ret init_main(grd_node *n)
{
    struct sus *s = grd_priv(n);
    long wd;
    double gain;
    if (!s->optic || !*s->optic)
        return grd_error(n, "argument optic=<NAME> missing");
    if (grd_get_long(n, s->wd, &wd) != GRD_OK) {
        grd_log(n, "watchdog not connected: going on to %s", grd_request(n));
        return GRD_DONE;
    }
    if (wd != WD_OK)
        return grd_jump(n, "TRIPPED");
    /* Already damped (say, after a restart of guardiand): do not go
     * through SAFE, which would switch the damping off. */
    if (grd_get_double(n, s->gain[0], &gain) == GRD_OK && gain != 0)
        return grd_jump(n, "DAMPED");
    return GRD_DONE;
}

static grd_ret tripped_main(grd_node *n)
{
    put_gains(n, 0);
    return GRD_CONTINUE;
}

static grd_ret tripped_run(grd_node *n)
{
    struct sus *s = grd_priv(n);
    long wd;
    if (grd_get_long(n, s->wd, &wd) != GRD_OK)
        return GRD_CONTINUE;
    if (wd != WD_OK) {
        grd_notify(n, "%s watchdog tripped: reset it", s->optic);
        return GRD_CONTINUE;
    }
    grd_log(n, "watchdog reset");
    return GRD_DONE;
}

static grd_ret safe_main(grd_node *n)
{
    put_gains(n, 0);
    put_offsets(n, 0, 0);
    return GRD_DONE;
}

static grd_ret damped_main(grd_node *n)
{
    put_gains(n, grd_arg_double(n, "gain", 1.0));
    grd_timer_start(n, "settle", grd_arg_double(n, "settle", 2.0));
    return GRD_CONTINUE; /* not done: run() is called every cycle */
}

static grd_ret damped_run(grd_node *n)
{
    return grd_timer_done(n, "settle") ? GRD_DONE : GRD_CONTINUE;
}

static grd_ret aligned_main(grd_node *n)
{
    put_offsets(n, grd_arg_double(n, "pitch", 0), grd_arg_double(n, "yaw", 0));
    return GRD_DONE;
}

static grd_ret misaligned_main(grd_node *n)
{
    put_offsets(n, grd_arg_double(n, "pitch", 0) + grd_arg_double(n, "misalign", 100),
                grd_arg_double(n, "yaw", 0));
    return GRD_DONE;
}

static grd_ret hold(grd_node *n)
{
    (void)n;
    return GRD_DONE; /* the checks do the watching */
}

GRD_SYSTEM(sus,
    .request = "ALIGNED", .nominal = "ALIGNED",
    .priv_size = sizeof(struct sus),
    .node_init = sus_init,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = init_main),
        GRD_STATE("TRIPPED", 1, .no_redirect = true, .main = tripped_main, .run = tripped_run,
                  .checks = GRD_CHECKS(optic_given)),
        GRD_STATE("SAFE", 10, .request = true, .goto_ = true, .main = safe_main,
                  .checks = GRD_CHECKS(optic_given)),
        GRD_STATE("DAMPED", 100, .request = true, .main = damped_main, .run = damped_run,
                  .checks = GRD_CHECKS(optic_given, watchdog_ok)),
        GRD_STATE("MISALIGNED", 500, .request = true, .main = misaligned_main, .run = hold,
                  .checks = GRD_CHECKS(optic_given, watchdog_ok)),
        GRD_STATE("ALIGNED", 1000, .request = true, .main = aligned_main, .run = hold,
                  .checks = GRD_CHECKS(optic_given, watchdog_ok))),
    .edges = GRD_EDGES({"SAFE", "DAMPED"}, {"DAMPED", "SAFE"},
                       {"DAMPED", "ALIGNED"}, {"ALIGNED", "DAMPED"},
                       {"DAMPED", "MISALIGNED"}, {"MISALIGNED", "DAMPED"},
                       {"TRIPPED", "SAFE"}));
