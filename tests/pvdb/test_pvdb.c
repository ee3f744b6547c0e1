/* test_pvdb.c — the process-variable database through its public API. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pvdb/pvdb.h"

static pvdb *db;

static void setup(void) { db = pvdb_new(); }
static void teardown(void) { pvdb_free(db); }

TestSuite(pvdb, .init = setup, .fini = teardown);

/* A watcher that records what it saw. */
struct seen {
    unsigned calls, events, deletes;
    pv_watch *stop_other; /* a watch to stop from inside the callback */
    pv_watch *self;
};

static void record(pv *p, unsigned events, void *arg)
{
    (void)p;
    struct seen *s = arg;
    s->calls++;
    s->events |= events;
    if (events & PV_EV_DELETE)
        s->deletes++;
    if (s->stop_other)
        pv_watch_stop(s->stop_other);
    if (s->self)
        pv_watch_stop(s->self);
}

Test(pvdb, add_find_and_prefix)
{
    pv_group *g = pvdb_group_new(db, "H1:GRD-SUS_");
    pv *p;
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "STATE", .type = PV_STRING}, &p), 0);
    cr_assert_eq(pvdb_find(db, "H1:GRD-SUS_STATE"), p);
    cr_assert_null(pvdb_find(db, "STATE"));
    cr_assert_str_eq(pv_name(p), "H1:GRD-SUS_STATE");
    cr_assert_eq(pv_count(p), 1);
    cr_assert_eq(pvdb_count(db), 1);
    cr_assert_eq(pv_group_count(g), 1);
}

Test(pvdb, refuses_bad_definitions)
{
    pv_group *g = pvdb_group_new(db, "X:");
    const char *five[] = {"a", "b", "c", "d", "e"};
    const char *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = "s";
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "A"}, NULL), 0);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "A"}, NULL), PVDB_EEXIST);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = NULL}, NULL), PVDB_EINVAL);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = ""}, NULL), PVDB_EINVAL);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "T", .type = 7}, NULL), PVDB_EINVAL);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "U", .units = "toolongunits"}, NULL), PVDB_EINVAL);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "E", .type = PV_ENUM, .enums = many, .n_enums = 17}, NULL),
                 PVDB_EINVAL);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "F", .type = PV_DOUBLE, .enums = five, .n_enums = 5}, NULL),
                 PVDB_EINVAL);
    char longname[PV_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = longname}, NULL), PVDB_EINVAL);
    cr_assert_eq(pvdb_count(db), 1);
}

Test(pvdb, starts_undefined_then_defined)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "D", .type = PV_DOUBLE}, &p);
    cr_assert_eq(pv_severity(p), PV_SEV_INVALID);
    cr_assert_eq(pv_status(p), PV_ALARM_UDF);
    pv_set_double(p, 0.0); /* same bytes as the initial value: still defines it */
    cr_assert_eq(pv_severity(p), PV_SEV_NONE);
    cr_assert_eq(pv_status(p), PV_ALARM_NONE);
}

Test(pvdb, set_posts_only_on_change)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "L", .type = PV_LONG}, &p);
    pv_set_long(p, 1);
    struct seen s = {0};
    pv_watch w;
    pv_watch_init(&w, record, &s, PV_EV_VALUE);
    pv_watch_start(p, &w);
    pv_set_long(p, 1);
    cr_assert_eq(s.calls, 0);
    pv_set_long(p, 2);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.events, PV_EV_VALUE); /* masked to what the watch asked for */
    cr_assert_eq(pv_get_long(p), 2);
    pv_watch_stop(&w);
    pv_set_long(p, 3);
    cr_assert_eq(s.calls, 1);
}

Test(pvdb, typed_setters_convert)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *s, *e, *c, *sh, *f;
    const char *states[] = {"OFF", "ON"};
    pv_group_add(g, &(pv_def){.name = "S", .type = PV_STRING}, &s);
    pv_group_add(g, &(pv_def){.name = "E", .type = PV_ENUM, .enums = states, .n_enums = 2}, &e);
    pv_group_add(g, &(pv_def){.name = "C", .type = PV_CHAR, .count = 16}, &c);
    pv_group_add(g, &(pv_def){.name = "SH", .type = PV_SHORT}, &sh);
    pv_group_add(g, &(pv_def){.name = "F", .type = PV_FLOAT}, &f);
    pv_set_string(s, "a string that is much longer than thirty-nine characters");
    cr_assert_eq(strlen(pv_value(s)), 39);
    cr_assert_eq(pv_set_string(e, "ON"), 0);
    cr_assert_eq(pv_get_long(e), 1);
    pv_set_string(c, "hello");
    cr_assert_str_eq(pv_value(c), "hello");
    cr_assert_eq(pv_nelm(c), 6);
    pv_set_double(sh, 1e9); /* saturates instead of wrapping */
    cr_assert_eq(pv_get_long(sh), 32767);
    pv_set_double(f, 0.25);
    cr_assert_float_eq(pv_get_double(f), 0.25, 1e-9);
    cr_assert_eq(pv_set_string(sh, "junk"), PVDB_EINVAL);
}

Test(pvdb, arrays_and_nelm)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "W", .type = PV_DOUBLE, .count = 4}, &p);
    double v[4] = {1, 2, 3, 4};
    cr_assert_eq(pv_set_array(p, v, 4), 0);
    cr_assert_eq(pv_nelm(p), 4);
    cr_assert_eq(pv_set_array(p, v, 2), 0);
    cr_assert_eq(pv_nelm(p), 2);
    const double *stored = pv_value(p);
    cr_assert_eq(stored[2], 0.0); /* elements past nelm are cleared */
    cr_assert_eq(pv_set_array(p, v, 5), PVDB_ERANGE);
    cr_assert_eq(pv_set_array(p, v, 0), PVDB_ERANGE);
}

static int refuse_odd(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)p, (void)n;
    int32_t x;
    memcpy(&x, value, 4);
    snprintf(arg, 64, "%s@%s", who->user, who->host);
    return x % 2 ? PVDB_EREJECT : 0;
}

Test(pvdb, write_rules)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *ro, *h, *e;
    char who[64] = "";
    const char *states[] = {"A", "B"};
    pv_group_add(g, &(pv_def){.name = "RO", .type = PV_LONG}, &ro);
    pv_group_add(g, &(pv_def){.name = "H", .type = PV_LONG, .writable = true, .on_write = refuse_odd, .arg = who}, &h);
    pv_group_add(g, &(pv_def){.name = "E", .type = PV_ENUM, .writable = true, .enums = states, .n_enums = 2}, &e);
    pv_client cl = {.host = "ws1", .user = "joe"};
    int32_t v = 4;
    cr_assert_eq(pv_write(ro, &v, 1, &cl), PVDB_EREADONLY);
    cr_assert_eq(pv_write(h, &v, 1, &cl), 0);
    cr_assert_eq(pv_get_long(h), 4);
    cr_assert_str_eq(who, "joe@ws1");
    v = 5;
    cr_assert_eq(pv_write(h, &v, 1, &cl), PVDB_EREJECT);
    cr_assert_eq(pv_get_long(h), 4);
    cr_assert_eq(pv_write(h, &v, 2, &cl), PVDB_ERANGE);
    uint16_t idx = 2;
    cr_assert_eq(pv_write(e, &idx, 1, &cl), PVDB_ERANGE);
    idx = 1;
    cr_assert_eq(pv_write(e, &idx, 1, &cl), 0);
    cr_assert_eq(pv_get_long(e), 1);
}

/* A momentary switch: accepts any write and sets itself back to 0. */
static int momentary(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)value, (void)n, (void)who, (void)arg;
    pv_set_enum(p, 0);
    return 0;
}

/* A handler that stores a value keeps it, even the value the PV already held
 * (nothing changes, so nothing is posted either). */
Test(pvdb, a_handler_that_stores_the_same_value_keeps_it)
{
    pv_group *g = pvdb_group_new(db, "");
    const char *states[] = {"False", "True"};
    pv *p;
    pv_group_add(g, &(pv_def){.name = "LOAD", .type = PV_ENUM, .writable = true, .enums = states,
                              .n_enums = 2, .on_write = momentary},
                 &p);
    pv_set_enum(p, 0);
    struct seen s = {0};
    pv_watch w;
    pv_watch_init(&w, record, &s, PV_EV_VALUE);
    pv_watch_start(p, &w);
    uint16_t one = 1;
    pv_client cl = {.host = "ws1", .user = "joe"};
    cr_assert_eq(pv_write(p, &one, 1, &cl), 0);
    cr_expect_eq(pv_get_long(p), 0, "the handler's 0 is kept, not the written 1");
    cr_expect_eq(s.calls, 0);
    pv_watch_stop(&w); /* w lives on this stack; teardown frees the PV later */
}

Test(pvdb, properties_post_property_events)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "P", .type = PV_DOUBLE, .units = "s"}, &p);
    struct seen s = {0};
    pv_watch w;
    pv_watch_init(&w, record, &s, PV_EV_PROPERTY);
    pv_watch_start(p, &w);
    pv_set_units(p, "s");
    cr_assert_eq(s.calls, 0);
    pv_set_units(p, "seconds");
    pv_set_precision(p, 3);
    cr_assert_eq(s.calls, 2);
    cr_assert_str_eq(pv_units(p), "seconds");
    cr_assert_eq(pv_set_units(p, "eightchr"), PVDB_EINVAL);
    pv_limits l = {.disp_hi = 1, .alarm_hi = 2};
    pv_set_limits(p, &l, true);
    cr_assert_eq(s.calls, 3);
    cr_assert(pv_has_alarm_limits(p));
    cr_assert_eq(pv_get_limits(p)->alarm_hi, 2);
    pv_watch_stop(&w);
}

Test(pvdb, alarm_posts_alarm_and_value)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "A", .type = PV_DOUBLE}, &p);
    pv_set_double(p, 1);
    struct seen s = {0};
    pv_watch w;
    pv_watch_init(&w, record, &s, PV_EV_ALARM | PV_EV_VALUE);
    pv_watch_start(p, &w);
    pv_set_alarm(p, PV_ALARM_HIHI, PV_SEV_MAJOR);
    pv_set_alarm(p, PV_ALARM_HIHI, PV_SEV_MAJOR);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.events, PV_EV_ALARM | PV_EV_VALUE);
    cr_assert_eq(pv_severity(p), PV_SEV_MAJOR);
    pv_watch_stop(&w);
}

Test(pvdb, watchers_may_stop_others_while_posting)
{
    pv_group *g = pvdb_group_new(db, "");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "X", .type = PV_LONG}, &p);
    struct seen a = {0}, b = {0}, c = {0};
    pv_watch wa, wb, wc;
    pv_watch_init(&wa, record, &a, PV_EV_VALUE);
    pv_watch_init(&wb, record, &b, PV_EV_VALUE);
    pv_watch_init(&wc, record, &c, PV_EV_VALUE);
    pv_watch_start(p, &wa);
    pv_watch_start(p, &wb);
    pv_watch_start(p, &wc);
    a.stop_other = &wb; /* a stops b, which is next in line */
    c.self = &wc;       /* c stops itself */
    pv_set_long(p, 1);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 0);
    cr_assert_eq(c.calls, 1);
    cr_assert(!pv_watch_active(&wb));
    cr_assert(!pv_watch_active(&wc));
    pv_set_long(p, 2);
    cr_assert_eq(a.calls, 2);
    cr_assert_eq(c.calls, 1);
    pv_watch_stop(&wa);
}

Test(pvdb, group_free_deletes_and_tells_watchers)
{
    pv_group *g = pvdb_group_new(db, "G:");
    pv_group *keep = pvdb_group_new(db, "K:");
    pv *p, *k;
    pv_group_add(g, &(pv_def){.name = "A", .type = PV_LONG}, &p);
    pv_group_add(g, &(pv_def){.name = "B", .type = PV_LONG}, NULL);
    pv_group_add(keep, &(pv_def){.name = "A", .type = PV_LONG}, &k);
    struct seen s = {0}, sk = {0};
    pv_watch w, wk;
    pv_watch_init(&w, record, &s, PV_EV_VALUE); /* DELETE arrives whatever the mask */
    pv_watch_init(&wk, record, &sk, PV_EV_VALUE);
    pv_watch_start(p, &w);
    pv_watch_start(k, &wk);
    pv_group_free(g);
    cr_assert_eq(s.deletes, 1);
    cr_assert(!pv_watch_active(&w));
    cr_assert_null(pvdb_find(db, "G:A"));
    cr_assert_null(pvdb_find(db, "G:B"));
    cr_assert_eq(pvdb_find(db, "K:A"), k);
    cr_assert_eq(pvdb_count(db), 1);
    cr_assert_eq(sk.calls, 0);
    /* The same names can be served again. */
    g = pvdb_group_new(db, "G:");
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "A", .type = PV_LONG}, NULL), 0);
    pv_watch_stop(&wk);
}

Test(pvdb, hundred_thousand_pvs)
{
    pv_group *g = pvdb_group_new(db, "N:");
    char name[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "%d", i);
        cr_assert_eq(pv_group_add(g, &(pv_def){.name = name, .type = PV_LONG}, NULL), 0);
    }
    cr_assert_eq(pvdb_count(db), 100000);
    for (int i = 0; i < 100000; i += 997) {
        snprintf(name, sizeof(name), "N:%d", i);
        cr_assert_not_null(pvdb_find(db, name));
    }
    cr_assert_null(pvdb_find(db, "N:100000"));
    pv_group_free(g);
    cr_assert_eq(pvdb_count(db), 0);
}

Test(pvdb, time_is_epics_epoch)
{
    pv_time t = pv_time_now();
    /* 2020-01-01 is 946684800 s after the EPICS epoch. */
    cr_assert_gt(t.sec, 946684800u);
    cr_assert_lt(t.nsec, 1000000000u);
    cr_assert_str_eq(pvdb_strerror(PVDB_EREADONLY), "PV is read-only");
}

/* Alarm limits drive the alarm state the way an EPICS ai record's do; an alarm
 * the owner set itself is not overridden by them. */
Test(pvdb, alarm_limits_raise_and_clear_limit_alarms)
{
    pv_group *g = pvdb_group_new(db, "X:");
    pv_limits lim = {.disp_hi = 100, .disp_lo = -100, .alarm_hi = 90, .warn_hi = 80,
                     .warn_lo = -80, .alarm_lo = -90};
    pv *p;
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "L", .type = PV_DOUBLE, .limits = lim,
                                            .alarm_limits = true},
                              &p),
                 0);
    struct {
        double v;
        int16_t status, severity;
    } cases[] = {{0, PV_ALARM_NONE, PV_SEV_NONE},    {85, PV_ALARM_HIGH, PV_SEV_MINOR},
                 {90, PV_ALARM_HIHI, PV_SEV_MAJOR},  {-85, PV_ALARM_LOW, PV_SEV_MINOR},
                 {-95, PV_ALARM_LOLO, PV_SEV_MAJOR}, {10, PV_ALARM_NONE, PV_SEV_NONE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(pv_set_double(p, cases[i].v), 0);
        cr_expect_eq(pv_status(p), cases[i].status, "value %g", cases[i].v);
        cr_expect_eq(pv_severity(p), cases[i].severity, "value %g", cases[i].v);
    }
    pv_set_alarm(p, PV_ALARM_COMM, PV_SEV_INVALID);
    cr_assert_eq(pv_set_double(p, 95), 0);
    cr_expect_eq(pv_status(p), PV_ALARM_COMM);

    pv *q; /* without .alarm_limits the limits are display-only */
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "M", .type = PV_DOUBLE, .limits = lim}, &q), 0);
    cr_assert_eq(pv_set_double(q, 95), 0);
    cr_expect_eq(pv_status(q), PV_ALARM_NONE);
}

/* A watch with mask 0 is never called for a post, only for its PV's deletion; changing the
 * mask makes it take events again, and back. */
Test(pvdb, watches_without_events_are_not_walked)
{
    pv_group *g = pvdb_group_new(db, "M:");
    pv *p;
    pv_group_add(g, &(pv_def){.name = "A", .type = PV_LONG}, &p);
    struct seen idle = {0}, busy = {0};
    pv_watch wi, wb;
    pv_watch_init(&wi, record, &idle, 0);
    pv_watch_init(&wb, record, &busy, PV_EV_VALUE);
    pv_watch_start(p, &wi);
    pv_watch_start(p, &wb);
    pv_set_long(p, 1);
    cr_assert_eq(idle.calls, 0);
    cr_assert_eq(busy.calls, 1);
    pv_watch_set_mask(&wi, PV_EV_VALUE | PV_EV_ALARM);
    cr_assert(pv_watch_active(&wi));
    pv_set_long(p, 2);
    cr_assert_eq(idle.calls, 1);
    cr_assert_eq(idle.events, PV_EV_VALUE);
    cr_assert_eq(busy.calls, 2);
    pv_watch_set_mask(&wb, 0);
    pv_set_long(p, 3);
    cr_expect_eq(busy.calls, 2, "a watch set to mask 0 was called");
    cr_assert_eq(idle.calls, 2);
    pv_group_free(g); /* both are told, mask or not */
    cr_assert_eq(idle.deletes, 1);
    cr_assert_eq(busy.deletes, 1);
    cr_assert(!pv_watch_active(&wb));
}

/* ---- the access policy ---- */

struct policy_seen {
    unsigned refused;
    double value;
    char user[16];
};

/* alice writes; everyone reads except "blind" */
static unsigned only_alice(const pv *p, const pv_client *who, void *arg)
{
    (void)p, (void)arg;
    if (strcmp(who->user, "blind") == 0)
        return 0;
    return PV_ACCESS_READ | (strcmp(who->user, "alice") == 0 ? PV_ACCESS_WRITE : 0);
}

static void note_refusal(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)p, (void)n;
    struct policy_seen *s = arg;
    s->refused++;
    memcpy(&s->value, value, sizeof(s->value));
    snprintf(s->user, sizeof(s->user), "%s", who->user);
}

Test(pvdb, one_access_policy_for_every_writer)
{
    pv_group *g = pvdb_group_new(db, "T:");
    pv *rw, *ro;
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "RW", .type = PV_DOUBLE, .writable = true}, &rw), 0);
    cr_assert_eq(pv_group_add(g, &(pv_def){.name = "RO", .type = PV_DOUBLE}, &ro), 0);
    pv_client alice = {.host = "h", .user = "alice", .ip = 0x0A000001}, bob = {.host = "h", .user = "bob"},
              blind = {.host = "h", .user = "blind"};
    /* default: everyone writes what is writable */
    cr_expect_eq(pv_access(rw, &bob), PV_ACCESS_READ | PV_ACCESS_WRITE);
    cr_expect_eq(pv_access(ro, &bob), PV_ACCESS_READ);
    struct policy_seen seen = {0};
    pvdb_set_access(db, only_alice, note_refusal, &seen);
    cr_expect_eq(pv_access(rw, &alice), PV_ACCESS_READ | PV_ACCESS_WRITE);
    cr_expect_eq(pv_access(ro, &alice), PV_ACCESS_READ, "a read-only PV is never writable");
    cr_expect_eq(pv_access(rw, &bob), PV_ACCESS_READ);
    cr_expect_eq(pv_access(rw, &blind), 0u);
    cr_expect_eq(pv_write_double(rw, 2.5, &alice), PVDB_OK);
    cr_expect_eq(pv_write_double(rw, 7, &bob), PVDB_EACCESS);
    cr_expect_eq(pv_get_double(rw), 2.5, "a refused write changed the value");
    cr_expect_eq(seen.refused, 1u);
    cr_expect_eq(seen.value, 7.0);
    cr_expect_str_eq(seen.user, "bob");
    /* a caller's own refusal (a CA channel without write rights) is told the same way */
    double v = 9;
    cr_expect_eq(pv_write_refused(rw, &v, 1, &alice), PVDB_EACCESS);
    cr_expect_eq(seen.refused, 2u);
    cr_expect_eq(pv_get_double(rw), 2.5);
    /* ... but not a write that was never possible */
    cr_expect_eq(pv_write_refused(ro, &v, 1, &alice), PVDB_EREADONLY);
    cr_expect_eq(seen.refused, 2u);
    cr_expect_str_eq(pvdb_strerror(PVDB_EACCESS), "no write access");
}

Test(pvdb, a_group_owner_is_found_only_by_its_kind)
{
    static const char kind, other;
    int data = 5;
    pv_group *g = pvdb_group_new(db, "O:");
    cr_expect_null(pv_group_owner(g, &kind));
    pv_group_set_owner(g, &kind, &data);
    cr_expect_eq(pv_group_owner(g, &kind), &data);
    cr_expect_null(pv_group_owner(g, &other));
}
