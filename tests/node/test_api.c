/* test_api.c — the grd_* functions seen from state code, the log line format
 * and ring, and node creation.
 *
 * The system under test runs `script` (set by each test) as INIT's main, and
 * `run_script` as INIT's run; a test steps the node once or twice.
 */
#include <math.h>
#include <regex.h>

#include "tests/node/fake_host.h"

static void (*script)(grd_node *g);
static void (*run_script)(grd_node *g);
static void (*check_script)(grd_node *g);
static void (*init_script)(grd_node *g);
static unsigned finis;

static grd_ret s_main(grd_node *g)
{
    if (script)
        script(g);
    return GRD_CONTINUE;
}

static grd_ret s_run(grd_node *g)
{
    if (run_script)
        run_script(g);
    return GRD_CONTINUE;
}

static grd_ret s_check(grd_node *g)
{
    if (check_script)
        check_script(g);
    return GRD_CONTINUE;
}

static void s_init(grd_node *g)
{
    if (init_script)
        init_script(g);
}

static void s_fini(grd_node *g)
{
    (void)g;
    finis++;
}

struct priv {
    int counter;
    char bytes[60];
};

static const grd_system api_sys = {
    .api_version = GRD_API_VERSION, .name = "api",
    .priv_size = sizeof(struct priv),
    .node_init = s_init, .node_fini = s_fini,
    .states = GRD_STATES(GRD_STATE("INIT", 0, .main = s_main, .run = s_run,
                                   .checks = GRD_CHECKS(s_check)),
                         GRD_STATE("OTHER", 1)),
    .edges = GRD_EDGES({"INIT", "OTHER"}),
};

static node_system *sys;
static node *n;
static node_host host;
static char err[512];

static node *make(const char *name, const char *const *args, unsigned n_args)
{
    return node_new(name, "H1", sys, args, n_args, &host, err, sizeof(err));
}

static void setup(void)
{
    host = fake_host();
    sys = node_system_wrap(&api_sys, err, sizeof(err));
    cr_assert(sys, "%s", err);
}

static void teardown(void)
{
    node_free(n);
    node_system_unref(sys);
    fake_free();
}

TestSuite(api, .init = setup, .fini = teardown);
TestSuite(log, .init = setup, .fini = teardown);
TestSuite(create, .init = setup, .fini = teardown);

/* Run fn as INIT's main in a fresh node. */
static void run_main(void (*fn)(grd_node *))
{
    script = fn;
    static const char *const args[] = {"optic=ETMX", "gain=2.5", "bad=2.5x", "empty="};
    n = make("API", args, 4);
    cr_assert(n, "%s", err);
    step(n);
}

/* ---- the node ---- */

static void s_names(grd_node *g)
{
    cr_assert_str_eq(grd_name(g), "API");
    cr_assert_str_eq(grd_ifo(g), "H1");
    cr_assert_str_eq(grd_state_name(g), "INIT");
    cr_assert_str_eq(grd_request(g), "INIT");
    cr_assert_str_eq(grd_arg(g, "optic"), "ETMX");
    cr_assert_str_eq(grd_arg(g, "empty"), "");
    cr_assert_null(grd_arg(g, "nope"));
    cr_assert_null(grd_arg(g, NULL));
    cr_assert_float_eq(grd_arg_double(g, "gain", 1), 2.5, 1e-12);
    cr_assert_float_eq(grd_arg_double(g, "bad", 7), 7, 1e-12, "not a number: fallback");
    cr_assert_float_eq(grd_arg_double(g, "empty", 7), 7, 1e-12);
    cr_assert_float_eq(grd_arg_double(g, "nope", 7), 7, 1e-12);
    struct priv *p = grd_priv(g);
    cr_assert(p);
    cr_assert_eq(p->counter, 0, "zeroed");
    for (size_t i = 0; i < sizeof(p->bytes); i++)
        cr_assert_eq(p->bytes[i], 0);
    p->counter = 41;
    cr_assert_float_eq(grd_state_time(g), CYCLE, 1e-9, "INIT was entered when the node started");
}

static void s_priv_kept(grd_node *g)
{
    struct priv *p = grd_priv(g);
    cr_assert_eq(p->counter, 41, "private data lives across cycles");
    cr_assert_float_eq(grd_state_time(g), 2 * CYCLE, 1e-9);
    p->counter++;
}

Test(api, node_information_arguments_and_private_data)
{
    run_script = s_priv_kept;
    run_main(s_names);
    step(n);
    cr_assert_eq(((struct priv *)grd_priv((grd_node *)n))->counter, 42);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
}

/* ---- NULL and garbage from state code ---- */

static void s_nulls(grd_node *g)
{
    double d = 1;
    long l = 1;
    char buf[8] = "x";
    bool ok = true;
    const char *st = "x";
    cr_assert_eq(grd_get_double(g, NULL, &d), GRD_EBADCHAN);
    cr_assert_eq(grd_get_double(g, "", &d), GRD_EBADCHAN);
    cr_assert_eq(grd_get_double(g, "H1:X", NULL), GRD_EINVAL);
    cr_assert_eq(grd_get_long(g, NULL, &l), GRD_EBADCHAN);
    cr_assert_eq(grd_get_long(g, "H1:X", NULL), GRD_EINVAL);
    cr_assert_eq(grd_get_string(g, NULL, buf, sizeof(buf)), GRD_EBADCHAN);
    cr_assert_str_eq(buf, "");
    cr_assert_eq(grd_get_string(g, "H1:X", NULL, 8), GRD_EINVAL);
    cr_assert_eq(grd_get_string(g, "H1:X", buf, 0), GRD_EINVAL);
    cr_assert_eq(grd_put(g, NULL, 1), GRD_EBADCHAN);
    cr_assert_eq(grd_put_string(g, "H1:X", NULL), GRD_EINVAL);
    cr_assert_eq(grd_put_string(g, NULL, "x"), GRD_EBADCHAN);
    cr_assert_null(grd_chan(g, NULL));
    cr_assert_eq(grd_node_ok(g, NULL, &ok), GRD_EBADCHAN);
    cr_assert_eq(grd_node_ok(g, "API", NULL), GRD_EINVAL);
    cr_assert_eq(grd_node_state(g, NULL, &st), GRD_EBADCHAN);
    cr_assert_eq(grd_node_state(g, "API", NULL), GRD_EINVAL);
    cr_assert(grd_timer_done(g, NULL));
    grd_notify(g, NULL);
    grd_log(g, NULL);
    char huge[5000];
    memset(huge, 'A', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    cr_assert_eq(grd_get_double(g, huge, &d), GRD_EBADCHAN, "over-long channel name");
    cr_assert_eq(grd_node_ok(g, huge, &ok), GRD_EBADCHAN);
    cr_assert_null(grd_arg(g, huge));
    grd_log(g, "%s", huge);
    grd_notify(g, "%s", huge);
    grd_timer_start(g, huge, 1);
    cr_assert_eq(grd_jump(g, huge), GRD_ERROR);
}

Test(api, null_and_over_long_arguments_do_not_crash)
{
    run_main(s_nulls);
    /* the jump to the huge name is the error reported, truncated */
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    int i = log_find_sub(0, "ERROR in [INIT.main]: jump to unknown state 'AAAA");
    cr_assert_neq(i, -1);
    cr_assert(strstr(fake.lines[i], "AAA...'"), "%s", fake.lines[i]);
    for (unsigned k = 0; k < fake.n_lines; k++)
        cr_assert_lt(strlen(fake.lines[k]), 1300, "log lines are bounded");
    cr_assert_eq(strlen(node_usermsg(n)), 39);
    cr_assert_neq(log_find_sub(0, "timer['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'] = 1"), -1,
                  "timer names are cut to 39 characters");
}

static void s_null_jump(grd_node *g) { cr_assert_eq(grd_jump(g, NULL), GRD_ERROR); }

Test(api, jump_to_null_is_an_error)
{
    run_main(s_null_jump);
    cr_assert_neq(log_find(0, "ERROR in [INIT.main]: jump to a NULL state name"), -1);
}

static void s_null_timer(grd_node *g) { grd_timer_start(g, NULL, 1); }

Test(api, timer_without_a_name_is_an_error)
{
    run_main(s_null_timer);
    cr_assert_neq(log_find(0, "ERROR in [INIT.main]: grd_timer_start() without a name"), -1);
}

Test(api, null_or_unknown_node_is_refused)
{
    struct { unsigned zeros[64]; } garbage = {{0}};
    grd_node *bad[] = {NULL, (grd_node *)&garbage};
    for (int i = 0; i < 2; i++) {
        grd_node *g = bad[i];
        double d;
        long l;
        char buf[8];
        bool ok;
        const char *st;
        cr_assert_eq(grd_jump(g, "INIT"), GRD_ERROR);
        cr_assert_eq(grd_error(g, "x"), GRD_ERROR);
        cr_assert_str_eq(grd_name(g), "");
        cr_assert_str_eq(grd_ifo(g), "");
        cr_assert_str_eq(grd_state_name(g), "");
        cr_assert_str_eq(grd_request(g), "");
        cr_assert_null(grd_arg(g, "x"));
        cr_assert_float_eq(grd_arg_double(g, "x", 3), 3, 0);
        cr_assert_null(grd_priv(g));
        cr_assert_float_eq(grd_state_time(g), 0, 0);
        grd_log(g, "x");
        grd_notify(g, "x");
        grd_timer_start(g, "t", 1);
        cr_assert(grd_timer_done(g, "t"));
        cr_assert_null(grd_chan(g, "X"));
        cr_assert_eq(grd_get_double(g, "H1:X", &d), GRD_EINVAL);
        cr_assert_eq(grd_get_long(g, "H1:X", &l), GRD_EINVAL);
        cr_assert_eq(grd_get_string(g, "H1:X", buf, sizeof(buf)), GRD_EINVAL);
        cr_assert_eq(grd_put(g, "H1:X", 1), GRD_EINVAL);
        cr_assert_eq(grd_put_string(g, "H1:X", "x"), GRD_EINVAL);
        cr_assert_eq(grd_node_ok(g, "X", &ok), GRD_EINVAL);
        cr_assert_eq(grd_node_state(g, "X", &st), GRD_EINVAL);
    }
    /* and the node_* side */
    node_step(NULL);
    node_free(NULL);
    cr_assert_eq(node_request(NULL, "X"), NODE_EINVAL);
    cr_assert_eq(node_reload(NULL, sys, err, sizeof(err)), NODE_EINVAL);
    cr_assert_eq(node_start_at(NULL, "INIT", NULL), NODE_EINVAL);
    cr_assert_eq(node_take_transitions(NULL, NULL, 4), 0);
    cr_assert_eq(node_log_lines(NULL, NULL, 4), 0);
    cr_assert(!node_ok(NULL) && !node_active(NULL) && !node_done(NULL));
}

/* ---- plant channels ---- */

static const char *chan1, *chan1_again, *chan2;

static void s_chan(grd_node *g)
{
    chan1 = grd_chan(g, "SUS-%s_WD_STATE", grd_arg(g, "optic"));
    chan1_again = grd_chan(g, "SUS-%s_WD_STATE", "ETMX");
    chan2 = grd_chan(g, "SUS-%s_WD_STATE", "ITMX");
    char bell[] = "BAD\aNAME";
    const char *weird = grd_chan(g, "%s", bell);
    cr_assert_str_eq(weird, "H1:BAD?NAME");
    char huge[400];
    memset(huge, 'B', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    const char *cut = grd_chan(g, "%s", huge);
    cr_assert_eq(strlen(cut), 255);
}

Test(api, grd_chan_prefixes_and_interns)
{
    run_main(s_chan);
    cr_assert_str_eq(chan1, "H1:SUS-ETMX_WD_STATE");
    cr_assert_eq(chan1, chan1_again, "the same name is the same string");
    cr_assert_str_eq(chan2, "H1:SUS-ITMX_WD_STATE");
    cr_assert_neq(chan1, chan2);
    step(n); /* still valid a cycle later */
    cr_assert_str_eq(chan1, "H1:SUS-ETMX_WD_STATE");
}

static void s_chan_many(grd_node *g)
{
    const char *first = grd_chan(g, "C%d", 0);
    for (int i = 1; i < 4096; i++)
        cr_assert(grd_chan(g, "C%d", i));
    cr_assert_null(grd_chan(g, "C%d", 4096), "bounded");
    cr_assert_null(grd_chan(g, "C%d", 4097));
    cr_assert_eq(grd_chan(g, "C%d", 0), first, "known names still work");
}

Test(api, grd_chan_is_bounded)
{
    run_main(s_chan_many);
    /* Naming more channels than the limit is an error of the node (issue 9). */
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_str_eq(node_error_message(n), "more than 4096 channels: H1:C4096 refused");
    cr_assert_neq(log_find(0, "[INIT.main] more than 4096 channel names: H1:C4096 and later ones refused"), -1);
    cr_assert_eq(log_find_sub(0, "H1:C4097"), -1, "logged once");
}

static void s_reads(grd_node *g)
{
    double d = 0;
    long l = 0;
    char buf[4];
    chan_set("H1:NUM", 2.6);
    cr_assert_eq(grd_get_double(g, "H1:NUM", &d), GRD_OK);
    cr_assert_float_eq(d, 2.6, 1e-12);
    cr_assert_eq(grd_get_long(g, "H1:NUM", &l), GRD_OK);
    cr_assert_eq(l, 3, "rounded");
    chan_set("H1:NUM", -2.6);
    cr_assert_eq(grd_get_long(g, "H1:NUM", &l), GRD_OK);
    cr_assert_eq(l, -3);
    chan_set("H1:NUM", NAN);
    cr_assert_eq(grd_get_long(g, "H1:NUM", &l), GRD_ETYPE);
    cr_assert_eq(grd_get_double(g, "H1:NUM", &d), GRD_OK);
    cr_assert(isnan(d));
    chan_set("H1:NUM", 1e30);
    cr_assert_eq(grd_get_long(g, "H1:NUM", &l), GRD_ETYPE);
    chan_set("H1:NUM", 12345);
    cr_assert_eq(grd_get_string(g, "H1:NUM", buf, sizeof(buf)), GRD_OK);
    cr_assert_str_eq(buf, "123", "truncated to the buffer");
    d = 99;
    cr_assert_eq(grd_get_double(g, "H1:MISSING", &d), GRD_ENOTCONN);
    cr_assert_float_eq(d, 99, 0, "output untouched on failure");
}

Test(api, reads_convert_and_check)
{
    run_main(s_reads);
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT, "H1:MISSING was not connected");
}

static int bad_host_get(void *arg, node *m, const char *chan, void *handle, double *num, char *str,
                        size_t len)
{
    (void)arg, (void)m, (void)chan, (void)handle, (void)num;
    if (str && len)
        memset(str, 'Z', len); /* no terminating NUL */
    return 12345;              /* not a grd_chan_status */
}

static void s_bad_host(grd_node *g)
{
    char buf[8];
    cr_assert_eq(grd_get_string(g, "H1:X", buf, sizeof(buf)), GRD_EBADCHAN);
    cr_assert_str_eq(buf, "");
    double d;
    cr_assert_eq(grd_get_double(g, "H1:X", &d), GRD_EBADCHAN);
}

Test(api, a_misbehaving_host_get_is_contained)
{
    host.get = bad_host_get;
    run_main(s_bad_host);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
}

static void s_puts(grd_node *g)
{
    cr_assert_eq(grd_put(g, "H1:SUS-ETMX_GAIN", 1.5), GRD_OK);
    cr_assert_eq(grd_put_string(g, "H1:SUS-ETMX_MODE", "ON: FM3"), GRD_OK);
}

static void s_puts_check(grd_node *g) { grd_put(g, "H1:FROM_CHECK", 0.1); }

Test(api, writes_go_to_the_host_and_are_echoed)
{
    check_script = s_puts_check;
    run_main(s_puts);
    cr_assert_float_eq(put_value("H1:SUS-ETMX_GAIN"), 1.5, 0);
    cr_assert(fake.puts[fake.n_puts - 1].is_str);
    cr_assert_str_eq(fake.puts[fake.n_puts - 1].str, "ON: FM3");
    assert_log_seq(0, "[INIT.check] ezca: H1:FROM_CHECK => 0.1",
                   "[INIT.main] ezca: H1:SUS-ETMX_GAIN => 1.5",
                   "[INIT.main] ezca: H1:SUS-ETMX_MODE => ON: FM3");
}

static void s_puts_fail(grd_node *g) { cr_assert_eq(grd_put(g, "H1:SUS-ETMX_GAIN", 1.5), GRD_ENOTCONN); }

Test(api, writes_without_a_host_put_fail_and_say_so)
{
    host.put = NULL;
    run_main(s_puts_fail);
    cr_assert_neq(log_find(0, "[INIT.main] ezca: H1:SUS-ETMX_GAIN => 1.5: not connected"), -1);
}

/* ---- other nodes ---- */

static void s_other_nodes(grd_node *g)
{
    bool ok = true;
    const char *st = NULL;
    cr_assert_eq(grd_node_ok(g, "PEER", &ok), GRD_OK);
    cr_assert(!ok);
    cr_assert_eq(grd_node_state(g, "PEER", &st), GRD_OK);
    cr_assert_str_eq(st, "INIT");
    cr_assert_eq(grd_node_ok(g, "NOBODY", &ok), GRD_EBADCHAN);
    cr_assert_eq(grd_node_state(g, "NOBODY", &st), GRD_EBADCHAN);
}

Test(api, other_nodes_through_find)
{
    node *peer = make("PEER", NULL, 0);
    cr_assert(peer);
    fake.nodes[fake.n_nodes++] = peer;
    run_main(s_other_nodes);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    node_free(peer);
}

Test(api, no_find_means_no_other_nodes)
{
    host.find = NULL;
    script = NULL;
    n = make("API", NULL, 0);
    bool ok;
    cr_assert_eq(grd_node_ok((grd_node *)n, "API", &ok), GRD_EBADCHAN);
}

/* ---- init and fini hooks ---- */

static void s_init_jump(grd_node *g) { cr_assert_eq(grd_jump(g, "OTHER"), GRD_ERROR); }

Test(api, jump_outside_state_methods_is_an_error)
{
    init_script = s_init_jump;
    n = make("API", NULL, 0);
    cr_assert(n);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_neq(log_find(0, "ERROR in [INIT.init]: grd_jump() outside main, run or check"), -1);
    step(n);
    cr_assert_str_eq(node_state(n)->name, "INIT");
}

static void s_init_log(grd_node *g)
{
    grd_log(g, "hello from init");
    grd_error(g, "bad config");
}

Test(api, init_hook_logs_and_errors)
{
    init_script = s_init_log;
    n = make("API", NULL, 0);
    assert_log_seq(0, "[INIT.init] hello from init", "ERROR in [INIT.init]: bad config");
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_eq(node_request(n, "INIT"), NODE_OK);
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE, "recovered by a request");
    node_free(n);
    n = NULL;
    cr_assert_eq(finis, 1, "node_fini on free");
}

Test(api, error_outside_state_code_is_only_logged)
{
    n = make("API", NULL, 0);
    cr_assert_eq(grd_error((grd_node *)n, "late"), GRD_ERROR);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    cr_assert_neq(log_find(0, "ERROR outside state code: late"), -1);
}

static void s_reenter(grd_node *g)
{
    node *self = (node *)g;
    cr_assert_eq(node_reload(self, sys, err, sizeof(err)), NODE_EINVAL);
    cr_assert(strstr(err, "from its own state code"), "%s", err);
    cr_assert_eq(node_start_at(self, "OTHER", NULL), NODE_EINVAL);
    node_step(self); /* ignored */
    cr_assert_eq(node_request(self, "OTHER"), NODE_OK, "requests are fine: applied next cycle");
}

Test(api, state_code_cannot_reenter_the_engine)
{
    run_main(s_reenter);
    cr_assert_str_eq(node_state(n)->name, "INIT");
    step(n);
    cr_assert_str_eq(node_state(n)->name, "OTHER");
}

/* ---- log lines ---- */

static void s_log_main(grd_node *g) { grd_log(g, "in main %d", 1); }
static void s_log_run(grd_node *g) { grd_log(g, "in run"); }
static void s_log_check(grd_node *g) { grd_log(g, "in check"); }

Test(log, state_code_lines_are_prefixed_by_state_and_method)
{
    run_script = s_log_run;
    check_script = s_log_check;
    run_main(s_log_main);
    step(n);
    assert_log_seq(0, "executing state: INIT (0)", "[INIT.check] in check", "[INIT.main] in main 1",
                   "[INIT.check] in check", "[INIT.run] in run");
}

static void s_log_ctrl(grd_node *g) { grd_log(g, "two\nlines\tand\x1b[31mred"); }

Test(log, one_message_is_one_line)
{
    run_main(s_log_ctrl);
    cr_assert_neq(log_find(0, "[INIT.main] two?lines and?[31mred"), -1);
}

Test(log, line_format)
{
    fake.wall = 1700000000.5; /* 2023-11-14 22:13:20.5 UTC */
    fake.now = FAKE_T0;
    n = make("FMT", NULL, 0);
    cr_assert(n);
    cr_assert_str_eq(fake.lines[0], "2023-11-14_22:13:20.500000Z FMT calculating path: INIT->INIT");
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z FMT [^\n]+$",
                         REG_EXTENDED), 0);
    for (unsigned i = 0; i < fake.n_lines; i++)
        cr_assert_eq(regexec(&re, fake.lines[i], 0, NULL, 0), 0, "%s", fake.lines[i]);
    regfree(&re);
    fake.wall = 1700000000.9999995; /* rounds within the second, never to 1000000 */
    script = s_log_main;
    node_step(n);
    cr_assert(strstr(fake.lines[fake.n_lines - 1], "2023-11-14_22:13:20.99999"),
              "%s", fake.lines[fake.n_lines - 1]);
    fake.wall = NAN;
    run_script = s_log_run;
    node_step(n);
    cr_assert(strncmp(fake.lines[fake.n_lines - 1], "1970-01-01_00:00:00.000000Z", 27) == 0);
}

static void s_log_many(grd_node *g)
{
    for (int i = 0; i < 300; i++)
        grd_log(g, "line %d", i);
}

Test(log, the_ring_keeps_the_last_lines_oldest_first)
{
    run_main(s_log_many);
    const char *lines[NODE_LOG_RING + 10];
    unsigned k = node_log_lines(n, lines, NODE_LOG_RING + 10);
    cr_assert_eq(k, NODE_LOG_RING);
    cr_assert_str_eq(lines[k - 1], fake.lines[fake.n_lines - 1]);
    for (unsigned i = 0; i < k; i++)
        cr_assert_str_eq(lines[i], fake.lines[fake.n_lines - k + i]);
    cr_assert(strstr(lines[k - 1], "[INIT.main] line 299"));
    k = node_log_lines(n, lines, 3);
    cr_assert_eq(k, 3);
    cr_assert(strstr(lines[0], "line 297") && strstr(lines[2], "line 299"));
}

Test(log, the_ring_works_without_a_host_log)
{
    host.log = NULL;
    run_main(s_log_main);
    const char *lines[8];
    unsigned k = node_log_lines(n, lines, 8);
    cr_assert_geq(k, 2);
    cr_assert(strstr(lines[k - 1], "API [INIT.main] in main 1"), "%s", lines[k - 1]);
    cr_assert_eq(fake.n_lines, 0);
}

/* ---- creating nodes ---- */

Test(create, names_and_arguments_are_checked)
{
    const char *dup[] = {"a=1", "a=2"};
    const char *noeq[] = {"novalue"};
    const char *nokey[] = {"=1"};
    const char *null_arg[] = {NULL};
    cr_assert_null(make("", NULL, 0));
    cr_assert(strstr(err, "bad node name"), "%s", err);
    cr_assert_null(make("BAD NAME", NULL, 0));
    cr_assert_null(make("A234567890123456789012345678901234567890123456789012345678901234", NULL, 0),
                   "64 characters");
    cr_assert_null(make(NULL, NULL, 0));
    cr_assert_null(make("N", dup, 2));
    cr_assert(strstr(err, "argument 'a' given twice"), "%s", err);
    cr_assert_null(make("N", noeq, 1));
    cr_assert(strstr(err, "argument 1 is not key=value"), "%s", err);
    cr_assert_null(make("N", nokey, 1));
    cr_assert_null(make("N", null_arg, 1));
    cr_assert_null(make("N", NULL, 2));
    cr_assert(strstr(err, "arguments missing"), "%s", err);
    cr_assert_null(node_new("N", "H1:", sys, NULL, 0, &host, err, sizeof(err)));
    cr_assert(strstr(err, "bad IFO"), "%s", err);
    cr_assert_null(node_new("N", "H1", NULL, NULL, 0, &host, err, sizeof(err)));
    cr_assert(strstr(err, "no system"), "%s", err);
    node_host noclock = host;
    noclock.now = NULL;
    cr_assert_null(node_new("N", "H1", sys, NULL, 0, &noclock, err, sizeof(err)));
    cr_assert(strstr(err, "clock"), "%s", err);
    cr_assert_null(node_new("N", "H1", sys, NULL, 0, NULL, NULL, 0), "no error buffer is fine");
    n = make("A23456789012345678901234567890123456789012345678901234567890123", NULL, 0);
    cr_assert(n, "63 characters are fine: %s", err);
    cr_assert_eq(finis, 0, "node_fini is not called for nodes never made");
}

Test(create, the_host_table_is_copied)
{
    node_host h = fake_host();
    n = node_new("COPY", "H1", sys, NULL, 0, &h, err, sizeof(err));
    memset(&h, 0, sizeof(h));
    step(n);
    cr_assert_gt(fake.n_lines, 0);
}

/* ---- channel references held through the host (host->open/close) ---- */

/* A host that hands out references: which channels are open, and news. */
static struct {
    char *open[16]; /* the handles: strdup'ed names */
    unsigned n_open, opens, closes, ignores;
    bool up; /* what open says */
} refs;

static void *ref_open(void *arg, node *m, const char *chan, bool *up, char *e, size_t elen)
{
    (void)arg, (void)m;
    if (strchr(chan, ' ')) {
        snprintf(e, elen, "'%s' is not a valid channel name", chan);
        return NULL;
    }
    cr_assert(refs.n_open < 16);
    refs.opens++;
    *up = refs.up;
    return refs.open[refs.n_open++] = strdup(chan);
}

static void ref_close(void *arg, node *m, void *handle)
{
    (void)arg, (void)m;
    refs.closes++;
    for (unsigned i = 0; i < refs.n_open; i++)
        if (refs.open[i] == handle) {
            free(refs.open[i]);
            refs.open[i] = refs.open[--refs.n_open];
            return;
        }
    cr_assert_fail("closed a handle that was not open");
}

static void ref_ignore(void *arg, node *m, void *handle)
{
    (void)arg, (void)m, (void)handle;
    refs.ignores++;
}

static bool is_open(const char *chan)
{
    for (unsigned i = 0; i < refs.n_open; i++)
        if (strcmp(refs.open[i], chan) == 0)
            return true;
    return false;
}

static void s_two_chans(grd_node *g)
{
    grd_chan(g, "A");
    grd_chan(g, "A"); /* the same name: one reference */
    double v;
    grd_get_double(g, "H1:B", &v);
}

static void s_one_chan(grd_node *g) { grd_chan(g, "A"); }

static void with_refs(bool up)
{
    memset(&refs, 0, sizeof(refs));
    refs.up = up;
    host.open = ref_open;
    host.close = ref_close;
    host.spm_ignore = ref_ignore;
    chan_set("H1:A", 1);
    chan_set("H1:B", 2);
}

Test(api, a_node_holds_one_reference_per_channel_until_it_is_freed)
{
    with_refs(true);
    run_main(s_two_chans);
    cr_assert_eq(refs.opens, 2);
    cr_assert(is_open("H1:A") && is_open("H1:B"));
    cr_assert(node_connected(n));
    node_free(n);
    n = NULL;
    cr_assert_eq(refs.closes, 2);
    cr_assert_eq(refs.n_open, 0);
}

Test(api, connect_follows_the_channels_the_host_reports)
{
    with_refs(false);
    run_main(s_two_chans);
    cr_assert_not(node_connected(n), "not yet connected");
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT);
    node_chan_connection(n, "H1:A", true);
    step(n);
    cr_assert_not(node_connected(n), "B still down");
    node_chan_connection(n, "H1:B", true);
    step(n);
    cr_assert(node_connected(n));
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    node_chan_connection(n, "H1:B", false);
    cr_assert_not(node_connected(n));
    cr_assert_neq(log_find_sub(0, "CONNECT: H1:B disconnected"), -1);
    node_chan_connection(n, "H1:NOT_MINE", false); /* ignored */
    node_chan_connection(n, "H1:B", true);
    step(n);
    cr_assert(node_connected(n));
}

Test(api, channels_down_for_long_are_named_in_the_log_once)
{
    with_refs(false);
    run_main(s_two_chans);
    steps(n, 2);
    cr_assert_eq(log_find_sub(0, "not connected: "), -1, "not within the grace");
    advance(NODE_CONNECT_GRACE);
    steps(n, 3);
    int at = log_find_sub(0, "CONNECT: ERROR: not connected: ");
    cr_assert_neq(at, -1);
    cr_assert(strstr(fake.lines[at], "H1:A") && strstr(fake.lines[at], "H1:B"), "%s", fake.lines[at]);
    cr_assert_eq(log_find_sub((unsigned)at + 1, "CONNECT: ERROR"), -1, "once");
    node_chan_connection(n, "H1:A", true);
    node_chan_connection(n, "H1:B", true);
    cr_assert_neq(log_find_sub(0, "CONNECT: OK"), -1);
}

Test(api, after_a_reload_channels_the_new_code_leaves_unused_are_released)
{
    with_refs(true);
    run_main(s_two_chans);
    cr_assert_eq(refs.n_open, 2);
    run_script = s_one_chan; /* the "new code" names only A (INIT's run, every cycle) */
    cr_assert_eq(node_reload(n, sys, err, sizeof(err)), NODE_OK, "%s", err);
    step(n);
    advance(NODE_CHAN_SWEEP);
    steps(n, 2);
    cr_assert(is_open("H1:A"), "used by the new code");
    cr_assert_not(is_open("H1:B"), "released");
    cr_assert_eq(refs.closes, 1);
    /* Used again later: opened again. */
    run_script = s_two_chans;
    step(n);
    cr_assert(is_open("H1:B"));
    cr_assert_eq(refs.opens, 3);
}

static void s_bad_name(grd_node *g) { grd_chan(g, "BAD NAME"); }

Test(api, a_channel_name_the_host_refuses_is_an_error_of_the_state)
{
    with_refs(true);
    run_main(s_bad_name);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_str_eq(node_error_message(n), "'H1:BAD NAME' is not a valid channel name");
}

static void s_ignore(grd_node *g) { cr_assert_eq(grd_spm_ignore(g, "H1:A"), GRD_OK); }

Test(api, the_set_point_monitor_counts_and_notifies)
{
    with_refs(true);
    run_main(s_ignore);
    cr_assert_eq(refs.ignores, 1);
    node_spm(n, "H1:A", NODE_SPM_TRACKED, NULL);
    node_spm(n, "H1:A", NODE_SPM_DIFFERS, "H1:A is 0, set 1");
    cr_assert_eq(node_spm_total(n), 1);
    cr_assert_eq(node_spm_changed(n), 1);
    step(n);
    cr_assert(node_notification(n));
    cr_assert_str_eq(node_usermsg(n), "SPM: H1:A is 0, set 1");
    node_spm(n, "H1:A", NODE_SPM_MATCHES, NULL);
    step(n);
    cr_assert_eq(node_spm_changed(n), 0);
    cr_assert(node_notification(n), "shown 1 s at least");
    advance(NODE_NOTICE_MIN);
    step(n);
    cr_assert_not(node_notification(n));
    node_spm(n, "H1:A", NODE_SPM_DIFFERS, "again");
    node_spm(n, "H1:A", NODE_SPM_UNTRACKED, NULL);
    cr_assert_eq(node_spm_total(n), 0);
    cr_assert_eq(node_spm_changed(n), 0);
}

static void s_put_refused(grd_node *g) { grd_put(g, "H1:RO", 1); }

static int refusing_put(void *arg, node *m, const char *chan, void *handle, double num,
                        const char *str, char *why, size_t whylen)
{
    (void)arg, (void)m, (void)chan, (void)handle, (void)num, (void)str;
    snprintf(why, whylen, "Write access denied");
    return GRD_EBADCHAN;
}

static int lost_put(void *arg, node *m, const char *chan, void *handle, double num,
                    const char *str, char *why, size_t whylen)
{
    (void)arg, (void)m, (void)chan, (void)handle, (void)num, (void)str;
    snprintf(why, whylen, "Virtual circuit disconnect");
    return GRD_ENOTCONN;
}

Test(api, a_refused_write_is_an_error_naming_the_channel_and_the_reason)
{
    host.put = refusing_put;
    run_main(s_put_refused);
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_str_eq(node_error_message(n), "ezca: H1:RO => 1: Write access denied");
    cr_assert_neq(log_find(0, "[INIT.main] ezca: H1:RO => 1: Write access denied"), -1);
}

Test(api, a_write_a_lost_connection_stopped_is_retried_when_the_channels_are_back)
{
    with_refs(true);
    host.put = lost_put;
    run_main(s_put_refused);
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT, "a connection error, not ERROR=True");
    cr_assert_str_eq(node_error_message(n), "ezca: H1:RO => 1: Virtual circuit disconnect");
    node_chan_connection(n, "H1:RO", false);
    unsigned before = fake.n_lines;
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT, "held while down");
    cr_assert_eq(log_find_sub(before, "ezca: H1:RO"), -1, "not retried while down");
    node_chan_connection(n, "H1:RO", true);
    step(n);
    cr_assert_neq(log_find_sub(before, "CONNECT: channels connected again: retrying INIT"), -1);
    cr_assert_neq(log_find_sub(before, "[INIT.main] ezca: H1:RO => 1"), -1, "main ran again");
}

/* A node_fail_connection from the host (a write in flight when the circuit went). */
Test(api, an_asynchronous_connection_error_clears_itself)
{
    with_refs(false);
    run_main(s_two_chans);
    node_fail_connection(n, "ezca: H1:A => 1: Virtual circuit disconnect");
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT);
    cr_assert_str_eq(node_error_message(n), "ezca: H1:A => 1: Virtual circuit disconnect");
    unsigned before = fake.n_lines;
    node_chan_connection(n, "H1:A", true);
    node_chan_connection(n, "H1:B", true);
    step(n);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    cr_assert_neq(log_find_sub(before, "CONNECT: channels connected again: retrying INIT"), -1);
    cr_assert_neq(log_find_sub(before, "executing state: INIT"), -1, "the state is entered again");
}
