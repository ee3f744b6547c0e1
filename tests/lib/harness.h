/* harness.h — run a real guardiand (or another CA server: guardsim) for the integration tests
 * and the benchmarks.
 *
 * Each test starts its own daemon on free ports of 127.0.0.1 only:
 *
 *     harness_daemon d;
 *     if (harness_start(&d, NULL) != 0) ...          // waits (bounded) for "ready"
 *     harness_ca_context(&d);                         // client env, then ca_context_create()
 *     ... libca or raw sockets against d.port ...
 *     ca_context_destroy();
 *     int status = harness_stop(&d, 0);               // SIGTERM; 0 means a clean exit
 *
 * The daemon binary is $GUARDIAND, or build/bin/guardiand relative to the working directory.
 * Its environment is ours without any EPICS_* variable, plus:
 *   EPICS_CAS_INTF_ADDR_LIST=127.0.0.1  EPICS_CAS_BEACON_ADDR_LIST=127.0.0.1
 *   EPICS_CAS_AUTO_BEACON_ADDR_LIST=NO  EPICS_CAS_BEACON_PORT=<beacon_port>
 *   EPICS_CA_AUTO_ADDR_LIST=NO          EPICS_CA_REPEATER_PORT=<beacon_port>
 *   the server port as EPICS_CAS_SERVER_PORT (or as the caller chooses, see port_via),
 * then the caller's opts.env, whose entries replace defaults of the same name. Another server
 * (opts.program, e.g. guardsim) gets the same environment. Its stderr and stdout go to a log
 * file, which is printed (tail) when it fails and removed after a clean stop. The daemon gets
 * SIGKILL if the thread that started it dies (PR_SET_PDEATHSIG), so a crashed or timed-out test
 * cannot leave it running.
 *
 * No daemon the harness starts uses the host's files: it always gets a control socket of its
 * own (--control-socket, beside its log, unless opts.args names one), never the default under
 * /run/guardiand, which a second daemon could not share; and a database of its own
 * (--database, beside its log) unless opts.args name one or a configuration file (--config),
 * which then names it: every configuration the tests and benchmarks write puts it in their
 * folder.
 *
 * Not thread safe; the process-wide environment is changed by harness_client_env().
 */
#ifndef GUARDIAND_TESTS_HARNESS_H
#define GUARDIAND_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ca/epics_ca.h"

enum harness_port_via {
    HARNESS_PORT_CAS_ENV = 0, /* EPICS_CAS_SERVER_PORT=<port> (the default) */
    HARNESS_PORT_CA_ENV,      /* EPICS_CA_SERVER_PORT=<port> only */
    HARNESS_PORT_OPTION,      /* --port <port>, no port variable */
};

typedef struct harness_opts {
    const char *program;     /* another server to run (guardsim), with args as its only
                              * arguments: none of the daemon's options below is added;
                              * NULL: the daemon */
    const char *const *args; /* extra arguments after --demo, NULL-terminated (or NULL) */
    bool no_demo;            /* leave --demo out (a daemon serving only what args configure) */
    bool real_plant;         /* leave --simulate-plant out: plant channels over CA, searched
                              * where env's EPICS_CA_ADDR_LIST says (nowhere by default) */
    const char *const *env;  /* extra "NAME=value" entries, NULL-terminated (or NULL) */
    enum harness_port_via port_via;
    int port, beacon_port;   /* ports the caller chose with harness_free_ports() (written into
                              * a configuration before the start, or a beacon port shared with
                              * another server); 0: free ones */
    const char *dir;         /* an existing folder for its log, database and control socket:
                              * <dir>/<program name>.log, .db, .sock (the caller removes the
                              * folder); NULL: $TMPDIR/guardiand-test.XXXXXX, the others beside */
    /* Whether a line of its log is its ready line (arg: ready_arg). NULL: a line holding the
     * word "ready" ("already" does not count). A parser may keep figures from the line. */
    bool (*ready)(void *arg, const char *line);
    void *ready_arg;
    /* Run for `seconds` between looks at the log, instead of sleeping (arg: wait_arg): e.g.
     * serve a CA repeater the starting daemon registers with. NULL: sleep. */
    void (*wait)(void *arg, double seconds);
    void *wait_arg;
    double ready_timeout;    /* seconds to wait for "ready"; 0 means 10 */
} harness_opts;

typedef struct harness_daemon {
    pid_t pid;              /* 0 once it has been reaped */
    int port;               /* CA server port, UDP and TCP, on 127.0.0.1 */
    int beacon_port;        /* its EPICS_CAS_BEACON_PORT, our EPICS_CA_REPEATER_PORT */
    int status;             /* raw wait status once reaped */
    double started;         /* harness_now() just before its fork(): start-up times count
                             * from here */
    char log_path[256];
    char db_path[256];      /* the database the harness gave it, "" if none (harness_stop()
                             * removes it, its -wal, -shm, .crashes and .lock files) */
    char socket_path[108];  /* its control socket (sun_path's size), "" for another program */
    bool own_socket;        /* socket_path is the harness's choice: harness_stop() removes it */
} harness_daemon;

/* Monotonic time in seconds. */
double harness_now(void);

/* Sleep s seconds (resumed after signals). */
void harness_sleep(double s);

/* ---- what a process costs, from /proc (for the benchmarks) ---- */

/* CPU seconds (utime + stime) of process pid, all threads, or NAN; one clock tick (10 ms)
 * resolution. And this process's, from getrusage. */
double harness_proc_cpu_s(pid_t pid);
double harness_self_cpu_s(void);

/* From /proc/<pid>/schedstat (its main thread: all of a single-threaded daemon), to the ns:
 * the seconds it ran on a CPU, and the seconds it was runnable but waiting for one (what other
 * work on the host costs its timing). Returns 0, or -1 with both NAN. */
int harness_proc_schedstat(pid_t pid, double *run_s, double *wait_s);

/* A "Vm...:" line of /proc/<pid>/status (field is e.g. "VmRSS:" or "VmHWM:") in kB, or -1. */
long harness_proc_status_kb(pid_t pid, const char *field);

/* CPU seconds all cores of the host have been busy (anything but idle and iowait), from
 * /proc/stat, or NAN: with the processes one knows of subtracted, what other work ran. */
double harness_host_busy_s(void);

/* A port free for both UDP and TCP on 127.0.0.1, and a second UDP port for beacons.
 * Returns 0, or -1 after bounded retries. */
int harness_free_ports(int *port, int *beacon_port);

/* The daemon binary: $GUARDIAND, else build/bin/guardiand. */
const char *harness_daemon_path(void);

/* Set $GUARDIAND to the guardiand beside this program's binary, if $GUARDIAND is unset and
 * there is one: a benchmark run as build/asan/bin/bench-x runs build/asan/bin/guardiand. */
void harness_prefer_daemon_beside_self(void);

/* A new folder $TMPDIR/<name>.XXXXXX (else under /tmp) into out. Returns 0, or -1 with errno
 * (ENAMETOOLONG if it does not fit in size). */
int harness_temp_dir(char *out, size_t size, const char *name);

/* Remove the files in dir (not sub-folders: the harness's users make none) and dir itself. */
void harness_remove_dir(const char *dir);

/* Start the daemon (opts may be NULL) and wait for its "ready" line. Returns 0, or -1 with a
 * message and the log tail on stderr (the daemon is then killed and reaped). */
int harness_start(harness_daemon *d, const harness_opts *opts);

/* Stop it with SIGTERM, wait up to timeout seconds (0 means 10), then SIGKILL. Returns its
 * exit code (0..255), 128 + the signal number if a signal ended it (137 after our SIGKILL),
 * or -1 if it was not running. Safe to call twice. */
int harness_stop(harness_daemon *d, double timeout);

/* The folder of system modules (<name>.so) that belong to the daemon binary: the systems/
 * folder next to its bin/ (build/systems or build/asan/systems). Returns 0, or -1 if it does
 * not fit in len. */
int harness_systems_dir(char *out, size_t len);

/* Whether the daemon is still running (reaps it if it has exited). */
bool harness_alive(harness_daemon *d);

/* Its resident set size in KiB from /proc/<pid>/status, or -1 (not running). */
long harness_rss_kb(const harness_daemon *d);

/* Set this process's client environment for the daemon (before ca_context_create()):
 * EPICS_CA_AUTO_ADDR_LIST=NO, EPICS_CA_ADDR_LIST=127.0.0.1, EPICS_CA_SERVER_PORT=<port>,
 * EPICS_CA_REPEATER_PORT=<beacon_port>; EPICS_CA_NAME_SERVERS is removed. */
void harness_client_env(const harness_daemon *d);

/* ---- DBR layouts (../shared/docs/ca-protocol.md 4.2), independent of the server's code ---- */

/* Bytes of a DBR struct holding n elements (n >= 1; unpadded), or 0 for a type above 38. */
size_t harness_dbr_size_n(unsigned type, unsigned long n);
size_t harness_dbr_value_offset(unsigned type); /* offset of element 0 */
size_t harness_dbr_value_size(unsigned type);   /* bytes per element */

/* ---- libca helpers ---- */

/* harness_client_env(), then ca_context_create(ca_disable_preemptive_callback).
 * Returns the ECA status (ECA_NORMAL on success). */
int harness_ca_context(const harness_daemon *d);

/* Create n channels (no connection callback) and wait up to timeout seconds for all of them.
 * Returns how many are connected; unconnected ones stay created. */
size_t harness_ca_connect(chid *chans, const char *const *names, size_t n, double timeout);

/* Process libca callbacks until done(arg) is true or timeout seconds have passed.
 * Returns the last value of done(arg). */
bool harness_ca_wait(bool (*done)(void *arg), void *arg, double timeout);

/* Process libca callbacks for `seconds` (bounded, for "nothing more should arrive"). */
void harness_ca_idle(double seconds);

#endif
