/* mod_good.c — a valid system module for the loader tests (test_system.c). */
#include "node/guardian.h"

static grd_ret done(grd_node *n)
{
    grd_log(n, "good v1");
    return GRD_DONE;
}

GRD_SYSTEM(good,
    .request = "UP", .nominal = "UP",
    .priv_size = 16,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = done),
        GRD_STATE("DOWN", 5, .request = true, .goto_ = true, .main = done),
        GRD_STATE("MIDDLE", 50, .main = done),
        GRD_STATE("UP", 100, .request = true, .main = done, .run = done)),
    .edges = GRD_EDGES({"INIT", "MIDDLE"}, {"DOWN", "MIDDLE"}, {"MIDDLE", "UP"}));
