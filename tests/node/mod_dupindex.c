/* mod_dupindex.c — SAFE and DAMPED share index 10: refused. */
#include "node/guardian.h"

GRD_SYSTEM(dupindex,
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("SAFE", 10), GRD_STATE("DAMPED", 10)));
