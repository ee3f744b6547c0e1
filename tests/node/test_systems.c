/* test_systems.c — the example systems (systems/sus.c, ifo.c, bench.c,
 * lock.c), loaded from build/systems like the daemon loads them, on the fake
 * host; and the copies docs/systems.md shows of them. */
#include <math.h>

#include "tests/node/fake_host.h"

static char err[1024];
static node_system *sus, *ifo, *bench, *lock;
static node_host host;

static node_system *load(const char *name)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/../../systems", exe_dir());
    node_system *s = node_system_load(name, dir, err, sizeof(err));
    cr_assert(s, "%s (build it: make build/systems/%s.so)", err, name);
    return s;
}

static void setup(void)
{
    host = fake_host();
    sus = load("sus");
    ifo = load("ifo");
    bench = load("bench");
    lock = load("lock");
}

static void teardown(void)
{
    for (unsigned i = 0; i < fake.n_nodes; i++)
        node_free(fake.nodes[i]);
    node_system_unref(sus);
    node_system_unref(ifo);
    node_system_unref(bench);
    node_system_unref(lock);
    fake_free();
}

TestSuite(sus, .init = setup, .fini = teardown);
TestSuite(ifo, .init = setup, .fini = teardown);
TestSuite(bench, .init = setup, .fini = teardown);
TestSuite(lock, .init = setup, .fini = teardown);
TestSuite(docs);

static node *add(const char *name, node_system *s, const char *const *args, unsigned n_args)
{
    node *n = node_new(name, "H1", s, args, n_args, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
    fake.nodes[fake.n_nodes++] = n;
    return n;
}

/* One cycle of every node. */
static void cycle(void)
{
    advance(CYCLE);
    for (unsigned i = 0; i < fake.n_nodes; i++)
        node_step(fake.nodes[i]);
}

static void cycles(unsigned k)
{
    while (k--)
        cycle();
}

static const char *state(node *n) { return node_state(n)->name; }

/* Cycle until n is in `st` (at most limit cycles). */
static void until_state(node *n, const char *st, unsigned limit)
{
    for (unsigned i = 0; i < limit && strcmp(state(n), st) != 0; i++)
        cycle();
    if (strcmp(state(n), st) != 0)
        log_dump();
    cr_assert_str_eq(state(n), st);
}

/* ---- sus ---- */

static const char *const etmx[] = {"optic=ETMX", "pitch=3", "yaw=-2", "settle=1"};
#define WD "H1:SUS-ETMX_WD_STATE"
#define GAIN_P "H1:SUS-ETMX_M0_DAMP_P_GAIN"
#define OFFSET_P "H1:SUS-ETMX_M0_OPTICALIGN_P_OFFSET"
#define OFFSET_Y "H1:SUS-ETMX_M0_OPTICALIGN_Y_OFFSET"

Test(sus, the_graph)
{
    const grd_system *d = node_system_def(sus);
    cr_assert_str_eq(d->name, "sus");
    cr_assert_str_eq(d->request, "ALIGNED");
    cr_assert_str_eq(d->nominal, "ALIGNED");
    cr_assert(node_system_state(sus, "TRIPPED")->no_redirect);
    cr_assert_eq(node_system_state(sus, "TRIPPED")->index, 1);
    cr_assert(node_system_state(sus, "SAFE")->goto_);
    const grd_state *menu[8];
    cr_assert_eq(node_system_requestable(sus, menu, 8), 4);
    cr_assert_str_eq(menu[0]->name, "SAFE");
    cr_assert_str_eq(menu[3]->name, "ALIGNED");
}

Test(sus, starts_up_to_aligned_through_safe_and_damped)
{
    chan_set(WD, 1);
    chan_set(GAIN_P, 0);
    node *n = add("SUS_ETMX", sus, etmx, 4);
    cycle();
    cr_assert_str_eq(state(n), "SAFE");
    until_state(n, "DAMPED", 3);
    cycle(); /* DAMPED main: gains on, settle timer */
    cr_assert_float_eq(put_value(GAIN_P), 1.0, 0);
    cr_assert_eq(node_status(n), NODE_STATUS_MAIN);
    cycles(14);
    cr_assert_str_eq(state(n), "DAMPED", "settling for 1 s");
    until_state(n, "ALIGNED", 4);
    cycle();
    cr_assert_float_eq(put_value(OFFSET_P), 3.0, 0);
    cr_assert_float_eq(put_value(OFFSET_Y), -2.0, 0);
    cr_assert(node_ok(n));
    assert_log_seq(0, "executing state: INIT (0)", "EDGE: INIT->SAFE",
                   "[SAFE.main] ezca: H1:SUS-ETMX_M0_DAMP_P_GAIN => 0", "EDGE: SAFE->DAMPED",
                   "[DAMPED.main] timer['settle'] = 1", "[DAMPED.run] timer['settle'] done",
                   "EDGE: DAMPED->ALIGNED", "[ALIGNED.main] ezca: H1:SUS-ETMX_M0_OPTICALIGN_P_OFFSET => 3");
}

Test(sus, init_without_the_watchdog_goes_on_and_shows_connect)
{
    node *n = add("SUS_ETMX", sus, etmx, 4);
    cycle();
    cr_assert_neq(log_find(0, "[INIT.main] watchdog not connected: going on to ALIGNED"), -1);
    cr_assert_eq(node_error(n), NODE_ERROR_CONNECT);
    until_state(n, "ALIGNED", 40);
    cycle();
    cr_assert(!node_ok(n), "not OK while not connected");
    chan_set(WD, 1);
    cycle();
    cr_assert(node_ok(n));
}

Test(sus, init_finds_a_tripped_or_damped_suspension)
{
    chan_set(WD, 0);
    node *n = add("SUS_ETMX", sus, etmx, 4);
    cycle();
    cr_assert_str_eq(state(n), "TRIPPED");
    cr_assert_neq(log_find(0, "state returned jump target: TRIPPED"), -1);

    chan_set(WD, 1);
    chan_set(GAIN_P, 1);
    static const char *const itmx[] = {"optic=ETMX"};
    node *m = add("SUS_ITMX", sus, itmx, 1);
    node_step(m);
    cr_assert_str_eq(state(m), "DAMPED", "already damped: not through SAFE");
}

Test(sus, a_trip_jumps_to_tripped_which_waits_for_the_reset)
{
    chan_set(WD, 1);
    node *n = add("SUS_ETMX", sus, etmx, 4);
    until_state(n, "ALIGNED", 40);
    cycle();
    cr_assert(node_ok(n));
    chan_set(WD, 2);
    cycle();
    cr_assert_str_eq(state(n), "TRIPPED");
    assert_log_seq(0, "[ALIGNED.check] watchdog tripped (WD_STATE=2)", "JUMP target: TRIPPED",
                   "JUMP: ALIGNED->TRIPPED");
    cycles(3);
    cr_assert_float_eq(put_value(GAIN_P), 0, 0, "TRIPPED switches the damping off");
    cr_assert(node_notification(n));
    cr_assert_str_eq(node_usermsg(n), "ETMX watchdog tripped: reset it");
    /* TRIPPED cannot be redirected */
    cr_assert_eq(node_request(n, "SAFE"), NODE_OK);
    cycles(5);
    cr_assert_str_eq(state(n), "TRIPPED");
    chan_set(WD, 1);
    cycle();
    cr_assert_neq(log_find(0, "[TRIPPED.run] watchdog reset"), -1);
    cr_assert_str_eq(state(n), "SAFE");
    advance(NODE_NOTICE_MIN); /* the trip was notified for less than 1 s: it stays that long */
    cycle();
    cr_assert(!node_notification(n));
    cr_assert(node_done(n));
}

Test(sus, after_a_trip_auto_goes_back_to_the_request)
{
    chan_set(WD, 1);
    node *n = add("SUS_ETMX", sus, etmx, 4);
    until_state(n, "ALIGNED", 40);
    chan_set(WD, 0);
    cycles(3);
    cr_assert_str_eq(state(n), "TRIPPED");
    chan_set(WD, 1);
    until_state(n, "ALIGNED", 40);
    cycle();
    cr_assert(node_ok(n));
}

Test(sus, misaligned_and_back)
{
    static const char *const args[] = {"optic=ETMX", "pitch=3", "misalign=50", "settle=0"};
    chan_set(WD, 1);
    node *n = add("SUS_ETMX", sus, args, 4);
    until_state(n, "ALIGNED", 40);
    cr_assert_eq(node_request(n, "MISALIGNED"), NODE_OK);
    until_state(n, "MISALIGNED", 10);
    cycle();
    cr_assert_float_eq(put_value(OFFSET_P), 53, 0);
    cr_assert(node_done(n));
    cr_assert(!node_ok(n));
}

Test(sus, without_an_optic_init_errors)
{
    node *n = add("SUS_X", sus, NULL, 0);
    cycle();
    cr_assert_eq(node_error(n), NODE_ERROR_TRUE);
    cr_assert_neq(log_find(0, "ERROR in [INIT.main]: argument optic=<NAME> missing"), -1);
}

/* ---- ifo ---- */

static grd_ret up_main(grd_node *g)
{
    (void)g;
    return GRD_DONE;
}

static const grd_system leaf = {
    .api_version = GRD_API_VERSION, .name = "leaf", .request = "UP", .nominal = "UP",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .goto_ = true), GRD_STATE("UP", 1, .main = up_main),
                         GRD_STATE("DOWN", 2, .goto_ = true)),
    .edges = GRD_EDGES({"INIT", "UP"}),
};

Test(ifo, all_ok_when_every_node_is)
{
    node_system *ls = node_system_wrap(&leaf, err, sizeof(err));
    cr_assert(ls, "%s", err);
    static const char *const args[] = {"nodes=LEAF_A, LEAF_B"};
    node *top = add("IFO", ifo, args, 1);
    node *a = add("LEAF_A", ls, NULL, 0);
    node *b = add("LEAF_B", ls, NULL, 0);
    cycles(3);
    cr_assert(node_ok(a) && node_ok(b));
    /* the monitor saw them not OK at first */
    cr_assert_neq(log_find(0, "[INIT.main] watching 2 nodes"), -1);
    cr_assert_neq(log_find(0, "JUMP: ALL_OK->NOT_OK"), -1);
    until_state(top, "ALL_OK", 5);
    cycle();
    cr_assert(node_ok(top));
    cr_assert(!node_notification(top));

    cr_assert_eq(node_request(b, "DOWN"), NODE_OK);
    cycles(2);
    cr_assert_str_eq(state(top), "NOT_OK");
    cycle();
    cr_assert(!node_ok(top));
    cr_assert_str_eq(node_usermsg(top), "1/2 not OK: LEAF_B");
    cr_assert_eq(node_request(b, "UP"), NODE_OK);
    until_state(top, "ALL_OK", 6);
    cycle();
    cr_assert(node_ok(top));
    for (unsigned i = 0; i < fake.n_nodes; i++)
        node_free(fake.nodes[i]);
    fake.n_nodes = 0;
    node_system_unref(ls);
}

Test(ifo, unknown_nodes_are_not_ok)
{
    static const char *const args[] = {"nodes=NOBODY,ALSO_NOBODY"};
    node *top = add("IFO", ifo, args, 1);
    cycles(4);
    cr_assert_str_eq(state(top), "NOT_OK");
    cr_assert_neq(log_find(0, "USERMSG: 2/2 not OK: NOBODY?, ALSO_NOBODY?"), -1);
    cr_assert(!node_ok(top));
}

/* Issue 12, item 19: a long list is never cut inside a name: the names that
 * do not fit are counted ("and N more"). */
Test(ifo, a_long_list_of_bad_nodes_ends_with_a_count)
{
    static char list[1024]; /* an argument is at most 1024 characters */
    int used = snprintf(list, sizeof(list), "nodes=");
    for (int i = 0; i < 40; i++)
        used += snprintf(list + used, sizeof(list) - (size_t)used,
                         "%sLONG_NAME_NODE_NUMBER_%02d", i ? "," : "", i);
    const char *args[] = {list};
    node *top = add("IFO", ifo, args, 1);
    cycles(4);
    int at = log_find_sub(0, "40/40 not OK: LONG_NAME_NODE_NUMBER_00?, ");
    cr_assert_neq(at, -1);
    const char *line = fake.lines[at];
    const char *more = strstr(line, " and ");
    cr_assert(more && strstr(more, " more"), "%s", line);
    cr_assert(more[-1] == '?', "the last name shown is whole: %s", line);
    unsigned shown = 0, left = 0;
    for (const char *p = strstr(line, "not OK: "); (p = strstr(p, "LONG_NAME_NODE")); p++)
        shown++;
    cr_assert_eq(sscanf(more, " and %u more", &left), 1);
    cr_assert_eq(shown + left, 40, "%u shown + %u more: %s", shown, left, line);
    (void)top;
}

Test(ifo, a_missing_or_bad_list_is_an_error)
{
    node *a = add("IFO_A", ifo, NULL, 0);
    static const char *const bad[] = {"nodes=A,,B"};
    node *b = add("IFO_B", ifo, bad, 1);
    cycle();
    cr_assert_eq(node_error(a), NODE_ERROR_TRUE);
    cr_assert_eq(node_error(b), NODE_ERROR_TRUE);
    cr_assert_neq(log_find(0, "ERROR in [INIT.main]: argument nodes=A,B,... missing"), -1);
    cr_assert_neq(log_find(0, "ERROR in [INIT.main]: bad node name in nodes="), -1);
}

/* ---- bench ---- */

Test(bench, cycles_for_ever_through_jumps_edges_and_timers)
{
    static const char *const args[] = {"period=0.25"};
    node *n = add("BENCH_0", bench, args, 1);
    until_state(n, "STEP_A", 5);
    struct node_transition_info t[NODE_TRANSITIONS_MAX];
    node_take_transitions(n, t, NODE_TRANSITIONS_MAX);
    /* A step lasts its period (4 cycles) plus the cycle its successor is
     * entered on: 5 cycles, so 48 cycles make 9 or 10 transitions. */
    cycles(16 * 3);
    unsigned k = node_take_transitions(n, t, NODE_TRANSITIONS_MAX);
    cr_assert_geq(k, 9);
    cr_assert_leq(k, 10);
    unsigned jumps = 0, edges = 0;
    for (unsigned i = 0; i < k; i++) {
        jumps += t[i].how == NODE_TRANS_JUMP;
        edges += t[i].how == NODE_TRANS_EDGE;
        if (t[i].how == NODE_TRANS_JUMP) {
            cr_assert_str_eq(t[i].from, "STEP_A");
            cr_assert_str_eq(t[i].to, "STEP_B");
        }
    }
    cr_assert_gt(jumps, 2);
    cr_assert_eq(edges, k - jumps);
    cr_assert_eq(node_error(n), NODE_ERROR_NONE);
    /* park it */
    cr_assert_eq(node_request(n, "IDLE"), NODE_OK);
    cycles(4);
    cr_assert_str_eq(state(n), "IDLE");
    cr_assert(node_done(n));
}

Test(bench, reads_its_channel_every_cycle)
{
    static const char *const args[] = {"period=0", "chan=BENCH:VALUE"};
    chan_set("H1:BENCH:VALUE", 1);
    add("BENCH_1", bench, args, 2);
    cycles(3);
    unsigned gets = fake.gets;
    cycles(10);
    cr_assert_geq(fake.gets - gets, 8);
    cr_assert(node_connected(fake.nodes[0]));
}

/* ---- lock: a manager over subordinates' node channels ---- */

static node *lock_node(void)
{
    fake_ifo = "H1";
    sub_new("SUS_A", "SAFE");
    sub_new("SUS_B", "SAFE");
    const char *args[] = {"nodes=SUS_A,SUS_B"};
    node *m = add("MGR", lock, args, 1);
    /* The subordinates arrive wherever they are sent, a cycle later. */
    for (int i = 0; i < 20; i++) {
        cycle();
        sub_arrive("SUS_A");
        sub_arrive("SUS_B");
    }
    return m;
}

Test(lock, claims_goes_down_then_locks_its_subordinates)
{
    node *m = lock_node();
    cr_assert_str_eq(node_state(m)->name, "LOCKED");
    cr_assert(node_ok(m));
    cr_assert_str_eq(sub_get("SUS_A", "MANAGER"), "MGR");
    cr_assert_str_eq(sub_get("SUS_B", "MODE"), "MANAGED");
    cr_assert_str_eq(sub_get("SUS_B", "REQUEST"), "ALIGNED");
    assert_log_seq(0, "subordinate: SUS_A", "EDGE: INIT->DOWN", "EDGE: DOWN->ACQUIRE",
                   "SUS_A: REQUEST => ALIGNED", "EDGE: ACQUIRE->LOCKED");
}

Test(lock, a_stalled_subordinate_is_revived_and_locked_again)
{
    node *m = lock_node();
    unsigned from = fake.n_lines;
    sub_set("SUS_B", "STATE", "TRIPPED");
    sub_set("SUS_B", "STALLED", "True");
    sub_set("SUS_B", "OK", "False");
    cycles(40);
    cr_assert_str_eq(node_state(m)->name, "ACQUIRE");
    cr_assert(!node_ok(m));
    assert_log_seq(from, "[LOCKED.check] lost: SUS_B stalled in TRIPPED", "JUMP: LOCKED->ACQUIRE",
                   "SUS_B: revive (ALIGNED)");
    sub_set("SUS_B", "STALLED", "False");
    sub_set("SUS_B", "OK", "True");
    sub_arrive("SUS_B");
    for (int i = 0; i < 4; i++)
        cycle();
    cr_assert_str_eq(node_state(m)->name, "LOCKED");
}

Test(lock, without_subordinates_init_errors)
{
    node *m = add("MGR", lock, NULL, 0);
    cycle();
    cr_assert_eq(node_error(m), NODE_ERROR_TRUE);
    cr_assert_str_eq(node_error_message(m), "argument nodes=A,B,... missing");
}

/* ---- the copies in docs/systems.md ---- */

static char *slurp(const char *rel)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/../../../%s", exe_dir(), rel);
    if (access(path, R_OK) != 0) /* build/asan/tests/node: one level deeper */
        snprintf(path, sizeof(path), "%s/../../../../%s", exe_dir(), rel);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot read %s", path);
    static char buf[4][64 * 1024];
    static int k;
    char *b = buf[k++ % 4];
    size_t len = fread(b, 1, sizeof(buf[0]) - 1, f);
    b[len] = '\0';
    fclose(f);
    return b;
}

Test(docs, the_guide_shows_the_example_systems_as_they_are)
{
    const char *guide = slurp("docs/systems.md");
    const char *files[] = {"systems/sus.c", "systems/lock.c"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        cr_assert(strstr(guide, slurp(files[i])), "docs/systems.md does not show %s as it is",
                  files[i]);
}
