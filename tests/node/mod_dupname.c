/* mod_dupname.c — two states named SAFE: refused. */
#include "node/guardian.h"

GRD_SYSTEM(dupname,
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("SAFE", 10), GRD_STATE("DAMPED", 20),
                         GRD_STATE("SAFE", 30)));
