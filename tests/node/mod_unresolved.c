/* mod_unresolved.c — needs a function guardiand does not have: dlopen with
 * RTLD_NOW refuses it, and the loader says which symbol. */
#include "node/guardian.h"

grd_ret grd_no_such_function(grd_node *n);

static grd_ret init_main(grd_node *n) { return grd_no_such_function(n); }

GRD_SYSTEM(unresolved, .states = GRD_STATES(GRD_STATE("INIT", 0, .main = init_main)));
