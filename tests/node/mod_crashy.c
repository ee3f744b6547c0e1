/* mod_crashy.c — a system whose states crash the process on purpose, for
 * the crash-capture and quarantine tests.
 *
 * SEGV, HANG, ABORT and EXIT each wait half a second (so that the request is
 * saved by the database flush first, and a restart heads straight back into
 * the crash, as a real crash loop would) and then, in their run():
 * dereference a null pointer, spin forever, call abort(), or call exit(0).
 * IDLE is harmless and the default request. */
#include <stdlib.h>

#include "node/guardian.h"

#define DELAY 0.5

static grd_ret idle(grd_node *n)
{
    (void)n;
    return GRD_DONE;
}

static grd_ret wait_main(grd_node *n)
{
    grd_timer_start(n, "crash", DELAY);
    return GRD_CONTINUE;
}

/* Not instrumented: under the sanitizer build UBSan would report the null
 * store and stop the process itself; the test wants the real SIGSEGV. */
__attribute__((no_sanitize("undefined", "address")))
static grd_ret segv_run(grd_node *n)
{
    if (!grd_timer_done(n, "crash"))
        return GRD_CONTINUE;
    grd_log(n, "about to dereference a null pointer");
    volatile int *p = NULL;
    *p = 1;
    return GRD_DONE;
}

static grd_ret hang_run(grd_node *n)
{
    if (!grd_timer_done(n, "crash"))
        return GRD_CONTINUE;
    grd_log(n, "about to spin forever");
    for (volatile unsigned long i = 0;; i++)
        ;
    return GRD_DONE;
}

static grd_ret abort_run(grd_node *n)
{
    if (!grd_timer_done(n, "crash"))
        return GRD_CONTINUE;
    abort();
}

/* A system that ends the process "cleanly": must count as its crash. */
static grd_ret exit_run(grd_node *n)
{
    if (!grd_timer_done(n, "crash"))
        return GRD_CONTINUE;
    grd_log(n, "about to call exit(0)");
    exit(0);
}

GRD_SYSTEM(crashy,
    .request = "IDLE", .nominal = "IDLE",
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = idle),
        GRD_STATE("IDLE", 10, .request = true, .goto_ = true, .main = idle, .run = idle),
        GRD_STATE("SEGV", 20, .request = true, .main = wait_main, .run = segv_run),
        GRD_STATE("HANG", 30, .request = true, .main = wait_main, .run = hang_run),
        GRD_STATE("ABORT", 40, .request = true, .main = wait_main, .run = abort_run),
        GRD_STATE("EXIT", 50, .request = true, .main = wait_main, .run = exit_run)),
    .edges = GRD_EDGES({"INIT", "IDLE"}, {"IDLE", "SEGV"}, {"IDLE", "HANG"}, {"IDLE", "ABORT"},
                       {"IDLE", "EXIT"}));
