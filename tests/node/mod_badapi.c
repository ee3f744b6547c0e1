/* mod_badapi.c — built for another API version: refused. */
#include "node/guardian.h"

const grd_system grd_system_entry = {
    .api_version = GRD_API_VERSION + 1,
    .name = "badapi",
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
};
