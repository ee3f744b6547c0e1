/* lock.c — a manager: brings its subordinates up together and reacts when
 * one of them falls.
 *
 * Node arguments:
 *   nodes=A,B,...   the subordinates (required; in this daemon or another)
 *   down=STATE      what DOWN requests of them (default SAFE)
 *   up=STATE        what ACQUIRE requests of them (default ALIGNED)
 *
 * The graph:  INIT (goto) -> DOWN (goto) -> ACQUIRE <-> LOCKED
 * INIT claims the subordinates (MODE=MANAGED). DOWN requests `down` of every
 * one and completes when they have all completed it; ACQUIRE requests `up`,
 * and LOCKED (requested, nominal) holds while every subordinate is at it.
 * A subordinate that leaves (a tripped watchdog makes a MANAGED sus node jump
 * and stall) sends the manager back to ACQUIRE, which revives the stalled
 * ones (requests `up` again): each moves on once it can, and the manager
 * is LOCKED again when they all are.
 *
 * Managers nest: a top node runs lock with down=DOWN, up=LOCKED over lock
 * nodes; when one of theirs falls they jump to ACQUIRE and stall there (they
 * are MANAGED), the top follows to its ACQUIRE and revives them (etc/demo.ini
 * has such a tree).
 *
 * Build: gcc -fPIC -shared -I<prefix>/include -o lock.so lock.c
 */
#if __has_include("node/guardian.h")
#include "node/guardian.h" /* in the guardiand tree */
#else
#include <guardian.h>
#endif

static const char *arg_or(grd_node *n, const char *key, const char *fallback)
{
    const char *v = grd_arg(n, key);
    return v && *v ? v : fallback;
}

static void request_all(grd_node *n, const char *state)
{
    for (unsigned i = 0; i < grd_subnode_count(n); i++)
        grd_sub_request(n, grd_subnode(n, i), state);
}

static grd_ret init_main(grd_node *n)
{
    int count = grd_subnodes(n, NULL);
    if (count < 0)
        return GRD_ERROR; /* grd_subnodes said which name */
    if (count == 0)
        return grd_error(n, "argument nodes=A,B,... missing");
    grd_set_managed(n);
    return GRD_DONE;
}

static grd_ret down_main(grd_node *n)
{
    request_all(n, arg_or(n, "down", "SAFE"));
    return GRD_CONTINUE;
}

/* Done when every subordinate has completed what it was asked; after a
 * second, say which are holding things up. */
static grd_ret wait_completed(grd_node *n)
{
    if (grd_completed(n))
        return GRD_DONE;
    char text[256];
    if (grd_sub_faults(n, text, sizeof(text)) && grd_state_time(n) > 1)
        grd_notify(n, "waiting for %s", text);
    return GRD_CONTINUE;
}

static grd_ret acquire_main(grd_node *n)
{
    request_all(n, arg_or(n, "up", "ALIGNED"));
    return GRD_CONTINUE;
}

static grd_ret acquire_run(grd_node *n)
{
    grd_revive(n, NULL);
    return wait_completed(n);
}

/* LOCKED holds while every subordinate is where it was sent. */
static grd_ret all_arrived(grd_node *n)
{
    if (grd_arrived(n))
        return GRD_CONTINUE;
    char text[256];
    grd_sub_faults(n, text, sizeof(text));
    grd_log(n, "lost: %s", text[0] ? text : "a subordinate left its state");
    return grd_jump(n, "ACQUIRE");
}

GRD_SYSTEM(lock,
    .request = "LOCKED", .nominal = "LOCKED",
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true, .main = init_main),
        GRD_STATE("DOWN", 10, .request = true, .goto_ = true, .main = down_main,
                  .run = wait_completed),
        GRD_STATE("ACQUIRE", 50, .main = acquire_main, .run = acquire_run),
        GRD_STATE("LOCKED", 100, .request = true, .checks = GRD_CHECKS(all_arrived))),
    .edges = GRD_EDGES({"INIT", "DOWN"}, {"DOWN", "ACQUIRE"}, {"ACQUIRE", "LOCKED"},
                       {"LOCKED", "ACQUIRE"}));
