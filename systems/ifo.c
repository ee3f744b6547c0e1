/* ifo.c — a monitor node: is every listed node OK?
 *
 * Node argument: nodes=A,B,C (comma-separated node names, at most 64).
 *
 * The graph:  INIT (goto) -> ALL_OK <- NOT_OK
 * ALL_OK (requested, nominal) is guarded by the all_ok check, which jumps to
 * NOT_OK as soon as one listed node is not OK (or not known). NOT_OK notifies
 * which nodes are not OK, every cycle, and completes once they all are; the
 * node then goes back along its edge to ALL_OK. Like LIGO's IFO node, it only
 * reads: this node's own OK is the aggregate.
 *
 * Build: gcc -fPIC -shared -I<prefix>/include -o ifo.so ifo.c
 */
#if __has_include("node/guardian.h")
#include "node/guardian.h" /* in the guardiand tree */
#else
#include <guardian.h>
#endif

#include <stdio.h>
#include <string.h>

#define IFO_MAX_NODES 64
#define IFO_NAME_MAX 63

struct ifo {
    unsigned count;
    char bad[80]; /* why the list is unusable, "" if it is fine */
    char names[IFO_MAX_NODES][IFO_NAME_MAX + 1];
};

static void ifo_init(grd_node *n)
{
    struct ifo *s = grd_priv(n);
    const char *list = grd_arg(n, "nodes");
    if (!list || !*list) {
        snprintf(s->bad, sizeof(s->bad), "argument nodes=A,B,... missing");
        return;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        while (len && *p == ' ')
            p++, len--;
        size_t end = len;
        while (end && p[end - 1] == ' ')
            end--;
        if (end == 0 || end > IFO_NAME_MAX) {
            snprintf(s->bad, sizeof(s->bad), "bad node name in nodes=");
            return;
        }
        if (s->count == IFO_MAX_NODES) {
            snprintf(s->bad, sizeof(s->bad), "more than %d nodes", IFO_MAX_NODES);
            return;
        }
        memcpy(s->names[s->count], p, end);
        s->names[s->count++][end] = '\0';
        p += len;
        if (*p == ',')
            p++;
    }
}

#define IFO_MORE_MAX 24 /* room kept for " and 64 more" */

/* How many listed nodes are not OK, their names into text: whole names
 * only, and " and N more" for those that do not fit (never a name cut). */
static unsigned not_ok(grd_node *n, char *text, size_t len)
{
    struct ifo *s = grd_priv(n);
    unsigned bad = 0, left_out = 0;
    size_t used = 0;
    text[0] = '\0';
    for (unsigned i = 0; i < s->count; i++) {
        bool ok = false;
        int known = grd_node_ok(n, s->names[i], &ok) == GRD_OK;
        if (known && ok)
            continue;
        bad++;
        size_t need = (bad > 1 ? 2 : 0) + strlen(s->names[i]) + (known ? 0 : 1);
        if (left_out || used + need + IFO_MORE_MAX >= len) {
            left_out++;
            continue;
        }
        used += (size_t)snprintf(text + used, len - used, "%s%s%s", bad > 1 ? ", " : "",
                                 s->names[i], known ? "" : "?");
    }
    if (left_out)
        snprintf(text + used, len - used, " and %u more", left_out);
    return bad;
}

static grd_ret init_main(grd_node *n)
{
    struct ifo *s = grd_priv(n);
    if (s->bad[0])
        return grd_error(n, "%s", s->bad);
    grd_log(n, "watching %u nodes", s->count);
    return GRD_DONE;
}

static grd_ret all_ok(grd_node *n)
{
    char text[512];
    return not_ok(n, text, sizeof(text)) ? grd_jump(n, "NOT_OK") : GRD_CONTINUE;
}

static grd_ret not_ok_run(grd_node *n)
{
    struct ifo *s = grd_priv(n);
    char text[512];
    unsigned bad = not_ok(n, text, sizeof(text));
    if (!bad)
        return GRD_DONE;
    grd_notify(n, "%u/%u not OK: %s", bad, s->count, text);
    return GRD_CONTINUE;
}

GRD_SYSTEM(ifo,
    .request = "ALL_OK", .nominal = "ALL_OK",
    .priv_size = sizeof(struct ifo),
    .node_init = ifo_init,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = init_main),
        GRD_STATE("NOT_OK", 10, .main = not_ok_run, .run = not_ok_run),
        GRD_STATE("ALL_OK", 50, .request = true, .checks = GRD_CHECKS(all_ok))),
    .edges = GRD_EDGES({"INIT", "ALL_OK"}, {"NOT_OK", "ALL_OK"}));
