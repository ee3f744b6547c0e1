/* test_engine.c — the execution cycle, driven cycle by cycle on a fake clock.
 *
 * One in-memory system whose state functions are all the same few generic
 * functions: what each returns, whether it jumps, errors, notifies or reads
 * a channel, is set per state name in `behs` by the test.
 *
 *   INIT(0,goto) -> A(10) <-> B(20) <-> C(30,nominal,request) <-> D(40)
 *   FAULT(1,no_redirect) -> A      SAFE(5,goto)      ISLAND(99): no edges
 *   A has two checks, B one.
 */
#include <math.h>

#include "tests/node/fake_host.h"

struct beh {
    char name[32];
    int main_ret, run_ret, check_ret, check2_ret;
    const char *main_jump, *run_jump, *check_jump, *check2_jump;
    const char *main_err, *run_err, *check_err;
    const char *notify;     /* run notifies this text */
    const char *main_notify; /* main notifies this text */
    const char *read;       /* run and main read this channel */
    unsigned mains, runs, checks, checks2;
};

static struct beh behs[16];

static struct beh *beh(const char *name)
{
    for (unsigned i = 0; i < 16; i++) {
        if (strcmp(behs[i].name, name) == 0)
            return &behs[i];
        if (!behs[i].name[0]) {
            snprintf(behs[i].name, sizeof(behs[i].name), "%s", name);
            behs[i].main_ret = behs[i].run_ret = GRD_DONE;
            behs[i].check_ret = behs[i].check2_ret = GRD_CONTINUE;
            return &behs[i];
        }
    }
    cr_assert_fail("too many behaviours");
    return NULL;
}

static grd_ret act(grd_node *n, int ret, const char *jump, const char *err)
{
    if (jump)
        return grd_jump(n, jump);
    if (err)
        return grd_error(n, "%s", err);
    return (grd_ret)ret;
}

static grd_ret g_main(grd_node *n)
{
    struct beh *b = beh(grd_state_name(n));
    b->mains++;
    if (b->main_notify)
        grd_notify(n, "%s", b->main_notify);
    if (b->read) {
        double v;
        grd_get_double(n, b->read, &v);
    }
    return act(n, b->main_ret, b->main_jump, b->main_err);
}

static grd_ret g_run(grd_node *n)
{
    struct beh *b = beh(grd_state_name(n));
    b->runs++;
    if (b->notify)
        grd_notify(n, "%s", b->notify);
    if (b->read) {
        double v;
        grd_get_double(n, b->read, &v);
    }
    return act(n, b->run_ret, b->run_jump, b->run_err);
}

static grd_ret g_check(grd_node *n)
{
    struct beh *b = beh(grd_state_name(n));
    b->checks++;
    return act(n, b->check_ret, b->check_jump, b->check_err);
}

static grd_ret g_check2(grd_node *n)
{
    struct beh *b = beh(grd_state_name(n));
    b->checks2++;
    return act(n, b->check2_ret, b->check2_jump, NULL);
}

#define ST(NAME, IDX, ...) GRD_STATE(NAME, IDX, .main = g_main, .run = g_run, __VA_ARGS__)

static const grd_system graph = {
    .api_version = GRD_API_VERSION,
    .name = "graph",
    .request = "C",
    .nominal = "C",
    .states = GRD_STATES(ST("INIT", 0, .goto_ = true),
                         ST("A", 10, .request = true, .checks = GRD_CHECKS(g_check, g_check2)),
                         ST("B", 20, .request = true, .checks = GRD_CHECKS(g_check)),
                         ST("C", 30, .request = true),
                         ST("D", 40, .request = true),
                         ST("FAULT", 1, .no_redirect = true),
                         ST("SAFE", 5, .request = true, .goto_ = true),
                         ST("ISLAND", 99)),
    .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}, {"B", "C"}, {"C", "D"}, {"D", "C"},
                       {"C", "B"}, {"B", "A"}, {"FAULT", "A"}),
};

static node_system *sys;
static node *n;
static node_host host;

static void setup(void)
{
    char err[256];
    host = fake_host();
    sys = node_system_wrap(&graph, err, sizeof(err));
    cr_assert(sys, "%s", err);
    n = node_new("TEST", "H1", sys, NULL, 0, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
    fake.nodes[fake.n_nodes++] = n;
}

static void teardown(void)
{
    node_free(n);
    node_system_unref(sys);
    fake_free();
}

TestSuite(engine, .init = setup, .fini = teardown);

static const char *S(const grd_state *st) { return st ? st->name : "(null)"; }
#define assert_state(X) cr_assert_str_eq(S(node_state(n)), X)
#define assert_status(X) cr_assert_eq(node_status(n), X, "status %d, expected %d", node_status(n), X)

/* Request and step until the node sits DONE in `state` (at most 40 cycles). */
static void reach(const char *state)
{
    cr_assert_eq(node_request(n, state), NODE_OK);
    step(n);
    for (int i = 0; i < 40 && !node_done(n); i++)
        step(n);
    assert_state(state);
    assert_status(NODE_STATUS_DONE);
}

/* ---- start and paths ---- */

Test(engine, starts_in_init_with_the_system_request)
{
    assert_state("INIT");
    assert_status(NODE_STATUS_INIT);
    cr_assert_str_eq(S(node_requested(n)), "C");
    cr_assert_str_eq(S(node_nominal(n)), "C");
    cr_assert_str_eq(S(node_target(n)), "A");
    cr_assert_eq(node_mode(n), NODE_MODE_AUTO);
    cr_assert_eq(node_op(n), NODE_OP_EXEC);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    cr_assert_eq(node_load_status(n), NODE_LOAD_DONE);
    cr_assert(node_connected(n));
    cr_assert_eq(beh("INIT")->mains, 0);
    assert_log_seq(0, "calculating path: INIT->C", "new target: A");
    struct node_transition_info t[4];
    cr_assert_eq(node_take_transitions(n, t, 4), 1);
    cr_assert_str_eq(t[0].from, "");
    cr_assert_str_eq(t[0].to, "INIT");
    cr_assert_eq(t[0].how, NODE_TRANS_INIT);
}

/* node_path (guardctl status's Path line): the shortest path, current first. */
Test(engine, path_from_the_current_state_to_the_request)
{
    const grd_state *p[GRD_MAX_STATES];
    cr_assert_eq(node_path(n, p, GRD_MAX_STATES), 4);
    cr_assert_str_eq(p[0]->name, "INIT");
    cr_assert_str_eq(p[1]->name, "A");
    cr_assert_str_eq(p[2]->name, "B");
    cr_assert_str_eq(p[3]->name, "C");
    cr_assert_eq(node_path(n, p, 3), 0, "no room: nothing, not a path cut short");
    reach("C");
    cr_assert_eq(node_path(n, p, GRD_MAX_STATES), 1, "at the request");
    cr_assert_str_eq(p[0]->name, "C");
    cr_assert_eq(node_request(n, "SAFE"), NODE_OK); /* a goto state: one step from anywhere */
    step(n);
    cr_assert_eq(node_path(n, p, GRD_MAX_STATES), 1);
    cr_assert_eq(node_request(n, "ISLAND"), NODE_OK); /* unreachable */
    step(n);
    cr_assert_eq(node_path(n, p, GRD_MAX_STATES), 0);
    cr_assert_eq(node_path(NULL, p, GRD_MAX_STATES), 0);
}

/* node_start_at (guardiand --run STATE REQUEST) refuses a request it can
 * never reach, changing nothing. */
Test(engine, start_at_needs_a_path_to_the_request)
{
    cr_assert(node_system_has_path(sys, "A", "D"));
    cr_assert(node_system_has_path(sys, "D", "SAFE"), "goto edges count");
    cr_assert(!node_system_has_path(sys, "A", "ISLAND"));
    cr_assert(!node_system_has_path(sys, "A", "NOT_HERE"));
    cr_assert(!node_system_has_path(NULL, "A", "D"));
    unsigned lines = fake.n_lines;
    cr_assert_eq(node_start_at(n, "A", "ISLAND"), NODE_ENOPATH);
    assert_state("INIT");
    cr_assert_str_eq(S(node_requested(n)), "C");
    cr_assert_eq(fake.n_lines, lines, "nothing logged");
    cr_assert_eq(node_start_at(n, "ISLAND", NULL), NODE_OK, "the state itself is a path");
    assert_state("ISLAND");
    cr_assert_eq(node_start_at(n, "B", "D"), NODE_OK);
    assert_state("B");
}

/* node_start_with (a restart's saved controls): in force at once, before the
 * first cycle, published, and nothing left pending for that cycle. */
Test(engine, start_with_puts_saved_controls_in_force_at_once)
{
    uint64_t gen = node_generation(n);
    cr_assert_eq(node_start_with(n, "NOT_HERE", NODE_MODE_MANUAL, -1), NODE_ENOSTATE);
    cr_assert_eq(node_start_with(n, "D", 7, -1), NODE_EINVAL);
    cr_assert_eq(node_start_with(n, "D", -1, 3), NODE_EINVAL);
    cr_assert_eq(node_mode(n), NODE_MODE_AUTO, "a refusal changes nothing");
    cr_assert_str_eq(S(node_requested(n)), "C");
    cr_assert_eq(node_start_with(n, "D", NODE_MODE_MANAGED, NODE_OP_PAUSE), NODE_OK);
    cr_assert_str_eq(S(node_requested(n)), "D");
    cr_assert_eq(node_mode(n), NODE_MODE_MANAGED);
    cr_assert_eq(node_op(n), NODE_OP_PAUSE);
    cr_assert_neq(node_generation(n), gen, "published: the channels show them");
    assert_log_seq(0, "starts with REQUEST D, MODE MANAGED, OP PAUSE", "calculating path: INIT->D");
    steps(n, 3);
    cr_assert_eq(log_find_sub(0, "MODE: "), -1, "nothing was pending");
    cr_assert_eq(log_find_sub(0, "OP: "), -1);
    cr_assert_eq(log_find_sub(0, "REQUEST: "), -1);
    cr_assert_eq(node_start_with(n, "C", -1, -1), NODE_EINVAL, "only before the first cycle");
}

Test(engine, start_with_manual_goes_to_the_request_as_a_first_cycle_request_would)
{
    cr_assert_eq(node_start_with(n, "D", NODE_MODE_MANUAL, -1), NODE_OK);
    steps(n, 4);
    assert_state("D");
    cr_assert_neq(log_find(0, "MANUAL: INIT->D"), -1);
}

Test(engine, start_with_op_stop_waits_for_exec_then_heads_for_the_request)
{
    cr_assert_eq(node_start_with(n, "D", -1, NODE_OP_STOP), NODE_OK);
    steps(n, 5);
    cr_assert_eq(beh("INIT")->mains, 0, "stopped: no state code runs");
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    for (int i = 0; i < 40 && !(node_done(n) && strcmp(S(node_state(n)), "D") == 0); i++)
        step(n);
    assert_state("D");
}

/* node_system_edges (guardctl states): explicit edges only, in the system's order. */
Test(engine, explicit_edges_of_a_state)
{
    const grd_state *to[GRD_MAX_STATES];
    cr_assert_eq(node_system_edges(sys, node_system_state(sys, "B"), to, GRD_MAX_STATES), 2);
    cr_assert_str_eq(to[0]->name, "C");
    cr_assert_str_eq(to[1]->name, "A");
    cr_assert_eq(node_system_edges(sys, node_system_state(sys, "B"), to, 1), 1);
    cr_assert_eq(node_system_edges(sys, node_system_state(sys, "SAFE"), to, GRD_MAX_STATES), 0,
                 "goto edges are implicit, not listed");
    cr_assert_eq(node_system_edges(sys, node_system_state(sys, "ISLAND"), to, 8), 0);
    grd_state stranger = {.name = "NOT_HERE"};
    cr_assert_eq(node_system_edges(sys, &stranger, to, 8), 0);
    cr_assert_eq(node_system_edges(sys, NULL, to, 8), 0);
}

Test(engine, follows_the_path_one_method_per_cycle)
{
    /* cycle 1: INIT main (DONE) and the edge to A */
    step(n);
    cr_assert_eq(beh("INIT")->mains, 1);
    assert_state("A");
    assert_status(NODE_STATUS_EDGE);
    cr_assert_eq(beh("A")->mains, 0, "A's main runs next cycle, not in the same one");
    cr_assert_str_eq(S(node_target(n)), "B");
    /* cycle 2: A's checks and main, edge to B */
    step(n);
    cr_assert_eq(beh("A")->mains, 1);
    cr_assert_eq(beh("A")->checks, 1);
    cr_assert_eq(beh("A")->runs, 0, "main DONE: run is not called");
    assert_state("B");
    step(n);
    assert_state("C");
    assert_status(NODE_STATUS_EDGE);
    cr_assert(!node_done(n));
    /* at the request: main, then run every cycle (hold) */
    step(n);
    assert_state("C");
    assert_status(NODE_STATUS_DONE);
    cr_assert_eq(beh("C")->mains, 1);
    cr_assert(node_done(n));
    cr_assert_str_eq(S(node_target(n)), "C");
    steps(n, 5);
    cr_assert_eq(beh("C")->runs, 5);
    cr_assert_eq(beh("C")->mains, 1);
    assert_status(NODE_STATUS_DONE);
    assert_log_seq(0, "calculating path: INIT->C", "new target: A", "executing state: INIT (0)",
                   "EDGE: INIT->A", "calculating path: A->C", "new target: B",
                   "executing state: A (10)", "EDGE: A->B", "calculating path: B->C",
                   "new target: C", "executing state: B (20)", "EDGE: B->C",
                   "executing state: C (30)");
    cr_assert_eq(log_count("executing state: C (30)"), 1);
}

Test(engine, continue_then_run_until_done)
{
    beh("A")->main_ret = GRD_CONTINUE;
    beh("A")->run_ret = GRD_CONTINUE;
    steps(n, 2);
    assert_state("A");
    assert_status(NODE_STATUS_MAIN);
    step(n);
    assert_status(NODE_STATUS_RUN);
    cr_assert_eq(beh("A")->runs, 1);
    steps(n, 3);
    cr_assert_eq(beh("A")->runs, 4);
    cr_assert_eq(beh("A")->mains, 1);
    cr_assert_eq(beh("A")->checks, 5, "checks run before main and before every run");
    beh("A")->run_ret = GRD_DONE;
    step(n);
    assert_state("B");
    assert_status(NODE_STATUS_EDGE);
}

static const grd_system sys_bare = {
    .api_version = GRD_API_VERSION, .name = "sys_bare", .request = "Y",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("X", 1), GRD_STATE("Y", 2)),
    .edges = GRD_EDGES({"INIT", "X"}, {"X", "Y"}),
};

Test(engine, missing_main_and_run_count_as_done)
{
    char err[256];
    node_system *s2 = node_system_wrap(&sys_bare, err, sizeof(err));
    cr_assert(s2, "%s", err);
    node *m = node_new("BARE", "H1", s2, NULL, 0, &host, err, sizeof(err));
    cr_assert(m);
    steps(m, 3);
    cr_assert_str_eq(S(node_state(m)), "Y");
    cr_assert_eq(node_status(m), NODE_STATUS_DONE);
    cr_assert(node_done(m));
    node_free(m);
    node_system_unref(s2);
}

Test(engine, goto_states_are_reachable_from_everywhere)
{
    reach("D");
    cr_assert_eq(node_request(n, "SAFE"), NODE_OK);
    step(n);
    /* D is DONE: the edge D->SAFE (implicit) is taken at once */
    assert_state("SAFE");
    assert_status(NODE_STATUS_EDGE);
    assert_log_seq(0, "REQUEST: SAFE", "calculating path: D->SAFE", "new target: SAFE",
                   "EDGE: D->SAFE");
    /* and INIT is a goto state too */
    reach("INIT");
}

static const grd_system sys_diamond1 = {
    .api_version = GRD_API_VERSION, .name = "d1", .request = "Z",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("P", 1), GRD_STATE("Q", 2),
                         GRD_STATE("Z", 3), GRD_STATE("LONG", 4)),
    .edges = GRD_EDGES({"INIT", "LONG"}, {"LONG", "P"}, {"INIT", "P"}, {"INIT", "Q"},
                       {"Q", "Z"}, {"P", "Z"}),
};
static const grd_system sys_diamond2 = {
    .api_version = GRD_API_VERSION, .name = "d2", .request = "Z",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("P", 1), GRD_STATE("Q", 2),
                         GRD_STATE("Z", 3)),
    .edges = GRD_EDGES({"INIT", "Q"}, {"INIT", "P"}, {"P", "Z"}, {"Q", "Z"}),
};

Test(engine, shortest_path_ties_go_to_the_earlier_edge)
{
    char err[256];
    node_system *s1 = node_system_wrap(&sys_diamond1, err, sizeof(err));
    node_system *s2 = node_system_wrap(&sys_diamond2, err, sizeof(err));
    cr_assert(s1 && s2);
    node *m1 = node_new("D1", "H1", s1, NULL, 0, &host, err, sizeof(err));
    node *m2 = node_new("D2", "H1", s2, NULL, 0, &host, err, sizeof(err));
    cr_assert_str_eq(S(node_target(m1)), "P", "INIT->P is listed before INIT->Q");
    cr_assert_str_eq(S(node_target(m2)), "Q", "INIT->Q is listed before INIT->P");
    steps(m1, 3);
    cr_assert_str_eq(S(node_state(m1)), "Z");
    node_free(m1);
    node_free(m2);
    node_system_unref(s1);
    node_system_unref(s2);
}

Test(engine, no_path_holds_and_notifies)
{
    reach("C");
    cr_assert_eq(node_request(n, "ISLAND"), NODE_OK);
    step(n);
    assert_state("C");
    cr_assert_str_eq(S(node_target(n)), "C");
    assert_log_seq(0, "REQUEST: ISLAND", "calculating path: C->ISLAND",
                   "no path from C to ISLAND");
    cr_assert(node_notification(n));
    cr_assert_str_eq(node_usermsg(n), "no path from C to ISLAND");
    unsigned runs = beh("C")->runs;
    steps(n, 4);
    cr_assert_eq(beh("C")->runs, runs + 4, "it holds in C, running it");
    cr_assert(node_notification(n), "the notification stays while there is no path");
    cr_assert_eq(log_count("no path from C to ISLAND"), 1);
    cr_assert_eq(log_count("USERMSG: no path from C to ISLAND"), 1);
    reach("D");
    advance(NODE_NOTICE_MIN);
    step(n);
    cr_assert(!node_notification(n));
}

/* ---- jumps ---- */

Test(engine, jump_from_main_recomputes_the_path_in_auto)
{
    beh("A")->main_jump = "D";
    steps(n, 2);
    assert_state("D");
    assert_status(NODE_STATUS_JUMP);
    cr_assert_str_eq(S(node_target(n)), "C");
    assert_log_seq(0, "executing state: A (10)", "state returned jump target: D", "JUMP: A->D",
                   "calculating path: D->C", "new target: C");
    cr_assert_eq(log_find(0, "STALLED"), -1);
    step(n);
    cr_assert_eq(beh("D")->mains, 1);
    assert_state("C");
    step(n);
    cr_assert(node_done(n));
    struct node_transition_info t[8];
    unsigned k = node_take_transitions(n, t, 8);
    cr_assert_eq(k, 4);
    cr_assert_str_eq(t[2].from, "A");
    cr_assert_str_eq(t[2].to, "D");
    cr_assert_eq(t[2].how, NODE_TRANS_JUMP);
    cr_assert_eq(t[3].how, NODE_TRANS_EDGE);
}

Test(engine, jump_from_run)
{
    beh("B")->main_ret = GRD_CONTINUE;
    beh("B")->run_ret = GRD_CONTINUE;
    steps(n, 4);
    assert_state("B");
    assert_status(NODE_STATUS_RUN);
    beh("B")->run_jump = "FAULT";
    step(n);
    assert_state("FAULT");
    assert_status(NODE_STATUS_JUMP);
    assert_log_seq(0, "state returned jump target: FAULT", "JUMP: B->FAULT",
                   "calculating path: FAULT->C", "new target: A");
}

Test(engine, jump_from_check_skips_the_method)
{
    step(n);
    beh("A")->check_jump = "SAFE";
    step(n);
    assert_state("SAFE");
    cr_assert_eq(beh("A")->mains, 0, "the jumping check stops main");
    cr_assert_eq(beh("A")->checks2, 0, "and the checks after it");
    assert_log_seq(0, "executing state: A (10)", "JUMP target: SAFE", "JUMP: A->SAFE");
    cr_assert_eq(log_find_sub(0, "state returned jump target"), -1);
}

Test(engine, checks_run_in_order_and_done_lets_the_method_run)
{
    step(n);
    beh("A")->check_ret = GRD_DONE;
    beh("A")->check2_jump = "D";
    step(n);
    cr_assert_eq(beh("A")->checks, 1);
    cr_assert_eq(beh("A")->checks2, 1);
    cr_assert_eq(beh("A")->mains, 0);
    assert_state("D");
}

/* ---- checks per method (Guardian decorates main and run separately) ----
 * Each check and method appends a letter to `trace`: b (both-list), m
 * (main_checks), r (run_checks), j (a main check that jumps to SAFE), M and
 * R (the methods, which never finish). Every state is a goto state, so a
 * request reaches it in one edge. */
static char trace[64];

static void mark(const char *c) { strncat(trace, c, sizeof(trace) - strlen(trace) - 1); }
static grd_ret pm_both(grd_node *n) { (void)n; mark("b"); return GRD_CONTINUE; }
static grd_ret pm_main_check(grd_node *n) { (void)n; mark("m"); return GRD_DONE; }
static grd_ret pm_run_check(grd_node *n) { (void)n; mark("r"); return GRD_CONTINUE; }
static grd_ret pm_jump(grd_node *n) { mark("j"); return grd_jump(n, "SAFE"); }
static grd_ret pm_main(grd_node *n) { (void)n; mark("M"); return GRD_CONTINUE; }
static grd_ret pm_run(grd_node *n) { (void)n; mark("R"); return GRD_CONTINUE; }

#define PM(NAME, IDX, ...) GRD_STATE(NAME, IDX, .goto_ = true, .main = pm_main, .run = pm_run, __VA_ARGS__)
static const grd_system sys_per_method = {
    .api_version = GRD_API_VERSION, .name = "per_method", .request = "INIT",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .goto_ = true),
                         GRD_STATE("SAFE", 1, .goto_ = true),
                         PM("MAIN_ONLY", 10, .main_checks = GRD_CHECKS(pm_main_check)),
                         PM("RUN_ONLY", 20, .run_checks = GRD_CHECKS(pm_run_check, pm_run_check)),
                         PM("ALL", 30, .checks = GRD_CHECKS(pm_both),
                            .main_checks = GRD_CHECKS(pm_main_check),
                            .run_checks = GRD_CHECKS(pm_run_check)),
                         PM("JUMPS", 40, .checks = GRD_CHECKS(pm_both),
                            .main_checks = GRD_CHECKS(pm_jump, pm_main_check))),
};

/* A node of sys_per_method moved (by an edge) into `state`, its trace empty:
 * the next step enters the state. */
static node *per_method_at(node_system **s2, const char *state)
{
    char err[256];
    *s2 = node_system_wrap(&sys_per_method, err, sizeof(err));
    cr_assert(*s2, "%s", err);
    node *m = node_new("PM", "H1", *s2, NULL, 0, &host, err, sizeof(err));
    cr_assert(m, "%s", err);
    step(m); /* INIT, at its request */
    cr_assert_eq(node_request(m, state), NODE_OK);
    step(m); /* the edge INIT->state */
    cr_assert_str_eq(S(node_state(m)), state);
    cr_assert_eq(node_status(m), NODE_STATUS_EDGE);
    trace[0] = '\0';
    return m;
}

static void per_method_trace(const char *state, const char *expected)
{
    node_system *s2;
    node *m = per_method_at(&s2, state);
    steps(m, 3);
    cr_assert_str_eq(trace, expected, "%s: checks and methods ran as '%s'", state, trace);
    node_free(m);
    node_system_unref(s2);
}

Test(engine, main_checks_run_before_main_only)
{
    per_method_trace("MAIN_ONLY", "mMRR");
}

Test(engine, run_checks_run_before_run_only)
{
    per_method_trace("RUN_ONLY", "MrrRrrR");
}

Test(engine, checks_of_both_run_first_then_the_methods_own)
{
    per_method_trace("ALL", "bmMbrRbrR");
}

Test(engine, a_jump_from_a_main_check_wins)
{
    node_system *s2;
    node *m = per_method_at(&s2, "JUMPS");
    step(m);
    cr_assert_str_eq(trace, "bj", "the later main check and main are not run: '%s'", trace);
    cr_assert_str_eq(S(node_state(m)), "SAFE");
    cr_assert_eq(node_status(m), NODE_STATUS_JUMP);
    cr_assert_neq(log_find(0, "JUMP target: SAFE"), -1);
    node_free(m);
    node_system_unref(s2);
}

Test(engine, check_on_a_held_state_runs_every_cycle)
{
    reach("A");
    unsigned c = beh("A")->checks;
    steps(n, 3);
    cr_assert_eq(beh("A")->checks, c + 3);
    cr_assert_eq(beh("A")->checks2, c + 3);
    beh("A")->check_jump = "FAULT";
    step(n);
    assert_state("FAULT");
    assert_log_seq(0, "JUMP target: FAULT", "JUMP: A->FAULT");
}

Test(engine, jump_to_self_restarts_the_state)
{
    reach("D");
    beh("D")->run_jump = "D";
    step(n);
    beh("D")->run_jump = NULL;
    assert_state("D");
    assert_status(NODE_STATUS_JUMP);
    step(n);
    cr_assert_eq(beh("D")->mains, 2);
}

/* ---- requests ---- */

Test(engine, unknown_request_is_refused_and_changes_nothing)
{
    unsigned lines = fake.n_lines;
    cr_assert_eq(node_request(n, "NOPE"), NODE_ENOSTATE);
    cr_assert_eq(node_request(n, NULL), NODE_EINVAL);
    cr_assert_eq(node_request(n, ""), NODE_ENOSTATE);
    step(n);
    cr_assert_str_eq(S(node_requested(n)), "C");
    cr_assert_eq(log_find_sub(lines, "REQUEST"), -1);
}

Test(engine, request_applies_at_the_next_cycle)
{
    reach("C");
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    cr_assert_str_eq(S(node_requested(n)), "C", "not before the next cycle");
    step(n);
    cr_assert_str_eq(S(node_requested(n)), "A");
    assert_state("B");
    assert_status(NODE_STATUS_EDGE);
}

Test(engine, request_while_running_redirects)
{
    beh("B")->main_ret = GRD_CONTINUE;
    beh("B")->run_ret = GRD_CONTINUE;
    steps(n, 4);
    assert_state("B");
    assert_status(NODE_STATUS_RUN);
    cr_assert_eq(node_request(n, "INIT"), NODE_OK);
    step(n);
    /* B is abandoned: the next state on B->INIT is INIT (goto) */
    assert_state("INIT");
    assert_status(NODE_STATUS_REDIRECT);
    assert_log_seq(0, "REQUEST: INIT", "calculating path: B->INIT", "new target: INIT",
                   "REDIRECT: B->INIT");
    struct node_transition_info t[8];
    unsigned k = node_take_transitions(n, t, 8);
    cr_assert_eq(t[k - 1].how, NODE_TRANS_REDIRECT);
    cr_assert_str_eq(t[k - 1].from, "B");
    cr_assert_str_eq(t[k - 1].request, "INIT");
}

Test(engine, redirect_moves_to_the_next_state_of_the_new_path)
{
    beh("B")->main_ret = GRD_CONTINUE;
    beh("B")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("B");
    assert_status(NODE_STATUS_MAIN);
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    step(n);
    assert_state("C");
    assert_status(NODE_STATUS_REDIRECT);
    cr_assert_str_eq(S(node_target(n)), "D");
    cr_assert_eq(beh("B")->runs, 0);
    assert_log_seq(0, "REDIRECT: B->C");
}

Test(engine, same_request_again_does_not_redirect)
{
    beh("B")->main_ret = GRD_CONTINUE;
    beh("B")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("B");
    cr_assert_eq(node_request(n, "C"), NODE_OK);
    step(n);
    assert_state("B");
    assert_status(NODE_STATUS_RUN);
    cr_assert_eq(log_find_sub(0, "REDIRECT"), -1);
    cr_assert_neq(log_find(0, "REQUEST: C"), -1);
}

Test(engine, request_for_a_state_not_yet_started_waits_for_it)
{
    step(n);
    assert_state("A");
    assert_status(NODE_STATUS_EDGE);
    cr_assert_eq(node_request(n, "SAFE"), NODE_OK);
    step(n);
    cr_assert_eq(beh("A")->mains, 1, "A, moved to already, runs first");
    assert_state("SAFE");
    assert_status(NODE_STATUS_EDGE);
}

Test(engine, a_request_for_init_before_the_first_cycle_still_runs_init)
{
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    step(n);
    cr_assert_eq(beh("INIT")->mains, 1);
    assert_state("A");
    cr_assert_str_eq(S(node_requested(n)), "D");
}

Test(engine, request_for_the_state_about_to_be_entered_does_not_delay_it)
{
    step(n);
    assert_state("A");
    assert_status(NODE_STATUS_EDGE);
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    step(n);
    cr_assert_eq(beh("A")->mains, 1, "entered in this cycle, not restarted");
    assert_status(NODE_STATUS_DONE);
}

Test(engine, error_in_a_no_redirect_state_restarts_it_before_a_new_request)
{
    beh("A")->main_jump = "FAULT";
    beh("FAULT")->main_ret = GRD_CONTINUE;
    beh("FAULT")->run_err = "stuck";
    steps(n, 4);
    beh("A")->main_jump = NULL;
    assert_state("FAULT");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    beh("FAULT")->run_err = NULL;
    beh("FAULT")->run_ret = GRD_CONTINUE;
    cr_assert_eq(node_request(n, "SAFE"), NODE_OK);
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    assert_state("FAULT");
    assert_status(NODE_STATUS_ENTER);
    step(n);
    cr_assert_eq(beh("FAULT")->mains, 2, "restarted at main: it cannot go on mid-way");
    steps(n, 2);
    assert_state("FAULT");
    beh("FAULT")->run_ret = GRD_DONE;
    step(n);
    assert_state("SAFE");
}

Test(engine, re_request_of_the_current_state_restarts_it_at_main)
{
    reach("D");
    cr_assert_eq(beh("D")->mains, 1);
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    step(n);
    assert_status(NODE_STATUS_ENTER);
    cr_assert_eq(beh("D")->mains, 1);
    step(n);
    cr_assert_eq(beh("D")->mains, 2);
    assert_status(NODE_STATUS_DONE);
    cr_assert_eq(log_count("executing state: D (40)"), 2);
}

Test(engine, no_redirect_state_completes_before_a_new_request)
{
    beh("A")->main_jump = "FAULT";
    beh("FAULT")->main_ret = GRD_CONTINUE;
    beh("FAULT")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("FAULT");
    assert_status(NODE_STATUS_MAIN);
    beh("A")->main_jump = NULL;
    cr_assert_eq(node_request(n, "SAFE"), NODE_OK);
    steps(n, 3);
    assert_state("FAULT");
    cr_assert_str_eq(S(node_requested(n)), "SAFE", "REQUEST shows the new request at once");
    cr_assert_eq(beh("FAULT")->runs, 3);
    cr_assert_eq(log_find_sub(0, "REDIRECT"), -1);
    beh("FAULT")->run_ret = GRD_DONE;
    step(n);
    assert_state("SAFE");
    assert_status(NODE_STATUS_EDGE);
    assert_log_seq(0, "REQUEST: SAFE", "EDGE: FAULT->SAFE");
}

Test(engine, no_redirect_state_that_jumps_releases_the_request)
{
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    beh("A")->main_jump = "FAULT";
    beh("FAULT")->main_ret = GRD_CONTINUE;
    beh("FAULT")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("FAULT");
    cr_assert(node_stalled(n));
    beh("A")->main_jump = NULL;
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    steps(n, 2);
    assert_state("FAULT");
    beh("FAULT")->run_jump = "B";
    step(n);
    assert_state("B");
    cr_assert(!node_stalled(n), "the waiting request counts as the new request");
    cr_assert_str_eq(S(node_target(n)), "C");
    steps(n, 4);
    assert_state("D");
}

Test(engine, in_manual_a_request_waiting_on_a_jump_goes_straight_after_the_target)
{
    beh("A")->main_jump = "FAULT";
    beh("FAULT")->main_ret = GRD_CONTINUE;
    beh("FAULT")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    beh("A")->main_jump = NULL;
    assert_state("FAULT");
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANUAL), NODE_OK);
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    steps(n, 2);
    assert_state("FAULT");
    beh("FAULT")->run_jump = "SAFE";
    step(n);
    assert_state("SAFE");
    cr_assert(node_stalled(n));
    step(n);
    cr_assert_eq(beh("SAFE")->mains, 1, "the jump target runs first");
    assert_state("D");
    assert_log_seq(0, "STALLED", "JUMP: FAULT->SAFE", "MANUAL: SAFE->D");
}

Test(engine, re_request_restarts_even_a_no_redirect_state)
{
    beh("A")->main_jump = "FAULT";
    beh("FAULT")->main_ret = GRD_CONTINUE;
    beh("FAULT")->run_ret = GRD_CONTINUE;
    steps(n, 4);
    assert_state("FAULT");
    cr_assert_eq(node_request(n, "FAULT"), NODE_OK);
    step(n);
    assert_status(NODE_STATUS_ENTER);
    step(n);
    cr_assert_eq(beh("FAULT")->mains, 2);
}

/* ---- modes ---- */

Test(engine, managed_stalls_after_a_jump_until_a_new_request)
{
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    beh("B")->main_jump = "D";
    steps(n, 3);
    assert_state("D");
    cr_assert(node_stalled(n));
    assert_log_seq(0, "MODE: MANAGED", "state returned jump target: D", "[B.exit]", "STALLED",
                   "JUMP: B->D");
    cr_assert_str_eq(S(node_target(n)), "D");
    beh("B")->main_jump = NULL;
    steps(n, 6);
    assert_state("D");
    cr_assert_str_eq(node_usermsg(n), "STALLED in D: waits for a request", "the hold says so");
    cr_assert_eq(log_count("USERMSG: STALLED in D: waits for a request"), 1);
    cr_assert_eq(beh("D")->mains, 1);
    cr_assert_eq(beh("D")->runs, 5, "it executes D: main, then run every cycle");
    cr_assert(!node_ok(n));
    /* a revive: the same request again */
    cr_assert_eq(node_request(n, "C"), NODE_OK);
    step(n);
    cr_assert(!node_stalled(n));
    assert_state("C");
    assert_status(NODE_STATUS_EDGE);
    step(n);
    cr_assert(node_ok(n));
}

Test(engine, auto_recovers_after_a_jump)
{
    beh("B")->main_jump = "D";
    steps(n, 3);
    assert_state("D");
    cr_assert(!node_stalled(n));
    beh("B")->main_jump = NULL;
    steps(n, 2);
    cr_assert(node_done(n));
    assert_state("C");
}

Test(engine, switching_to_auto_ends_a_stall)
{
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    beh("B")->main_jump = "D";
    steps(n, 3);
    beh("B")->main_jump = NULL;
    cr_assert(node_stalled(n));
    cr_assert_eq(node_set_mode(n, NODE_MODE_AUTO), NODE_OK);
    steps(n, 3);
    cr_assert(!node_stalled(n));
    assert_state("C");
}

Test(engine, manual_goes_straight_to_the_request)
{
    reach("A");
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANUAL), NODE_OK);
    cr_assert_eq(node_request(n, "ISLAND"), NODE_OK);
    step(n);
    assert_state("ISLAND");
    assert_status(NODE_STATUS_JUMP);
    assert_log_seq(0, "MODE: MANUAL", "REQUEST: ISLAND", "MANUAL: A->ISLAND");
    cr_assert_eq(log_find_sub(0, "no path"), -1, "MANUAL needs no path");
    step(n);
    cr_assert_eq(beh("ISLAND")->mains, 1);
    cr_assert(node_done(n));
    cr_assert(!node_ok(n), "never OK in MANUAL");
    cr_assert(!node_active(n));
    struct node_transition_info t[16];
    unsigned k = node_take_transitions(n, t, 16);
    cr_assert_eq(t[k - 1].how, NODE_TRANS_JUMP);
}

Test(engine, manual_mid_path_holds_and_says_so)
{
    beh("B")->main_ret = GRD_CONTINUE;
    beh("B")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("B");
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANUAL), NODE_OK);
    beh("B")->run_ret = GRD_DONE;
    steps(n, 3);
    assert_state("B");
    cr_assert_str_eq(S(node_target(n)), "B", "MANUAL follows no path");
    cr_assert_str_eq(node_usermsg(n), "MANUAL: holding in B, request C");
    cr_assert_neq(log_find(0, "USERMSG: MANUAL: holding in B, request C"), -1);
    cr_assert_eq(node_set_mode(n, NODE_MODE_AUTO), NODE_OK);
    steps(n, 2);
    assert_state("C");
}

Test(engine, status_passes_every_phase_in_order)
{
    enum node_status t[NODE_STATUS_TRAIL];
    step(n); /* INIT: entered, main DONE, the edge to A: all in one cycle */
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 4);
    cr_assert(t[0] == NODE_STATUS_ENTER && t[1] == NODE_STATUS_MAIN && t[2] == NODE_STATUS_DONE &&
              t[3] == NODE_STATUS_EDGE);
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 0, "taken once");
    assert_log_seq(0, "executing state: INIT (0)", "[INIT.enter]", "[INIT.exit]", "EDGE: INIT->A");
    beh("C")->main_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("C");
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 2);
    cr_assert(t[0] == NODE_STATUS_ENTER && t[1] == NODE_STATUS_MAIN);
    step(n); /* run() DONE */
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 2);
    cr_assert(t[0] == NODE_STATUS_RUN && t[1] == NODE_STATUS_DONE);
    step(n); /* holding: run() verifies, STATUS stays DONE */
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 0);
    assert_status(NODE_STATUS_DONE);
    beh("C")->run_jump = "D";
    step(n);
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 1);
    cr_assert(t[0] == NODE_STATUS_JUMP);
    assert_log_seq(0, "state returned jump target: D", "[C.exit]", "JUMP: C->D");
    beh("C")->run_jump = NULL;
    cr_assert_eq(node_request(n, "C"), NODE_OK);
    step(n); /* D entered and done; the edge back to C (a re-request: no REDIRECT) */
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 4);
    cr_assert(t[0] == NODE_STATUS_ENTER && t[3] == NODE_STATUS_EDGE);
    beh("C")->main_ret = GRD_CONTINUE;
    beh("C")->run_ret = GRD_CONTINUE;
    steps(n, 2);
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    step(n); /* C is still running: the new request redirects */
    cr_assert_eq(node_take_status_trail(n, t, NODE_STATUS_TRAIL), 1);
    cr_assert(t[0] == NODE_STATUS_REDIRECT);
    assert_log_seq(0, "REQUEST: A", "[C.exit]", "REDIRECT: C->B");
    cr_assert_eq(node_request(n, "B"), NODE_OK);
    steps(n, 2);
    cr_assert_eq(node_request(n, "B"), NODE_OK);
    step(n); /* a re-request starts B again at main: ENTER */
    cr_assert_eq(node_status(n), NODE_STATUS_ENTER);
    assert_log_seq(log_find(0, "REQUEST: A"), "REQUEST: B", "REQUEST: B", "[B.exit]");
}

Test(engine, manual_stalls_after_a_jump_and_does_not_follow_paths)
{
    reach("A");
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANUAL), NODE_OK);
    beh("A")->run_jump = "SAFE";
    step(n);
    assert_state("SAFE");
    cr_assert(node_stalled(n));
    cr_assert_neq(log_find(0, "STALLED"), -1);
    beh("A")->run_jump = NULL;
    steps(n, 4);
    assert_state("SAFE");
    cr_assert_eq(node_status(n), NODE_STATUS_DONE);
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    step(n);
    assert_state("A");
    assert_log_seq(0, "MANUAL: SAFE->A");
}

/* ---- OP ---- */

Test(engine, pause_freezes_and_resumes_where_it_was)
{
    beh("B")->main_ret = GRD_CONTINUE;
    beh("B")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("B");
    assert_status(NODE_STATUS_MAIN);
    double t0 = node_exectime(n);
    cr_assert_eq(node_set_op(n, NODE_OP_PAUSE), NODE_OK);
    steps(n, 10);
    cr_assert_eq(node_op(n), NODE_OP_PAUSE);
    cr_assert_eq(beh("B")->runs, 0);
    cr_assert_eq(beh("B")->mains, 1);
    assert_status(NODE_STATUS_MAIN);
    cr_assert(node_exectime(n) > t0 + 0.6, "EXECTIME keeps counting while paused");
    cr_assert(!node_ok(n) && !node_active(n));
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    cr_assert_eq(beh("B")->runs, 1, "resumes with run, not main");
    cr_assert_eq(beh("B")->mains, 1);
    assert_log_seq(0, "OP: PAUSE", "OP: EXEC");
}

Test(engine, stop_halts_and_exec_starts_again_from_init)
{
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    steps(n, 6);
    assert_state("D");
    cr_assert_eq(node_set_op(n, NODE_OP_STOP), NODE_OK);
    unsigned runs = beh("D")->runs;
    steps(n, 5);
    cr_assert_eq(beh("D")->runs, runs);
    assert_state("D");
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    assert_state("INIT");
    assert_status(NODE_STATUS_INIT);
    cr_assert_str_eq(S(node_requested(n)), "D", "REQUEST kept");
    cr_assert_eq(beh("INIT")->mains, 1, "INIT runs next cycle");
    step(n);
    cr_assert_eq(beh("INIT")->mains, 2);
    assert_log_seq(0, "OP: STOP", "OP: EXEC", "calculating path: INIT->D");
    struct node_transition_info t[32];
    unsigned k = node_take_transitions(n, t, 32);
    cr_assert_eq(t[k - 2].how, NODE_TRANS_INIT);
    cr_assert_str_eq(t[k - 2].from, "D");
}

Test(engine, stop_and_exec_within_one_cycle_still_restart)
{
    reach("D");
    cr_assert_eq(node_set_op(n, NODE_OP_STOP), NODE_OK);
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    assert_state("INIT");
    assert_log_seq(0, "OP: STOP", "OP: EXEC");
}

Test(engine, pause_then_exec_does_not_restart)
{
    reach("D");
    cr_assert_eq(node_set_op(n, NODE_OP_PAUSE), NODE_OK);
    step(n);
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    assert_state("D");
}

Test(engine, request_while_paused_is_shown_and_acted_on_at_resume)
{
    reach("C");
    cr_assert_eq(node_set_op(n, NODE_OP_PAUSE), NODE_OK);
    step(n);
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    steps(n, 3);
    cr_assert_str_eq(S(node_requested(n)), "D");
    assert_state("C");
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    assert_state("D");
}

Test(engine, bad_mode_and_op_are_refused)
{
    cr_assert_eq(node_set_mode(n, (enum node_mode)7), NODE_EINVAL);
    cr_assert_eq(node_set_op(n, (enum node_op)-1), NODE_EINVAL);
    cr_assert_eq(node_set_mode(NULL, NODE_MODE_AUTO), NODE_EINVAL);
    step(n);
    cr_assert_eq(node_mode(n), NODE_MODE_AUTO);
    cr_assert_eq(node_op(n), NODE_OP_EXEC);
}

Test(engine, mode_change_takes_effect_next_cycle)
{
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    cr_assert_eq(node_mode(n), NODE_MODE_AUTO);
    step(n);
    cr_assert_eq(node_mode(n), NODE_MODE_MANAGED);
    cr_assert_eq(log_count("MODE: MANAGED"), 1);
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    step(n);
    cr_assert_eq(log_count("MODE: MANAGED"), 1, "no change, no line");
}

/* ---- errors ---- */

Test(engine, error_in_main_holds_until_re_request)
{
    beh("B")->main_err = "boom";
    steps(n, 3);
    assert_state("B");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    assert_log_seq(0, "ERROR in [B.main]: boom");
    steps(n, 5);
    cr_assert_eq(beh("B")->mains, 1, "no state code runs in ERROR");
    cr_assert_eq(beh("B")->checks, 1);
    cr_assert(!node_active(n));
    beh("B")->main_err = NULL;
    cr_assert_eq(node_request(n, "B"), NODE_OK);
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE, "re-request clears ERROR");
    assert_status(NODE_STATUS_ENTER);
    step(n);
    cr_assert_eq(beh("B")->mains, 2);
    cr_assert(node_active(n));
}

Test(engine, error_recovery_with_another_request_leaves_the_broken_state)
{
    beh("B")->run_err = "broken";
    beh("B")->main_ret = GRD_CONTINUE;
    steps(n, 4);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    assert_log_seq(0, "ERROR in [B.run]: broken");
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    assert_state("A");
    assert_status(NODE_STATUS_REDIRECT);
    cr_assert_eq(beh("B")->runs, 1, "B's broken code is not run again");
}

Test(engine, error_in_a_check)
{
    step(n);
    beh("A")->check_err = "sensor says no";
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_eq(beh("A")->mains, 0);
    assert_log_seq(0, "ERROR in [A.check]: sensor says no");
}

Test(engine, bad_return_values_are_errors)
{
    beh("A")->main_ret = GRD_ERROR;
    steps(n, 2);
    assert_log_seq(0, "ERROR in [A.main]: returned GRD_ERROR without calling grd_error()");
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    beh("A")->main_ret = 42;
    steps(n, 2);
    assert_log_seq(0, "ERROR in [A.main]: returned 42, which is not a grd_ret");
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    beh("A")->main_ret = GRD_JUMP;
    steps(n, 2);
    assert_log_seq(0, "ERROR in [A.main]: returned GRD_JUMP without calling grd_jump()");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
}

Test(engine, jump_to_an_unknown_state_is_an_error)
{
    beh("A")->main_jump = "NOPE";
    steps(n, 2);
    assert_state("A");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    assert_log_seq(0, "ERROR in [A.main]: jump to unknown state 'NOPE'");
}

static grd_ret error_then_done(grd_node *g)
{
    grd_error(g, "first %d", 1);
    grd_error(g, "second");
    return GRD_DONE;
}

static const grd_system sys_error_twice = {
    .api_version = GRD_API_VERSION, .name = "e",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .main = error_then_done)),
};

Test(engine, grd_error_wins_over_the_return_value)
{
    char err[256];
    node_system *s2 = node_system_wrap(&sys_error_twice, err, sizeof(err));
    node *m = node_new("E", "H1", s2, NULL, 0, &host, err, sizeof(err));
    step(m);
    cr_assert_eq(node_error(m), NODE_ERROR_TRUE);
    cr_assert_neq(log_find(0, "ERROR in [INIT.main]: first 1"), -1);
    cr_assert_eq(log_find_sub(0, "second"), -1, "the first error is the one reported");
    cr_assert(!node_done(m));
    node_free(m);
    node_system_unref(s2);
}

/* ---- plant channels and CONNECT ---- */

Test(engine, a_read_of_a_disconnected_channel_shows_connect_error)
{
    reach("C");
    cr_assert(node_connected(n));
    beh("C")->read = "H1:PLANT";
    step(n);
    cr_assert(!node_connected(n));
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT);
    cr_assert(!node_ok(n) && !node_active(n));
    chan_set("H1:PLANT", 1);
    step(n);
    cr_assert(node_connected(n));
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    cr_assert(node_ok(n));
    chan_disconnect("H1:PLANT");
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT);
    /* a state-code error takes precedence */
    beh("C")->run_err = "x";
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
}

Test(engine, no_host_get_means_not_connected)
{
    node_host h = fake_host();
    h.get = NULL;
    h.put = NULL;
    char err[256];
    node *m = node_new("NOGET", "H1", sys, NULL, 0, &h, err, sizeof(err));
    cr_assert(m);
    beh("INIT")->read = "H1:X";
    step(m);
    cr_assert(!node_connected(m));
    cr_assert_eq(node_error(m), NODE_ERROR_CONNECT);
    node_free(m);
}

/* ---- EXECTIME ---- */

Test(engine, exectime_counts_from_entry_and_last_keeps_the_previous)
{
    beh("A")->main_ret = GRD_CONTINUE;
    beh("A")->run_ret = GRD_CONTINUE;
    step(n);
    assert_state("A");
    cr_assert_float_eq(node_exectime(n), 0, 1e-9);
    steps(n, 16);
    cr_assert_float_eq(node_exectime(n), 1.0, 1e-9);
    advance(0.5);
    cr_assert_float_eq(node_exectime(n), 1.5, 1e-9);
    beh("A")->run_ret = GRD_DONE;
    node_step(n);
    assert_state("B");
    cr_assert_float_eq(node_exectime_last(n), 1.5, 1e-9);
    cr_assert_float_eq(node_exectime(n), 0, 1e-9);
}

/* ---- OK and ACTIVE ---- */

Test(engine, ok_needs_exec_auto_or_managed_nominal_done_no_error_connected)
{
    cr_assert(!node_ok(n));
    cr_assert(node_active(n));
    reach("C");
    cr_assert(node_ok(n));
    beh("C")->run_ret = GRD_CONTINUE;
    step(n);
    assert_status(NODE_STATUS_RUN);
    cr_assert(!node_ok(n), "STATUS must be DONE");
    beh("C")->run_ret = GRD_DONE;
    step(n);
    cr_assert(node_ok(n));
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    step(n);
    cr_assert(node_ok(n) && node_active(n));
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANUAL), NODE_OK);
    step(n);
    cr_assert(!node_ok(n) && !node_active(n));
    cr_assert_eq(node_set_mode(n, NODE_MODE_AUTO), NODE_OK);
    step(n);
    cr_assert(node_ok(n));
    reach("D");
    cr_assert(!node_ok(n), "STATE and REQUEST must be NOMINAL");
    cr_assert(node_active(n));
    cr_assert_eq(node_request(n, "C"), NODE_OK);
    beh("C")->main_ret = GRD_CONTINUE;
    beh("C")->run_ret = GRD_CONTINUE;
    steps(n, 3);
    assert_state("C");
    cr_assert(!node_ok(n));
}

static const grd_system sys_no_nominal = {
    .api_version = GRD_API_VERSION, .name = "nn",
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
};

Test(engine, no_nominal_never_ok)
{
    char err[256];
    node_system *s2 = node_system_wrap(&sys_no_nominal, err, sizeof(err));
    node *m = node_new("NN", "H1", s2, NULL, 0, &host, err, sizeof(err));
    cr_assert_null(node_nominal(m));
    steps(m, 3);
    cr_assert(node_done(m));
    cr_assert(!node_ok(m));
    cr_assert(node_active(m));
    node_free(m);
    node_system_unref(s2);
}

Test(engine, active_needs_load_done)
{
    reach("C");
    cr_assert(node_active(n));
    node_load_failed(n, "compile error");
    cr_assert_eq(node_load_status(n), NODE_LOAD_ERROR);
    cr_assert(!node_active(n));
    cr_assert(node_ok(n), "OK does not look at LOAD_STATUS");
    cr_assert_neq(log_find(0, "LOAD ERROR: compile error"), -1);
    /* Issue 13: it holds (with USERMSG saying why) while the old code runs on. */
    cr_assert_str_eq(node_usermsg(n), "LOAD ERROR: compile error");
    cr_assert(node_notification(n));
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    steps(n, 64);
    cr_assert_str_eq(node_state(n)->name, "D");
    cr_assert_eq(node_load_status(n), NODE_LOAD_ERROR, "a state change reset LOAD_STATUS");
    cr_assert(!node_active(n));
    cr_assert_str_eq(node_usermsg(n), "LOAD ERROR: compile error");
}

/* ---- a manager's claim (the MANAGER channel) ---- */

Test(engine, a_claim_is_a_lease_its_holder_renews)
{
    reach("C");
    cr_assert_eq(node_claim(n, "MGR_A"), NODE_OK);
    cr_assert_str_eq(node_manager(n), "MGR_A");
    cr_assert_neq(log_find(0, "MANAGER: MGR_A"), -1);
    /* Held: another manager is refused, bad names are refused. */
    cr_assert_eq(node_claim(n, "MGR_B"), NODE_EBUSY);
    cr_assert_eq(node_claim(n, "MGR B"), NODE_EINVAL);
    cr_assert_eq(node_claim(n, NULL), NODE_EINVAL);
    cr_assert_str_eq(node_manager(n), "MGR_A");
    /* Renewed once a second for 20 s: still held, refused to others. */
    for (int s = 0; s < 20; s++) {
        steps(n, 16);
        cr_assert_eq(node_claim(n, "MGR_A"), NODE_OK);
    }
    cr_assert_eq(node_claim(n, "MGR_B"), NODE_EBUSY);
    /* Not renewed: it lapses after NODE_CLAIM_LEASE, at a cycle. */
    steps(n, (unsigned)(NODE_CLAIM_LEASE / CYCLE) - 2);
    cr_assert_str_eq(node_manager(n), "MGR_A", "not before the lease ends");
    steps(n, 3);
    cr_assert_str_eq(node_manager(n), "");
    cr_assert_neq(log_find(0, "MANAGER: the claim of MGR_A lapsed (not renewed for 5 s)"), -1);
    cr_assert_str_eq(node_requested(n)->name, "C", "a lapse leaves the request");
    /* Free again: the other manager takes it; its holder releases it. */
    cr_assert_eq(node_claim(n, "MGR_B"), NODE_OK);
    cr_assert_eq(node_claim(n, "MGR_A"), NODE_EBUSY, "the first one is refused now");
    cr_assert_eq(node_claim(n, ""), NODE_OK);
    cr_assert_str_eq(node_manager(n), "");
    cr_assert_neq(log_find(0, "MANAGER: MGR_B released"), -1);
    cr_assert_eq(node_claim(n, "MGR_A"), NODE_OK);
}

Test(engine, a_lapsed_claim_is_taken_at_once_even_before_a_cycle)
{
    reach("C");
    cr_assert_eq(node_claim(n, "MGR_A"), NODE_OK);
    advance(NODE_CLAIM_LEASE + 0.1); /* no cycle ran: the holder is still shown */
    cr_assert_str_eq(node_manager(n), "MGR_A");
    cr_assert_eq(node_claim(n, "MGR_B"), NODE_OK);
    cr_assert_str_eq(node_manager(n), "MGR_B");
    cr_assert_neq(log_find(0, "MANAGER: MGR_B (the claim of MGR_A had lapsed)"), -1);
}

/* ---- generation ---- */

Test(engine, generation_moves_with_what_is_shown_but_not_exectime)
{
    reach("C");
    step(n);
    uint64_t g = node_generation(n);
    steps(n, 10);
    cr_assert_eq(node_generation(n), g, "holding DONE changes nothing shown");
    cr_assert_eq(node_request(n, "D"), NODE_OK);
    cr_assert_eq(node_generation(n), g, "a pending request is not shown yet");
    step(n);
    cr_assert_gt(node_generation(n), g);
    g = node_generation(n);
    cr_assert_eq(node_claim(n, "MGR"), NODE_OK);
    cr_assert_gt(node_generation(n), g);
    cr_assert_str_eq(node_manager(n), "MGR");
    g = node_generation(n);
    cr_assert_eq(node_claim(n, "MGR"), NODE_OK, "a renewal");
    cr_assert_eq(node_generation(n), g, "changes nothing shown");
}

/* ---- transitions queue ---- */

Test(engine, transitions_are_queued_oldest_first_and_bounded)
{
    struct node_transition_info t[NODE_TRANSITIONS_MAX + 8];
    cr_assert_eq(node_take_transitions(n, t, 8), 1);
    cr_assert_eq(node_take_transitions(n, t, 8), 0, "taken once");
    steps(n, 4);
    unsigned k = node_take_transitions(n, t, 1);
    cr_assert_eq(k, 1);
    cr_assert_str_eq(t[0].from, "INIT");
    cr_assert_str_eq(t[0].to, "A");
    cr_assert_str_eq(t[0].request, "C");
    cr_assert_eq(t[0].how, NODE_TRANS_EDGE);
    cr_assert_float_eq(t[0].wall, FAKE_WALL0 + CYCLE, 1e-6);
    k = node_take_transitions(n, t, 8);
    cr_assert_eq(k, 2, "the rest stays for the next call");
    cr_assert_str_eq(t[0].to, "B");
    cr_assert_str_eq(t[1].to, "C");
    /* never taken: only the newest NODE_TRANSITIONS_MAX remain */
    beh("C")->run_jump = "D";
    beh("D")->main_jump = "C";
    steps(n, 2 * NODE_TRANSITIONS_MAX + 10);
    k = node_take_transitions(n, t, NODE_TRANSITIONS_MAX + 8);
    cr_assert_eq(k, NODE_TRANSITIONS_MAX);
    for (unsigned i = 1; i < k; i++)
        cr_assert_geq(t[i].wall, t[i - 1].wall);
    cr_assert_gt(t[k - 1].wall, fake.wall - 3 * CYCLE, "the newest are kept");
    cr_assert_gt(t[0].wall, FAKE_WALL0 + 10 * CYCLE, "the oldest went");
}

/* ---- timers ---- */

static grd_ret timer_main(grd_node *g)
{
    grd_timer_start(g, "wait", 2);
    return GRD_CONTINUE;
}

static grd_ret timer_run(grd_node *g)
{
    return grd_timer_done(g, "wait") ? GRD_DONE : GRD_CONTINUE;
}

static grd_ret timer_other(grd_node *g)
{
    /* a timer started in another state is still there */
    return grd_timer_done(g, "wait") ? GRD_DONE : GRD_CONTINUE;
}

static const grd_system timed = {
    .api_version = GRD_API_VERSION, .name = "timed", .request = "T2",
    .states = GRD_STATES(GRD_STATE("INIT", 0),
                         GRD_STATE("T1", 1, .main = timer_main, .run = timer_run),
                         GRD_STATE("T2", 2, .run = timer_other)),
    .edges = GRD_EDGES({"INIT", "T1"}, {"T1", "T2"}),
};

Test(engine, timers_count_down_on_the_node_clock)
{
    char err[256];
    node_system *s2 = node_system_wrap(&timed, err, sizeof(err));
    node *m = node_new("TIMED", "H1", s2, NULL, 0, &host, err, sizeof(err));
    steps(m, 2);
    cr_assert_str_eq(S(node_state(m)), "T1");
    cr_assert_neq(log_find(0, "[T1.main] timer['wait'] = 2"), -1);
    steps(m, 31); /* 1.9375 s */
    cr_assert_str_eq(S(node_state(m)), "T1");
    cr_assert_eq(node_status(m), NODE_STATUS_RUN);
    cr_assert_eq(log_find_sub(0, "done"), -1);
    step(m); /* 2.0 s */
    cr_assert_str_eq(S(node_state(m)), "T2");
    cr_assert_neq(log_find(0, "[T1.run] timer['wait'] done"), -1);
    steps(m, 3);
    cr_assert(node_done(m));
    cr_assert_eq(log_count("[T1.run] timer['wait'] done"), 1, "logged the first time only");
    node_free(m);
    node_system_unref(s2);
}

static grd_ret timer_misc(grd_node *g)
{
    cr_assert(grd_timer_done(g, "never"), "never started = done");
    cr_assert(grd_timer_done(g, NULL));
    grd_timer_start(g, "zero", 0);
    cr_assert(grd_timer_done(g, "zero"));
    grd_timer_start(g, "neg", -5);
    cr_assert(grd_timer_done(g, "neg"));
    grd_timer_start(g, "nan", NAN);
    cr_assert(grd_timer_done(g, "nan"));
    grd_timer_start(g, "long", 100);
    cr_assert(!grd_timer_done(g, "long"));
    grd_timer_start(g, "long", 0); /* restart */
    cr_assert(grd_timer_done(g, "long"));
    /* expired slots are reused: many short timers are fine */
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        grd_timer_start(g, name, 0);
    }
    return GRD_DONE;
}

static grd_ret timer_too_many(grd_node *g)
{
    char name[32];
    for (int i = 0; i < 33; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        grd_timer_start(g, name, 10);
    }
    return GRD_DONE;
}

static const grd_system sys_timer_edges = {
    .api_version = GRD_API_VERSION, .name = "tm", .request = "X",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .main = timer_misc),
                         GRD_STATE("X", 1, .main = timer_too_many)),
    .edges = GRD_EDGES({"INIT", "X"}),
};

Test(engine, timer_edge_cases)
{
    char err[256];
    node_system *s2 = node_system_wrap(&sys_timer_edges, err, sizeof(err));
    node *m = node_new("TM", "H1", s2, NULL, 0, &host, err, sizeof(err));
    step(m);
    cr_assert_eq(node_error(m), NODE_ERROR_NONE);
    cr_assert_str_eq(S(node_state(m)), "X");
    step(m);
    cr_assert_eq(node_error(m), NODE_ERROR_TRUE);
    cr_assert_neq(log_find(0, "ERROR in [X.main]: more than 32 timers running (starting 't32')"), -1);
    node_free(m);
    node_system_unref(s2);
}

Test(engine, timers_are_cleared_by_a_restart_from_init)
{
    char err[256];
    node_system *s2 = node_system_wrap(&timed, err, sizeof(err));
    node *m = node_new("TIMED", "H1", s2, NULL, 0, &host, err, sizeof(err));
    steps(m, 3);
    cr_assert_str_eq(S(node_state(m)), "T1"); /* 'wait' runs for 2 s */
    /* Restart, and go straight to T2, whose run is done once 'wait' is. */
    node_set_op(m, NODE_OP_STOP);
    node_set_op(m, NODE_OP_EXEC);
    node_set_mode(m, NODE_MODE_MANUAL);
    node_request(m, "T2");
    step(m);
    cr_assert_str_eq(S(node_state(m)), "INIT");
    steps(m, 2);
    cr_assert_str_eq(S(node_state(m)), "T2");
    step(m); /* T2's run */
    cr_assert_eq(node_status(m), NODE_STATUS_DONE, "no 'wait' timer after the restart");
    node_free(m);
    node_system_unref(s2);
}

/* ---- notifications ---- */

Test(engine, notify_from_run_stays_while_repeated_and_at_least_a_second)
{
    reach("C");
    beh("C")->notify = "0123456789012345678901234567890123456789-and-more";
    step(n);
    cr_assert(node_notification(n));
    cr_assert_str_eq(node_usermsg(n), "012345678901234567890123456789012345678");
    cr_assert_eq(strlen(node_usermsg(n)), 39);
    cr_assert_neq(log_find(0, "USERMSG: 0123456789012345678901234567890123456789-and-more"), -1);
    steps(n, 5);
    cr_assert(node_notification(n));
    cr_assert_eq(log_count("USERMSG: 0123456789012345678901234567890123456789-and-more"), 1,
                 "logged when it changes, not every cycle");
    beh("C")->notify = NULL;
    step(n);
    cr_assert(node_notification(n), "posted for 6 cycles: it stays 1 s");
    advance(NODE_NOTICE_MIN);
    step(n);
    cr_assert(!node_notification(n), "not repeated and older than 1 s: gone");
    cr_assert_str_eq(node_usermsg(n), "");
    beh("C")->notify = "again";
    step(n);
    cr_assert_str_eq(node_usermsg(n), "again");
    beh("C")->notify = NULL;
    steps(n, 14); /* 0.875 s */
    cr_assert_str_eq(node_usermsg(n), "again", "once is enough to be seen for 1 s");
    steps(n, 2);
    cr_assert(!node_notification(n));
    beh("C")->notify = "again";
    step(n);
    cr_assert_eq(log_count("USERMSG: again"), 2, "a new episode is logged again");
    cr_assert_eq(node_set_op(n, NODE_OP_PAUSE), NODE_OK);
    steps(n, 3);
    cr_assert(node_notification(n), "a paused node keeps its notification");
}

Test(engine, notify_from_main_stays_until_the_state_is_left)
{
    reach("C");
    beh("D")->main_notify = "Waiting to load coefficients!";
    reach("D");
    cr_assert_str_eq(node_usermsg(n), "Waiting to load coefficients!");
    steps(n, 48); /* 3 s of run() without a notification */
    cr_assert(node_notification(n));
    cr_assert_str_eq(node_usermsg(n), "Waiting to load coefficients!");
    cr_assert_eq(log_count("USERMSG: Waiting to load coefficients!"), 1);
    reach("C");
    cr_assert(!node_notification(n), "left with the state it was made in");
}

Test(engine, usermsg_shows_the_newest_notification)
{
    reach("C");
    beh("D")->main_notify = "from main";
    reach("D");
    beh("D")->notify = "from run";
    step(n);
    cr_assert_str_eq(node_usermsg(n), "from run", "the newer one");
    steps(n, 20);
    cr_assert_str_eq(node_usermsg(n), "from run", "repeated: it stays the newer one");
    beh("D")->notify = NULL;
    advance(NODE_NOTICE_MIN);
    step(n);
    cr_assert_str_eq(node_usermsg(n), "from main", "run's lapsed; main's stays with the state");
    cr_assert_eq(node_request(n, "D"), NODE_OK); /* started again: main notifies afresh */
    steps(n, 2);
    cr_assert_str_eq(node_usermsg(n), "from main");
    cr_assert_eq(log_count("USERMSG: from main"), 2, "each time main notifies");
}

Test(engine, usermsg_is_not_cut_inside_a_utf8_character)
{
    reach("C");
    /* 38 ASCII characters then "é" (2 bytes): the cut would split it */
    beh("C")->notify = "abcdefghijklmnopqrstuvwxyzabcdefghijkl\xc3\xa9xyz";
    step(n);
    cr_assert_str_eq(node_usermsg(n), "abcdefghijklmnopqrstuvwxyzabcdefghijkl");
}

/* ---- node_start_at and node_done ---- */

Test(engine, start_at_a_state_heading_for_a_request)
{
    cr_assert_eq(node_start_at(n, "B", "D"), NODE_OK);
    assert_state("B");
    cr_assert_str_eq(S(node_requested(n)), "D");
    cr_assert_str_eq(S(node_target(n)), "C");
    step(n);
    cr_assert_eq(beh("INIT")->mains, 0, "INIT is skipped");
    cr_assert_eq(beh("B")->mains, 1);
    cr_assert(!node_done(n));
    steps(n, 2);
    cr_assert(node_done(n));
    assert_state("D");
    cr_assert_eq(node_start_at(n, "NOPE", NULL), NODE_ENOSTATE);
    cr_assert_eq(node_start_at(n, "A", "NOPE"), NODE_ENOSTATE);
    assert_state("D");
}

Test(engine, start_at_a_single_state)
{
    beh("D")->main_ret = GRD_CONTINUE;
    beh("D")->run_ret = GRD_CONTINUE;
    cr_assert_eq(node_start_at(n, "D", NULL), NODE_OK);
    cr_assert_str_eq(S(node_requested(n)), "D");
    steps(n, 3);
    cr_assert(!node_done(n));
    beh("D")->run_ret = GRD_DONE;
    step(n);
    cr_assert(node_done(n));
}
