/* mod_badweight.c — a weight for an edge that does not exist: refused. */
#include "node/guardian.h"

GRD_SYSTEM(badweight,
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("SAFE", 10, .goto_ = true),
                         GRD_STATE("DAMPED", 20)),
    .edges = GRD_EDGES({"SAFE", "DAMPED"}),
    .weights = GRD_WEIGHTS({"SAFE", "DAMPED", 2}, {"DAMPED", "INIT", 3}));
