/* mod_ramp.c — a system for the ramp tests (tests/integration/test_ramps.py): it ramps
 * a plant channel and switches bits of another, as Guardian's LIGOFilter helpers do.
 *
 * Arguments (channel names are suffixes: <IFO>:<suffix>):
 *   chan=<suffix>     ramped to `target` over `seconds` on entering RAMPED
 *   target, seconds   numbers (1, 1 when absent)
 *   switch=<suffix>   bits `mask` (a number, 16 when absent) set in RAMPED, cleared in IDLE
 *   optional=<suffix> read with a default (-1) every cycle: USERMSG "read N" in IDLE
 *
 * States: INIT -> IDLE (requestable) and RAMPED (requestable): RAMPED's run waits,
 * notifying "ramping", until the ramp is done.
 */
#include "node/guardian.h"

static const char *arg_chan(grd_node *n, const char *key)
{
    const char *s = grd_arg(n, key);
    return s && *s ? grd_chan(n, "%s", s) : NULL;
}

static void switch_bits(grd_node *n, bool on)
{
    const char *sw = arg_chan(n, "switch");
    if (sw)
        grd_switch(n, sw, (unsigned long)grd_arg_double(n, "mask", 16), on);
}

static grd_ret idle_main(grd_node *n)
{
    switch_bits(n, false);
    return GRD_DONE;
}

static grd_ret idle_run(grd_node *n)
{
    const char *opt = arg_chan(n, "optional");
    if (opt)
        grd_notify(n, "read %g", grd_read_double(n, opt, -1));
    return GRD_DONE;
}

static grd_ret ramped_main(grd_node *n)
{
    const char *ch = arg_chan(n, "chan");
    if (ch && grd_ramp(n, ch, grd_arg_double(n, "target", 1), grd_arg_double(n, "seconds", 1)) !=
                  GRD_OK)
        return grd_error(n, "no ramp of %s", ch);
    switch_bits(n, true);
    return GRD_CONTINUE;
}

static grd_ret ramped_run(grd_node *n)
{
    const char *ch = arg_chan(n, "chan");
    if (ch && grd_ramping(n, ch)) {
        grd_notify(n, "ramping");
        return GRD_CONTINUE;
    }
    return GRD_DONE;
}

/* Name the channels at once, so that they connect (and a simulated plant makes them)
 * before the first ramp. */
static void ramp_init(grd_node *n)
{
    arg_chan(n, "chan");
    arg_chan(n, "switch");
    grd_arg(n, "target"), grd_arg(n, "seconds"), grd_arg(n, "mask"); /* read later: not mistyped */
}

GRD_SYSTEM(ramp,
    .request = "IDLE",
    .node_init = ramp_init,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true),
        GRD_STATE("IDLE", 10, .request = true, .goto_ = true, .main = idle_main, .run = idle_run),
        GRD_STATE("RAMPED", 20, .request = true, .goto_ = true, .main = ramped_main,
                  .run = ramped_run)),
    .edges = GRD_EDGES({"IDLE", "RAMPED"}, {"RAMPED", "IDLE"}));
