/* mod_plantio.c — a system for the plant tests (tests/integration/test_plant_ca.py): it
 * reads and writes the plant channels its arguments name, and shows what it read.
 *
 * Arguments (channel names are suffixes: <IFO>:<suffix>):
 *   read=<suffix>     read as a string every cycle; USERMSG shows "read <text>"
 *                     (or "read: not connected")
 *   write=<suffix>    written once on entering WRITE, with value
 *   value=<text>      what is written: a number when it parses as one, else text
 *   ignore=<suffix>   left out of the set-point monitor
 *
 * States: INIT -> IDLE (requestable) and WRITE (requestable): WRITE writes, then both
 * read for ever.
 */
#include <stdlib.h>

#include "node/guardian.h"

static grd_ret show(grd_node *n)
{
    const char *read = grd_arg(n, "read");
    if (!read || !*read)
        return GRD_CONTINUE;
    char text[64];
    int r = grd_get_string(n, grd_chan(n, "%s", read), text, sizeof(text));
    if (r == GRD_OK)
        grd_notify(n, "read %s", text);
    else
        grd_notify(n, "read: %s", r == GRD_ENOTCONN ? "not connected" : "error");
    return GRD_CONTINUE;
}

static grd_ret write_main(grd_node *n)
{
    const char *write = grd_arg(n, "write"), *value = grd_arg(n, "value");
    if (write && *write && value) {
        char *end;
        double v = strtod(value, &end);
        if (end != value && *end == '\0')
            grd_put(n, grd_chan(n, "%s", write), v);
        else
            grd_put_string(n, grd_chan(n, "%s", write), value);
    }
    return show(n);
}

static void plantio_init(grd_node *n)
{
    const char *ignore = grd_arg(n, "ignore");
    if (ignore && *ignore)
        grd_spm_ignore(n, grd_chan(n, "%s", ignore));
}

GRD_SYSTEM(plantio,
    .request = "IDLE",
    .node_init = plantio_init,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true),
        GRD_STATE("IDLE", 10, .request = true, .goto_ = true, .main = show, .run = show),
        GRD_STATE("WRITE", 20, .request = true, .goto_ = true, .main = write_main, .run = show)),
    .edges = GRD_EDGES({"IDLE", "WRITE"}, {"WRITE", "IDLE"}));
