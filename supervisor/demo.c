/* demo.c — the demo PV set served by `guardiand --demo` (docs/demo-pvs.md).
 *
 * It exists so that the CA server can be exercised, tested and benchmarked
 * before nodes exist: every native type, arrays, read-only and rejecting
 * PVs, channels that change on timers, and a group that clients can remove
 * and re-add over CA (to test SERVER_DISCONN and reconnection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

struct demo {
    sup *sup;
    pv_group *main, *numbered, *removable;
    pv *exectime, *counter;
    ev_timer fast, slow;
    double exectime_value;
};

static const char *const enum_states[] = {"OFF", "ON", "STANDBY"};
static const char *const group_states[] = {"ABSENT", "PRESENT"};

static int reject_negative(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)pv, (void)n, (void)who, (void)arg;
    int32_t v;
    memcpy(&v, value, sizeof(v));
    return v < 0 ? PVDB_EREJECT : PVDB_OK;
}

static int add_removable(struct demo *d, char *err, size_t errlen)
{
    d->removable = pvdb_group_new(d->sup->db, "DEMO:G:");
    if (!d->removable)
        goto nomem;
    pv *a, *b;
    if (pv_group_add(d->removable, &(pv_def){.name = "A", .type = PV_DOUBLE, .writable = true}, &a) ||
        pv_group_add(d->removable, &(pv_def){.name = "B", .type = PV_LONG}, &b))
        goto nomem;
    pv_set_double(a, 0);
    pv_set_long(b, 1);
    return 0;
nomem:
    snprintf(err, errlen, "demo: cannot create the removable group");
    return -1;
}

/* DEMO:GROUP: writing ABSENT removes DEMO:G:, PRESENT adds it again. */
static int group_write(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n, (void)who;
    struct demo *d = arg;
    uint16_t want;
    memcpy(&want, value, sizeof(want));
    if (want == 0 && d->removable) {
        pv_group_free(d->removable);
        d->removable = NULL;
    } else if (want == 1 && !d->removable) {
        char err[128];
        if (add_removable(d, err, sizeof(err)) < 0)
            return PVDB_ENOMEM;
    }
    pv_set_enum(pv, want);
    return PVDB_OK;
}

static void fast_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    struct demo *d = w->data;
    d->exectime_value += 1.0 / 16;
    pv_set_double(d->exectime, d->exectime_value);
}

static void slow_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    struct demo *d = w->data;
    pv_set_long(d->counter, pv_get_long(d->counter) + 1);
}

static pv_limits limits(double lo, double hi)
{
    return (pv_limits){.disp_hi = hi, .disp_lo = lo, .ctrl_hi = hi, .ctrl_lo = lo};
}

static pv_limits alarm_limits(double lo, double hi, double hihi, double high, double low, double lolo)
{
    pv_limits l = limits(lo, hi);
    l.alarm_hi = hihi;
    l.warn_hi = high;
    l.warn_lo = low;
    l.alarm_lo = lolo;
    return l;
}

/* The scalar and array PVs of the main group, and their first values. */
static int add_main(struct demo *d)
{
    pv_group *g = d->main;
    pv *p;
    int err = 0;
#define ADD(...) (err = err ? err : pv_group_add(g, &(pv_def){__VA_ARGS__}, &p))
    ADD(.name = "STRING", .type = PV_STRING, .writable = true);
    if (!err) pv_set_string(p, "hello");
    ADD(.name = "SHORT", .type = PV_SHORT, .units = "counts", .writable = true,
        .limits = alarm_limits(-1000, 1000, 900, 800, -800, -900), .alarm_limits = true);
    if (!err) pv_set_long(p, 7);
    ADD(.name = "FLOAT", .type = PV_FLOAT, .units = "V", .precision = 3, .writable = true,
        .limits = alarm_limits(-10, 10, 9, 8, -8, -9), .alarm_limits = true);
    if (!err) pv_set_double(p, 1.5);
    ADD(.name = "ENUM", .type = PV_ENUM, .enums = enum_states, .n_enums = 3, .writable = true);
    if (!err) pv_set_enum(p, 0);
    ADD(.name = "CHAR", .type = PV_CHAR, .writable = true);
    if (!err) pv_set_long(p, 65);
    ADD(.name = "LONG", .type = PV_LONG, .units = "counts", .writable = true,
        .limits = limits(-100000, 100000));
    if (!err) pv_set_long(p, 42);
    ADD(.name = "DOUBLE", .type = PV_DOUBLE, .units = "mm", .precision = 4, .writable = true,
        .limits = alarm_limits(-100, 100, 90, 80, -80, -90), .alarm_limits = true);
    if (!err) pv_set_double(p, 3.14159);
    ADD(.name = "EXECTIME", .type = PV_DOUBLE, .units = "seconds", .precision = 3);
    if (!err) { d->exectime = p; pv_set_double(p, 0); }
    ADD(.name = "COUNTER", .type = PV_LONG);
    if (!err) { d->counter = p; pv_set_long(p, 0); }
    ADD(.name = "RO", .type = PV_DOUBLE);
    if (!err) pv_set_double(p, 1.0);
    ADD(.name = "REJECT", .type = PV_LONG, .writable = true, .on_write = reject_negative);
    if (!err) pv_set_long(p, 0);
    ADD(.name = "GROUP", .type = PV_ENUM, .enums = group_states, .n_enums = 2, .writable = true,
        .on_write = group_write, .arg = d);
    if (!err) pv_set_enum(p, 1);
    if (err)
        return err;
    return 0;
#undef ADD
}

static int add_arrays(struct demo *d)
{
    pv_group *g = d->main;
    pv *wave, *big, *shorts, *strings, *longstr;
    int err = 0;
    err = err ? err : pv_group_add(g, &(pv_def){.name = "WAVE", .type = PV_DOUBLE, .count = 1000, .writable = true}, &wave);
    err = err ? err : pv_group_add(g, &(pv_def){.name = "BIGWAVE", .type = PV_DOUBLE, .count = 100000, .writable = true}, &big);
    err = err ? err : pv_group_add(g, &(pv_def){.name = "SHORTS", .type = PV_SHORT, .count = 16, .writable = true}, &shorts);
    err = err ? err : pv_group_add(g, &(pv_def){.name = "STRINGS", .type = PV_STRING, .count = 4, .writable = true}, &strings);
    err = err ? err : pv_group_add(g, &(pv_def){.name = "LONGSTR", .type = PV_CHAR, .count = 256, .writable = true}, &longstr);
    if (err)
        return err;
    double w[1000];
    for (int i = 0; i < 1000; i++)
        w[i] = i * 0.5;
    pv_set_array(wave, w, 1000);
    double *zeros = calloc(100000, sizeof(double));
    if (!zeros)
        return PVDB_ENOMEM;
    pv_set_array(big, zeros, 100000);
    free(zeros);
    int16_t s[16];
    for (int i = 0; i < 16; i++)
        s[i] = (int16_t)i;
    pv_set_array(shorts, s, 16);
    char strs[4][PV_STRING_SIZE] = {"a", "b", "c", "d"};
    pv_set_array(strings, strs, 4);
    pv_set_string(longstr, "guardiand long string");
    return 0;
}

static int add_numbered(struct demo *d, unsigned count)
{
    d->numbered = pvdb_group_new(d->sup->db, "DEMO:N:");
    if (!d->numbered)
        return PVDB_ENOMEM;
    for (unsigned i = 0; i < count; i++) {
        char name[16];
        pv *p;
        snprintf(name, sizeof(name), "%u", i);
        int err = pv_group_add(d->numbered, &(pv_def){.name = name, .type = PV_LONG, .writable = true}, &p);
        if (err)
            return err;
        pv_set_long(p, (long)i);
    }
    return 0;
}

struct demo *demo_new(sup *s, unsigned count, char *err, size_t errlen)
{
    struct demo *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "demo: out of memory");
        return NULL;
    }
    d->sup = s;
    d->main = pvdb_group_new(s->db, "DEMO:");
    int e = d->main ? 0 : PVDB_ENOMEM;
    if (!e)
        e = add_main(d);
    if (!e)
        e = add_arrays(d);
    if (!e)
        e = add_numbered(d, count);
    if (!e && add_removable(d, err, errlen) < 0)
        e = PVDB_ENOMEM;
    if (e) {
        snprintf(err, errlen, "demo: %s", pvdb_strerror(e));
        demo_free(d);
        return NULL;
    }
    ev_timer_init(&d->fast, fast_cb, 1.0 / 16, 1.0 / 16);
    ev_timer_init(&d->slow, slow_cb, 0.1, 0.1);
    d->fast.data = d->slow.data = d;
    ev_timer_start(s->loop, &d->fast);
    ev_timer_start(s->loop, &d->slow);
    return d;
}

void demo_free(struct demo *d)
{
    if (!d)
        return;
    ev_timer_stop(d->sup->loop, &d->fast);
    ev_timer_stop(d->sup->loop, &d->slow);
    pv_group_free(d->removable);
    pv_group_free(d->numbered);
    pv_group_free(d->main);
    free(d);
}

bool demo_read_only(const char *user) { return strcmp(user, "guest") == 0; }
