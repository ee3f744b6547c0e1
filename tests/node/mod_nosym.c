/* mod_nosym.c — a shared object without grd_system_entry: refused. */
#include "node/guardian.h"

const grd_system not_the_entry = {
    .api_version = GRD_API_VERSION,
    .name = "nosym",
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
};
