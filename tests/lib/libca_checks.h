/* libca_checks.h — small libca steps with criterion assertions, shared by the integration
 * tests that talk to the daemon through libca (test_ca_libca.c, test_nodes_ca.c).
 *
 * Header only, static: it needs criterion, which the benchmarks that link tests/lib do not.
 * Call from a test's own thread only (criterion asserts must not run in libca callbacks).
 */
#ifndef GUARDIAND_TESTS_LIBCA_CHECKS_H
#define GUARDIAND_TESTS_LIBCA_CHECKS_H

#include <criterion/criterion.h>
#include <time.h>

#include "ca/epics_ca.h"
#include "tests/lib/harness.h"

/* 1990-01-01 UTC, the EPICS epoch, in Unix seconds. */
#define EPICS_EPOCH_UNIX 631152000.0

/* Run libca until cond holds or `seconds` have passed. */
#define WAIT_UNTIL(cond, seconds)                                                            \
    do {                                                                                     \
        double until_ = harness_now() + (seconds);                                           \
        ca_flush_io();                                                                       \
        while (!(cond) && harness_now() < until_)                                            \
            ca_pend_event(0.01);                                                             \
    } while (0)

/* Now in EPICS seconds, to compare with the stamps of DBR_TIME replies. */
static inline double epics_now(void) { return (double)time(NULL) - EPICS_EPOCH_UNIX; }

/* One channel, connected within 10 s (or the test fails). */
static inline chid connect1(const char *name)
{
    chid c = NULL;
    cr_assert_eq(harness_ca_connect(&c, &name, 1, 10.0), 1, "%s did not connect in 10 s", name);
    return c;
}

/* Completion of a put-callback: on_put_done counts the callbacks and keeps the last status.
 * Its argument should be static: libca may call back late, after a failed test. */
struct completion {
    int done;
    int status;
};

static inline void on_put_done(struct event_handler_args a)
{
    struct completion *c = a.usr;
    c->done++;
    c->status = a.status;
}

#endif
