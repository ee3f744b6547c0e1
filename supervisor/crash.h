/* crash.h — crash capture: a record of every fatal signal and every hang.
 *
 * A node's C code runs in this process and can crash it. At start-up the
 * supervisor opens a journal file and installs handlers (on an alternate
 * stack) for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT. A handler appends
 * one text record to the journal with async-signal-safe calls only — the
 * time, the signal, its code and fault address, the node, state and phase
 * that were executing (node_executing), the uptime, a backtrace — and then
 * re-raises the signal with its default action, so the core dump still
 * happens. The next start imports the journal into SQLite (store/).
 *
 * A hang is a crash too: a periodic SIGALRM checks whether the node step in
 * progress has run longer than the hang limit; if so it writes the same
 * record (signal SIGALRM, phase of the stuck code) and aborts.
 *
 * So is exit() called by a node's code (or anything else during a node
 * step): an exit handler writes the record (signal 0, code = the status
 * passed to exit) and ends the process with CRASH_EXIT_STATUS, never 0, so
 * that systemd restarts the site and the node is quarantined like any
 * other that crashes.
 *
 * Journal format, one record per crash (parsed by store_import_journal):
 *
 *   CRASH v1 boot=B seq=N time=T signal=S code=C addr=0xA uptime=U node=X state=Y phase=Z
 *   bt <a backtrace line as backtrace_symbols_fd prints it>
 *   ...
 *   END
 *
 * Names that are unknown are "-". A SIGABRT sent by another process while
 * no node step runs (systemd's watchdog) names the node crash_suspect()
 * gave, with phase=watchdog. Everything here is process-global, as
 * signal dispositions are.
 */
#ifndef GUARDIAND_CRASH_H
#define GUARDIAND_CRASH_H

#include <stddef.h>
#include <stdint.h>

/* Open (append) the journal and install the handlers. boot identifies this
 * run in the journal (the store's boot id). hang_limit in seconds; 0 turns
 * hang detection off. Returns 0, or -1 with err set (nothing installed). */
int crash_init(const char *journal, int64_t boot, double hang_limit, char *err, size_t errlen);
#define CRASH_EXIT_STATUS 70 /* EX_SOFTWARE: exit() from a node's code */

/* Around each node step: the node that runs, for the record and the hang
 * check, and the monotonic time its step began (the caller has read the
 * clock already). name must stay valid until crash_step_end(). */
void crash_step_begin(const char *name, double started);
void crash_step_end(void);

/* The node the watchdog blames while it withholds WATCHDOG=1 (the one whose
 * step last held the loop), or NULL. systemd's watchdog kill (a SIGABRT
 * sent by another process) usually lands while no node step runs: its
 * record then names this node, with phase "watchdog", so that repeated
 * kills quarantine it as any crash would. The name is copied. */
void crash_suspect(const char *name);

/* A buffer of output not yet written to stdout (node log lines): the
 * handlers write it out first, so the lines before a crash are not lost. */
void crash_pending_output(const char *buf, const volatile size_t *len);

/* Restore the default dispositions, stop the hang timer, close the journal. */
void crash_fini(void);

#endif
