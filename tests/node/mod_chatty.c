/* mod_chatty.c — a system that logs 200 lines every cycle in CHATTY, for the
 * control socket's `log -f` tests (a follower that falls behind). */
#include "node/guardian.h"

static grd_ret init_main(grd_node *n)
{
    (void)n;
    return GRD_DONE;
}

static grd_ret chatty_run(grd_node *n)
{
    for (int i = 0; i < 200; i++)
        grd_log(n, "chatter line %d of this cycle, padded to be a long line: "
                   "................................................................", i);
    return GRD_CONTINUE;
}

GRD_SYSTEM(chatty,
    .request = "QUIET", .nominal = "QUIET",
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = init_main),
        GRD_STATE("QUIET", 10, .request = true, .goto_ = true, .main = init_main),
        GRD_STATE("CHATTY", 20, .request = true, .run = chatty_run)),
    .edges = GRD_EDGES({"INIT", "QUIET"}, {"QUIET", "CHATTY"}, {"CHATTY", "QUIET"}));
