/* sup.h — the supervisor: the one context of a guardiand process.
 *
 * The supervisor owns the loop, the PV database, the CA server, the nodes
 * and their schedule, and is passed down explicitly; it is the only mutable
 * state that is not local to a module object.
 *
 * Files: main.c (options, start-up, shutdown), lifecycle.c (every start,
 * stop and restart of a node), nodes.c (the running nodes, the host
 * services nodes use, the simulated plant), sched.c (the 16 Hz
 * slotted schedule and its timing figures), supchan.c (the supervisor's own
 * channels), nodepv.c (each node's channels), screens.c (the site's MEDM
 * screens), config.c, demo.c.
 */
#ifndef GUARDIAND_SUP_H
#define GUARDIAND_SUP_H

#include <assert.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "ca/cas.h"
#include "medm/medm.h"
#include "node/node.h"
#include "pvdb/pvdb.h"
#include "supervisor/config.h"
#include "supervisor/nodepv.h"
#include "supervisor/version.h"

#define SCHED_SLOTS 16          /* slots per cycle: nodes are spread over them */
#define SCHED_SAMPLES 4096      /* tick lateness samples kept for the jitter figures */

struct demo;
struct sup_kept_log;
struct supchan;
struct store;
struct notify;
struct ctl;

#define SUP_ARGS_CHECK_AFTER 2.0 /* s: see sup_node.args_checked */

/* A node as the supervisor holds it. */
typedef struct sup_node {
    char name[CONFIG_NAME_MAX];
    char *system;               /* system name, for reloads */
    char **args;                /* "key=value", as started (for SIGHUP's comparison) */
    unsigned n_args;
    node *node;
    node_system *sys;
    nodepv *pv;
    unsigned slot;
    struct sup_node *slot_next; /* nodes of one slot, in step order */
    bool quarantined;           /* not stepped: see persist.c */
    double added;               /* sup_now() when it started */
    /* Arguments its system did not read (a mistyped key?): checked once,
     * when it leaves INIT or SUP_ARGS_CHECK_AFTER s after it started,
     * since a system may read them in INIT's code as well as node_init. */
    bool args_checked;
    char unread[256];           /* "key1, key2", "" when it read them all */
    bool too_slow;              /* quarantined by the scheduler (sched.c), not for crashes */
    char quarantine_why[192];   /* why it is quarantined, for status and refusals */
    uint64_t stepped_cycle;     /* the cycle it last stepped in (sched.c, the watchdog) */
    /* Step timing (sched.c): seconds one step took (its code, saving and
     * publishing), and the steps over cfg.step_budget. */
    struct sup_step_times {
        double last, max, total;
        uint64_t steps;
        uint64_t overruns;      /* over budget, ever */
        unsigned streak;        /* over budget since streak_start ... */
        double streak_start;    /* ... (monotonic): the too-slow rule's window */
        double streak_max;      /* the longest of those steps */
    } times;
    /* node_generation at its last step: a step that changed what operators
     * see tells the control socket's watchers (sup_changed). */
    uint64_t watch_gen;
    /* Who set its request and when (guardctl status): the audit's newest
     * accepted REQUEST or REQUEST_ENUM write, looked up once (ctlcmd.c) and
     * then kept by the audit hook that queues each such write (persist.c),
     * so that a status of every node costs no query per node. */
    struct sup_request_set {
        bool known;             /* looked up, or written since it started */
        char by[64];            /* user@host; "" none */
        char value[PV_STRING_SIZE];
        double time;
    } request_set;
    /* A LOAD over CA under way (nodes.c): its phases are shown one loop
     * iteration apart, so that each reaches monitors; load_step counts those
     * shown, 0 when none is under way. */
    ev_timer load_timer;
    unsigned load_step;
    /* Its module file as LOAD_PENDING last showed it (node_systems_check). */
    enum node_module_state module_shown;
    /* What was last queued to the store, to queue only changes. */
    uint64_t saved_gen;
    const grd_state *saved_req, *saved_state;
    int saved_mode, saved_op;
    bool saved_error;
    UT_hash_handle hh;
} sup_node;

/* A node to run, from the registry (or the file when there is no store). */
struct sup_node_spec {
    const char *name, *system;
    const char *const *args;
    unsigned n_args;
    bool enabled;
    const char *request, *mode, *op; /* saved controls, NULL if none */
};

/* The slotted schedule: tick k of cycle c is due at t0 + (c*SLOTS + k) * tick. */
struct sched {
    ev_io timer;                /* on tfd, a timerfd armed at the next tick's due time */
    int tfd;
    double tick;                /* seconds between slots */
    double t0;                  /* monotonic time of tick 0 */
    uint64_t next;              /* index of the next tick to run */
    sup_node *slots[SCHED_SLOTS];
    unsigned slot_count[SCHED_SLOTS];
    /* figures */
    double late[SCHED_SAMPLES]; /* lateness of recent ticks, seconds */
    unsigned n_late, late_pos;
    uint64_t overruns, skipped_cycles, steps;
    /* The node whose step held the loop last: the longest step of the last
     * run of ticks that made the next tick late. The watchdog names it
     * (notify.c); cleared when the node is removed. */
    sup_node *held_by;
    double held_for, held_at;   /* its step's seconds; monotonic time it ended */
    ev_prepare prepare;         /* loop utilisation: busy from check to prepare */
    ev_check check;
    double busy, woke, window_start;
    double util;                /* fraction of the last window spent busy */
};

/* A node an operator stopped (guardctl stop): SIGHUP does not start it again. */
struct sup_stopped {
    char name[CONFIG_NAME_MAX];
    UT_hash_handle hh;
};

/* A node that should run but could not start (its system did not load...):
 * shown as failed, with why, until it starts or is destroyed. */
struct sup_failed {
    char name[CONFIG_NAME_MAX];
    char why[512];
    UT_hash_handle hh;
};

/* One node's part in applying the configuration file (lifecycle.c). */
struct life_change {
    char name[CONFIG_NAME_MAX];
    char what[16];              /* started, stopped, restarted, failed */
    char why[512];
};

/* What applying the configuration file did (start-up, SIGHUP, guardctl reload). */
struct life_report {
    double time;                /* wall clock */
    char who[128];              /* LIFE_BOOT, "SIGHUP", "alice (uid 1000)" */
    char file[1024];
    bool applied;               /* false: refused or unreadable; nothing changed */
    char error[1024];           /* why not, with file:line for a file that does not parse */
    unsigned nodes, started, stopped, restarted, failed;
    struct life_change *changes; /* per node; NULL in sup.last_reload */
    unsigned n_changes, cap_changes;
};

typedef struct sup {
    struct ev_loop *loop;
    struct config cfg;
    pvdb *db;
    cas *ca;
    cas_repeater *repeater;
    ev_signal sigterm, sigint;
    struct demo *demo;
    sup_node *nodes;            /* uthash by name */
    struct sup_stopped *stopped; /* uthash by name */
    struct sup_failed *failed;   /* uthash by name */
    unsigned n_failed;
    struct sup_kept_log *kept_logs; /* logs of nodes that do not run: lifecycle.c */
    struct life_report last_reload; /* SIGHUP or guardctl reload; time 0: none yet */
    /* Read the configuration file again, with the command line's overrides
     * (main.c): 0, or -1 with the reason (file:line) in err. */
    int (*reread_config)(struct sup *s, struct config *out, char *err, size_t errlen);
    unsigned n_nodes;
    node_host host;
    struct plant *plant;        /* the channels nodes read and write (plant.h) */
    struct sched sched;
    struct supchan *supchan;
    double started;             /* monotonic */
    struct store *store;        /* NULL: running without persistence */
    char store_problem[512];    /* why there is no store ("" if there is one) */
    char journal[1024];         /* the crash journal's path */
    int db_lock_fd;             /* <database>.lock, flock()ed for the daemon's life; -1 none */
    bool prev_unclean;          /* the previous boot did not end cleanly */
    unsigned imported_crashes;  /* crash records imported at this start */
    ev_timer store_watch;       /* logs degraded mode changes, refreshes channels */
    struct notify *notify;      /* systemd's notify socket, NULL without (notify.c) */
    struct ctl *ctl;            /* the control socket (ctl.h); NULL in --run */
    ev_timer medm_timer;        /* rewrites the MEDM screens (screens.c) */
    ev_timer module_watch;      /* looks at module files: LOAD_PENDING (nodes.c) */
    /* Every node log line is also given to log_tap while it is set: ctl.c
     * sets it only while a client follows a log, so otherwise a line costs
     * one test. */
    void (*log_tap)(void *arg, node *n, const char *line);
    void *log_tap_arg;
    /* sup_changed calls watch_tap while it is set: ctl.c sets it only while
     * a client watches (guardctl list -w), so otherwise a change costs one
     * test. */
    void (*watch_tap)(void *arg, bool lifecycle);
    void *watch_tap_arg;
    struct sup_refusals {       /* refused writes recorded: a token bucket (policy.c) */
        double tokens, last;
        unsigned dropped;
        struct sup_refusal { uint64_t hash; double time; } recent[32]; /* not repeated */
        unsigned next;
    } refusals;
} sup;

/* log.c: the daemon's own messages, "guardiand: ..." on stderr, with
 * their syslog priority when stderr is the journal. */
enum sup_level { SUP_ERR = 3, SUP_WARNING = 4, SUP_NOTICE = 5, SUP_INFO = 6 };
void sup_log(enum sup_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* nodes.c */
void sup_host_init(sup *s);
/* The plant nodes use (after cfg, loop and db are set; before nodes are
 * added): simulated when cfg.simulate_plant. -1 with the reason in err. */
int sup_plant_init(sup *s, char *err, size_t errlen);
void sup_plant_free(sup *s); /* after sup_nodes_free */
/* Write the buffered node log lines to stdout (once per loop iteration). */
void sup_log_flush(void);
/* The buffer and its fill, for the crash handler. */
void sup_log_buffer(const char **buf, const volatile size_t **len);
double sup_now(void);
double sup_wall(void);
/* Add a node running `system` (loaded from cfg.systems) with key=value args.
 * Returns 0, or -1 with the reason in err; other nodes are not disturbed. */
int sup_node_add(sup *s, const char *name, const char *system, const char *const *args,
                 unsigned n_args, char *err, size_t errlen);
/* Remove a node: its channels disconnect from clients. -1 if unknown. */
int sup_node_remove(sup *s, const char *name);
sup_node *sup_node_find(sup *s, const char *name);
/* LOAD a running node's system again (issue 13): the module is loaded beside the
 * old one, compared (into *diff, if not NULL) and checked (node_reload_check).
 * Unless a dry run, LOAD_STATUS shows REQUEST, SET and INPROGRESS before the
 * outcome (DONE or ERROR), all within this call (guardctl waits for its
 * answer); a LOAD over CA spreads the same phases over loop iterations.
 * Returns 0 when switched; 1 for a dry run that would switch; -1 with `why`
 * when the node is not running or the module does not load (*diff untouched);
 * -2 with `why` when the preflight refuses (a dry run, or not forced): *diff
 * is filled. A failure that is not a dry run sets LOAD_STATUS=ERROR. */
int sup_node_load(sup *s, const char *name, bool dry_run, bool force,
                  struct node_system_diff *diff, char *why, size_t whylen);
/* LOAD_PENDING (issue 13): every SUP_MODULE_CHECK s the module files of the
 * running nodes are looked at (node_systems_check: a stat per module path, a
 * read only when one moved), and a node whose file no longer holds the code
 * it runs shows LOAD_PENDING=True, says so in its log and in guardctl. */
#define SUP_MODULE_CHECK 2.0
void sup_module_watch_start(sup *s);
void sup_module_watch_stop(sup *s);
/* Whether the node's module file changed on disk (or is gone) since it was loaded. */
bool sup_node_load_pending(const sup_node *sn);
/* What operators see of the nodes changed: a step changed a node's state,
 * request, mode, op, OK, error... (sched.c), or, lifecycle true, a node
 * started, stopped, failed, was quarantined, released, enabled or disabled.
 * The control socket's watchers hear of it (ctl.c coalesces). */
void sup_changed(sup *s, bool lifecycle);
/* Whether an operator stopped the node (it stays stopped across SIGHUP until
 * started again); set or clear the mark. */
bool sup_is_stopped(sup *s, const char *name);
void sup_set_stopped(sup *s, const char *name, bool stopped);
/* Why the node could not start, or NULL; why NULL clears (a start that
 * works, a destroy, a stop). */
const char *sup_failed_why(sup *s, const char *name);
void sup_set_failed(sup *s, const char *name, const char *why);
/* Give a simulated plant channel a value (created if need be). -1 if not
 * simulating, or the name is a channel of ours (a node's, a demo PV) or not
 * acceptable. */
int sup_plant_set(sup *s, const char *chan, double value);
void sup_nodes_free(sup *s);

/* lifecycle.c: the one home of a node's lifecycle (the rules are at the top
 * of lifecycle.c). `who` says who asked, for the log lines: LIFE_BOOT,
 * "SIGHUP", "alice (uid 1000)". */
#define LIFE_BOOT "start-up"
/* A configuration file that drops every node it named before, or more than
 * half of them and at least this many, is not applied without force. */
#define LIFE_DROP_MIN 3
struct life_controls {
    char request[PV_STRING_SIZE], mode[16], op[16];
};
/* REQUEST, MODE and OP as the node's channels hold them (newer than what
 * the node applied: a write is applied at its next cycle). */
void life_controls(sup *s, const sup_node *sn, struct life_controls *c);
/* Start a node: 0, or -1 (marked failed, why in err). */
int life_start(sup *s, const struct sup_node_spec *spec, const char *who, char *err,
               size_t errlen);
/* Stop a node, saving its controls; by_operator: it stays stopped across
 * SIGHUP until started again. sn is freed. */
void life_stop(sup *s, sup_node *sn, const char *who, bool by_operator);
/* Stop and start again, with def's system and arguments (NULL: its own),
 * keeping its controls and log. -1: it failed to start (marked failed). */
int life_restart(sup *s, sup_node *sn, const struct sup_node_spec *def, const char *who,
                 char *err, size_t errlen);
/* Quarantine a running node: it is not stepped, its controls are refused;
 * USERMSG shows usermsg, status and the log why. Lifted by life_release. */
void life_quarantine(sup *s, sup_node *sn, const char *usermsg, const char *why);
/* The registry's changes: NULL when done, else an error code for the
 * control socket ("EUNKNOWN_NODE", "EIO", ...) with the message in err. */
const char *life_release(sup *s, const char *name, const char *who, bool *was, char *err,
                         size_t errlen);
const char *life_create(sup *s, const struct sup_node_spec *spec, const char *who, char *err,
                        size_t errlen);
const char *life_destroy(sup *s, const char *name, const char *who, char *err, size_t errlen);
const char *life_set_enabled(sup *s, const char *name, bool enabled, const char *who, char *err,
                             size_t errlen);
/* Apply a configuration's node list: fresh (taken over; the ifo and rate
 * stay as they are), or NULL at start-up for s->cfg. Nodes start, stay,
 * restart (system or arguments changed) or stop to match; a disabled node
 * that runs keeps running. A file that drops too many nodes (LIFE_DROP_MIN)
 * is refused unless force: -1, nothing changed (at start-up the registry's
 * nodes run as they were). r says what happened (life_report_free it). */
int life_apply(sup *s, struct config *fresh, bool force, const char *who, struct life_report *r);
void life_report_free(struct life_report *r);
/* Read the configuration file again (s->reread_config) and apply it:
 * SIGHUP and guardctl reload. -1 if it could not be read or was refused
 * (r->error says why, with file:line); kept as the last reload. */
int life_reload(sup *s, const char *who, bool force, struct life_report *r);
/* Keep r's summary as the last reload (shown by guardctl status). */
void life_note_reload(sup *s, const struct life_report *r);
/* The log lines kept from a node's last run (it does not run now), the
 * last max of them, oldest first; and freeing them all at exit. */
unsigned life_kept_log(sup *s, const char *name, const char **out, unsigned max);
void life_forget_logs(sup *s);

/* persist.c: the supervisor's use of the store (store/store.h).
 * persist_open: open the database, import the crash journal, begin this
 * boot; -1 only for a database newer than this binary (refuse to start).
 * A database another guardiand holds (its <database>.lock is locked) is
 * refused (-1, naming the holder's PID): two daemons must never write one
 * history, nor mark each other's boot unclean.
 * Any other problem leaves s->store NULL with the reason in store_problem:
 * nodes run from the file, nothing is saved, the file is left untouched. */
int persist_open(sup *s, char *err, size_t errlen);
void persist_close(sup *s, bool clean);
void persist_unlock(sup *s); /* persist_close does it; for exits that never opened the store */
/* The nodes to run: the registry seeded from the file (the registry rule in
 * store.h; not seeded unless seed), or the file's nodes without a store.
 * Calls fn for each. */
int persist_node_list(sup *s, bool seed,
                      void (*fn)(sup *s, const struct sup_node_spec *spec, void *arg), void *arg);
/* A node just added: restore its saved controls, quarantine it if it was
 * executing in too many recent crashes, show its crash count. */
void persist_node_started(sup *s, sup_node *sn, const struct sup_node_spec *spec);
/* After each step: queue what changed (controls, state, transitions, faults). */
void persist_after_step(sup *s, sup_node *sn);
/* The scheduler's verdict (sched.c): the node's steps took longer than
 * step_budget step_overruns times within step_window. It is quarantined
 * with the reason (lifecycle.c), and a "too slow" fault is queued. */
void sup_node_too_slow(sup *s, sup_node *sn);

/* sched.c */
/* -1 (errno set) if no timerfd can be had. */
int sched_start(sup *s);
void sched_stop(sup *s);
void sched_add(sup *s, sup_node *sn);
void sched_remove(sup *s, sup_node *sn);
/* Monotonic time the next tick is due: when the loop is next busy. */
double sched_next_due(const sup *s);
/* The watchdog's view of the schedule. stale: the first node (not
 * quarantined) that has not stepped in the last max_cycles cycles, with the
 * seconds since its last turn; NULL if none. held_by: the node whose step
 * held the loop since then (sched.held_by), NULL if none is known; over
 * budget when that step took longer than step_budget (the too-slow rule is
 * counting it, or has just taken it out). */
struct sched_health {
    sup_node *stale;
    double since;
    sup_node *held_by;
    double held_for;
    bool over_budget;
};
void sched_health(sup *s, unsigned max_cycles, struct sched_health *h);
/* Jitter percentiles over the recent ticks, in seconds. */
void sched_jitter(const struct sched *sc, double *p50, double *p99, double *max);

/* supchan.c */
struct supchan *supchan_new(sup *s, char *err, size_t errlen);
void supchan_free(struct supchan *sc);
/* The supervisor's channels (suffixes and how to show them), at most max;
 * returns how many there are. */
unsigned supchan_channels(struct medm_chan *out, unsigned max);
/* The prefix of the supervisor's channels. */
void supchan_prefix(const sup *s, char *out, size_t len);

/* screens.c: the site's MEDM screens (medm/medm.h) from the nodes running.
 * sup_medm_files gives their names and texts (medm_files_free them);
 * sup_medm_write writes them into dir, each atomically (a temporary file
 * renamed) and only when its content changed; -1 with the reason in err. */
int sup_medm_files(sup *s, struct medm_file **files, unsigned *n, char *err, size_t errlen);
int sup_medm_write(sup *s, const char *dir, char *err, size_t errlen);
/* The set of nodes changed: with medm_dir, the screens there are written
 * again shortly (once for a burst of changes: a SIGHUP, the start). */
void sup_medm_changed(sup *s);
void sup_medm_stop(sup *s);
#define SUP_MEDM_DELAY 0.2

/* demo.c: the demo PV set of docs/demo-pvs.md. */
struct demo *demo_new(sup *s, unsigned count, char *err, size_t errlen);
void demo_free(struct demo *d);
/* The demo's own rule: its CA user `guest` writes nothing (policy.c). */
bool demo_read_only(const char *user);

/* policy.c: who may write what, for every writer (pvdb_set_access): node
 * channels by the access rules, the demo's rule, refused writes audited.
 * policy_start before anything can write; policy_changed after the rules
 * changed (a reload; who did it, for the log): connected CA clients get
 * their new rights at once. */
void policy_start(sup *s);
void policy_changed(sup *s, const char *who);
struct access_why;
/* May who write node's channel (a suffix)? why (if not NULL) says which rule decided. */
bool policy_may_write(sup *s, const char *node, const char *channel, const pv_client *who,
                      struct access_why *why);
/* "alice from 10.0.1.5 may not write REQUEST of SUS_ETMX: file:line: [access SUS_*] ..." */
void policy_refusal_text(sup *s, const char *node, const char *channel, const pv_client *who,
                         char *buf, size_t len);

#endif
