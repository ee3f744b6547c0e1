/* mod_badnominal.c — the nominal state names no state: refused. */
#include "node/guardian.h"

GRD_SYSTEM(badnominal, .request = "SAFE", .nominal = "LOCKED",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("SAFE", 10)));
