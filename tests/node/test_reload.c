/* test_reload.c — node_reload: switching code under a running node.
 *
 * v1 and v2 share state names but not code: every call is counted per
 * version and state, so a test can tell whose code ran. v3 has a different
 * priv_size.
 *   v1: INIT(goto) -> A -> B, A -> GONE -> B        request B
 *   v2: INIT(goto) -> A -> B -> NEW                  request NEW
 *   v3: INIT(goto) -> A -> B                         request A, bigger priv
 */
#include "tests/node/fake_host.h"

enum { NSTATES = 8 };
static const char *const names[NSTATES] = {"INIT", "A", "B", "GONE", "NEW"};
static unsigned mains[4][NSTATES], runs[4][NSTATES], inits[4], finis[4];
static int main_ret[NSTATES], run_ret[NSTATES]; /* by state, all versions */
static const char *main_err[NSTATES];

static int idx(grd_node *g)
{
    for (int i = 0; i < NSTATES && names[i]; i++)
        if (strcmp(names[i], grd_state_name(g)) == 0)
            return i;
    cr_assert_fail("unknown state");
    return 0;
}

#define VERSION(V)                                                                                 \
    static grd_ret v##V##_main(grd_node *g)                                                        \
    {                                                                                              \
        int i = idx(g);                                                                            \
        mains[V][i]++;                                                                             \
        if (main_err[i])                                                                           \
            return grd_error(g, "%s", main_err[i]);                                                \
        return (grd_ret)main_ret[i];                                                               \
    }                                                                                              \
    static grd_ret v##V##_run(grd_node *g)                                                         \
    {                                                                                              \
        int i = idx(g);                                                                            \
        runs[V][i]++;                                                                              \
        return (grd_ret)run_ret[i];                                                                \
    }                                                                                              \
    static void v##V##_init(grd_node *g)                                                           \
    {                                                                                              \
        (void)g;                                                                                   \
        inits[V]++;                                                                                \
    }                                                                                              \
    static void v##V##_fini(grd_node *g)                                                           \
    {                                                                                              \
        (void)g;                                                                                   \
        finis[V]++;                                                                                \
    }
VERSION(1)
VERSION(2)
VERSION(3)

#define ST(V, NAME, IDX, ...) GRD_STATE(NAME, IDX, .main = v##V##_main, .run = v##V##_run, __VA_ARGS__)

static const grd_system v1 = {
    .api_version = GRD_API_VERSION, .name = "v1", .request = "B", .priv_size = 16,
    .node_init = v1_init, .node_fini = v1_fini,
    .states = GRD_STATES(ST(1, "INIT", 0, .goto_ = true), ST(1, "A", 1), ST(1, "B", 2),
                         ST(1, "GONE", 3)),
    .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}, {"A", "GONE"}, {"GONE", "B"}),
};
static const grd_system v2 = {
    .api_version = GRD_API_VERSION, .name = "v2", .request = "NEW", .priv_size = 16,
    .node_init = v2_init, .node_fini = v2_fini,
    .states = GRD_STATES(ST(2, "INIT", 0, .goto_ = true), ST(2, "A", 1), ST(2, "B", 2),
                         ST(2, "NEW", 4)),
    .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}, {"B", "NEW"}),
};
static const grd_system v3 = {
    .api_version = GRD_API_VERSION, .name = "v3", .request = "A", .priv_size = 32,
    .node_init = v3_init, .node_fini = v3_fini,
    .states = GRD_STATES(ST(3, "INIT", 0, .goto_ = true), ST(3, "A", 1), ST(3, "B", 2)),
    .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}),
};

static node_system *s1, *s2, *s3;
static node *n;
static node_host host;
static char err[512];

static void setup(void)
{
    for (int i = 0; i < NSTATES; i++)
        main_ret[i] = run_ret[i] = GRD_DONE;
    host = fake_host();
    s1 = node_system_wrap(&v1, err, sizeof(err));
    s2 = node_system_wrap(&v2, err, sizeof(err));
    s3 = node_system_wrap(&v3, err, sizeof(err));
    cr_assert(s1 && s2 && s3, "%s", err);
    n = node_new("RELOAD", "H1", s1, NULL, 0, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
}

static void teardown(void)
{
    node_free(n);
    node_system_unref(s1);
    node_system_unref(s2);
    node_system_unref(s3);
    fake_free();
}

TestSuite(reload, .init = setup, .fini = teardown);

#define B 2

Test(reload, keeps_the_state_and_its_phase)
{
    main_ret[B] = run_ret[B] = GRD_CONTINUE;
    for (int i = 0; i < 4; i++)
        step(n);
    cr_assert_str_eq(node_state(n)->name, "B");
    cr_assert_eq(node_status(n), NODE_STATUS_RUN);
    cr_assert_eq(runs[1][B], 1);
    double loaded = node_load_time(n);
    struct node_transition_info t[16];
    node_take_transitions(n, t, 16);
    advance(5);
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK, "%s", err);
    cr_assert_eq(node_system_of(n), s2);
    cr_assert_str_eq(node_state(n)->name, "B");
    cr_assert_eq(node_status(n), NODE_STATUS_RUN);
    cr_assert_str_eq(node_requested(n)->name, "B", "B still exists: the request stays");
    cr_assert_str_eq(node_target(n)->name, "B");
    cr_assert_eq(node_load_status(n), NODE_LOAD_DONE);
    cr_assert_float_eq(node_load_time(n), loaded + 5 + 4 * CYCLE, 1e-6);
    cr_assert_neq(log_find(0, "LOAD: v2"), -1);
    cr_assert_eq(node_take_transitions(n, t, 16), 0, "no transition");
    step(n);
    cr_assert_eq(runs[2][B], 1, "the new run");
    cr_assert_eq(mains[2][B], 0, "not restarted at main");
    cr_assert_eq(runs[1][B], 1, "the old code no longer runs");
    cr_assert_eq(inits[2] + finis[1], 0, "same priv_size: no init/fini");
}

Test(reload, a_state_that_is_gone_sends_the_node_to_init)
{
    cr_assert_eq(node_request(n, "GONE"), NODE_OK);
    for (int i = 0; i < 4; i++)
        step(n);
    cr_assert_str_eq(node_state(n)->name, "GONE");
    struct node_transition_info t[16];
    node_take_transitions(n, t, 16);
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK, "%s", err);
    cr_assert_str_eq(node_state(n)->name, "INIT");
    cr_assert_eq(node_status(n), NODE_STATUS_INIT);
    cr_assert_str_eq(node_requested(n)->name, "NEW", "GONE is gone: the new system's request");
    assert_log_seq(0, "LOAD: v2", "LOAD: state GONE is not in the new code: going to INIT",
                   "calculating path: INIT->NEW");
    cr_assert_eq(node_take_transitions(n, t, 16), 1);
    cr_assert_str_eq(t[0].from, "GONE");
    cr_assert_str_eq(t[0].to, "INIT");
    cr_assert_eq(t[0].how, NODE_TRANS_INIT);
    step(n);
    cr_assert_eq(mains[2][0], 1, "v2's INIT");
    for (int i = 0; i < 4; i++)
        step(n);
    cr_assert(node_done(n));
    cr_assert_str_eq(node_state(n)->name, "NEW");
}

Test(reload, a_failed_load_keeps_the_old_code_running)
{
    step(n);
    cr_assert_eq(node_reload(n, NULL, err, sizeof(err)), NODE_ENOSYS);
    cr_assert(strstr(err, "no system"), "%s", err);
    cr_assert_eq(node_load_status(n), NODE_LOAD_ERROR);
    cr_assert(!node_active(n));
    cr_assert_eq(node_system_of(n), s1);
    cr_assert_neq(log_find_sub(0, "LOAD ERROR: "), -1);
    cr_assert(strncmp(node_usermsg(n), "LOAD ERROR: ", 12) == 0, "%s", node_usermsg(n));
    for (int i = 0; i < 3; i++)
        step(n);
    cr_assert_eq(mains[1][B], 1);
    cr_assert(node_done(n));
    /* Held across steps and state changes (issue 13), until a LOAD succeeds. */
    cr_assert_eq(node_load_status(n), NODE_LOAD_ERROR);
    cr_assert(strncmp(node_usermsg(n), "LOAD ERROR: ", 12) == 0, "%s", node_usermsg(n));
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK);
    cr_assert_eq(node_load_status(n), NODE_LOAD_DONE);
    cr_assert(node_active(n));
    cr_assert(!strstr(node_usermsg(n), "LOAD ERROR"), "%s", node_usermsg(n));
}

Test(reload, load_phases_show_without_ending_a_failure_or_activity)
{
    step(n);
    cr_assert(node_active(n));
    uint64_t gen = node_generation(n);
    const enum node_load_status phases[] = {NODE_LOAD_REQUEST, NODE_LOAD_SET,
                                            NODE_LOAD_INPROGRESS};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(node_load_phase(n, phases[i]), NODE_OK);
        cr_assert_eq(node_load_status(n), phases[i]);
        cr_assert(node_active(n), "a LOAD under way is not a failure");
    }
    cr_assert_gt(node_generation(n), gen, "each phase is shown");
    cr_assert_eq(node_load_phase(n, NODE_LOAD_DONE), NODE_EINVAL, "node_reload says DONE");
    cr_assert_eq(node_load_phase(n, NODE_LOAD_ERROR), NODE_EINVAL);
    cr_assert_eq(node_load_phase(NULL, NODE_LOAD_SET), NODE_EINVAL);
    node_load_failed(n, "broken");
    cr_assert(!node_active(n));
    /* A new LOAD under way: the failure holds until it succeeds. */
    cr_assert_eq(node_load_phase(n, NODE_LOAD_REQUEST), NODE_OK);
    cr_assert(!node_active(n));
    cr_assert(node_notification(n));
    cr_assert(strncmp(node_usermsg(n), "LOAD ERROR: broken", 18) == 0, "%s", node_usermsg(n));
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK);
    cr_assert_eq(node_load_status(n), NODE_LOAD_DONE);
    cr_assert(node_active(n));
}

Test(reload, private_data_is_kept_when_its_size_is_the_same)
{
    int *p = grd_priv((grd_node *)n);
    p[0] = 1234;
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK);
    cr_assert_eq(grd_priv((grd_node *)n), p);
    cr_assert_eq(p[0], 1234);
    cr_assert_eq(finis[1] + inits[2], 0);
}

Test(reload, new_private_data_when_its_size_changes)
{
    cr_assert_eq(inits[1], 1);
    int *p = grd_priv((grd_node *)n);
    p[0] = 1234;
    cr_assert_eq(node_reload(n, s3, err, sizeof(err)), NODE_OK);
    cr_assert_eq(finis[1], 1, "node_fini of the old code");
    cr_assert_eq(inits[3], 1, "node_init of the new");
    int *q = grd_priv((grd_node *)n);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(q[i], 0, "zeroed");
    node_free(n);
    n = NULL;
    cr_assert_eq(finis[3], 1);
    cr_assert_eq(finis[1], 1);
}

Test(reload, clears_error_and_retries_main_with_the_new_code)
{
    main_err[B] = "bug";
    for (int i = 0; i < 3; i++)
        step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    main_err[B] = NULL;
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    step(n);
    cr_assert_eq(mains[2][B], 1, "main had not completed: it runs again, new code");
    cr_assert_eq(mains[1][B], 1);
    cr_assert_eq(node_status(n), NODE_STATUS_DONE);
}

Test(reload, a_waiting_request_follows_the_new_code)
{
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK);
    step(n);
    cr_assert_str_eq(node_requested(n)->name, "A", "mapped by name to v2's A");
    cr_assert_eq(node_reload(n, s1, err, sizeof(err)), NODE_OK);
    cr_assert_eq(node_request(n, "GONE"), NODE_OK);
    cr_assert_eq(node_reload(n, s3, err, sizeof(err)), NODE_OK);
    step(n);
    cr_assert_str_eq(node_requested(n)->name, "A", "a request for a state v3 lacks is dropped");
    cr_assert_eq(log_find(0, "REQUEST: GONE"), -1);
}

Test(reload, mode_and_op_survive_a_reload)
{
    cr_assert_eq(node_set_mode(n, NODE_MODE_MANAGED), NODE_OK);
    step(n);
    step(n); /* A's main */
    cr_assert_str_eq(node_state(n)->name, "B");
    cr_assert_eq(node_reload(n, s2, err, sizeof(err)), NODE_OK);
    cr_assert_eq(node_mode(n), NODE_MODE_MANAGED);
    cr_assert_eq(node_op(n), NODE_OP_EXEC);
}

/* ---- a LOAD's preflight (issue 13): comparing graphs, refusing to strand ---- */

/* v3 with A requestable at another index; v5 has no way from A to B. */
static const grd_system v4 = {
    .api_version = GRD_API_VERSION, .name = "v4", .request = "A", .priv_size = 32,
    .states = GRD_STATES(ST(3, "INIT", 0, .goto_ = true), ST(3, "A", 7, .request = true),
                         ST(3, "B", 2)),
    .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}),
};
static const grd_system v5 = {
    .api_version = GRD_API_VERSION, .name = "v5", .priv_size = 16,
    .states = GRD_STATES(ST(3, "INIT", 0), ST(3, "A", 1), ST(3, "B", 2)),
    .edges = GRD_EDGES({"INIT", "A"}, {"INIT", "B"}),
};

static void list_is(const struct node_diff_list *l, unsigned count, const char *const *texts)
{
    cr_assert_eq(l->count, count, "%u entries, expected %u", l->count, count);
    for (unsigned i = 0; i < count; i++)
        cr_assert_str_eq(l->text[i], texts[i]);
}

Test(reload, compare_lists_states_edges_indexes_and_requestable_changes)
{
    struct node_system_diff d;
    node_system_compare(s1, s2, &d);
    list_is(&d.added, 1, (const char *[]){"NEW"});
    list_is(&d.removed, 1, (const char *[]){"GONE"});
    list_is(&d.edges_added, 1, (const char *[]){"B->NEW"});
    list_is(&d.edges_removed, 2, (const char *[]){"A->GONE", "GONE->B"});
    list_is(&d.index, 0, NULL);
    list_is(&d.requestable, 0, NULL);
    node_system_compare(s1, s1, &d);
    cr_assert_eq(d.added.count + d.removed.count + d.edges_added.count + d.edges_removed.count +
                     d.index.count + d.requestable.count, 0, "a system differs from itself");
    node_system *s4 = node_system_wrap(&v4, err, sizeof(err));
    cr_assert(s4, "%s", err);
    node_system_compare(s3, s4, &d);
    list_is(&d.index, 1, (const char *[]){"A 1->7"});
    list_is(&d.requestable, 1, (const char *[]){"+A"});
    node_system_compare(s4, s3, &d);
    list_is(&d.requestable, 1, (const char *[]){"-A"});
    node_system_unref(s4);
}

Test(reload, check_refuses_a_load_that_strands_the_node)
{
    char why[256];
    for (int i = 0; i < 4; i++)
        step(n);
    cr_assert_str_eq(node_state(n)->name, "B");
    cr_assert_eq(node_reload_check(n, s2, why, sizeof(why)), NODE_OK, "%s", why);
    cr_assert_eq(node_reload_check(n, s3, why, sizeof(why)), NODE_OK, "%s", why);
    /* In GONE, which v2 has not. */
    cr_assert_eq(node_request(n, "GONE"), NODE_OK);
    for (int i = 0; i < 8; i++)
        step(n);
    cr_assert_str_eq(node_state(n)->name, "GONE");
    cr_assert_eq(node_reload_check(n, s2, why, sizeof(why)), NODE_EREFUSED);
    cr_assert_str_eq(why, "current state GONE is not in the new code");
    cr_assert_eq(node_load_status(n), NODE_LOAD_DONE, "a check changes nothing");
    /* Held in A on the way to B: v5 has no path from A to B. */
    main_ret[1] = run_ret[1] = GRD_CONTINUE;
    cr_assert_eq(node_request(n, "A"), NODE_OK);
    for (int i = 0; i < 8; i++)
        step(n);
    cr_assert_str_eq(node_state(n)->name, "A");
    cr_assert_eq(node_request(n, "B"), NODE_OK); /* not stepped: still in A */
    node_system *s5 = node_system_wrap(&v5, err, sizeof(err));
    cr_assert(s5, "%s", err);
    cr_assert_eq(node_reload_check(n, s5, why, sizeof(why)), NODE_EREFUSED);
    cr_assert_str_eq(why, "no path from A to B in the new code");
    /* The request is GONE, which v2 has not (the current state A it has). */
    cr_assert_eq(node_request(n, "GONE"), NODE_OK);
    cr_assert_eq(node_reload_check(n, s2, why, sizeof(why)), NODE_EREFUSED);
    cr_assert_str_eq(why, "request GONE is not in the new code");
    node_system_unref(s5);
}
