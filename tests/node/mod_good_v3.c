/* mod_good_v3.c — a third version of mod_good, for the LOAD preflight (issue 13,
 * test_nodes.py): UP, where a mod_good node rests, is gone, and DOWN's index
 * changed, so a LOAD would strand such a node and is refused unless forced. */
#include "node/guardian.h"

static grd_ret done(grd_node *n)
{
    grd_log(n, "good v3");
    return GRD_DONE;
}

GRD_SYSTEM(good,
    .request = "DOWN", .nominal = "DOWN",
    .priv_size = 16,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = done),
        GRD_STATE("DOWN", 6, .request = true, .goto_ = true, .main = done)),
    .edges = GRD_EDGES({"INIT", "DOWN"}));
