/* mod_badrequest.c — the initial request names no state: refused. */
#include "node/guardian.h"

GRD_SYSTEM(badrequest, .request = "ALIGNED",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("SAFE", 10)));
