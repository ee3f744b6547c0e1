/* mod_noinit.c — no INIT state: refused. */
#include "node/guardian.h"

GRD_SYSTEM(noinit,
    .states = GRD_STATES(GRD_STATE("SAFE", 10), GRD_STATE("DAMPED", 20)),
    .edges = GRD_EDGES({"SAFE", "DAMPED"}));
