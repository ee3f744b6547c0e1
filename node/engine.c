/* engine.c — the execution cycle: Guardian's semantics, one step at a time.
 *
 * node_step() is one cycle:
 *   1. apply the controls that came since the last cycle: OP, MODE, then
 *      REQUEST (logged "OP: X", "MODE: X", "REQUEST: X");
 *   2. step the node's ramps, if any (ramp.c: one write each; PAUSE
 *      freezes them, STOP and ERROR abandon them). Then,
 *      unless OP is EXEC, stop here (PAUSE freezes, STOP halts; EXECTIME
 *      keeps counting since it is computed from the clock); EXEC after STOP
 *      starts again from INIT, which is entered on the next cycle;
 *   3. act on a new request if the current state allows it (see can_react):
 *      restart the state, move along an edge, redirect, or go straight to
 *      the request in MANUAL. A move or restart ends the cycle: the state
 *      moved to is entered on the next cycle ("[STATE.exit]" is logged for
 *      the state left, "[STATE.enter]" on entry);
 *   4. in ERROR nothing more runs;
 *   5. otherwise run the current state's checks and then one method: main
 *      when the state is entered, run on every later cycle (the checks of
 *      both methods first, then main_checks or run_checks); then act on what
 *      it returned: DONE moves along the path at once (or holds at the
 *      request), a jump moves to its target at once, CONTINUE waits, an
 *      error holds the node in ERROR;
 *   6. say why the node holds short of its request (no path, stalled, MANUAL)
 *      unless state code notified, and work out what USERMSG shows (notify.c).
 * Every STATUS value a step passes through is kept (engine_set_status) so
 * that all are published, in order, even those begun and ended in one step.
 * The full rules, with the decisions taken where Guardian is silent, are in
 * docs/systems.md; node_priv.h defines the words used here.
 */
#include "node/node_priv.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define PROCEED (-100) /* run_checks: no check jumped or failed */

static const char *sname(const node *n, int pos) { return node_state_name_at(n, pos); }
static const grd_state *cur_state(const node *n) { return node_system_at(n->sys, n->cur); }

/* ---- notifications, targets, paths ---- */

/* A node that holds short of its request says why, in USERMSG and (through
 * it) the log, so that an operator can tell the holds apart: no path to the
 * request, stalled after a jump (MANAGED or MANUAL: it waits for a request),
 * or in MANUAL short of the request (MANUAL does not follow paths). Shown
 * when the state code has not notified this cycle. */
static void notify_hold(node *n)
{
    char msg[2 * GRD_NAME_MAX + 40];
    if (n->nopath)
        snprintf(msg, sizeof(msg), "no path from %s to %s", sname(n, n->cur), sname(n, n->req));
    else if (n->stalled)
        snprintf(msg, sizeof(msg), "STALLED in %s: waits for a request", sname(n, n->cur));
    else if (n->mode == NODE_MODE_MANUAL && n->req != n->cur && n->target == n->cur && !n->react)
        snprintf(msg, sizeof(msg), "MANUAL: holding in %s, request %s", sname(n, n->cur),
                 sname(n, n->req));
    else
        return;
    engine_notify(n, msg);
}

void engine_set_status(node *n, enum node_status status)
{
    if (status == n->status)
        return;
    n->status = status;
    if (n->n_trail == NODE_STATUS_TRAIL) { /* keep the newest: the oldest would be coalesced */
        memmove(n->trail, n->trail + 1, (NODE_STATUS_TRAIL - 1) * sizeof(n->trail[0]));
        n->n_trail--;
    }
    n->trail[n->n_trail++] = status;
}

static void set_target(node *n, int t)
{
    n->target = t;
    if (t != n->logged_target) {
        node_log(n, "new target: %s", sname(n, t));
        n->logged_target = t;
    }
}

/* Recompute TARGET: the next state on the cheapest path to REQUEST, or the
 * current state when the node is at the request, stalled, in MANUAL or has
 * no path. Logged when the path's ends or the target change. */
void engine_repath(node *n)
{
    n->nopath = false;
    if (n->stalled || n->mode == NODE_MODE_MANUAL) {
        set_target(n, n->cur);
        return;
    }
    bool ends_changed = n->cur != n->logged_from || n->req != n->logged_to;
    if (ends_changed) {
        node_log(n, "calculating path: %s->%s", sname(n, n->cur), sname(n, n->req));
        n->logged_from = n->cur;
        n->logged_to = n->req;
    }
    int path[GRD_MAX_STATES];
    unsigned len = graph_path(n->sys, n->cur, n->req, path);
    if (len == 0) {
        if (ends_changed)
            node_log(n, "no path from %s to %s", sname(n, n->cur), sname(n, n->req));
        n->nopath = true;
        set_target(n, n->cur);
        return;
    }
    set_target(n, len > 1 ? path[1] : n->cur);
}

unsigned node_path(const node *n, const grd_state **out, unsigned max)
{
    int path[GRD_MAX_STATES];
    unsigned len = n && out ? graph_path(n->sys, n->cur, n->req, path) : 0;
    if (len > max)
        return 0;
    for (unsigned i = 0; i < len; i++)
        out[i] = node_system_at(n->sys, path[i]);
    return len;
}

/* ---- moving between states ---- */

static double elapsed(const node *n, double now)
{
    double t = now - n->entered_at;
    return t > 0 ? t : 0;
}

/* The current state is left (or started again): "[STATE.exit]" if it had
 * been entered, as Guardian logs it; a notification from its main() ends. */
static void leave(node *n)
{
    if (n->entered)
        node_log(n, "[%s.exit]", sname(n, n->cur));
    n->entered = n->in_run = n->done = false;
    notify_state_left(n);
}

/* Leave the current state for `to` at once; `to` is entered next cycle. */
static void move(node *n, int to, enum node_transition how, const char *word,
                 enum node_status status)
{
    leave(n);
    node_log(n, "%s: %s->%s", word, sname(n, n->cur), sname(n, to));
    double now = node_now(n);
    char from[GRD_NAME_MAX + 1];
    snprintf(from, sizeof(from), "%s", sname(n, n->cur));
    n->exectime_last = elapsed(n, now);
    n->entered_at = now;
    n->cur = to;
    engine_set_status(n, status);
    node_record(n, from, to, how);
    engine_repath(n);
}

/* Start the current state again at main, next cycle (re-request, recovery). */
static void restart(node *n)
{
    leave(n);
    double now = node_now(n);
    n->exectime_last = elapsed(n, now);
    n->entered_at = now;
    engine_set_status(n, NODE_STATUS_ENTER);
}

/* A fresh start in `pos` (node start, STOP then EXEC, reload without the
 * current state, node_start_at): REQUEST is kept, everything else resets. */
void engine_restart_init(node *n, const char *from, int pos, enum node_status status)
{
    double now = node_now(n);
    n->exectime_last = from && from[0] ? elapsed(n, now) : 0;
    n->entered_at = now;
    n->cur = pos;
    n->entered = n->in_run = n->done = false;
    engine_set_status(n, status);
    n->error = n->stalled = n->react = n->nopath = n->stopped = false;
    node_timers_clear(n);
    node_ramps_clear(n, "abandoned: INIT");
    notify_clear(n);
    node_record(n, from ? from : "", pos, NODE_TRANS_INIT);
    engine_repath(n);
}

/* ---- requests ---- */

/* May the engine act on a new request now? Not while the current state has
 * been moved to but not started (it runs first), nor while a no_redirect
 * state that has started is not DONE. A request for the current state and
 * recovery from ERROR are always taken at once. */
static bool can_react(const node *n)
{
    if (n->error || n->req == n->cur)
        return true;
    if (!n->entered)
        return false;
    return !(cur_state(n)->no_redirect && !n->done);
}

/* Act on the new request; true if that used up the cycle (a move or a
 * restart), false if the current state goes on executing. */
static bool react(node *n)
{
    bool was_error = n->error;
    n->react = n->stalled = n->error = false;
    if (n->req == n->cur) {
        engine_repath(n);
        if (!n->entered && !was_error)
            return false; /* about to be entered anyway */
        restart(n);
        return true;
    }
    if (was_error && cur_state(n)->no_redirect) {
        restart(n); /* it has to complete first, but cannot go on mid-way */
        n->react = true;
        engine_repath(n);
        return true;
    }
    if (n->mode == NODE_MODE_MANUAL) {
        move(n, n->req, NODE_TRANS_JUMP, "MANUAL", NODE_STATUS_JUMP);
        return true;
    }
    engine_repath(n);
    if (n->nopath) {
        if (!was_error)
            return false; /* hold where it is */
        restart(n);
        return true;
    }
    if (n->done)
        move(n, n->target, NODE_TRANS_EDGE, "EDGE", NODE_STATUS_EDGE);
    else
        move(n, n->target, NODE_TRANS_REDIRECT, "REDIRECT", NODE_STATUS_REDIRECT);
    return true;
}

/* ---- controls ---- */

/* Returns true if the node started again from INIT (the cycle is used up). */
static bool apply_controls(node *n)
{
    bool restarted = false;
    if (n->op_pending) {
        n->op_pending = false;
        if (n->stop_seen && n->op != NODE_OP_STOP) {
            node_log(n, "OP: STOP");
            n->op = NODE_OP_STOP;
            n->stopped = true;
        }
        n->stop_seen = false;
        if (n->op_next != n->op) {
            node_log(n, "OP: %s", node_op_names[n->op_next]);
            n->op = n->op_next;
            if (n->op == NODE_OP_STOP)
                n->stopped = true;
        }
        if (n->stopped)
            manage_stop(n); /* a stopped manager holds no claims */
        if (n->op == NODE_OP_EXEC && n->stopped) {
            char from[GRD_NAME_MAX + 1];
            snprintf(from, sizeof(from), "%s", sname(n, n->cur));
            engine_restart_init(n, from, n->sys->init, NODE_STATUS_INIT);
            restarted = true;
        }
    }
    if (n->mode_pending) {
        n->mode_pending = false;
        if (n->mode_next != n->mode) {
            node_log(n, "MODE: %s", node_mode_names[n->mode_next]);
            n->mode = n->mode_next;
            if (n->mode == NODE_MODE_AUTO)
                n->stalled = false; /* AUTO recovers */
            engine_repath(n);
        }
    }
    if (n->req_pending) {
        n->req_pending = false;
        bool changed = n->req_next != n->req;
        n->req = n->req_next;
        node_log(n, "REQUEST: %s", sname(n, n->req));
        /* The same request again only matters to a node that is at it (a
         * restart), stalled (a revive), in ERROR (recovery) or in MANUAL. */
        if (changed || n->req == n->cur || n->stalled || n->error || n->mode == NODE_MODE_MANUAL)
            n->react = true;
        engine_repath(n);
    }
    return restarted;
}

/* ---- running state code ---- */

/* Call one function of the state code; returns a grd_ret, with GRD_ERROR
 * whenever grd_error was called or the return value makes no sense. */
static int call(node *n, grd_state_fn fn, enum node_ctx ctx)
{
    if (!fn)
        return GRD_DONE;
    n->ctx = ctx;
    n->jump_to = -1;
    n->err_set = n->err_conn = false;
    n->in_code = true;
    node_exec_enter(n, ctx);
    int r = (int)fn((grd_node *)n);
    node_exec_leave();
    n->in_code = false;
    if (n->err_set)
        return GRD_ERROR;
    switch (r) {
    case GRD_CONTINUE:
    case GRD_DONE:
        return r;
    case GRD_JUMP:
        if (n->jump_to >= 0)
            return r;
        snprintf(n->err_msg, sizeof(n->err_msg), "returned GRD_JUMP without calling grd_jump()");
        return GRD_ERROR;
    case GRD_ERROR:
        snprintf(n->err_msg, sizeof(n->err_msg), "returned GRD_ERROR without calling grd_error()");
        return GRD_ERROR;
    default:
        snprintf(n->err_msg, sizeof(n->err_msg), "returned %d, which is not a grd_ret", r);
        return GRD_ERROR;
    }
}

static int run_check_list(node *n, const grd_state_fn *checks)
{
    for (unsigned i = 0; checks && i < GRD_MAX_CHECKS && checks[i]; i++) {
        int r = call(n, checks[i], CTX_CHECK);
        if (r == GRD_JUMP || r == GRD_ERROR)
            return r;
    }
    return PROCEED;
}

/* The checks of both methods first, then the method's own (Guardian
 * decorates main and run separately). */
static int run_checks(node *n, const grd_state *st, bool entry)
{
    int r = run_check_list(n, st->checks);
    if (r != PROCEED)
        return r;
    return run_check_list(n, entry ? st->main_checks : st->run_checks);
}

static void fail(node *n)
{
    n->error = true;
    n->conn_error = n->err_conn;
    n->done = false;
    node_log(n, "ERROR in [%s.%s]: %s", sname(n, n->cur), node_ctx_name(n->ctx), n->err_msg);
}

static void jump(node *n, int to, bool from_check)
{
    node_log(n, from_check ? "JUMP target: %s" : "state returned jump target: %s", sname(n, to));
    leave(n); /* Guardian's order: the target, [STATE.exit], STALLED, JUMP: */
    if (n->react && n->mode != NODE_MODE_MANUAL) {
        n->react = n->stalled = false; /* the waiting request applies from here */
    } else if (n->mode != NODE_MODE_AUTO) {
        n->stalled = true;
        node_log(n, "STALLED");
    }
    move(n, to, NODE_TRANS_JUMP, "JUMP", NODE_STATUS_JUMP);
}

/* The current state completed: go on along the path, or hold. */
static void after_done(node *n)
{
    if (n->react) {
        react(n);
        return;
    }
    if (n->cur == n->req || n->stalled || n->mode == NODE_MODE_MANUAL)
        return;
    engine_repath(n);
    if (!n->nopath)
        move(n, n->target, NODE_TRANS_EDGE, "EDGE", NODE_STATUS_EDGE);
}

static void execute(node *n)
{
    const grd_state *st = cur_state(n);
    bool entry = !n->in_run;
    if (entry) {
        /* STATUS passes ENTER to MAIN in this cycle (both are published). */
        node_log(n, "executing state: %s (%d)", st->name, st->index);
        node_log(n, "[%s.enter]", st->name);
        engine_set_status(n, NODE_STATUS_ENTER);
        n->entered = true;
        engine_set_status(n, NODE_STATUS_MAIN);
    } else if (!n->done) {
        engine_set_status(n, NODE_STATUS_RUN);
    } /* a completed state holds DONE while its run() verifies it */
    n->conn_fail = false;
    int r = run_checks(n, st, entry);
    bool from_check = r != PROCEED;
    if (!from_check)
        r = call(n, entry ? st->main : st->run, entry ? CTX_MAIN : CTX_RUN);
    n->connected = !n->conn_fail && n->chans_down == 0;
    switch (r) {
    case GRD_ERROR:
        fail(n);
        break;
    case GRD_JUMP:
        jump(n, n->jump_to, from_check);
        break;
    case GRD_CONTINUE:
        n->in_run = true;
        n->done = false;
        engine_set_status(n, entry ? NODE_STATUS_MAIN : NODE_STATUS_RUN);
        break;
    default: /* GRD_DONE */
        n->in_run = true;
        n->done = true;
        engine_set_status(n, NODE_STATUS_DONE);
        after_done(n);
        break;
    }
    n->ctx = CTX_NONE;
}

/* node_priv.h's invariants, checked after every step (cheap: a few
 * comparisons), so the test suites under the sanitizers catch a breach
 * where it happens rather than as a wrong state much later. */
static void check_invariants(const node *n)
{
    unsigned states = n->sys->n_states;
    assert(n->cur >= 0 && (unsigned)n->cur < states);
    assert(n->req >= 0 && (unsigned)n->req < states);
    assert(n->target >= 0 && (unsigned)n->target < states);
    assert(n->entered || (!n->in_run && !n->done));
    (void)states;
}

void node_step(node *n)
{
    if (!n || n->magic != NODE_MAGIC || n->in_code)
        return;
    n->stepped = true;
    n->n_trail = 0;
    bool restarted = apply_controls(n);
    node_claim_check(n);
    if (n->op != NODE_OP_STOP)
        manage_cycle(n);
    node_chans_sweep(n);
    node_chans_check(n);
    /* An error that a lost connection caused (ERROR=Connect) ends when every
     * channel is back: the state is entered again, as Guardian retries. */
    if (n->error && n->conn_error && n->chans_down == 0) {
        n->error = n->conn_error = false;
        n->in_run = n->done = false;
        node_log(n, "CONNECT: channels connected again: retrying %s", sname(n, n->cur));
    }
    if (n->n_ramps)
        node_ramps_step(n); /* before state code: it sees where the ramps are now */
    if (n->op == NODE_OP_EXEC) {
        n->notified = false;
        if (!restarted && !(n->react && can_react(n) && react(n)) && !n->error)
            execute(n);
        if (!n->notified)
            notify_hold(n);
        manage_notify(n);
        if (n->spm_changed && !n->notified)
            engine_notify(n, n->spm_text); /* until every difference is gone */
        notify_cycle_end(n);
    }
    check_invariants(n);
    node_publish(n);
}
