/* mod_slow.c — a system whose SLOW state blocks the loop in every run(), as
 * node code doing slow blocking I/O would, for the too-slow rule and the
 * watchdog tests (issue 12, item 15).
 *
 * Argument: block = seconds each SLOW run() blocks (0.25 by default). IDLE
 * is harmless and the default request; request SLOW to make the node slow.
 * SLOW's run() is done after each block, so a request of IDLE leaves it.
 * Blocking is a sleep: the daemon must cope with node code that sleeps,
 * never do it itself. */
#include <time.h>

#include "node/guardian.h"

static grd_ret idle(grd_node *n)
{
    (void)n;
    return GRD_DONE;
}

static grd_ret slow_run(grd_node *n)
{
    double block = grd_arg_double(n, "block", 0.25);
    if (block > 0) {
        struct timespec ts = {.tv_sec = (time_t)block,
                              .tv_nsec = (long)((block - (double)(time_t)block) * 1e9)};
        while (nanosleep(&ts, &ts) != 0)
            ; /* EINTR (the hang check's SIGALRM): sleep the rest */
    }
    return GRD_DONE;
}

GRD_SYSTEM(slow,
    .request = "IDLE", .nominal = "IDLE",
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = idle),
        GRD_STATE("IDLE", 10, .request = true, .goto_ = true, .main = idle, .run = idle),
        GRD_STATE("SLOW", 20, .request = true, .run = slow_run)),
    .edges = GRD_EDGES({"INIT", "IDLE"}, {"IDLE", "SLOW"}, {"SLOW", "IDLE"}));
