/* test_manage.c — a manager's subordinates (guardian.h, "subordinates"),
 * cycle by cycle with the fake clock.
 *
 * The manager MGR reaches each subordinate only through its node channels,
 * so a subordinate here is just those channels in the fake host's table
 * (sub_new), moved by the test as the subordinate and other clients would;
 * what the manager writes lands in them (fake_put), or is refused when a
 * channel says so. The manager's system runs `run_script` in its state's
 * run; most tests call the API from the test body, as code outside a state
 * would.
 */
#include "tests/node/fake_host.h"

static void (*run_script)(grd_node *g);

static grd_ret m_run(grd_node *g)
{
    if (run_script)
        run_script(g);
    return GRD_CONTINUE;
}

static const grd_system mgr_sys = {
    .api_version = GRD_API_VERSION, .name = "mgr",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .run = m_run), GRD_STATE("OTHER", 1)),
    .edges = GRD_EDGES({"INIT", "OTHER"}),
};

static node_system *sys;
static node *n;
static grd_node *g;

static void setup(void)
{
    char err[256];
    node_host host = fake_host();
    sys = node_system_wrap(&mgr_sys, err, sizeof(err));
    cr_assert(sys, "%s", err);
    const char *args[] = {"nodes=SUB1, SUB2"};
    n = node_new("MGR", "X1", sys, args, 1, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
    g = (grd_node *)n;
}

static void teardown(void)
{
    node_free(n);
    node_system_unref(sys);
    fake_free();
}

TestSuite(manage, .init = setup, .fini = teardown);

static void declare_two(void)
{
    sub_new("SUB1", "SAFE");
    sub_new("SUB2", "SAFE");
    cr_assert_eq(grd_subnodes(g, NULL), 2);
}

/* ---- declaring ---- */

Test(manage, subordinates_are_declared_by_name_once_each)
{
    cr_assert_eq(grd_subnode_count(g), 0);
    cr_assert_eq(grd_subnodes(g, NULL), 2, "from the argument nodes=");
    cr_assert_eq(grd_subnodes(g, " SUB2,SUB3\tSUB1 "), 3, "commas, spaces; SUB1 and SUB2 known");
    cr_assert_str_eq(grd_subnode(g, 0), "SUB1");
    cr_assert_str_eq(grd_subnode(g, 2), "SUB3");
    cr_assert_null(grd_subnode(g, 3));
    cr_assert_neq(log_find(0, "subordinate: SUB3"), -1);
    unsigned not_ok = 99;
    cr_assert_eq(node_subnodes(n, &not_ok), 3);
    cr_assert_eq(grd_subnodes(NULL, "X"), GRD_EINVAL);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    cr_assert_eq(grd_subnodes(g, "SUB4, SUB-5"), GRD_EBADCHAN);
    cr_assert_eq(grd_subnode_count(g), 4, "the names before the bad one are declared");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_str_eq(node_error_message(n), "bad subordinate name 'SUB-5'");
}

Test(manage, too_many_subordinates_is_an_error)
{
    char name[16];
    for (int i = 0; i < GRD_SUBNODES_MAX; i++) {
        snprintf(name, sizeof(name), "S%d", i);
        cr_assert_eq(grd_subnodes(g, name), i + 1);
    }
    cr_assert_eq(grd_subnodes(g, "ONE_MORE"), GRD_EBADCHAN);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
}

Test(manage, a_subordinate_is_read_through_its_channels)
{
    declare_two();
    struct grd_sub st;
    cr_assert_eq(grd_sub_status(g, "SUB1", &st), GRD_ENOTCONN, "not read before a cycle");
    step(n);
    cr_assert_eq(grd_sub_status(g, "SUB1", &st), GRD_OK);
    cr_assert_str_eq(st.state, "SAFE");
    cr_assert_str_eq(st.mode, "AUTO");
    cr_assert(st.connected && st.ok && !st.error && !st.stalled && !st.held);
    cr_assert(st.arrived && st.done, "at its own request");
    cr_assert_eq(grd_sub_status(g, "NOPE", &st), GRD_EBADCHAN);
    cr_assert_eq(grd_sub_status(g, "SUB1", NULL), GRD_EINVAL);
    cr_assert(grd_arrived(g) && grd_completed(g));
}

/* ---- claims ---- */

Test(manage, set_managed_claims_then_sets_managed_and_renews_each_second)
{
    declare_two();
    step(n);
    cr_assert_eq(grd_set_managed(g), GRD_OK);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "MGR", "claimed at once when connected");
    cr_assert_eq(put_count(ch("SUB1", "MODE"), NULL), 0, "MODE only once the claim is held");
    step(n);
    cr_assert_str_eq(sub_get("SUB1", "MODE"), "MANAGED");
    cr_assert_str_eq(sub_get("SUB2", "MODE"), "MANAGED");
    struct grd_sub st;
    grd_sub_status(g, "SUB1", &st);
    cr_assert(st.held);
    unsigned before = put_count(ch("SUB1", "MANAGER"), "MGR");
    steps(n, 160); /* 10 s */
    unsigned renewals = put_count(ch("SUB1", "MANAGER"), "MGR") - before;
    cr_assert(renewals >= 9 && renewals <= 11, "%u renewals in 10 s", renewals);
    cr_assert_eq(put_count(ch("SUB1", "MODE"), NULL), 1, "MODE written once");
}

Test(manage, a_node_another_manager_holds_is_tried_once_reported_and_taken_when_free)
{
    declare_two();
    sub_held_by("SUB1", "OTHER");
    step(n);
    grd_set_managed(g);
    cr_assert_eq(put_count(ch("SUB1", "MANAGER"), NULL), 0, "refused: nothing recorded");
    cr_assert_neq(log_find_sub(0, "SUB1: claim refused: Channel write request failed"), -1);
    steps(n, 160);
    cr_assert_str_eq(node_usermsg(n), "SUB1 is managed by OTHER");
    cr_assert_eq(log_count("SUB1: claim refused: Channel write request failed"), 1,
                 "one attempt, then nothing written while the other claim holds");
    cr_assert_eq(grd_sub_request(g, "SUB1", "ALIGNED"), GRD_EBUSY);
    cr_assert_eq(put_count(ch("SUB1", "REQUEST"), NULL), 0);
    struct grd_sub st;
    grd_sub_status(g, "SUB1", &st);
    cr_assert(!st.arrived && !st.held);
    char text[128];
    cr_assert_eq(grd_sub_faults(g, text, sizeof(text)), 1);
    cr_assert_str_eq(text, "SUB1 managed by OTHER");
    unsigned not_ok;
    node_subnodes(n, &not_ok);
    cr_assert_eq(not_ok, 1);
    cr_assert_str_eq(sub_get("SUB2", "MANAGER"), "MGR", "the other subordinate is held");
    /* The other claim lapses: taken within a renewal. */
    sub_freed("SUB1");
    steps(n, 17);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "MGR");
    step(n);
    cr_assert_str_eq(sub_get("SUB1", "MODE"), "MANAGED");
    cr_assert_eq(grd_sub_request(g, "SUB1", "ALIGNED"), GRD_OK);
    cr_assert_str_eq(sub_get("SUB1", "REQUEST"), "ALIGNED");
}

static void notify_every_cycle(grd_node *gn) { grd_notify(gn, "state code says hello"); }

Test(manage, the_holder_is_shown_above_what_state_code_notifies)
{
    declare_two();
    run_script = notify_every_cycle;
    steps(n, 3);
    cr_assert_str_eq(node_usermsg(n), "state code says hello");
    sub_held_by("SUB2", "OTHER");
    grd_set_managed(g);
    steps(n, 32);
    cr_assert_str_eq(node_usermsg(n), "SUB2 is managed by OTHER");
    cr_assert_eq(log_count("USERMSG: SUB2 is managed by OTHER"), 1, "shown once, no flapping");
    sub_freed("SUB2");
    steps(n, 20);
    cr_assert_str_eq(node_usermsg(n), "state code says hello");
}

Test(manage, an_operator_release_is_respected_until_set_managed)
{
    declare_two();
    step(n);
    grd_set_managed(g);
    steps(n, 20);
    sub_set("SUB1", "MANAGER", ""); /* guardctl release-manager SUB1 */
    unsigned claims = put_count(ch("SUB1", "MANAGER"), "MGR");
    steps(n, 80);
    cr_assert_eq(put_count(ch("SUB1", "MANAGER"), "MGR"), claims, "not claimed again");
    cr_assert_neq(log_find(0, "SUB1: released by an operator: not claimed again until "
                              "set_managed"), -1);
    cr_assert_str_eq(node_usermsg(n), "SUB1 released by an operator");
    cr_assert_str_eq(sub_get("SUB2", "MANAGER"), "MGR");
    grd_set_managed(g);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "MGR");
    step(n);
    cr_assert_str_eq(node_usermsg(n), "");
}

Test(manage, a_lapse_after_a_freeze_or_a_restart_is_claimed_again)
{
    declare_two();
    step(n);
    grd_set_managed(g);
    steps(n, 20);
    /* Frozen for longer than the lease: the subordinate let the claim lapse. */
    advance(NODE_CLAIM_LEASE + 1);
    sub_set("SUB1", "MANAGER", "");
    step(n);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "MGR", "renewed, not taken for a release");
    /* Restarted: disconnected, then back with no manager. */
    chan_disconnect(ch("SUB2", "MANAGER"));
    step(n);
    cr_assert_neq(log_find(0, "SUB2: disconnected"), -1);
    char text[128];
    grd_sub_faults(g, text, sizeof(text));
    cr_assert_str_eq(text, "SUB2 disconnected");
    sub_set("SUB2", "MANAGER", "");
    steps(n, 17);
    cr_assert_neq(log_find(0, "SUB2: connected"), -1);
    cr_assert_str_eq(sub_get("SUB2", "MANAGER"), "MGR");
    /* Restarted in less than a cycle (an in-process node removed and added
     * again): the host says the channel was lost, and that is enough. */
    node_chan_connection(n, ch("SUB1", "MANAGER"), false);
    sub_set("SUB1", "MANAGER", "");
    steps(n, 17);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "MGR");
    cr_assert_eq(log_find_sub(0, "released by an operator"), -1);
}

Test(manage, stop_and_free_release_the_claims_held)
{
    declare_two();
    sub_held_by("SUB2", "OTHER");
    step(n);
    grd_set_managed(g);
    steps(n, 4);
    cr_assert_eq(node_set_op(n, NODE_OP_STOP), NODE_OK);
    step(n);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "", "released at once");
    cr_assert_str_eq(sub_get("SUB2", "MANAGER"), "OTHER", "another's claim is left alone");
    cr_assert_neq(log_find(0, "SUB1: released"), -1);
    unsigned claims = put_count(ch("SUB1", "MANAGER"), "MGR");
    steps(n, 40);
    cr_assert_eq(put_count(ch("SUB1", "MANAGER"), "MGR"), claims, "a stopped node renews nothing");
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    grd_set_managed(g);
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "MGR");
    step(n);
    node_free(n);
    n = NULL;
    cr_assert_str_eq(sub_get("SUB1", "MANAGER"), "", "removal releases too");
}

/* ---- requests ---- */

Test(manage, requests_arrive_and_complete)
{
    declare_two();
    step(n);
    cr_assert_eq(grd_sub_request(g, "SUB1", "ALIGNED"), GRD_OK);
    cr_assert_eq(grd_sub_request(g, "SUB2", "ALIGNED"), GRD_OK);
    cr_assert_eq(grd_sub_request(g, "NOPE", "ALIGNED"), GRD_EBADCHAN);
    cr_assert_eq(grd_sub_request(g, "SUB1", "bad state!"), GRD_EBADCHAN);
    cr_assert_str_eq(sub_get("SUB1", "REQUEST"), "ALIGNED");
    cr_assert_neq(log_find(0, "SUB1: REQUEST => ALIGNED"), -1);
    step(n);
    cr_assert(!grd_arrived(g));
    sub_arrive("SUB1");
    sub_set("SUB2", "STATE", "ALIGNED");
    sub_set("SUB2", "STATUS", "RUN");
    step(n);
    cr_assert(grd_arrived(g), "both at ALIGNED");
    cr_assert(!grd_completed(g), "SUB2's state has not completed");
    sub_set("SUB2", "STATUS", "DONE");
    step(n);
    cr_assert(grd_completed(g));
    cr_assert_eq(put_count(ch("SUB1", "REQUEST"), NULL), 1);
    grd_sub_request(g, "SUB1", "ALIGNED");
    cr_assert_eq(put_count(ch("SUB1", "REQUEST"), NULL), 1, "already its request: not written");
}

Test(manage, a_request_while_disconnected_is_sent_on_connection)
{
    declare_two();
    chan_disconnect(ch("SUB1", "STATE"));
    step(n);
    cr_assert_eq(grd_sub_request(g, "SUB1", "DAMPED"), GRD_OK);
    cr_assert_eq(put_count(ch("SUB1", "REQUEST"), NULL), 0);
    cr_assert(!grd_arrived(g));
    sub_set("SUB1", "STATE", "SAFE");
    step(n);
    cr_assert_str_eq(sub_get("SUB1", "REQUEST"), "DAMPED");
}

Test(manage, someone_elses_request_or_mode_is_noticed_and_named)
{
    declare_two();
    step(n);
    grd_set_managed(g);
    grd_sub_request(g, "SUB1", "ALIGNED");
    steps(n, 4);
    sub_arrive("SUB1");
    steps(n, 4);
    cr_assert_str_eq(node_usermsg(n), "");
    sub_set("SUB1", "REQUEST", "DAMPED");
    sub_set("SUB1", "CHANGED_BY", "ops@ctrl3");
    steps(n, 3);
    cr_assert_str_eq(node_usermsg(n), "SUB1 request changed by ops@ctrl3");
    cr_assert_eq(log_count("SUB1: REQUEST changed to DAMPED by ops@ctrl3 (this manager "
                           "requested ALIGNED)"), 1);
    cr_assert_str_eq(sub_get("SUB1", "REQUEST"), "DAMPED", "the manager does not fight");
    /* Its code asking for the same again does not overwrite the operator's... */
    cr_assert_eq(grd_sub_request(g, "SUB1", "ALIGNED"), GRD_EBUSY);
    cr_assert_str_eq(sub_get("SUB1", "REQUEST"), "DAMPED");
    run_script = notify_every_cycle; /* and the change is shown above the state code's */
    step(n);
    cr_assert_str_eq(node_usermsg(n), "SUB1 request changed by ops@ctrl3");
    run_script = NULL;
    /* ...a deliberate revive does. */
    cr_assert_eq(grd_revive(g, "SUB1"), 1);
    cr_assert_str_eq(sub_get("SUB1", "REQUEST"), "ALIGNED");
    step(n);
    advance(NODE_NOTICE_MIN); /* a notification is shown 1 s at least */
    step(n);
    cr_assert_str_eq(node_usermsg(n), "");
    sub_set("SUB2", "MODE", "MANUAL");
    sub_set("SUB2", "CHANGED_BY", "ops@ctrl3");
    step(n);
    cr_assert_str_eq(node_usermsg(n), "SUB2 mode changed by ops@ctrl3");
    cr_assert_neq(log_find(0, "SUB2: MODE changed to MANUAL by ops@ctrl3"), -1);
}

Test(manage, a_request_not_seen_after_settling_counts_as_changed)
{
    declare_two();
    step(n);
    grd_sub_request(g, "SUB1", "ALIGNED");
    sub_set("SUB1", "REQUEST", "SAFE"); /* overwritten before the manager read it back */
    steps(n, 16);
    cr_assert_str_eq(node_usermsg(n), "");
    steps(n, 24);
    cr_assert_str_eq(node_usermsg(n), "SUB1 request changed by someone else");
}

Test(manage, stalled_subordinates_are_revived_with_the_managers_request)
{
    declare_two();
    step(n);
    grd_sub_request(g, "SUB1", "ALIGNED");
    sub_arrive("SUB1");
    steps(n, 40);
    sub_set("SUB1", "STATE", "TRIPPED");
    sub_set("SUB1", "STALLED", "True");
    step(n);
    cr_assert(grd_sub_stalled(g, "SUB1") && !grd_sub_stalled(g, "SUB2"));
    cr_assert_eq(grd_revive(g, NULL), 1);
    cr_assert_eq(put_count(ch("SUB1", "REQUEST"), "ALIGNED"), 2);
    steps(n, 40);
    cr_assert_eq(grd_revive(g, NULL), 0, "revived once a stall, however long it is shown");
    sub_set("SUB1", "STALLED", "False");
    step(n);
    sub_set("SUB1", "STALLED", "True"); /* a stall of its own */
    step(n);
    cr_assert_eq(grd_revive(g, NULL), 1);
    cr_assert_eq(grd_revive(g, "SUB2"), 1, "by name: its own request when the manager made none");
    cr_assert_str_eq(sub_get("SUB2", "REQUEST"), "SAFE");
    cr_assert_eq(grd_revive(g, "NOPE"), GRD_EBADCHAN);
    cr_assert_neq(log_find(0, "SUB1: revive (ALIGNED)"), -1);
}

/* ---- faults and counts ---- */

Test(manage, faults_say_what_is_wrong_and_count_in_subnodes_not_ok)
{
    declare_two();
    step(n);
    char text[256];
    cr_assert_eq(grd_sub_faults(g, text, sizeof(text)), 0);
    cr_assert_str_eq(text, "");
    struct {
        const char *suffix, *bad, *good, *fault;
    } cases[] = {
        {"OK", "False", "True", "SUB1 not OK"},
        {"ERROR", "True", "False", "SUB1 in ERROR"},
        {"CONNECT", "ERROR", "OK", "SUB1 CONNECT ERROR"},
        {"STALLED", "True", "False", "SUB1 stalled in SAFE"},
        {"SPM_CHANGED", "2", "0", "SUB1 SPM changed (2)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sub_set("SUB1", cases[i].suffix, cases[i].bad);
        step(n);
        unsigned not_ok;
        cr_assert_eq(grd_sub_faults(g, text, sizeof(text)), 1, "%s", cases[i].suffix);
        cr_assert_str_eq(text, cases[i].fault);
        node_subnodes(n, &not_ok);
        cr_assert_eq(not_ok, 1);
        sub_set("SUB1", cases[i].suffix, cases[i].good);
    }
    sub_set("SUB1", "NOTIFICATION", "True");
    sub_set("SUB1", "USERMSG", "SPM: 1 changed");
    sub_set("SUB2", "OK", "False");
    step(n);
    cr_assert_eq(grd_sub_faults(g, text, sizeof(text)), 2);
    cr_assert_str_eq(text, "SUB1: SPM: 1 changed, SUB2 not OK");
    cr_assert_eq(grd_sub_faults(g, text, 8), 2, "cut, still counted");
    cr_assert_str_eq(text, "SUB1: S");
    uint64_t gen = node_generation(n);
    sub_set("SUB2", "OK", "True");
    step(n);
    cr_assert_gt(node_generation(n), gen, "SUBNODES_NOT_OK is shown");
}

/* ---- writes refused later (over CA) ---- */

Test(manage, writes_refused_later_claim_request_and_lost)
{
    declare_two();
    step(n);
    grd_set_managed(g);
    grd_sub_request(g, "SUB1", "BOGUS");
    node_write_failed(n, ch("SUB2", "MANAGER"), false, "X1:GRD-SUB2_MANAGER => MGR: refused");
    cr_assert_eq(node_error(n), NODE_ERROR_NONE, "a refused claim is not an error");
    cr_assert_neq(log_find(0, "SUB2: claim refused: X1:GRD-SUB2_MANAGER => MGR: refused"), -1);
    step(n);
    node_write_failed(n, ch("SUB2", "MODE"), true, "lost");
    steps(n, 2);
    cr_assert_eq(put_count(ch("SUB2", "MODE"), "MANAGED"), 2, "a write lost is made again");
    node_write_failed(n, ch("SUB1", "REQUEST"), false, "X1:GRD-SUB1_REQUEST => BOGUS: failed");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE, "a refused request is the manager's error");
    cr_assert_str_eq(node_error_message(n),
                     "SUB1 refused the request BOGUS: X1:GRD-SUB1_REQUEST => BOGUS: failed");
    node_write_failed(n, "X1:PLANT", false, "X1:PLANT => 1: no");
    cr_assert_neq(log_find(0, "ERROR: ezca: X1:PLANT => 1: no"), -1, "other channels as before");
}
