/* mod_notes.c — notifications and holds as operators see them (issue 13):
 * test_state_code.py drives it over CA.
 *
 *   INIT (goto) -> IDLE <-> LOADED      LOADED's main notifies once;
 *                  IDLE <-> PULSE       PULSE's run notifies on its first call only;
 *                  IDLE <-> SLOW -> FAR SLOW waits 1 s (main, then run until done);
 *   ISLAND                              no edge leads there.
 */
#include "node/guardian.h"

struct notes {
    unsigned calls;
};

static grd_ret done(grd_node *n)
{
    (void)n;
    return GRD_DONE;
}

static grd_ret loaded_main(grd_node *n)
{
    grd_notify(n, "Waiting to load coefficients!");
    return GRD_DONE;
}

static grd_ret pulse_main(grd_node *n)
{
    ((struct notes *)grd_priv(n))->calls = 0;
    return GRD_CONTINUE;
}

static grd_ret pulse_run(grd_node *n)
{
    if (((struct notes *)grd_priv(n))->calls++ == 0)
        grd_notify(n, "pulse seen");
    return GRD_DONE;
}

static grd_ret slow_main(grd_node *n)
{
    grd_timer_start(n, "slow", 1.0);
    return GRD_CONTINUE;
}

static grd_ret slow_run(grd_node *n)
{
    return grd_timer_done(n, "slow") ? GRD_DONE : GRD_CONTINUE;
}

GRD_SYSTEM(notes,
    .request = "IDLE", .nominal = "IDLE",
    .priv_size = sizeof(struct notes),
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = done),
        GRD_STATE("IDLE", 10, .request = true, .main = done, .run = done),
        GRD_STATE("LOADED", 20, .request = true, .main = loaded_main, .run = done),
        GRD_STATE("PULSE", 30, .request = true, .main = pulse_main, .run = pulse_run),
        GRD_STATE("SLOW", 40, .request = true, .main = slow_main, .run = slow_run),
        GRD_STATE("FAR", 50, .request = true, .main = done),
        GRD_STATE("ISLAND", 99, .request = true, .main = done)),
    .edges = GRD_EDGES({"INIT", "IDLE"}, {"IDLE", "LOADED"}, {"LOADED", "IDLE"},
                       {"IDLE", "PULSE"}, {"PULSE", "IDLE"}, {"IDLE", "SLOW"},
                       {"SLOW", "IDLE"}, {"SLOW", "FAR"}, {"FAR", "IDLE"}));
