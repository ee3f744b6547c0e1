/* mod_badapi.c — built against an older header: refused (guardiand loads
 * versions GRD_API_OLDEST, 2, to GRD_API_VERSION). Version 1 is the
 * header before grd_state gained main_checks and run_checks, whose states
 * array guardiand would read with the wrong stride; only api_version, the
 * first field of grd_system, is read before the refusal. */
#include "node/guardian.h"

const grd_system grd_system_entry = {
    .api_version = 1,
    .name = "badapi",
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
};
