/* medm.h — MEDM screens for a site's nodes (issue 11; the format is
 * ../shared/docs/adl.md, written by adl.h).
 *
 * From a description of the site (its IFO, its nodes with their systems and
 * managers, the systems' states, the supervisor's channels) this makes:
 *   <IFO>_GUARDIAN_OVERVIEW.adl    every node, grouped by manager tree (top
 *                                  nodes first, subordinates under them), then
 *                                  by system; a header with the supervisor's
 *                                  health;
 *   GUARDIAN_NODE.adl              one node, opened with macros IFO, NODE and
 *                                  SYSTEM (the overview's buttons pass them);
 *   GUARDIAN_STATES_<SYSTEM>.adl   per system: a button per requestable state,
 *                                  the current state and target highlighted
 *                                  (macros IFO, NODE, SYSTEM);
 *   <IFO>_GUARDIAND_SUPERVISOR.adl every supervisor channel.
 * Nothing here knows of nodes or channels beyond the names given: the
 * channel suffixes the screens read are guardian.md Part A's and README's.
 */
#ifndef GUARDIAND_MEDM_H
#define GUARDIAND_MEDM_H

#include <stdbool.h>
#include <stddef.h>

#define MEDM_FILE_NAME_MAX 96

struct medm_state {
    const char *name;
    int index;
    bool requestable;
};

struct medm_system {
    const char *name;
    const struct medm_state *states;
    unsigned n_states;
};

struct medm_node {
    const char *name;
    const char *system;  /* one of the site's systems, by name */
    const char *manager; /* the node of the site that lists it as a subordinate, or NULL */
};

/* A supervisor channel: its suffix, and how to show it. */
struct medm_chan {
    const char *suffix;
    bool text;  /* STRING or ENUM: shown as a string */
    bool alarm; /* its severity means something: alarm-coloured */
};

struct medm_site {
    const char *ifo;
    const char *sup_prefix; /* e.g. "X1:GUARDIAND-" */
    const struct medm_chan *sup_chans;
    unsigned n_sup_chans;
    const struct medm_node *nodes;
    unsigned n_nodes;
    const struct medm_system *systems;
    unsigned n_systems;
};

struct medm_file {
    char name[MEDM_FILE_NAME_MAX];
    char *text;
};

/* Every screen of the site into *files (n of them, the caller frees them
 * with medm_files_free). 0, or -1 with the reason in err (no memory, a node
 * of an unknown system). */
int medm_screens(const struct medm_site *site, struct medm_file **files, unsigned *n,
                 char *err, size_t errlen);
void medm_files_free(struct medm_file *files, unsigned n);

/* files.c (also in guardctl): write text as dir/name, atomically (a
 * temporary file in dir, renamed) and only when the file does not hold it
 * already. 1 written, 0 unchanged, -1 with the reason in err. */
int medm_write_file(const char *dir, const char *name, const char *text, char *err,
                    size_t errlen);

#endif
