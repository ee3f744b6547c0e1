/* test_ramp.c — ramps, switch bits and reads with a default (ramp.c, chan.c),
 * seen from state code and from the engine stepping a node on the fake host.
 *
 * The system: INIT runs `script` as its main (once) and holds; WAIT ramps
 * H1:GAIN to 2 over 1 s in its main and is done when the ramp is; OTHER does
 * nothing. Tests also call grd_* between steps, as state code outside a
 * state method would (the log prefix is then "[STATE] ").
 */
#include <math.h>

#include "tests/node/fake_host.h"

static void (*script)(grd_node *g);

static grd_ret s_main(grd_node *g)
{
    if (script)
        script(g);
    return GRD_CONTINUE;
}

static grd_ret wait_main(grd_node *g)
{
    cr_assert_eq(grd_ramp(g, "H1:GAIN", 2, 1), GRD_OK);
    return GRD_CONTINUE;
}

static grd_ret wait_run(grd_node *g) { return grd_ramping(g, "H1:GAIN") ? GRD_CONTINUE : GRD_DONE; }

static const grd_system ramp_sys = {
    .api_version = GRD_API_VERSION, .name = "ramp",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .goto_ = true, .main = s_main),
                         GRD_STATE("WAIT", 1, .request = true, .goto_ = true, .main = wait_main,
                                   .run = wait_run),
                         GRD_STATE("OTHER", 2, .request = true, .goto_ = true)),
};

static node_system *sys;
static node *n;
static node_host host;
static char err[512];
#define G ((grd_node *)n)

static void setup(void)
{
    host = fake_host();
    sys = node_system_wrap(&ramp_sys, err, sizeof(err));
    cr_assert(sys, "%s", err);
    chan_set("H1:GAIN", 0);
}

static void teardown(void)
{
    node_free(n);
    node_system_unref(sys);
    fake_free();
}

TestSuite(ramp, .init = setup, .fini = teardown);
TestSuite(switches, .init = setup, .fini = teardown);
TestSuite(read_default, .init = setup, .fini = teardown);

/* A node in INIT, its main (script) run. */
static void start(void (*fn)(grd_node *))
{
    script = fn;
    n = node_new("RAMP", "H1", sys, NULL, 0, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
    step(n);
    script = NULL; /* once: INIT entered again (STOP, recovery) does nothing */
}

static void value_is(const char *chan, double want)
{
    cr_assert_float_eq(fake_chan(chan)->value, want, 1e-12, "%s is %g, expected %g", chan,
                       fake_chan(chan)->value, want);
}

/* ---- ramps ---- */

static void s_ramp_half_second(grd_node *g)
{
    cr_assert_eq(grd_ramp(g, "H1:GAIN", 1, 0.5), GRD_OK);
    cr_assert(grd_ramping(g, "H1:GAIN"));
    cr_assert_eq(put_count("H1:GAIN", NULL), 0, "the first step is the engine's");
}

Test(ramp, steps_linearly_each_cycle_and_ends_on_the_target)
{
    start(s_ramp_half_second);
    assert_log_seq(0, "[INIT.main] ezca: H1:GAIN => 1 (ramp 0.5 s from 0)");
    for (unsigned i = 1; i <= 8; i++) {
        step(n);
        cr_assert_eq(put_count("H1:GAIN", NULL), i);
        value_is("H1:GAIN", i / 8.0); /* 1/16 s of 1/2 s a cycle */
    }
    cr_assert_eq(put_value("H1:GAIN"), 1.0, "the target exactly");
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    cr_assert_eq(log_count("[INIT] ezca: H1:GAIN => 1 (ramp done)"), 1);
    cr_assert_eq(log_find_sub(0, "=> 0.5"), -1, "no line per step");
    steps(n, 4);
    cr_assert_eq(put_count("H1:GAIN", NULL), 8, "nothing after the end");
}

Test(ramp, the_state_waits_until_the_ramp_is_done)
{
    start(NULL);
    cr_assert_eq(node_request(n, "WAIT"), NODE_OK);
    steps(n, 2); /* the request, then WAIT's main */
    cr_assert_str_eq(node_state(n)->name, "WAIT");
    steps(n, 8);
    cr_assert_eq(node_status(n), NODE_STATUS_RUN, "half way: still waiting");
    value_is("H1:GAIN", 1);
    steps(n, 8);
    value_is("H1:GAIN", 2);
    cr_assert_eq(node_status(n), NODE_STATUS_DONE, "done in the cycle that wrote the target");
    assert_log_seq(0, "[WAIT.main] ezca: H1:GAIN => 2 (ramp 1 s from 0)",
                   "[WAIT] ezca: H1:GAIN => 2 (ramp done)");
}

Test(ramp, a_ramp_goes_on_when_the_state_is_left)
{
    start(s_ramp_half_second);
    cr_assert_eq(node_request(n, "OTHER"), NODE_OK);
    steps(n, 3);
    cr_assert_str_eq(node_state(n)->name, "OTHER");
    cr_assert(grd_ramping(G, "H1:GAIN"));
    steps(n, 5);
    value_is("H1:GAIN", 1);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
}

Test(ramp, a_reload_that_keeps_the_state_keeps_the_ramps)
{
    start(s_ramp_half_second);
    steps(n, 2);
    cr_assert_eq(node_reload(n, sys, err, sizeof(err)), NODE_OK, "%s", err);
    cr_assert(grd_ramping(G, "H1:GAIN"));
    steps(n, 6);
    value_is("H1:GAIN", 1);
    cr_assert_neq(log_find(0, "[INIT] ezca: H1:GAIN => 1 (ramp done)"), -1);
}

Test(ramp, a_second_ramp_retargets_from_where_it_is)
{
    start(s_ramp_half_second);
    steps(n, 4);
    value_is("H1:GAIN", 0.5);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", -0.5, 0.25), GRD_OK);
    cr_assert_neq(log_find(0, "[INIT] ezca: H1:GAIN => -0.5 (ramp 0.25 s from 0.5)"), -1);
    step(n);
    value_is("H1:GAIN", 0.25);
    steps(n, 3);
    value_is("H1:GAIN", -0.5);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    cr_assert_eq(log_count("[INIT] ezca: H1:GAIN => -0.5 (ramp done)"), 1, "one ramp ended");
}

Test(ramp, a_write_cancels_the_ramp)
{
    start(s_ramp_half_second);
    steps(n, 2);
    cr_assert_eq(grd_put(G, "H1:GAIN", 5), GRD_OK);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    assert_log_seq(0, "[INIT] ezca: H1:GAIN => 0.25 (ramp cancelled by a write)",
                   "[INIT] ezca: H1:GAIN => 5");
    steps(n, 8);
    value_is("H1:GAIN", 5);
    cr_assert_eq(put_count("H1:GAIN", NULL), 3);
}

Test(ramp, zero_seconds_writes_at_once)
{
    start(NULL);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", 3, 0), GRD_OK);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    value_is("H1:GAIN", 3);
    cr_assert_neq(log_find(0, "[INIT] ezca: H1:GAIN => 3"), -1);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", 4, NAN), GRD_OK);
    value_is("H1:GAIN", 4);
}

Test(ramp, pause_freezes_and_exec_resumes)
{
    start(s_ramp_half_second);
    steps(n, 2);
    value_is("H1:GAIN", 0.25);
    cr_assert_eq(node_set_op(n, NODE_OP_PAUSE), NODE_OK);
    steps(n, 10);
    cr_assert_eq(put_count("H1:GAIN", NULL), 2, "no writes while paused");
    cr_assert(grd_ramping(G, "H1:GAIN"));
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    step(n);
    value_is("H1:GAIN", 0.375); /* from where it was: the paused time does not count */
    steps(n, 5);
    value_is("H1:GAIN", 1);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
}

Test(ramp, stop_abandons_where_it_is)
{
    start(s_ramp_half_second);
    steps(n, 2);
    cr_assert_eq(node_set_op(n, NODE_OP_STOP), NODE_OK);
    step(n);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    cr_assert_neq(log_find(0, "[INIT] ezca: H1:GAIN => 0.25 (ramp abandoned: STOP)"), -1);
    cr_assert_eq(node_set_op(n, NODE_OP_EXEC), NODE_OK);
    steps(n, 10);
    value_is("H1:GAIN", 0.25);
    cr_assert_eq(put_count("H1:GAIN", NULL), 2);
}

Test(ramp, error_abandons_and_a_fresh_start_too)
{
    start(s_ramp_half_second);
    step(n);
    node_fail(n, "boom");
    step(n);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    cr_assert_neq(log_find_sub(0, "ezca: H1:GAIN => 0.125 (ramp abandoned: ERROR)"), -1);
    cr_assert_eq(put_count("H1:GAIN", NULL), 1);

    cr_assert_eq(node_request(n, "INIT"), NODE_OK); /* recovery */
    steps(n, 2);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", 1, 1), GRD_OK);
    cr_assert_eq(node_start_at(n, "INIT", NULL), NODE_OK);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    cr_assert_neq(log_find_sub(0, "(ramp abandoned: INIT)"), -1);
}

Test(ramp, a_step_the_plant_refuses_ends_the_ramp_in_error)
{
    start(s_ramp_half_second);
    chan_set("H1:OTHER", 0);
    cr_assert_eq(grd_ramp(G, "H1:OTHER", 1, 1), GRD_OK);
    snprintf(fake_chan("H1:GAIN")->refuse, 64, "Write access denied");
    step(n);
    cr_assert_not(grd_ramping(G, "H1:GAIN"));
    cr_assert_not(grd_ramping(G, "H1:OTHER"), "the node is in ERROR: every ramp ends");
    cr_assert_eq(put_count("H1:OTHER", NULL), 0);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert(strstr(node_error_message(n), "H1:GAIN"), "%s", node_error_message(n));
    cr_assert_neq(log_find_sub(0, "(ramp abandoned: the write failed)"), -1);
}

static void s_too_many(grd_node *g)
{
    char name[32];
    for (int i = 0; i < 32; i++) {
        snprintf(name, sizeof(name), "H1:R%d", i);
        chan_set(name, 0);
        cr_assert_eq(grd_ramp(g, name, 1, 10), GRD_OK);
    }
    chan_set("H1:R32", 0);
    cr_assert_eq(grd_ramp(g, "H1:R32", 1, 10), GRD_EBUSY);
    cr_assert_not(grd_ramping(g, "H1:R32"));
    cr_assert_eq(grd_ramp(g, "H1:R5", 2, 10), GRD_OK, "a retarget takes no new slot");
}

Test(ramp, more_than_32_at_once_is_an_error)
{
    start(s_too_many);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert(strstr(node_error_message(n), "more than 32 ramps running (starting H1:R32)"), "%s",
              node_error_message(n));
}

Test(ramp, arguments_are_checked)
{
    start(NULL);
    cr_assert_eq(grd_ramp(NULL, "H1:GAIN", 1, 1), GRD_EINVAL);
    cr_assert_eq(grd_ramp(G, NULL, 1, 1), GRD_EBADCHAN);
    cr_assert_eq(grd_ramp(G, "", 1, 1), GRD_EBADCHAN);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", NAN, 1), GRD_ETYPE);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", INFINITY, 1), GRD_ETYPE);
    cr_assert_eq(grd_ramp(G, "H1:GAIN", 1, INFINITY), GRD_ETYPE);
    cr_assert_not(grd_ramping(NULL, "H1:GAIN"));
    cr_assert_not(grd_ramping(G, NULL));
    char longname[400];
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    cr_assert_eq(grd_ramp(G, longname, 1, 1), GRD_EBADCHAN);
    cr_assert_not(grd_ramping(G, longname));
    cr_assert_eq(put_count("H1:GAIN", NULL), 0);
}

Test(ramp, a_channel_without_a_value_gets_no_ramp)
{
    start(NULL);
    cr_assert_eq(grd_ramp(G, "H1:NOWHERE", 1, 1), GRD_ENOTCONN);
    cr_assert_not(grd_ramping(G, "H1:NOWHERE"));
    chan_set_str("H1:TEXT", "abc");
    fake_chan("H1:TEXT")->value = NAN;
    cr_assert_eq(grd_ramp(G, "H1:TEXT", 1, 1), GRD_ETYPE);
    steps(n, 4);
    cr_assert_eq(put_count("H1:NOWHERE", NULL), 0);
}

/* ---- switch bits ---- */

Test(switches, bits_are_set_and_cleared_and_only_changes_written)
{
    start(NULL);
    chan_set("H1:SW1", 0x4);
    cr_assert_eq(grd_switch(G, "H1:SW1", 0x10, true), GRD_OK);
    value_is("H1:SW1", 0x14);
    cr_assert_neq(log_find(0, "[INIT] ezca: H1:SW1 => ON: 0x0010"), -1);
    cr_assert_eq(grd_switch(G, "H1:SW1", 0x10, true), GRD_OK, "already on");
    cr_assert_eq(put_count("H1:SW1", NULL), 1, "no write when nothing changes");
    cr_assert_eq(grd_switch(G, "H1:SW1", 0x30, false), GRD_OK);
    value_is("H1:SW1", 0x4);
    cr_assert_neq(log_find(0, "[INIT] ezca: H1:SW1 => OFF: 0x0010"), -1, "the bits changed");
    cr_assert_eq(grd_switch(G, "H1:SW1", 0x8, false), GRD_OK);
    cr_assert_eq(put_count("H1:SW1", NULL), 2);
}

Test(switches, bad_values_and_arguments)
{
    start(NULL);
    chan_set("H1:SW1", 2.5);
    cr_assert_eq(grd_switch(G, "H1:SW1", 1, true), GRD_ETYPE);
    chan_set("H1:SW1", -1);
    cr_assert_eq(grd_switch(G, "H1:SW1", 1, true), GRD_ETYPE);
    cr_assert_eq(grd_switch(G, "H1:NOWHERE", 1, true), GRD_ENOTCONN);
    cr_assert_eq(grd_switch(G, NULL, 1, true), GRD_EBADCHAN);
    cr_assert_eq(grd_switch(NULL, "H1:SW1", 1, true), GRD_EINVAL);
    if (sizeof(unsigned long) > 4)
        cr_assert_eq(grd_switch(G, "H1:SW1", (unsigned long)0xffffffff + 1, true), GRD_EINVAL);
    cr_assert_eq(put_count("H1:SW1", NULL), 0);
}

Test(switches, a_switch_write_cancels_a_ramp)
{
    start(NULL);
    chan_set("H1:SW1", 0);
    cr_assert_eq(grd_ramp(G, "H1:SW1", 8, 1), GRD_OK);
    steps(n, 2);
    cr_assert_eq(grd_switch(G, "H1:SW1", 0x100, true), GRD_OK);
    cr_assert_not(grd_ramping(G, "H1:SW1"));
    value_is("H1:SW1", 0x101);
}

/* ---- reads with a default ---- */

static void s_optional(grd_node *g)
{
    cr_assert_float_eq(grd_read_double(g, "H1:OPTIONAL", 7.5), 7.5, 1e-12);
    cr_assert_eq(grd_read_long(g, "H1:OPTIONAL", -3), -3);
    cr_assert_float_eq(grd_read_double(g, "H1:GAIN", 7.5), 0, 1e-12, "connected: its value");
}

Test(read_default, a_channel_not_connected_gives_the_fallback_and_no_connect_error)
{
    start(s_optional);
    steps(n, 2);
    cr_assert(node_connected(n));
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    chan_set("H1:OPTIONAL", 2.6);
    cr_assert_float_eq(grd_read_double(G, "H1:OPTIONAL", 7.5), 2.6, 1e-12);
    cr_assert_eq(grd_read_long(G, "H1:OPTIONAL", -3), 3);
    fake_chan("H1:OPTIONAL")->value = NAN;
    cr_assert_eq(grd_read_long(G, "H1:OPTIONAL", -3), -3, "no long: the fallback");
    cr_assert_float_eq(grd_read_double(NULL, "H1:OPTIONAL", 1.5), 1.5, 1e-12);
    cr_assert_float_eq(grd_read_double(G, NULL, 1.5), 1.5, 1e-12);
}

/* The host says which channels are down (as the plant does): an optional
 * channel down leaves CONNECT alone until something reads it strictly. */
static bool host_up;
static void *up_open(void *arg, node *m, const char *chan, bool *up, char *why, size_t len)
{
    (void)arg, (void)m, (void)why, (void)len;
    *up = host_up && strcmp(chan, "H1:OPTIONAL") != 0;
    return strdup(chan);
}
static void up_close(void *arg, node *m, void *handle) { (void)arg, (void)m, free(handle); }

static void s_optional_then_strict(grd_node *g)
{
    grd_read_double(g, grd_chan(g, "OPTIONAL"), 0);
}

Test(read_default, an_optional_channel_down_is_no_connect_error_until_read_strictly)
{
    host_up = true;
    host.open = up_open;
    host.close = up_close;
    start(s_optional_then_strict);
    steps(n, 2);
    cr_assert(node_connected(n), "only read with a default");
    double v;
    cr_assert_eq(grd_get_double(G, "H1:OPTIONAL", &v), GRD_ENOTCONN);
    cr_assert_not(node_connected(n), "now required");
    node_chan_connection(n, "H1:OPTIONAL", true);
    cr_assert(node_connected(n));
}
