/* config.h — guardiand's configuration file.
 *
 * An INI file (parsed by Debian's libinih), documented in etc/guardiand.ini:
 *
 *   [guardiand]
 *   ifo = H1                      ; channel prefix <IFO>:GRD-<NODE>_...
 *   systems = /usr/lib/guardiand/systems:./systems  ; search path for <system>.so
 *   rate = 16                     ; node cycles per second
 *   supervisor_prefix = H1:GUARDIAND-   ; default <IFO>:GUARDIAND-
 *   database = guardiand.db       ; node state and crash history (SQLite)
 *   crash_journal = guardiand.db.crashes   ; written by the crash handler
 *   hang_limit = 5                ; seconds a node step may run before it is a crash
 *   quarantine_crashes = 3        ; a node executing in this many crashes ...
 *   quarantine_window = 3600      ; ... within this many seconds starts quarantined
 *   step_budget = 0.05            ; seconds one node step may take; 0 = no limit
 *   step_overruns = 8             ; a node over budget this many times ...
 *   step_window = 10              ; ... within this many seconds is taken out as too slow
 *   retention_days = 90           ; transition, fault and audit history kept
 *   log_retention_days = 14       ; node log lines kept in the database; 0 = not saved
 *   control_socket = /run/guardiand/guardiand.sock  ; guardctl's socket (see below)
 *   medm_dir = /var/lib/guardiand/medm  ; the site's MEDM screens, kept current (screens.c)
 *   control_mode = 0660           ; its permission bits (octal)
 *   control_idle_timeout = 30     ; seconds after a client's last request before it is closed
 *   control_group = guardian      ; the group owning it (default: root's)
 *   operator_group = operators    ; who may change things (default: root only)
 *   simulate_plant = no           ; yes: plant channels simulated in-process (tests)
 *   plant_addr_list = 10.0.0.255 10.0.1.7:5066  ; where libca searches (EPICS_CA_ADDR_LIST)
 *   plant_auto_addr_list = yes    ; EPICS_CA_AUTO_ADDR_LIST
 *   plant_connect_timeout = 5     ; seconds a write waits for its channel to connect
 *   access_file = /etc/guardiand/access.ini  ; the access rules (else in this file)
 *
 *   [users NAME], [hosts NAME], [access PATTERN]   ; who may write what: access.h
 *
 *   [node SUS_ETMX]
 *   system = sus
 *   optic = ETMX                  ; every other key is an argument of the node
 *
 * A key given twice in a [node] section continues its value after a comma
 * (long lists stay readable). Every value is checked; an error names the
 * file, the line and the problem (for a node, the line of its first key:
 * libinih reports keys, not section headers).
 */
#ifndef GUARDIAND_CONFIG_H
#define GUARDIAND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "node/names.h" /* the rule for node, system and IFO names */

struct access_rules;

#define CONFIG_NAME_MAX (NAME_NODE_MAX + 1) /* a node name and its NUL (node/names.h) */
#define CONFIG_FILE_MAX (16L << 20) /* bytes: a larger file is refused */
#define CONFIG_FILE_MAX_TEXT "16 MiB"
#define CONFIG_ARGS_MAX 32

struct config_node {
    char name[CONFIG_NAME_MAX];
    char *system;
    char *args[CONFIG_ARGS_MAX]; /* "key=value" */
    unsigned n_args;
    int line;
};

struct config {
    char *path;
    char *ifo;
    char *systems;
    double rate;
    char *supervisor_prefix;
    char *database;
    char *crash_journal;        /* default: <database>.crashes */
    double hang_limit;          /* seconds a node step may run; 0 = no hang check */
    unsigned quarantine_crashes; /* K crashes ... */
    double quarantine_window;   /* ... within this many seconds quarantine a node */
    /* A node whose step (its code, saving and publishing what changed) takes
     * longer than step_budget seconds step_overruns times within step_window
     * seconds is taken out of the schedule as too slow (sched.c). 0: no
     * budget. Read at each step, so a SIGHUP applies a new value at once. */
    double step_budget;
    unsigned step_overruns;
    double step_window;
    double retention_days;      /* transition, fault and audit history kept */
    double log_retention_days;  /* node log lines kept in the database; 0: not saved */
    /* The control socket (supervisor/ctl.c). NULL path: the default,
     * $RUNTIME_DIRECTORY/guardiand.sock, else /run/guardiand/guardiand.sock
     * (resolved at start, since systemd sets RUNTIME_DIRECTORY). NULL groups:
     * none (the socket keeps the daemon's group; only root may change things). */
    char *control_socket;
    char *medm_dir;             /* NULL: the daemon writes no MEDM screens itself */
    unsigned control_mode;      /* permission bits of the socket (0660) */
    double control_idle_timeout; /* seconds a control client may stay after its last request (30) */
    char *control_group;
    char *operator_group;
    /* The CA server's limits (ca/cas.h says what each bounds, and why the
     * defaults are what they are). */
    unsigned ca_max_circuits;
    unsigned ca_max_circuits_per_host;
    unsigned ca_max_channels_per_circuit;
    unsigned ca_max_subs_per_channel;
    double ca_handshake_timeout; /* seconds; 0 = never */
    /* Plant channels (plant/plant.h). The address list, when given, is set
     * as EPICS_CA_ADDR_LIST for libca: numeric IPv4 addresses with an
     * optional :port only, since libca resolves names on our thread. */
    bool simulate_plant;
    char *plant_addr_list;       /* NULL: the environment's */
    int plant_auto_addr_list;    /* -1: the environment's, else 0 / 1 */
    double plant_connect_timeout;
    struct config_node *nodes;
    unsigned n_nodes;
    /* Who may write node channels (supervisor/access.h): read from this
     * file's [users], [hosts] and [access] sections, or from access_file.
     * NULL: no rules (open). Host names are not resolved here. */
    char *access_file;
    struct access_rules *access;
};

/* Read and check a configuration file. Returns 0, or -1 with err set. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
/* The defaults, with no nodes (for runs without a file). */
int config_defaults(struct config *cfg);
void config_free(struct config *cfg);
/* Whether a group name is acceptable (control_group, operator_group). */
bool config_valid_group_name(const char *name);
/* Whether a CA address list is numeric: IPv4 addresses, each with an
 * optional :port, separated by spaces (what libca accepts, without names). */
bool config_valid_addr_list(const char *list);

#endif
