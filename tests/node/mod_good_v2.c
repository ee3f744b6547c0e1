/* mod_good_v2.c — a second version of mod_good (test_system.c replaces the
 * module file with it to check that loading again gives the new code):
 * MIDDLE is gone, request and nominal changed. */
#include "node/guardian.h"

static grd_ret done(grd_node *n)
{
    grd_log(n, "good v2");
    return GRD_DONE;
}

GRD_SYSTEM(good,
    .request = "DOWN", .nominal = "DOWN",
    .priv_size = 16,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = done),
        GRD_STATE("DOWN", 5, .request = true, .goto_ = true, .main = done),
        GRD_STATE("UP", 100, .request = true, .main = done, .run = done)),
    .edges = GRD_EDGES({"DOWN", "UP"}));
