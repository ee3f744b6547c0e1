/* mod_apiv2.c — a system built against version 2 of node/guardian.h, whose
 * grd_system ends before `weights`: still loaded, unweighted. The table is
 * laid out as version 2's was and followed by a non-NULL pointer where a
 * version 3 grd_system has weights, so guardiand reading that field would
 * follow junk (test_system.c: loader.version_2_is_still_loaded). */
#include "node/guardian.h"

struct grd_system_v2 {
    unsigned api_version;
    const char *name, *request, *nominal;
    const grd_state *states;
    const grd_edge *edges;
    size_t priv_size;
    void (*node_init)(grd_node *n);
    void (*node_fini)(grd_node *n);
};

const struct {
    struct grd_system_v2 sys;
    const void *after; /* not a field of a version 2 system */
} grd_system_entry = {
    .sys = {.api_version = 2, .name = "apiv2", .request = "B",
            .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("A", 1), GRD_STATE("B", 2)),
            .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}, {"INIT", "B"})},
    .after = (const void *)16,
};
