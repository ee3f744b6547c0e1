/* mod_weighted.c — edge weights (GRD_WEIGHTS): from SAFE, TOP is one edge
 * away but that edge weighs 10, so the path to TOP is the cheaper and longer
 * SAFE -> A -> B -> TOP (1 + 0.5 + 1). A and B hold for `hold` seconds (node
 * argument, default 0.3) so that TARGET can be watched passing through them.
 * TOP -> INIT, an implicit edge to a goto state, is weighted too. */
#include "node/guardian.h"

static grd_ret done(grd_node *n)
{
    (void)n;
    return GRD_DONE;
}

static grd_ret hold_main(grd_node *n)
{
    grd_timer_start(n, "hold", grd_arg_double(n, "hold", 0.3));
    return GRD_CONTINUE;
}

static grd_ret hold_run(grd_node *n)
{
    return grd_timer_done(n, "hold") ? GRD_DONE : GRD_CONTINUE;
}

GRD_SYSTEM(weighted,
    .request = "SAFE", .nominal = "TOP",
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = done),
        GRD_STATE("SAFE", 10, .request = true, .goto_ = true, .main = done),
        GRD_STATE("A", 20, .main = hold_main, .run = hold_run),
        GRD_STATE("B", 30, .main = hold_main, .run = hold_run),
        GRD_STATE("TOP", 100, .request = true, .main = done, .run = done)),
    .edges = GRD_EDGES({"SAFE", "TOP"}, {"SAFE", "A"}, {"A", "B"}, {"B", "TOP"}),
    .weights = GRD_WEIGHTS({"SAFE", "TOP", 10}, {"A", "B", 0.5}, {"TOP", "INIT", 3}));
