/* test_plant.c — the plant module (plant/plant.h) against real Channel Access.
 *
 * Each test runs one loop holding both ends: our CA server (ca/) serving a
 * pvdb of its own on free 127.0.0.1 ports, playing the plant, and the plant
 * module with libca searching only there. The plant's own pvdb holds the
 * "local" PVs that must be reached in-process. Criterion runs each test in a
 * process of its own, so each gets a fresh libca context.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/cas.h"
#include "node/guardian.h"
#include "plant/plant.h"
#include "pvdb/pvdb.h"
#include "tests/lib/harness.h"

static struct ev_loop *loop;
static pvdb *server_db, *local_db;
static pv_group *server_group;
static cas *server;
static cas_repeater *repeater;
static plant *pl;

/* What the hooks saw. */
static struct {
    int ups, downs;
    char last_up[256], last_down[256];
    int failures;
    char why[512];
    int values;
} seen;

static void on_connection(void *arg, void *owner, const char *chan, bool up)
{
    (void)arg, (void)owner;
    if (up) {
        seen.ups++;
        snprintf(seen.last_up, sizeof(seen.last_up), "%s", chan);
    } else {
        seen.downs++;
        snprintf(seen.last_down, sizeof(seen.last_down), "%s", chan);
    }
}

static bool last_lost;
static void on_write_failed(void *arg, void *owner, const char *chan, bool lost, const char *why)
{
    (void)arg, (void)owner, (void)chan;
    last_lost = lost;
    seen.failures++;
    snprintf(seen.why, sizeof(seen.why), "%s", why);
}

static void on_value(void *arg, void *owner, plant_ref *ref)
{
    (void)arg, (void)owner, (void)ref;
    seen.values++;
}

/* Seconds until the owner's next work, as hooks.next_work says. */
static double next_work_in = 1.0;
static double next_work(void *arg)
{
    (void)arg;
    return next_work_in;
}

static pv *served;      /* PLANT:DOUBLE, writable */
static pv *served_ro;   /* PLANT:RO, read-only */
static pv *served_enum; /* PLANT:ENUM: OFF, ON, AUTO */
static pv *served_chars; /* PLANT:CHARS, char[40] */
static pv *served_array; /* PLANT:ARRAY, double[8] */
static pv *served_string; /* PLANT:STRING */

static void add_server_pvs(void)
{
    static const char *const states[] = {"OFF", "ON", "AUTO"};
    server_group = pvdb_group_new(server_db, "PLANT:");
    cr_assert(server_group);
    cr_assert_eq(pv_group_add(server_group, &(pv_def){.name = "DOUBLE", .type = PV_DOUBLE, .writable = true}, &served), PVDB_OK);
    cr_assert_eq(pv_group_add(server_group, &(pv_def){.name = "RO", .type = PV_DOUBLE}, &served_ro), PVDB_OK);
    cr_assert_eq(pv_group_add(server_group, &(pv_def){.name = "ENUM", .type = PV_ENUM, .enums = states, .n_enums = 3, .writable = true}, &served_enum), PVDB_OK);
    cr_assert_eq(pv_group_add(server_group, &(pv_def){.name = "CHARS", .type = PV_CHAR, .count = 40, .writable = true}, &served_chars), PVDB_OK);
    cr_assert_eq(pv_group_add(server_group, &(pv_def){.name = "ARRAY", .type = PV_DOUBLE, .count = 8, .writable = true}, &served_array), PVDB_OK);
    cr_assert_eq(pv_group_add(server_group, &(pv_def){.name = "STRING", .type = PV_STRING, .writable = true}, &served_string), PVDB_OK);
    const double values[] = {4.5, 2, 3, 4, 5, 6, 7, 8};
    pv_set_array(served_array, values, 8);
    pv_set_string(served_string, "2.5e3");
    pv_set_double(served, 1.25);
    pv_set_double(served_ro, 7);
    pv_set_enum(served_enum, 1);
    const char text[] = "char array text";
    pv_set_array(served_chars, text, sizeof(text));
}

static void setup(void)
{
    int port, beacon;
    cr_assert_eq(harness_free_ports(&port, &beacon), 0);
    char buf[64];
    setenv("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1", 1);
    setenv("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1", 1);
    setenv("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO", 1);
    snprintf(buf, sizeof(buf), "%d", port);
    setenv("EPICS_CAS_SERVER_PORT", buf, 1);
    snprintf(buf, sizeof(buf), "%d", beacon);
    setenv("EPICS_CAS_BEACON_PORT", buf, 1);
    setenv("EPICS_CA_REPEATER_PORT", buf, 1);
    snprintf(buf, sizeof(buf), "127.0.0.1:%d", port);
    setenv("EPICS_CA_ADDR_LIST", buf, 1);
    setenv("EPICS_CA_AUTO_ADDR_LIST", "NO", 1);

    loop = ev_loop_new(EVFLAG_AUTO);
    server_db = pvdb_new();
    local_db = pvdb_new();
    cr_assert(loop && server_db && local_db);
    add_server_pvs();
    struct cas_config cfg;
    char err[256];
    cr_assert_eq(cas_config_from_env(&cfg, err, sizeof(err)), 0, "%s", err);
    server = cas_new(loop, server_db, &cfg, err, sizeof(err));
    cr_assert(server, "%s", err);
    /* libca spawns a caRepeater process when nothing holds the repeater
     * port; the daemon serves one, and so do we. */
    repeater = cas_repeater_new(loop, (uint16_t)beacon, err, sizeof(err));
    cr_assert(repeater, "%s", err);
    struct plant_config pc = {.connect_timeout = 0.5};
    struct plant_hooks hooks = {.connection = on_connection, .write_failed = on_write_failed,
                                .value = on_value, .next_work = next_work};
    pl = plant_new(loop, local_db, &pc, &hooks, err, sizeof(err));
    cr_assert(pl, "%s", err);
}

static void teardown(void)
{
    /* The server first: libca's clean shutdown waits for the server to close
     * its end of each circuit, and this server runs on the loop we stop. */
    cas_free(server);
    plant_free(pl);
    cas_repeater_free(repeater);
    pvdb_free(server_db);
    pvdb_free(local_db);
    ev_loop_destroy(loop);
}

TestSuite(plant, .init = setup, .fini = teardown, .timeout = 30);

/* Run the loop until cond holds or seconds pass. */
#define RUN_UNTIL(cond, seconds)                                                                   \
    do {                                                                                           \
        double until_ = harness_now() + (seconds);                                                 \
        while (!(cond) && harness_now() < until_)                                                  \
            ev_run(loop, EVRUN_ONCE);                                                              \
    } while (0)

/* The loop wakes at least every 0.1 s (the plant's backstop timer). */
static void run_for(double seconds)
{
    double until = harness_now() + seconds;
    while (harness_now() < until)
        ev_run(loop, EVRUN_ONCE);
}

Test(plant, names_are_checked)
{
    cr_assert(plant_valid_name("X1:SUS-ETMX_M0_DAMP_P_GAIN"));
    cr_assert(plant_valid_name("rec.VAL"));
    cr_assert(plant_valid_name("a[1]<b>;c{d}+e-f"));
    cr_assert_not(plant_valid_name(""));
    cr_assert_not(plant_valid_name(".VAL"));
    cr_assert_not(plant_valid_name("X1:A B"));
    cr_assert_not(plant_valid_name("X1:A\"B"));
    cr_assert_not(plant_valid_name("X1:\x01"));
    char longest[PLANT_NAME_MAX + 2];
    memset(longest, 'A', sizeof(longest));
    longest[PLANT_NAME_MAX] = '\0';
    cr_assert(plant_valid_name(longest));
    longest[PLANT_NAME_MAX] = 'A';
    longest[PLANT_NAME_MAX + 1] = '\0';
    cr_assert_not(plant_valid_name(longest));

    char err[256];
    cr_assert_null(plant_open(pl, "bad name", NULL, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "not a valid channel name"), "%s", err);
}

Test(plant, refs_to_one_name_share_one_channel)
{
    char err[256];
    bool up;
    int a, b;
    plant_ref *r1 = plant_open(pl, "PLANT:DOUBLE", &a, &up, err, sizeof(err));
    plant_ref *r2 = plant_open(pl, "PLANT:DOUBLE", &b, &up, err, sizeof(err));
    plant_ref *r3 = plant_open(pl, "PLANT:RO", &a, &up, err, sizeof(err));
    cr_assert(r1 && r2 && r3);
    struct plant_stats st;
    plant_get_stats(pl, &st);
    cr_assert_eq(st.channels, 2);
    cr_assert_eq(st.refs, 3);
    cr_assert_eq(st.ca, 2);
    plant_close(r1);
    plant_get_stats(pl, &st);
    cr_assert_eq(st.channels, 2, "the other ref keeps it");
    plant_close(r2);
    plant_close(r3);
    plant_get_stats(pl, &st);
    cr_assert_eq(st.channels, 0, "released with the last ref");
}

Test(plant, values_flow_both_ways_over_ca)
{
    char err[256], text[64];
    bool up = true;
    plant_ref *r = plant_open(pl, "PLANT:DOUBLE", NULL, &up, err, sizeof(err));
    cr_assert(r);
    cr_assert_not(up, "a CA channel is not up at once");
    double v = 0;
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_ENOTCONN);
    RUN_UNTIL(plant_ref_up(r), 5);
    cr_assert(plant_ref_up(r));
    cr_assert_eq(seen.ups, 1);
    cr_assert_str_eq(seen.last_up, "PLANT:DOUBLE");
    cr_assert_eq(plant_get(r, &v, text, sizeof(text)), GRD_OK);
    cr_assert_float_eq(v, 1.25, 0);
    cr_assert_str_eq(text, "1.25");

    /* The plant moves: the monitor brings it. */
    int values = seen.values;
    pv_set_double(served, 3.5);
    RUN_UNTIL(seen.values > values, 5);
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 3.5, 0);

    /* We write: the server has it. */
    cr_assert_eq(plant_put(r, "NODE", 42, NULL, err, sizeof(err)), GRD_OK, "%s", err);
    RUN_UNTIL(pv_get_double(served) == 42, 5);
    cr_assert_float_eq(pv_get_double(served), 42, 0);
    RUN_UNTIL(plant_get(r, &v, NULL, 0) == GRD_OK && v == 42, 5);
    cr_assert_float_eq(v, 42, 0);
    cr_assert_eq(seen.failures, 0, "%s", seen.why);
    plant_close(r);
}

Test(plant, a_wake_up_just_before_the_owners_work_waits_for_it)
{
    char err[256];
    bool up;
    plant_ref *r = plant_open(pl, "PLANT:DOUBLE", NULL, &up, err, sizeof(err));
    cr_assert(r);
    RUN_UNTIL(plant_ref_up(r), 5);
    cr_assert(plant_ref_up(r));
    struct plant_stats st;

    /* Work is always due: wake-ups and the backstop are put off, and the
     * update waits in libca. */
    next_work_in = PLANT_POLL_GUARD / 2;
    int values = seen.values;
    plant_get_stats(pl, &st);
    uint64_t put_off = st.polls_put_off, polls = st.polls;
    pv_set_double(served, 9.5);
    run_for(0.35);
    plant_get_stats(pl, &st);
    cr_assert_gt(st.polls_put_off, put_off, "nothing was put off");
    cr_assert_eq(st.polls, polls, "polled although work was due");
    cr_assert_eq(seen.values, values);
    double v = 0;
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 1.25, 0);

    /* The work is done: the poll runs then, and the update comes. */
    next_work_in = 1.0;
    plant_work_done(pl);
    plant_get_stats(pl, &st);
    cr_assert_eq(st.polls, polls + 1);
    RUN_UNTIL(seen.values > values, 5);
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 9.5, 0);

    /* And wake-ups are watched again. */
    values = seen.values;
    plant_get_stats(pl, &st);
    put_off = st.polls_put_off;
    pv_set_double(served, 10.5);
    RUN_UNTIL(seen.values > values, 5);
    cr_assert_gt(seen.values, values);
    plant_get_stats(pl, &st);
    cr_assert_eq(st.polls_put_off, put_off);
    plant_close(r);
}

Test(plant, enums_read_and_write_by_state_name)
{
    char err[256], text[64];
    plant_ref *r = plant_open(pl, "PLANT:ENUM", NULL, NULL, err, sizeof(err));
    cr_assert(r);
    RUN_UNTIL(plant_ref_up(r) && plant_get(r, NULL, text, sizeof(text)) == GRD_OK &&
                  strcmp(text, "ON") == 0,
              5);
    cr_assert_str_eq(text, "ON");
    double v;
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 1, 0);
    cr_assert_eq(plant_put(r, "NODE", 0, "AUTO", err, sizeof(err)), GRD_OK, "%s", err);
    RUN_UNTIL(pv_get_long(served_enum) == 2, 5);
    cr_assert_eq(pv_get_long(served_enum), 2);
    /* A name that is not one of its states is refused before it is sent. */
    cr_assert_eq(plant_put(r, "NODE", 0, "SIDEWAYS", err, sizeof(err)), GRD_ETYPE);
    cr_assert(strstr(err, "not one of its 3 states"), "%s", err);
    plant_close(r);
}

Test(plant, char_arrays_read_as_strings)
{
    char err[256], text[64];
    plant_ref *r = plant_open(pl, "PLANT:CHARS", NULL, NULL, err, sizeof(err));
    RUN_UNTIL(plant_ref_up(r), 5);
    cr_assert_eq(plant_get(r, NULL, text, sizeof(text)), GRD_OK);
    cr_assert_str_eq(text, "char array text");
    cr_assert_eq(plant_put(r, "NODE", 0, "new text", err, sizeof(err)), GRD_OK, "%s", err);
    RUN_UNTIL(strcmp((const char *)pv_value(served_chars), "new text") == 0, 5);
    cr_assert_str_eq((const char *)pv_value(served_chars), "new text");
    plant_close(r);
}

Test(plant, a_write_without_access_is_refused)
{
    char err[256];
    plant_ref *r = plant_open(pl, "PLANT:RO", NULL, NULL, err, sizeof(err));
    RUN_UNTIL(plant_ref_up(r), 5);
    cr_assert_neq(plant_put(r, "NODE", 1, NULL, err, sizeof(err)), GRD_OK);
    cr_assert(strstr(err, "Write access denied"), "%s", err);
    cr_assert_float_eq(pv_get_double(served_ro), 7, 0);
    plant_close(r);
}

Test(plant, a_write_before_the_connection_waits_for_it)
{
    char err[256];
    plant_ref *r = plant_open(pl, "PLANT:DOUBLE", NULL, NULL, err, sizeof(err));
    cr_assert_eq(plant_put(r, "NODE", 9, NULL, err, sizeof(err)), GRD_OK, "%s", err);
    RUN_UNTIL(pv_get_double(served) == 9, 5);
    cr_assert_float_eq(pv_get_double(served), 9, 0);
    cr_assert_eq(seen.failures, 0, "%s", seen.why);
    plant_close(r);
}

Test(plant, a_write_to_a_channel_nobody_serves_fails_after_the_timeout)
{
    char err[256];
    plant_ref *r = plant_open(pl, "PLANT:NOBODY", NULL, NULL, err, sizeof(err));
    cr_assert_eq(plant_put(r, "NODE", 9, NULL, err, sizeof(err)), GRD_OK);
    run_for(0.2);
    cr_assert_eq(seen.failures, 0, "not before connect_timeout (0.5 s)");
    RUN_UNTIL(seen.failures > 0, 3);
    cr_assert_eq(seen.failures, 1);
    cr_assert(strstr(seen.why, "PLANT:NOBODY: not connected after 0.5 s"), "%s", seen.why);
    cr_assert(last_lost, "a connection problem, not a refusal");
    plant_close(r);
}

Test(plant, a_lost_server_is_reported_and_comes_back)
{
    char err[256];
    double v;
    plant_ref *r = plant_open(pl, "PLANT:DOUBLE", NULL, NULL, err, sizeof(err));
    RUN_UNTIL(plant_ref_up(r), 5);
    cr_assert(plant_ref_up(r));
    /* The PVs go (an IOC rebooting): the channel disconnects. */
    pv_group_free(server_group);
    RUN_UNTIL(seen.downs > 0, 5);
    cr_assert_eq(seen.downs, 1);
    cr_assert_str_eq(seen.last_down, "PLANT:DOUBLE");
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_ENOTCONN);
    /* A write to a channel that was connected fails at once. */
    cr_assert_eq(plant_put(r, "NODE", 5, NULL, err, sizeof(err)), GRD_ENOTCONN);
    cr_assert(strstr(err, "not connected") || strstr(err, "disconnect"), "%s", err);
    /* Back: it reconnects by itself, with the new value. */
    add_server_pvs();
    RUN_UNTIL(plant_ref_up(r), 10);
    cr_assert(plant_ref_up(r));
    cr_assert_eq(seen.ups, 2);
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 1.25, 0);
    plant_close(r);
}

Test(plant, our_own_pvs_are_reached_in_process)
{
    pv_group *g = pvdb_group_new(local_db, "X1:GRD-");
    pv *mine, *ro;
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "A_REQUEST", .type = PV_STRING, .writable = true}, &mine), PVDB_OK);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "A_STATE", .type = PV_STRING}, &ro), PVDB_OK);
    pv_set_string(ro, "DAMPED");
    char err[256], text[64];
    bool up = false;
    plant_ref *r = plant_open(pl, "X1:GRD-A_STATE", NULL, &up, err, sizeof(err));
    cr_assert(up, "a local PV is up at once");
    cr_assert_eq(plant_get(r, NULL, text, sizeof(text)), GRD_OK);
    cr_assert_str_eq(text, "DAMPED");
    struct plant_stats st;
    plant_get_stats(pl, &st);
    cr_assert_eq(st.local, 1);
    cr_assert_eq(st.ca, 0, "no CA channel for our own PV");
    /* Writes follow the PV's rules, as a CA client's would. */
    cr_assert_neq(plant_put(r, "NODE", 0, "X", err, sizeof(err)), GRD_OK);
    cr_assert(strstr(err, "write refused"), "%s", err);
    plant_ref *w = plant_open(pl, "X1:GRD-A_REQUEST", NULL, &up, err, sizeof(err));
    cr_assert_eq(plant_put(w, "NODE", 0, "SAFE", err, sizeof(err)), GRD_OK, "%s", err);
    cr_assert_str_eq((const char *)pv_value(mine), "SAFE");
    /* The PV goes (its node stopped): the ref is told. */
    pv_group_free(g);
    cr_assert_eq(seen.downs, 2);
    cr_assert_eq(plant_get(r, NULL, text, sizeof(text)), GRD_ENOTCONN);
    plant_close(r);
    plant_close(w);
}

Test(plant, a_name_served_here_later_moves_in_process)
{
    char err[256];
    plant_ref *r = plant_open(pl, "PLANT:DOUBLE", NULL, NULL, err, sizeof(err));
    RUN_UNTIL(plant_ref_up(r), 5);
    pv_group *g = pvdb_group_new(local_db, "PLANT:");
    pv *mine;
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "DOUBLE", .type = PV_DOUBLE, .writable = true}, &mine), PVDB_OK);
    pv_set_double(mine, -1);
    double v;
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, -1, 0, "ours now");
    struct plant_stats st;
    plant_get_stats(pl, &st);
    cr_assert_eq(st.ca, 0);
    cr_assert_eq(st.local, 1);
    plant_close(r);
    pv_group_free(g);
}

Test(plant, simulation_only_when_asked)
{
    plant_free(pl);
    struct plant_config pc = {.simulate = true, .never_simulate = "X1:GRD-"};
    char err[256];
    pl = plant_new(loop, local_db, &pc, NULL, err, sizeof(err));
    cr_assert(pl);
    bool up = false;
    plant_ref *r = plant_open(pl, "X1:SUS-ETMX_WD_STATE", NULL, &up, err, sizeof(err));
    cr_assert(up);
    cr_assert(pvdb_find(local_db, "X1:SUS-ETMX_WD_STATE"), "served by us now");
    cr_assert_eq(plant_sim_set(pl, "X1:SUS-ETMX_WD_STATE", 1), 0);
    double v;
    cr_assert_eq(plant_get(r, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 1, 0);
    plant_ref *g = plant_open(pl, "X1:GRD-OTHER_STATE", NULL, &up, err, sizeof(err));
    cr_assert_not(up, "node channels are never simulated");
    cr_assert_null(pvdb_find(local_db, "X1:GRD-OTHER_STATE"));
    struct plant_stats st;
    plant_get_stats(pl, &st);
    cr_assert_eq(st.simulated, 1);
    cr_assert_eq(st.ca, 0, "no CA client when simulating");
    plant_close(r);
    plant_close(g);
}

Test(plant, arrays_read_their_first_element_and_strings_their_text)
{
    char err[256], text[64];
    double v;
    plant_ref *a = plant_open(pl, "PLANT:ARRAY", NULL, NULL, err, sizeof(err));
    plant_ref *t = plant_open(pl, "PLANT:STRING", NULL, NULL, err, sizeof(err));
    RUN_UNTIL(plant_ref_up(a) && plant_ref_up(t), 5);
    cr_assert_eq(plant_get(a, &v, NULL, 0), GRD_OK);
    cr_assert_float_eq(v, 4.5, 0);
    cr_assert_eq(plant_get(t, &v, text, sizeof(text)), GRD_OK, "a string that is a number");
    cr_assert_float_eq(v, 2500, 0);
    cr_assert_str_eq(text, "2.5e3");
    int values = seen.values;
    pv_set_string(served_string, "not a number");
    RUN_UNTIL(seen.values > values, 5);
    cr_assert_eq(plant_get(t, &v, text, sizeof(text)), GRD_ETYPE);
    cr_assert_eq(plant_get(t, NULL, text, sizeof(text)), GRD_OK);
    cr_assert_str_eq(text, "not a number");
    plant_close(a);
    plant_close(t);
}

Test(plant, the_set_point_monitor_sees_what_others_change)
{
    char err[256];
    int owner;
    plant_ref *r = plant_open(pl, "PLANT:DOUBLE", &owner, NULL, err, sizeof(err));
    RUN_UNTIL(plant_ref_up(r), 5);
    cr_assert_eq(plant_put(r, "NODE", 2, NULL, err, sizeof(err)), GRD_OK);
    struct plant_spm_info info;
    plant_spm_info(r, &info);
    cr_assert(info.tracked && !info.differs);
    cr_assert_str_eq(info.set, "2");
    RUN_UNTIL(pv_get_double(served) == 2, 5);
    run_for(PLANT_SPM_SETTLE + PLANT_SPM_PERIOD + 0.2);
    plant_spm_info(r, &info);
    cr_assert_not(info.differs, "its own write is not a difference");
    pv_set_double(served, 0); /* someone else */
    RUN_UNTIL((plant_spm_info(r, &info), info.differs), PLANT_SPM_PERIOD + 2);
    cr_assert(info.differs);
    cr_assert_str_eq(info.now, "0");
    cr_assert_gt(info.since, 0);
    /* Accepted: the current value is the set point. */
    cr_assert_eq(plant_spm_accept(r), 0);
    plant_spm_info(r, &info);
    cr_assert(!info.differs);
    cr_assert_str_eq(info.set, "0");
    /* Ignored: no longer watched. */
    plant_spm_ignore(r);
    plant_spm_info(r, &info);
    cr_assert(!info.tracked && info.ignored);
    cr_assert_eq(plant_put(r, "NODE", 5, NULL, err, sizeof(err)), GRD_OK);
    plant_spm_info(r, &info);
    cr_assert(!info.tracked, "writes no longer track it");
    plant_close(r);
}
