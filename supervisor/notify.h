/* notify.h — telling systemd how the daemon is (the sd_notify protocol).
 *
 * Under systemd (Type=notify) $NOTIFY_SOCKET names a Unix datagram socket,
 * a path or, starting with '@', a name in the abstract namespace; each
 * message is one datagram of newline-separated KEY=VALUE lines. Implemented
 * here by hand (about a hundred lines) rather than with libsystemd, so the
 * daemon needs nothing of systemd to build or run.
 *
 * Every call is a no-op when there is no $NOTIFY_SOCKET (notify_new returns
 * NULL and the functions accept NULL). Sends never block the loop
 * (MSG_DONTWAIT) and never fail the daemon: the first failure is logged,
 * later ones are counted silently.
 *
 * The watchdog: with $WATCHDOG_USEC set (and $WATCHDOG_PID unset or ours),
 * a timer at half the interval sends WATCHDOG=1 only while the loop is
 * healthy — every node that is not quarantined has stepped within the last
 * NOTIFY_STALE_CYCLES cycles (sched_health) — or late only because a node's
 * step went over step_budget (that node is named, and the scheduler takes it
 * out as too slow). Otherwise the log names the node whose step held the
 * loop (else the stale node) and the ping is withheld. A loop that is blocked
 * (a node spinning) cannot run the timer at all, so it sends nothing either;
 * in both cases systemd restarts us when WatchdogSec passes without a ping,
 * and its SIGABRT's crash record names the node (crash_suspect).
 */
#ifndef GUARDIAND_NOTIFY_H
#define GUARDIAND_NOTIFY_H

#include "supervisor/sup.h"

/* A node that has not stepped for this many cycles makes the loop unhealthy. */
#define NOTIFY_STALE_CYCLES 3

struct notify;

/* From the environment: NULL when not run under a notifying manager (no
 * $NOTIFY_SOCKET, or no socket to be had: logged). The variables are then
 * removed from the environment so that anything the daemon runs does not
 * speak for it. */
struct notify *notify_new(sup *s);
/* READY=1 with STATUS="N nodes, M failed" (failed < 0: not known); the first
 * call also starts the watchdog timer. */
void notify_ready(struct notify *n, unsigned nodes, int failed);
/* RELOADING=1 with MONOTONIC_USEC (SIGHUP); notify_ready again when done. */
void notify_reloading(struct notify *n);
/* STOPPING=1: shutdown has begun. */
void notify_stopping(struct notify *n);
/* Stop the watchdog timer (before the loop is destroyed) and close. */
void notify_free(struct notify *n);

#endif
