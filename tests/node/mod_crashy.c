/* mod_crashy.c — a system whose states crash the process on purpose, for
 * the crash-capture and quarantine tests. Requesting SEGV dereferences a
 * null pointer in SEGV.main; HANG spins forever in HANG.run; ABORT calls
 * abort(). IDLE is harmless and the default request. */
#include <stdlib.h>

#include "node/guardian.h"

static grd_ret idle(grd_node *n)
{
    (void)n;
    return GRD_DONE;
}

static grd_ret segv_main(grd_node *n)
{
    grd_log(n, "about to dereference a null pointer");
    volatile int *p = NULL;
    *p = 1;
    return GRD_DONE;
}

static grd_ret hang_run(grd_node *n)
{
    grd_log(n, "about to spin forever");
    for (volatile unsigned long i = 0;; i++)
        ;
    return GRD_DONE;
}

static grd_ret abort_main(grd_node *n)
{
    (void)n;
    abort();
}

GRD_SYSTEM(crashy,
    .request = "IDLE", .nominal = "IDLE",
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = idle),
        GRD_STATE("IDLE", 10, .request = true, .goto_ = true, .main = idle, .run = idle),
        GRD_STATE("SEGV", 20, .request = true, .main = segv_main),
        GRD_STATE("HANG", 30, .request = true, .run = hang_run),
        GRD_STATE("ABORT", 40, .request = true, .main = abort_main)),
    .edges = GRD_EDGES({"INIT", "IDLE"}, {"IDLE", "SEGV"}, {"IDLE", "HANG"}, {"IDLE", "ABORT"}));
