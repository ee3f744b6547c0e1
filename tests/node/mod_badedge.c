/* mod_badedge.c — an edge to a state that does not exist: refused. */
#include "node/guardian.h"

GRD_SYSTEM(badedge,
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("SAFE", 10), GRD_STATE("DAMPED", 20)),
    .edges = GRD_EDGES({"SAFE", "DAMPED"}, {"DAMPED", "ALIGNED"}));
