/* test_ca_libca.c — guardiand against EPICS Base's own client library (libca).
 *
 * Every test starts its own daemon on free 127.0.0.1 ports (tests/lib/harness.h), talks to
 * the demo PV set (docs/demo-pvs.md) with libca in non-preemptive mode, and ends with
 * finish(), which stops the daemon with SIGTERM and requires exit status 0. (Criterion does
 * not fail a test for an assertion in .fini, so that check lives in the test bodies; .fini only
 * cleans up after a test that failed early.) Every wait is bounded.
 *
 * Expected values come from docs/demo-pvs.md and ../shared/docs/ca-protocol.md (sections 4.6
 * and 4.7 for conversions and counts, 5 for what libca relies on).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/epics_ca.h"
#include "tests/lib/harness.h"
#include "tests/lib/libca_checks.h"

/* ---- fixture ---- */

static harness_daemon gd;
static bool ca_up;

struct exception_log {
    int n;
    long stat, op, type, count;
    chid chan;
    char ctx[256];
};
static struct exception_log exc;

static void on_exception(struct exception_handler_args a)
{
    exc.n++;
    exc.stat = a.stat;
    exc.op = a.op;
    exc.type = a.type;
    exc.count = a.count;
    exc.chan = a.chid;
    snprintf(exc.ctx, sizeof exc.ctx, "%s", a.ctx != NULL ? a.ctx : "");
}

static void start_daemon(const harness_opts *o, const char *max_array_bytes)
{
    const char *bin = getenv("GUARDIAND");
    cr_assert_eq(harness_start(&gd, o), 0, "guardiand (%s) did not start",
                 bin != NULL ? bin : "build/bin/guardiand");
    if (max_array_bytes != NULL)
        setenv("EPICS_CA_MAX_ARRAY_BYTES", max_array_bytes, 1);
    else
        unsetenv("EPICS_CA_MAX_ARRAY_BYTES");
    cr_assert_eq(harness_ca_context(&gd), ECA_NORMAL, "ca_context_create failed");
    ca_up = true;
    memset(&exc, 0, sizeof exc);
    ca_add_exception_event(on_exception, NULL);
}

static void start(void) { start_daemon(NULL, NULL); }

/* The end of every test: the daemon must still be running and exit 0 on SIGTERM. */
static void finish(void)
{
    ca_context_destroy();
    ca_up = false;
    bool alive = harness_alive(&gd);
    int code = harness_stop(&gd, 0);
    gd.log_path[0] = '\0';
    cr_assert(alive, "guardiand died during the test (exit status %d)", code);
    cr_assert_eq(code, 0, "guardiand exited with status %d after SIGTERM, expected 0", code);
}

static void cleanup(void)
{
    if (ca_up)
        ca_context_destroy();
    ca_up = false;
    harness_stop(&gd, 5);
}

TestSuite(libca, .fini = cleanup, .timeout = 60);

/* ---- small libca helpers ---- */

static double get_double(chid c)
{
    dbr_double_t v = NAN;
    cr_assert_eq(ca_array_get(DBR_DOUBLE, 1, c, &v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL, "DBR_DOUBLE get of %s timed out", ca_name(c));
    return v;
}

static void get_string(chid c, char out[MAX_STRING_SIZE])
{
    memset(out, 0, MAX_STRING_SIZE);
    cr_assert_eq(ca_array_get(DBR_STRING, 1, c, out), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL, "DBR_STRING get of %s timed out", ca_name(c));
    cr_assert(memchr(out, '\0', MAX_STRING_SIZE) != NULL, "%s: string not terminated", ca_name(c));
}

static struct completion put_done; /* static: libca may call back late after a failed test */

/* ca_array_put_callback and wait for its callback; returns the callback's status, or the
 * immediate status if libca refused the request. */
static int put_wait(chid ch, chtype type, unsigned long n, const void *value)
{
    memset(&put_done, 0, sizeof put_done);
    int st = ca_array_put_callback(type, n, ch, value, on_put_done, &put_done);
    if (st != ECA_NORMAL)
        return st;
    WAIT_UNTIL(put_done.done > 0, 5.0);
    cr_assert_eq(put_done.done, 1, "%s: %d put callbacks, expected 1", ca_name(ch),
                 put_done.done);
    return put_done.status;
}

/* A reply to a get-callback or a subscription update, copied. */
struct reply {
    int done;
    int status;
    long type, count;
    union {
        double align;
        unsigned char b[512];
    } u;
};

static void on_reply(struct event_handler_args a)
{
    struct reply *r = a.usr;
    r->done++;
    r->status = a.status;
    r->type = a.type;
    r->count = a.count;
    if (a.status == ECA_NORMAL && a.dbr != NULL) {
        size_t n = harness_dbr_size_n((unsigned)a.type, (unsigned long)a.count);
        memcpy(r->u.b, a.dbr, n < sizeof r->u.b ? n : sizeof r->u.b);
    }
}

/* ---- reading DBR buffers ---- */

enum { KIND_STRING = 0, KIND_SHORT, KIND_FLOAT, KIND_ENUM, KIND_CHAR, KIND_LONG, KIND_DOUBLE };

/* The value type of a DBR code: 0..6 as above (35/36 are uint16 like ENUM, 37/38 strings). */
static int value_kind(unsigned t)
{
    if (t < 35)
        return (int)(t % 7);
    return t == 35 || t == 36 ? KIND_ENUM : KIND_STRING;
}

static double elem_num(unsigned t, const void *dbr, size_t i)
{
    const unsigned char *p =
        (const unsigned char *)dbr + harness_dbr_value_offset(t) + i * harness_dbr_value_size(t);
    switch (value_kind(t)) {
    case KIND_SHORT: { int16_t v; memcpy(&v, p, sizeof v); return v; }
    case KIND_FLOAT: { float v; memcpy(&v, p, sizeof v); return v; }
    case KIND_ENUM: { uint16_t v; memcpy(&v, p, sizeof v); return v; }
    case KIND_CHAR: return *p;
    case KIND_LONG: { int32_t v; memcpy(&v, p, sizeof v); return v; }
    case KIND_DOUBLE: { double v; memcpy(&v, p, sizeof v); return v; }
    default: return NAN;
    }
}

static const char *elem_str(unsigned t, const void *dbr, size_t i)
{
    return (const char *)dbr + harness_dbr_value_offset(t) + i * harness_dbr_value_size(t);
}

/* A value of the PV converted to a value kind as a server does (C casts, 4.6). */
static double as_kind(int kind, double v)
{
    switch (kind) {
    case KIND_SHORT: return (int16_t)(int32_t)v;
    case KIND_FLOAT: return (float)v;
    case KIND_ENUM: return (uint16_t)(int32_t)v;
    case KIND_CHAR: return (uint8_t)(int32_t)v;
    case KIND_LONG: return (int32_t)v;
    default: return v;
    }
}

struct limits {
    const char *units;
    int prec; /* -1: the type has no precision field */
    bool ctrl;
    double disp_hi, disp_lo, hihi, high, low, lolo, ctrl_hi, ctrl_lo;
};

#define COPY_GR(p)                                                                           \
    do {                                                                                     \
        l->units = (p)->units;                                                               \
        l->disp_hi = (p)->upper_disp_limit;                                                  \
        l->disp_lo = (p)->lower_disp_limit;                                                  \
        l->hihi = (p)->upper_alarm_limit;                                                    \
        l->high = (p)->upper_warning_limit;                                                  \
        l->low = (p)->lower_warning_limit;                                                   \
        l->lolo = (p)->lower_alarm_limit;                                                    \
    } while (0)
#define COPY_CTRL(p)                                                                         \
    do {                                                                                     \
        COPY_GR(p);                                                                          \
        l->ctrl = true;                                                                      \
        l->ctrl_hi = (p)->upper_ctrl_limit;                                                  \
        l->ctrl_lo = (p)->lower_ctrl_limit;                                                  \
    } while (0)

/* The metadata of a numeric GR or CTRL reply; false for other types. */
static bool reply_limits(unsigned t, const void *dbr, struct limits *l)
{
    memset(l, 0, sizeof *l);
    l->prec = -1;
    switch (t) {
    case DBR_GR_SHORT: COPY_GR((const struct dbr_gr_short *)dbr); return true;
    case DBR_GR_CHAR: COPY_GR((const struct dbr_gr_char *)dbr); return true;
    case DBR_GR_LONG: COPY_GR((const struct dbr_gr_long *)dbr); return true;
    case DBR_GR_FLOAT:
        COPY_GR((const struct dbr_gr_float *)dbr);
        l->prec = ((const struct dbr_gr_float *)dbr)->precision;
        return true;
    case DBR_GR_DOUBLE:
        COPY_GR((const struct dbr_gr_double *)dbr);
        l->prec = ((const struct dbr_gr_double *)dbr)->precision;
        return true;
    case DBR_CTRL_SHORT: COPY_CTRL((const struct dbr_ctrl_short *)dbr); return true;
    case DBR_CTRL_CHAR: COPY_CTRL((const struct dbr_ctrl_char *)dbr); return true;
    case DBR_CTRL_LONG: COPY_CTRL((const struct dbr_ctrl_long *)dbr); return true;
    case DBR_CTRL_FLOAT:
        COPY_CTRL((const struct dbr_ctrl_float *)dbr);
        l->prec = ((const struct dbr_ctrl_float *)dbr)->precision;
        return true;
    case DBR_CTRL_DOUBLE:
        COPY_CTRL((const struct dbr_ctrl_double *)dbr);
        l->prec = ((const struct dbr_ctrl_double *)dbr)->precision;
        return true;
    default: return false;
    }
}

/* ---- the demo PV set ---- */

struct demo_pv {
    const char *name;
    short type;
    unsigned long count;
    bool writable;
};

static const struct demo_pv demo[] = {
    { "DEMO:STRING", DBF_STRING, 1, true },    { "DEMO:SHORT", DBF_SHORT, 1, true },
    { "DEMO:FLOAT", DBF_FLOAT, 1, true },      { "DEMO:ENUM", DBF_ENUM, 1, true },
    { "DEMO:CHAR", DBF_CHAR, 1, true },        { "DEMO:LONG", DBF_LONG, 1, true },
    { "DEMO:DOUBLE", DBF_DOUBLE, 1, true },    { "DEMO:EXECTIME", DBF_DOUBLE, 1, false },
    { "DEMO:COUNTER", DBF_LONG, 1, false },    { "DEMO:RO", DBF_DOUBLE, 1, false },
    { "DEMO:REJECT", DBF_LONG, 1, true },      { "DEMO:WAVE", DBF_DOUBLE, 1000, true },
    { "DEMO:BIGWAVE", DBF_DOUBLE, 100000, true }, { "DEMO:SHORTS", DBF_SHORT, 16, true },
    { "DEMO:STRINGS", DBF_STRING, 4, true },   { "DEMO:LONGSTR", DBF_CHAR, 256, true },
    { "DEMO:GROUP", DBF_ENUM, 1, true },       { "DEMO:G:A", DBF_DOUBLE, 1, true },
    { "DEMO:G:B", DBF_LONG, 1, false },        { "DEMO:N:0", DBF_LONG, 1, true },
    { "DEMO:N:999", DBF_LONG, 1, true },
};
#define N_DEMO (sizeof demo / sizeof demo[0])

enum alarm_spec { ALARM_UNSPECIFIED = 0, ALARM_GIVEN, ALARM_NONE };

/* What docs/demo-pvs.md promises about each static scalar. Unlisted metadata is not checked. */
struct expect {
    const char *name;
    short type;
    double value;       /* initial value (numeric and enum PVs) */
    const char *text;   /* exact DBR_STRING text; NULL: compare the number it parses to */
    const char *units;  /* NULL: unspecified */
    int prec;           /* -1: unspecified */
    bool ranged;        /* display and control limits lo..hi given */
    double lo, hi;
    enum alarm_spec alarm;
    double hihi, high, low, lolo;
    const char *const *states;
    int n_states;
};

static const char *const enum_states[] = { "OFF", "ON", "STANDBY" };
static const char *const group_states[] = { "ABSENT", "PRESENT" };

static const struct expect scalars[] = {
    { .name = "DEMO:STRING", .type = DBF_STRING, .text = "hello", .prec = -1 },
    { .name = "DEMO:SHORT", .type = DBF_SHORT, .value = 7, .text = "7", .units = "counts",
      .prec = -1, .ranged = true, .lo = -1000, .hi = 1000, .alarm = ALARM_GIVEN, .hihi = 900,
      .high = 800, .low = -800, .lolo = -900 },
    { .name = "DEMO:FLOAT", .type = DBF_FLOAT, .value = 1.5, .text = "1.500", .units = "V",
      .prec = 3, .ranged = true, .lo = -10, .hi = 10, .alarm = ALARM_GIVEN, .hihi = 9,
      .high = 8, .low = -8, .lolo = -9 },
    { .name = "DEMO:ENUM", .type = DBF_ENUM, .value = 0, .text = "OFF", .prec = -1,
      .states = enum_states, .n_states = 3 },
    { .name = "DEMO:CHAR", .type = DBF_CHAR, .value = 65, .text = "65", .prec = -1 },
    { .name = "DEMO:LONG", .type = DBF_LONG, .value = 42, .text = "42", .units = "counts",
      .prec = -1, .ranged = true, .lo = -100000, .hi = 100000, .alarm = ALARM_NONE },
    { .name = "DEMO:DOUBLE", .type = DBF_DOUBLE, .value = 3.14159, .text = "3.1416",
      .units = "mm", .prec = 4, .ranged = true, .lo = -100, .hi = 100, .alarm = ALARM_GIVEN,
      .hihi = 90, .high = 80, .low = -80, .lolo = -90 },
    { .name = "DEMO:RO", .type = DBF_DOUBLE, .value = 1.0, .prec = -1 },
    { .name = "DEMO:REJECT", .type = DBF_LONG, .value = 0, .text = "0", .prec = -1 },
    { .name = "DEMO:GROUP", .type = DBF_ENUM, .value = 1, .text = "PRESENT", .prec = -1,
      .states = group_states, .n_states = 2 },
    { .name = "DEMO:G:A", .type = DBF_DOUBLE, .value = 0, .prec = -1 },
    { .name = "DEMO:G:B", .type = DBF_LONG, .value = 1, .text = "1", .prec = -1 },
};
#define N_SCALARS (sizeof scalars / sizeof scalars[0])

/* ---- connection, native type and count ---- */

Test(libca, connects_to_every_demo_pv_with_native_type_and_count)
{
    start();
    chid ch[N_DEMO];
    const char *names[N_DEMO];
    for (size_t i = 0; i < N_DEMO; i++)
        names[i] = demo[i].name;
    size_t up = harness_ca_connect(ch, names, N_DEMO, 10.0);
    for (size_t i = 0; i < N_DEMO; i++) {
        cr_expect_eq(ca_state(ch[i]), cs_conn, "%s did not connect", demo[i].name);
        if (ca_state(ch[i]) != cs_conn)
            continue;
        cr_expect_eq(ca_field_type(ch[i]), demo[i].type, "%s: native type %d, expected %d",
                     demo[i].name, ca_field_type(ch[i]), demo[i].type);
        cr_expect_eq(ca_element_count(ch[i]), demo[i].count, "%s: count %lu, expected %lu",
                     demo[i].name, ca_element_count(ch[i]), demo[i].count);
        cr_expect_eq(ca_read_access(ch[i]), 1u, "%s: no read access", demo[i].name);
        cr_expect_eq(ca_write_access(ch[i]), demo[i].writable ? 1u : 0u,
                     "%s: write access %u, expected %d", demo[i].name, ca_write_access(ch[i]),
                     demo[i].writable);
    }
    cr_assert_eq(up, N_DEMO);

    /* Names outside the set stay unconnected (libca keeps searching; the server stays silent). */
    const char *absent[] = { "DEMO:N:1000", "DEMO:NOPE", "DEMO", "DEMO:G:" };
    chid none[4];
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(ca_create_channel(absent[i], NULL, NULL, 0, &none[i]), ECA_NORMAL);
    harness_ca_idle(1.0);
    for (size_t i = 0; i < 4; i++)
        cr_expect_eq(ca_state(none[i]), cs_never_conn, "%s connected but is not served",
                     absent[i]);
    cr_expect_eq(exc.n, 0, "unexpected exception: %s (%s)", ca_message(exc.stat), exc.ctx);
    finish();
}

/* ---- gets of every DBR type ---- */

static void check_get(const struct expect *e, unsigned t, const struct reply *r)
{
    if (t == DBR_PUT_ACKT || t == DBR_PUT_ACKS) {
        cr_expect_eq(r->status, ECA_GETFAIL, "%s type %u: status %d (%s), expected ECA_GETFAIL",
                     e->name, t, r->status, ca_message(r->status));
        return;
    }
    int kind = value_kind(t);
    if (e->type == DBF_STRING && kind != KIND_STRING) {
        /* "hello" cannot be converted to a number (4.6): the read fails. */
        cr_expect_eq(r->status, ECA_GETFAIL, "%s type %u: status %d (%s), expected ECA_GETFAIL",
                     e->name, t, r->status, ca_message(r->status));
        return;
    }
    cr_expect_eq(r->status, ECA_NORMAL, "%s type %u: status %d (%s)", e->name, t, r->status,
                 ca_message(r->status));
    if (r->status != ECA_NORMAL)
        return;
    cr_expect_eq(r->type, (long)t, "%s type %u: reply type %ld", e->name, t, r->type);
    cr_expect_eq(r->count, 1, "%s type %u: reply count %ld", e->name, t, r->count);
    const void *dbr = r->u.b;

    /* Alarm state: every demo scalar starts inside its limits. */
    if (t >= 7) {
        const dbr_short_t *ss = dbr;
        if (t != DBR_CLASS_NAME)
            cr_expect(ss[0] == 0 && ss[1] == 0, "%s type %u: status %d severity %d, expected 0 0",
                      e->name, t, ss[0], ss[1]);
    }
    if (t >= DBR_TIME_STRING && t <= DBR_TIME_DOUBLE) {
        const epicsTimeStamp *ts = &((const struct dbr_time_string *)dbr)->stamp;
        double now = epics_now();
        cr_expect(ts->nsec < 1000000000u, "%s type %u: nsec %u", e->name, t, ts->nsec);
        cr_expect(ts->secPastEpoch == 0 ||
                      (ts->secPastEpoch > now - 86400.0 && ts->secPastEpoch < now + 10.0),
                  "%s type %u: timestamp %u is not near now (%.0f, EPICS epoch)", e->name, t,
                  ts->secPastEpoch, now);
    }

    /* GR/CTRL metadata. */
    struct limits l;
    if (reply_limits(t, dbr, &l)) {
        if (e->units != NULL)
            cr_expect(strncmp(l.units, e->units, MAX_UNITS_SIZE) == 0,
                      "%s type %u: units \"%.8s\", expected \"%s\"", e->name, t, l.units, e->units);
        cr_expect(memchr(l.units, '\0', MAX_UNITS_SIZE) != NULL, "%s type %u: units not "
                  "NUL-terminated", e->name, t);
        if (e->prec >= 0 && l.prec >= 0)
            cr_expect_eq(l.prec, e->prec, "%s type %u: precision %d, expected %d", e->name, t,
                         l.prec, e->prec);
        if (e->ranged) {
            cr_expect(l.disp_hi == as_kind(kind, e->hi) && l.disp_lo == as_kind(kind, e->lo),
                      "%s type %u: display limits %g..%g, expected %g..%g", e->name, t,
                      l.disp_lo, l.disp_hi, as_kind(kind, e->lo), as_kind(kind, e->hi));
            if (l.ctrl)
                cr_expect(l.ctrl_hi == as_kind(kind, e->hi) && l.ctrl_lo == as_kind(kind, e->lo),
                          "%s type %u: control limits %g..%g, expected %g..%g", e->name, t,
                          l.ctrl_lo, l.ctrl_hi, as_kind(kind, e->lo), as_kind(kind, e->hi));
        }
        if (e->alarm == ALARM_GIVEN) {
            cr_expect(l.hihi == as_kind(kind, e->hihi) && l.high == as_kind(kind, e->high) &&
                          l.low == as_kind(kind, e->low) && l.lolo == as_kind(kind, e->lolo),
                      "%s type %u: alarm limits %g %g %g %g, expected %g %g %g %g", e->name, t,
                      l.hihi, l.high, l.low, l.lolo, as_kind(kind, e->hihi),
                      as_kind(kind, e->high), as_kind(kind, e->low), as_kind(kind, e->lolo));
        } else if (e->alarm == ALARM_NONE) {
            bool fp = kind == KIND_FLOAT || kind == KIND_DOUBLE;
            bool ok = fp ? isnan(l.hihi) && isnan(l.high) && isnan(l.low) && isnan(l.lolo)
                         : l.hihi == 0 && l.high == 0 && l.low == 0 && l.lolo == 0;
            cr_expect(ok, "%s type %u: alarm limits %g %g %g %g, expected %s (none set)",
                      e->name, t, l.hihi, l.high, l.low, l.lolo, fp ? "NaN" : "0");
        }
    }
    if (t == DBR_GR_ENUM || t == DBR_CTRL_ENUM) {
        const struct dbr_gr_enum *ge = dbr;
        cr_expect_eq(ge->no_str, e->n_states, "%s type %u: no_str %d, expected %d", e->name, t,
                     ge->no_str, e->n_states);
        for (int i = 0; i < e->n_states && i < ge->no_str; i++)
            cr_expect(strncmp(ge->strs[i], e->states[i], MAX_ENUM_STRING_SIZE) == 0,
                      "%s type %u: state %d \"%.26s\", expected \"%s\"", e->name, t, i,
                      ge->strs[i], e->states[i]);
    }

    /* The value. */
    if (t == DBR_CLASS_NAME) {
        const char *s = dbr;
        size_t n = strnlen(s, MAX_STRING_SIZE);
        cr_expect(n > 0 && n < MAX_STRING_SIZE, "%s: DBR_CLASS_NAME is empty or unterminated",
                  e->name);
    } else if (kind == KIND_STRING) {
        const char *s = elem_str(t, dbr, 0);
        cr_expect(memchr(s, '\0', MAX_STRING_SIZE) != NULL, "%s type %u: unterminated string",
                  e->name, t);
        if (e->text != NULL) {
            cr_expect(strncmp(s, e->text, MAX_STRING_SIZE) == 0,
                      "%s type %u: \"%.40s\", expected \"%s\"", e->name, t, s, e->text);
        } else {
            double v = strtod(s, NULL);
            cr_expect(fabs(v - e->value) <= 1e-6 * fmax(1.0, fabs(e->value)),
                      "%s type %u: \"%.40s\", expected a text for %g", e->name, t, s, e->value);
        }
    } else {
        double v = elem_num(t, dbr, 0);
        cr_expect(v == as_kind(kind, e->value), "%s type %u: value %.9g, expected %.9g", e->name,
                  t, v, as_kind(kind, e->value));
    }
}

static struct reply scalar_replies[N_SCALARS][39];

static bool all_replied(size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (unsigned t = 0; t <= 38; t++)
            if (scalar_replies[i][t].done == 0)
                return false;
    return true;
}

Test(libca, gets_every_dbr_type_of_every_scalar)
{
    start();
    chid ch[N_SCALARS];
    const char *names[N_SCALARS];
    for (size_t i = 0; i < N_SCALARS; i++)
        names[i] = scalars[i].name;
    cr_assert_eq(harness_ca_connect(ch, names, N_SCALARS, 10.0), N_SCALARS);

    memset(scalar_replies, 0, sizeof scalar_replies);
    for (size_t i = 0; i < N_SCALARS; i++)
        for (unsigned t = 0; t <= 38; t++)
            cr_assert_eq(ca_array_get_callback(t, 1, ch[i], on_reply, &scalar_replies[i][t]),
                         ECA_NORMAL, "%s type %u: request refused", scalars[i].name, t);
    WAIT_UNTIL(all_replied(N_SCALARS), 10.0);
    for (size_t i = 0; i < N_SCALARS; i++)
        for (unsigned t = 0; t <= 38; t++) {
            cr_expect_eq(scalar_replies[i][t].done, 1, "%s type %u: %d replies", scalars[i].name,
                         t, scalar_replies[i][t].done);
            if (scalar_replies[i][t].done == 1)
                check_get(&scalars[i], t, &scalar_replies[i][t]);
        }
    cr_expect_eq(exc.n, 0, "unexpected exception: %s (%s)", ca_message(exc.stat), exc.ctx);
    finish();
}

Test(libca, exectime_ctrl_double_has_units_seconds_and_precision_3)
{
    start();
    chid c = connect1("DEMO:EXECTIME");
    struct dbr_ctrl_double v;
    memset(&v, 0xAA, sizeof v);
    cr_assert_eq(ca_array_get(DBR_CTRL_DOUBLE, 1, c, &v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect_str_eq(v.units, "seconds");
    cr_expect_eq(v.precision, 3);
    struct dbr_time_double tv;
    cr_assert_eq(ca_array_get(DBR_TIME_DOUBLE, 1, c, &tv), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    double now = epics_now();
    cr_expect(tv.stamp.secPastEpoch > now - 10 && tv.stamp.secPastEpoch < now + 10,
              "EXECTIME changes at 16 Hz but its timestamp is %u (now %.0f)",
              tv.stamp.secPastEpoch, now);
    finish();
}

Test(libca, reading_put_ackt_or_acks_fails_with_getfail)
{
    start();
    chid c = connect1("DEMO:DOUBLE");

    /* ca_array_get: the failure arrives through the exception handler (acctst exceptionTest). */
    dbr_ushort_t v = 0;
    cr_assert_eq(ca_array_get(DBR_PUT_ACKT, 1, c, &v), ECA_NORMAL);
    WAIT_UNTIL(exc.n > 0, 5.0);
    cr_expect_eq(exc.n, 1, "%d exceptions for a DBR_PUT_ACKT get, expected 1", exc.n);
    cr_expect_eq(exc.stat, ECA_GETFAIL, "exception %ld (%s), expected ECA_GETFAIL", exc.stat,
                 ca_message(exc.stat));
    cr_expect_eq(exc.op, CA_OP_GET);
    ca_pend_io(0.1);

    /* Get-callback: a non-normal status. */
    static struct reply r;
    memset(&r, 0, sizeof r);
    cr_assert_eq(ca_array_get_callback(DBR_PUT_ACKS, 1, c, on_reply, &r), ECA_NORMAL);
    WAIT_UNTIL(r.done > 0, 5.0);
    cr_expect_eq(r.done, 1);
    cr_expect_eq(r.status, ECA_GETFAIL, "status %d (%s)", r.status, ca_message(r.status));

    /* Subscription: its first update carries the failure. */
    static struct reply m;
    memset(&m, 0, sizeof m);
    evid ev;
    cr_assert_eq(ca_create_subscription(DBR_PUT_ACKT, 1, c, DBE_VALUE | DBE_ALARM, on_reply, &m,
                                        &ev), ECA_NORMAL);
    WAIT_UNTIL(m.done > 0, 5.0);
    cr_expect(m.done >= 1, "no first update for a DBR_PUT_ACKT subscription");
    cr_expect_neq(m.status, ECA_NORMAL, "a DBR_PUT_ACKT subscription update succeeded");
    ca_clear_subscription(ev);

    /* The circuit is still fine. */
    cr_expect_eq(get_double(c), 3.14159);
    finish();
}

/* ---- puts ---- */

/* Encode v as one element of plain type t. */
static void encode(unsigned t, double v, void *out)
{
    switch (t) {
    case DBR_STRING: snprintf(out, MAX_STRING_SIZE, "%.17g", v); break;
    case DBR_SHORT: { int16_t x = (int16_t)v; memcpy(out, &x, sizeof x); break; }
    case DBR_FLOAT: { float x = (float)v; memcpy(out, &x, sizeof x); break; }
    case DBR_ENUM: { uint16_t x = (uint16_t)v; memcpy(out, &x, sizeof x); break; }
    case DBR_CHAR: { uint8_t x = (uint8_t)v; memcpy(out, &x, sizeof x); break; }
    case DBR_LONG: { int32_t x = (int32_t)v; memcpy(out, &x, sizeof x); break; }
    case DBR_DOUBLE: memcpy(out, &v, sizeof v); break;
    }
}

struct put_target {
    const char *name;
    double base;  /* values written: about base + step * (2 * type + mode) */
    double step;
    double wrap;  /* 0, or the modulus for enums */
};

static const struct put_target put_targets[] = {
    { "DEMO:SHORT", -300, 11, 0 },  { "DEMO:FLOAT", -6.5, 0.75, 0 },
    { "DEMO:ENUM", 1, 1, 3 },        { "DEMO:CHAR", 70, 3, 0 },
    { "DEMO:LONG", -50000, 777, 0 }, { "DEMO:DOUBLE", -12.5, 1.25, 0 },
    { "DEMO:REJECT", 3, 5, 0 },      { "DEMO:G:A", 0.25, 2.5, 0 },
    { "DEMO:N:17", -17, 100, 0 },
};

/* The value written with type t: exact in both the PV's type and t. */
static double put_value(const struct put_target *pt, unsigned t, int mode)
{
    double v = pt->base + pt->step * (2 * t + (unsigned)mode);
    if (t == DBR_SHORT || t == DBR_ENUM || t == DBR_CHAR || t == DBR_LONG)
        v = round(v);
    if (t == DBR_CHAR || t == DBR_ENUM)
        v = fmod(fabs(v), 200); /* unsigned types */
    if (t == DBR_SHORT)
        v = fmod(v, 30000);
    if (pt->wrap > 0)
        v = fmod(fabs(v), pt->wrap);
    return v;
}

Test(libca, puts_and_put_callbacks_of_every_plain_type_read_back)
{
    start();
    for (size_t p = 0; p < sizeof put_targets / sizeof put_targets[0]; p++) {
        const struct put_target *pt = &put_targets[p];
        chid c = connect1(pt->name);
        for (unsigned t = DBR_STRING; t <= DBR_DOUBLE; t++) {
            for (int mode = 0; mode < 2; mode++) {
                double v = put_value(pt, t, mode);
                union {
                    double align;
                    char b[MAX_STRING_SIZE];
                } buf;
                memset(&buf, 0, sizeof buf);
                encode(t, v, buf.b);
                if (mode == 0) {
                    cr_assert_eq(ca_array_put(t, 1, c, buf.b), ECA_NORMAL);
                } else {
                    int st = put_wait(c, t, 1, buf.b);
                    cr_expect_eq(st, ECA_NORMAL, "%s: put-callback of type %u (%g): %s",
                                 pt->name, t, v, ca_message(st));
                }
                double back = get_double(c);
                cr_expect_eq(back, v, "%s: %s of type %u wrote %.9g, read back %.9g", pt->name,
                             mode ? "put-callback" : "put", t, v, back);
            }
        }
    }
    cr_expect_eq(exc.n, 0, "unexpected exception: %s (%s)", ca_message(exc.stat), exc.ctx);
    finish();
}

Test(libca, puts_of_every_plain_type_to_a_string_pv)
{
    start();
    chid c = connect1("DEMO:STRING");
    char s[MAX_STRING_SIZE];

    char text[MAX_STRING_SIZE] = "world";
    cr_assert_eq(ca_array_put(DBR_STRING, 1, c, text), ECA_NORMAL);
    get_string(c, s);
    cr_expect_str_eq(s, "world");
    strcpy(text, "a string of exactly 39 characters......");
    cr_assert_eq(strlen(text), 39u);
    cr_expect_eq(put_wait(c, DBR_STRING, 1, text), ECA_NORMAL);
    get_string(c, s);
    cr_expect_str_eq(s, text);

    struct {
        unsigned type;
        double v;
        const char *text; /* exact text, or NULL: parse */
    } cases[] = {
        { DBR_SHORT, -12, "-12" },    { DBR_ENUM, 3, "3" },   { DBR_CHAR, 66, "66" },
        { DBR_LONG, 123456, "123456" }, { DBR_FLOAT, 2.5, NULL }, { DBR_DOUBLE, 0.125, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        union {
            double align;
            char b[MAX_STRING_SIZE];
        } buf;
        encode(cases[i].type, cases[i].v, buf.b);
        cr_expect_eq(put_wait(c, cases[i].type, 1, buf.b), ECA_NORMAL, "type %u",
                     cases[i].type);
        get_string(c, s);
        if (cases[i].text != NULL)
            cr_expect_str_eq(s, cases[i].text, "type %u wrote %g", cases[i].type, cases[i].v);
        else
            cr_expect_eq(strtod(s, NULL), cases[i].v, "type %u wrote %g, read \"%s\"",
                         cases[i].type, cases[i].v, s);
    }
    finish();
}

Test(libca, enum_put_by_state_name)
{
    start();
    chid c = connect1("DEMO:ENUM");
    char s[MAX_STRING_SIZE] = "STANDBY";
    cr_assert_eq(ca_array_put(DBR_STRING, 1, c, s), ECA_NORMAL);
    cr_expect_eq(get_double(c), 2);
    get_string(c, s);
    cr_expect_str_eq(s, "STANDBY");

    strcpy(s, "ON");
    cr_expect_eq(put_wait(c, DBR_STRING, 1, s), ECA_NORMAL);
    dbr_enum_t e = 99;
    cr_assert_eq(ca_array_get(DBR_ENUM, 1, c, &e), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect_eq(e, 1);

    /* A name that is no state, and an index past the last state, fail and change nothing. */
    const char *bad[] = { "BOGUS", "on", "3", "17" };
    for (size_t i = 0; i < 4; i++) {
        memset(s, 0, sizeof s);
        strcpy(s, bad[i]);
        int st = put_wait(c, DBR_STRING, 1, s);
        cr_expect_eq(st, ECA_PUTFAIL, "put \"%s\" to DEMO:ENUM: %s, expected ECA_PUTFAIL",
                     bad[i], ca_message(st));
        cr_expect_eq(get_double(c), 1, "put \"%s\" changed DEMO:ENUM", bad[i]);
    }
    finish();
}

Test(libca, unparseable_string_put_to_numeric_pv_fails)
{
    start();
    const char *names[] = { "DEMO:DOUBLE", "DEMO:LONG", "DEMO:SHORT", "DEMO:FLOAT" };
    const double initial[] = { 3.14159, 42, 7, 1.5 };
    for (size_t i = 0; i < 4; i++) {
        chid c = connect1(names[i]);
        char s[MAX_STRING_SIZE] = "@#$%";

        /* Plain put: an exception (ERROR ECA_PUTFAIL from the server). */
        memset(&exc, 0, sizeof exc);
        cr_assert_eq(ca_array_put(DBR_STRING, 1, c, s), ECA_NORMAL);
        WAIT_UNTIL(exc.n > 0, 5.0);
        cr_expect_eq(exc.n, 1, "%s: %d exceptions for a \"@#$%%\" put, expected 1", names[i],
                     exc.n);
        cr_expect_eq(exc.stat, ECA_PUTFAIL, "%s: exception %ld (%s), expected ECA_PUTFAIL",
                     names[i], exc.stat, ca_message(exc.stat));
        cr_expect_eq(exc.op, CA_OP_PUT, "%s: exception op %ld", names[i], exc.op);
        cr_expect(exc.chan == c, "%s: exception names another channel", names[i]);

        /* Put-callback: the status says so. */
        int st = put_wait(c, DBR_STRING, 1, s);
        cr_expect_eq(st, ECA_PUTFAIL, "%s: put-callback status %s, expected ECA_PUTFAIL",
                     names[i], ca_message(st));
        cr_expect_eq(get_double(c), as_kind(i == 3 ? KIND_FLOAT : KIND_DOUBLE, initial[i]),
                     "%s changed after a failed put", names[i]);
    }
    finish();
}

Test(libca, readonly_pvs_refuse_writes_client_side)
{
    start();
    const char *names[] = { "DEMO:RO", "DEMO:EXECTIME", "DEMO:COUNTER", "DEMO:G:B" };
    for (size_t i = 0; i < 4; i++) {
        chid c = connect1(names[i]);
        cr_expect_eq(ca_write_access(c), 0u, "%s is writable", names[i]);
        cr_expect_eq(ca_read_access(c), 1u, "%s is not readable", names[i]);
        double v = 2.0;
        cr_expect_eq(ca_array_put(DBR_DOUBLE, 1, c, &v), ECA_NOWTACCESS, "%s", names[i]);
        cr_expect_eq(ca_array_put_callback(DBR_DOUBLE, 1, c, &v, on_put_done, &put_done),
                     ECA_NOWTACCESS, "%s", names[i]);
    }
    chid ro = connect1("DEMO:RO");
    cr_expect_eq(get_double(ro), 1.0);
    finish();
}

Test(libca, reject_handler_refuses_negative_values)
{
    start();
    chid c = connect1("DEMO:REJECT");
    dbr_long_t v = -1;
    int st = put_wait(c, DBR_LONG, 1, &v);
    cr_expect_eq(st, ECA_PUTFAIL, "put-callback of -1: %s, expected ECA_PUTFAIL",
                 ca_message(st));
    cr_expect_eq(get_double(c), 0, "DEMO:REJECT changed after a refused write");

    v = 5;
    cr_expect_eq(put_wait(c, DBR_LONG, 1, &v), ECA_NORMAL);
    cr_expect_eq(get_double(c), 5);

    /* Plain put of a refused value: an exception, and the value stays. */
    memset(&exc, 0, sizeof exc);
    double d = -20;
    cr_assert_eq(ca_array_put(DBR_DOUBLE, 1, c, &d), ECA_NORMAL);
    WAIT_UNTIL(exc.n > 0, 5.0);
    cr_expect_eq(exc.n, 1, "%d exceptions for a refused plain put", exc.n);
    cr_expect_eq(exc.stat, ECA_PUTFAIL, "exception %s, expected ECA_PUTFAIL",
                 ca_message(exc.stat));
    cr_expect_eq(get_double(c), 5);
    finish();
}

/* ---- monitors ---- */

struct monitor {
    int updates;
    int bad;          /* updates with a status other than ECA_NORMAL or the wrong type */
    long type, count; /* expected */
    double last, values[256];
    char units[MAX_UNITS_SIZE + 1];
    int prec;
    epicsTimeStamp stamp;
    bool stamps_ordered;
    int units_wrong;
};

static void on_update(struct event_handler_args a)
{
    struct monitor *m = a.usr;
    if (a.status != ECA_NORMAL || a.dbr == NULL || a.type != m->type ||
        (m->count > 0 && a.count != m->count)) {
        m->bad++;
        return;
    }
    unsigned t = (unsigned)a.type;
    double v = value_kind(t) == KIND_STRING ? strtod(elem_str(t, a.dbr, 0), NULL)
                                            : elem_num(t, a.dbr, 0);
    if (m->updates < 256)
        m->values[m->updates] = v;
    m->last = v;
    m->updates++;
    if (t >= DBR_TIME_STRING && t <= DBR_TIME_DOUBLE) {
        epicsTimeStamp s = ((const struct dbr_time_string *)a.dbr)->stamp;
        if (m->updates > 1 && (s.secPastEpoch < m->stamp.secPastEpoch ||
                               (s.secPastEpoch == m->stamp.secPastEpoch && s.nsec < m->stamp.nsec)))
            m->stamps_ordered = false;
        m->stamp = s;
    }
    struct limits l;
    if (reply_limits(t, a.dbr, &l)) {
        memcpy(m->units, l.units, MAX_UNITS_SIZE);
        m->prec = l.prec;
        if (m->units[0] == '\0' && m->updates > 1)
            m->units_wrong++;
    }
}

static void monitor_init(struct monitor *m, long type, long count)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->count = count;
    m->stamps_ordered = true;
}

Test(libca, monitor_gets_initial_update_then_one_per_put)
{
    start();
    chid c = connect1("DEMO:DOUBLE");
    static struct monitor m, prop;
    monitor_init(&m, DBR_TIME_DOUBLE, 1);
    monitor_init(&prop, DBR_DOUBLE, 1);
    evid ev, ev_prop;
    cr_assert_eq(ca_create_subscription(DBR_TIME_DOUBLE, 1, c, DBE_VALUE | DBE_ALARM, on_update,
                                        &m, &ev), ECA_NORMAL);
    cr_assert_eq(ca_create_subscription(DBR_DOUBLE, 1, c, DBE_PROPERTY, on_update, &prop,
                                        &ev_prop), ECA_NORMAL);
    WAIT_UNTIL(m.updates >= 1 && prop.updates >= 1, 5.0);
    cr_assert_eq(m.updates, 1, "no initial update");
    cr_expect_eq(m.values[0], 3.14159);
    cr_expect_eq(prop.updates, 1, "no initial update for a DBE_PROPERTY subscription");

    for (int i = 1; i <= 5; i++) {
        double v = 10.0 * i + 0.5;
        cr_assert_eq(ca_array_put(DBR_DOUBLE, 1, c, &v), ECA_NORMAL);
        WAIT_UNTIL(m.updates >= 1 + i, 5.0);
        cr_expect_eq(m.last, v, "update %d: %g, expected %g", i, m.last, v);
    }
    harness_ca_idle(0.3);
    cr_expect_eq(m.updates, 6, "%d updates for 5 puts, expected 1 + 5", m.updates);
    cr_expect_eq(m.bad, 0, "%d bad updates", m.bad);
    cr_expect(m.stamps_ordered, "timestamps went backwards");
    cr_expect_eq(prop.updates, 1, "a DBE_PROPERTY subscription got %d updates for value "
                 "changes", prop.updates);

    /* A put of the same value again: no DBE_VALUE event is required, but never more than one. */
    double same = m.last;
    cr_assert_eq(ca_array_put(DBR_DOUBLE, 1, c, &same), ECA_NORMAL);
    harness_ca_idle(0.3);
    cr_expect(m.updates <= 7, "%d updates after an unchanged put", m.updates);

    /* After the subscription is cleared no update comes. */
    int before = m.updates;
    cr_assert_eq(ca_clear_subscription(ev), ECA_NORMAL);
    double v = -1.25;
    cr_assert_eq(ca_array_put(DBR_DOUBLE, 1, c, &v), ECA_NORMAL);
    harness_ca_idle(0.3);
    cr_expect_eq(m.updates, before, "updates after ca_clear_subscription");
    cr_expect_eq(get_double(c), v);
    finish();
}

Test(libca, monitors_of_other_native_types_see_puts)
{
    start();
    const char *names[] = { "DEMO:STRING", "DEMO:SHORT", "DEMO:ENUM", "DEMO:CHAR", "DEMO:LONG",
                            "DEMO:FLOAT" };
    static struct monitor m[6];
    chid c[6];
    for (int i = 0; i < 6; i++) {
        c[i] = connect1(names[i]);
        long type = dbf_type_to_DBR_STS(ca_field_type(c[i]));
        monitor_init(&m[i], type, 1);
        cr_assert_eq(ca_create_subscription(type, 1, c[i], DBE_VALUE | DBE_ALARM, on_update,
                                            &m[i], NULL), ECA_NORMAL);
    }
    WAIT_UNTIL(m[0].updates && m[1].updates && m[2].updates && m[3].updates && m[4].updates &&
                   m[5].updates, 5.0);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(m[i].updates, 1, "%s: no initial update", names[i]);
        char s[MAX_STRING_SIZE] = "2";
        cr_assert_eq(ca_array_put(DBR_STRING, 1, c[i], s), ECA_NORMAL);
    }
    WAIT_UNTIL(m[0].updates >= 2 && m[1].updates >= 2 && m[2].updates >= 2 &&
                   m[3].updates >= 2 && m[4].updates >= 2 && m[5].updates >= 2, 5.0);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(m[i].updates, 2, "%s: %d updates, expected 2", names[i], m[i].updates);
        cr_expect_eq(m[i].last, 2, "%s: last update %g, expected 2", names[i], m[i].last);
        cr_expect_eq(m[i].bad, 0, "%s: %d bad updates", names[i], m[i].bad);
    }
    finish();
}

/* Beyond docs/demo-pvs.md, which lists alarm limits but does not say the server evaluates
 * them: an EPICS ai-like PV raises HIGH/HIHI/LOW/LOLO with MINOR/MAJOR severity. */
Test(libca, alarm_limits_set_status_and_severity)
{
    start();
    chid c = connect1("DEMO:SHORT");
    static struct monitor alarm_only;
    monitor_init(&alarm_only, DBR_STS_SHORT, 1);
    cr_assert_eq(ca_create_subscription(DBR_STS_SHORT, 1, c, DBE_ALARM, on_update, &alarm_only,
                                        NULL), ECA_NORMAL);
    WAIT_UNTIL(alarm_only.updates >= 1, 5.0);
    cr_assert_eq(alarm_only.updates, 1);

    struct {
        dbr_short_t v;
        short status, severity;
    } cases[] = { { 5, 0, 0 },   { 850, 4, 1 },  { 950, 3, 2 },
                  { -850, 6, 1 }, { -950, 5, 2 }, { 0, 0, 0 } };
    int expected_updates = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(put_wait(c, DBR_SHORT, 1, &cases[i].v), ECA_NORMAL);
        struct dbr_sts_short s;
        cr_assert_eq(ca_array_get(DBR_STS_SHORT, 1, c, &s), ECA_NORMAL);
        cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
        cr_expect(s.value == cases[i].v && s.status == cases[i].status &&
                      s.severity == cases[i].severity,
                  "DEMO:SHORT=%d: status %d severity %d, expected %d %d", cases[i].v, s.status,
                  s.severity, cases[i].status, cases[i].severity);
        if (i > 0)
            expected_updates++; /* every case after the first changes the alarm state */
    }
    harness_ca_idle(0.3);
    cr_expect_eq(alarm_only.updates, expected_updates,
                 "a DBE_ALARM subscription got %d updates, expected %d", alarm_only.updates,
                 expected_updates);
    finish();
}

/* MEDM (ca-protocol.md 6.3): on connection, a DBR_CTRL_<native> get of count 1 and a
 * DBR_TIME_<native> subscription of the native count with DBE_VALUE|DBE_ALARM. */
struct medm_channel {
    struct reply ctrl;
    struct monitor mon;
    int ups, downs, rights_calls;
    bool read, write;
};

static void medm_rights(struct access_rights_handler_args a)
{
    struct medm_channel *mc = ca_puser(a.chid);
    mc->rights_calls++;
    mc->read = a.ar.read_access;
    mc->write = a.ar.write_access;
}

static void medm_connection(struct connection_handler_args a)
{
    struct medm_channel *mc = ca_puser(a.chid);
    if (a.op != CA_OP_CONN_UP) {
        mc->downs++;
        return;
    }
    mc->ups++;
    ca_replace_access_rights_event(a.chid, medm_rights);
    if (!ca_read_access(a.chid))
        return;
    short type = ca_field_type(a.chid);
    unsigned long n = ca_element_count(a.chid);
    ca_array_get_callback(dbf_type_to_DBR_CTRL(type), 1, a.chid, on_reply, &mc->ctrl);
    monitor_init(&mc->mon, dbf_type_to_DBR_TIME(type), (long)n);
    ca_create_subscription(dbf_type_to_DBR_TIME(type), n, a.chid, DBE_VALUE | DBE_ALARM,
                           on_update, &mc->mon, NULL);
}

Test(libca, medm_style_ctrl_get_and_time_subscription_on_exectime)
{
    start();
    static struct medm_channel mc;
    memset(&mc, 0, sizeof mc);
    chid c;
    cr_assert_eq(ca_create_channel("DEMO:EXECTIME", medm_connection, &mc, 0, &c), ECA_NORMAL);
    WAIT_UNTIL(mc.ctrl.done && mc.mon.updates >= 16, 6.0);
    cr_assert_eq(mc.ups, 1, "DEMO:EXECTIME did not connect");
    cr_expect(mc.rights_calls >= 1 && mc.read && !mc.write,
              "access rights: %d calls, read %d write %d", mc.rights_calls, mc.read, mc.write);
    cr_assert_eq(mc.ctrl.done, 1, "no reply to the DBR_CTRL_DOUBLE get");
    cr_expect_eq(mc.ctrl.status, ECA_NORMAL);
    cr_expect_eq(mc.ctrl.type, DBR_CTRL_DOUBLE);
    const struct dbr_ctrl_double *cd = (const struct dbr_ctrl_double *)mc.ctrl.u.b;
    cr_expect(strncmp(cd->units, "seconds", MAX_UNITS_SIZE) == 0, "units \"%.8s\"", cd->units);
    cr_expect_eq(cd->precision, 3);

    cr_expect(mc.mon.updates >= 16, "%d DBR_TIME_DOUBLE updates in 6 s from a 16 Hz PV",
              mc.mon.updates);
    cr_expect_eq(mc.mon.bad, 0, "%d bad updates", mc.mon.bad);
    cr_expect(mc.mon.stamps_ordered, "timestamps went backwards");
    int distinct = 1;
    for (int i = 1; i < mc.mon.updates && i < 256; i++)
        if (mc.mon.values[i] != mc.mon.values[i - 1])
            distinct++;
    cr_expect(distinct >= mc.mon.updates / 2, "only %d value changes in %d updates", distinct,
              mc.mon.updates);
    double now = epics_now();
    cr_expect(mc.mon.stamp.secPastEpoch > now - 10 && mc.mon.stamp.secPastEpoch < now + 10,
              "last update timestamp %u, now %.0f", mc.mon.stamp.secPastEpoch, now);
    cr_expect_eq(mc.downs, 0);
    finish();
}

/* The case that crashed the old threaded server: many DBR_CTRL_DOUBLE subscriptions to
 * EXECTIME (its CTRL reply carries the units string), with channels created and cleared while
 * updates flow. */
Test(libca, many_ctrl_subscriptions_to_exectime_with_churn)
{
    start();
    enum { N = 20 };
    static struct monitor m[N];
    chid c[N];
    const char *names[N];
    for (int i = 0; i < N; i++)
        names[i] = "DEMO:EXECTIME";
    cr_assert_eq(harness_ca_connect(c, names, N, 10.0), (size_t)N);
    for (int i = 0; i < N; i++) {
        monitor_init(&m[i], DBR_CTRL_DOUBLE, 1);
        cr_assert_eq(ca_create_subscription(DBR_CTRL_DOUBLE, 1, c[i],
                                            DBE_VALUE | DBE_ALARM | DBE_PROPERTY, on_update,
                                            &m[i], NULL), ECA_NORMAL);
    }

    /* Churn: a second set of channels subscribed and cleared again and again. */
    static struct monitor churn;
    monitor_init(&churn, DBR_CTRL_DOUBLE, 1);
    for (int round = 0; round < 40; round++) {
        chid x;
        cr_assert_eq(ca_create_channel("DEMO:EXECTIME", NULL, NULL, 0, &x), ECA_NORMAL);
        cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL, "round %d: no connection", round);
        cr_assert_eq(ca_create_subscription(DBR_CTRL_DOUBLE, 1, x, DBE_VALUE | DBE_PROPERTY,
                                            on_update, &churn, NULL), ECA_NORMAL);
        ca_pend_event(0.02);
        cr_assert_eq(ca_clear_channel(x), ECA_NORMAL);
    }
    WAIT_UNTIL(m[N - 1].updates >= 10, 5.0);
    for (int i = 0; i < N; i++) {
        cr_expect(m[i].updates >= 10, "subscription %d: %d updates", i, m[i].updates);
        cr_expect_eq(m[i].bad, 0, "subscription %d: %d bad updates", i, m[i].bad);
        cr_expect(strcmp(m[i].units, "seconds") == 0, "subscription %d: units \"%s\"", i,
                  m[i].units);
        cr_expect_eq(m[i].prec, 3, "subscription %d: precision %d", i, m[i].prec);
    }
    cr_expect(churn.updates >= 40, "%d first updates for 40 churned subscriptions",
              churn.updates);
    cr_expect_eq(churn.bad, 0);
    finish();
}

Test(libca, counter_monitor_sees_consecutive_increments)
{
    start();
    chid c = connect1("DEMO:COUNTER");
    static struct monitor m;
    monitor_init(&m, DBR_TIME_LONG, 1);
    cr_assert_eq(ca_create_subscription(DBR_TIME_LONG, 1, c, DBE_VALUE | DBE_ALARM, on_update,
                                        &m, NULL), ECA_NORMAL);
    WAIT_UNTIL(m.updates >= 15, 4.0);
    cr_expect(m.updates >= 15, "%d updates in 4 s from a 10 Hz counter", m.updates);
    cr_expect_eq(m.bad, 0);
    int steps_of_one = 0;
    for (int i = 1; i < m.updates && i < 256; i++) {
        cr_expect(m.values[i] > m.values[i - 1], "counter went from %g to %g", m.values[i - 1],
                  m.values[i]);
        steps_of_one += m.values[i] == m.values[i - 1] + 1;
    }
    cr_expect(steps_of_one >= (m.updates - 1) * 3 / 4,
              "only %d of %d steps were +1 (a lightly loaded server delivers every change)",
              steps_of_one, m.updates - 1);
    finish();
}

/* ---- arrays ---- */

static bool doubles_equal(const double *a, const double *b, size_t n, size_t *where)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            *where = i;
            return false;
        }
    return true;
}

static struct reply big_reply_meta;
static double *big_reply_values;
static size_t big_reply_n;

static void on_array_reply(struct event_handler_args a)
{
    big_reply_meta.done++;
    big_reply_meta.status = a.status;
    big_reply_meta.type = a.type;
    big_reply_meta.count = a.count;
    if (a.status == ECA_NORMAL && a.dbr != NULL && a.type == DBR_DOUBLE) {
        size_t n = (size_t)a.count < big_reply_n ? (size_t)a.count : big_reply_n;
        memcpy(big_reply_values, a.dbr, n * sizeof(double));
    }
}

Test(libca, wave_array_get_put_and_monitor)
{
    start();
    chid c = connect1("DEMO:WAVE");
    enum { N = 1000 };
    static double v[N], want[N];
    for (int i = 0; i < N; i++)
        want[i] = i * 0.5;
    cr_assert_eq(ca_array_get(DBR_DOUBLE, N, c, v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    size_t at = 0;
    cr_expect(doubles_equal(v, want, N, &at), "WAVE[%zu] = %g, expected %g", at, v[at], want[at]);

    /* A shorter get returns the first elements. */
    double first[10];
    cr_assert_eq(ca_array_get(DBR_DOUBLE, 10, c, first), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect(doubles_equal(first, want, 10, &at), "WAVE[%zu] = %g", at, first[at]);

    /* CTRL of the whole array: the value array starts at offset 80. */
    static union {
        struct dbr_ctrl_double head;
        unsigned char b[80 + N * 8];
    } ctrl;
    cr_assert_eq(ca_array_get(DBR_CTRL_DOUBLE, N, c, &ctrl), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    for (int i = 0; i < N; i++)
        if (elem_num(DBR_CTRL_DOUBLE, ctrl.b, (size_t)i) != want[i]) {
            cr_expect_fail("CTRL_DOUBLE WAVE[%d] = %g", i, elem_num(DBR_CTRL_DOUBLE, ctrl.b,
                                                                     (size_t)i));
            break;
        }

    /* As strings: each element formatted with the PV's precision (rounded). */
    int prec = ctrl.head.precision;
    cr_expect(prec >= 0 && prec <= 17, "WAVE precision %d", prec);
    double tolerance = 0.5 * pow(10, -prec) + 1e-9;
    static char strs[N][MAX_STRING_SIZE];
    cr_assert_eq(ca_array_get(DBR_STRING, N, c, strs), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    for (int i = 0; i < N; i++)
        if (memchr(strs[i], '\0', MAX_STRING_SIZE) == NULL ||
            fabs(strtod(strs[i], NULL) - want[i]) > tolerance) {
            cr_expect_fail("WAVE[%d] as DBR_STRING \"%.40s\", expected %g with precision %d", i,
                           strs[i], want[i], prec);
            break;
        }

    /* A monitor of the whole array: initial update, then the new array after a put. */
    static struct monitor m;
    monitor_init(&m, DBR_DOUBLE, N);
    cr_assert_eq(ca_create_subscription(DBR_DOUBLE, N, c, DBE_VALUE, on_update, &m, NULL),
                 ECA_NORMAL);
    WAIT_UNTIL(m.updates >= 1, 5.0);
    cr_expect_eq(m.updates, 1);

    for (int i = 0; i < N; i++)
        want[i] = sin(i) * 1e3 + 1.0 / (i + 1);
    cr_assert_eq(ca_array_put(DBR_DOUBLE, N, c, want), ECA_NORMAL);
    cr_assert_eq(ca_array_get(DBR_DOUBLE, N, c, v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect(doubles_equal(v, want, N, &at), "after put: WAVE[%zu] = %.17g, expected %.17g", at,
              v[at], want[at]);
    WAIT_UNTIL(m.updates >= 2, 5.0);
    cr_expect_eq(m.updates, 2);
    cr_expect_eq(m.last, want[0]);

    /* Put-callback of a float array, read back as doubles. */
    static float f[N];
    for (int i = 0; i < N; i++) {
        f[i] = (float)(i * 0.25 - 100);
        want[i] = f[i];
    }
    cr_expect_eq(put_wait(c, DBR_FLOAT, N, f), ECA_NORMAL);
    cr_assert_eq(ca_array_get(DBR_DOUBLE, N, c, v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect(doubles_equal(v, want, N, &at), "float put: WAVE[%zu] = %g", at, v[at]);

    /* A put of fewer elements: count-0 reads return that many, full reads are zero-filled. */
    double part[300];
    for (int i = 0; i < 300; i++)
        part[i] = 7000 + i;
    cr_expect_eq(put_wait(c, DBR_DOUBLE, 300, part), ECA_NORMAL);
    big_reply_values = v;
    big_reply_n = N;
    memset(&big_reply_meta, 0, sizeof big_reply_meta);
    cr_assert_eq(ca_array_get_callback(DBR_DOUBLE, 0, c, on_array_reply, NULL), ECA_NORMAL);
    WAIT_UNTIL(big_reply_meta.done, 5.0);
    cr_assert_eq(big_reply_meta.done, 1);
    cr_expect_eq(big_reply_meta.status, ECA_NORMAL);
    cr_expect_eq(big_reply_meta.count, 300, "count-0 get after a 300-element put: %ld elements",
                 big_reply_meta.count);
    cr_expect(doubles_equal(v, part, 300, &at), "WAVE[%zu] = %g", at, v[at]);
    cr_assert_eq(ca_array_get(DBR_DOUBLE, N, c, v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect(doubles_equal(v, part, 300, &at), "WAVE[%zu] = %g", at, v[at]);
    for (int i = 300; i < N; i++)
        if (v[i] != 0) {
            cr_expect_fail("WAVE[%d] = %g past the 300 valid elements, expected 0", i, v[i]);
            break;
        }
    finish();
}

Test(libca, short_string_and_char_arrays)
{
    start();
    chid shorts = connect1("DEMO:SHORTS");
    chid strings = connect1("DEMO:STRINGS");
    chid longstr = connect1("DEMO:LONGSTR");

    dbr_short_t s[16];
    cr_assert_eq(ca_array_get(DBR_SHORT, 16, shorts, s), ECA_NORMAL);
    char strs[4][MAX_STRING_SIZE];
    cr_assert_eq(ca_array_get(DBR_STRING, 4, strings, strs), ECA_NORMAL);
    static unsigned char text[256];
    cr_assert_eq(ca_array_get(DBR_CHAR, 256, longstr, text), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    for (int i = 0; i < 16; i++)
        cr_expect_eq(s[i], i, "SHORTS[%d] = %d", i, s[i]);
    const char *abcd[] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++)
        cr_expect(strncmp(strs[i], abcd[i], MAX_STRING_SIZE) == 0, "STRINGS[%d] = \"%.40s\"", i,
                  strs[i]);
    cr_expect_str_eq((char *)text, "guardiand long string");

    /* STS_SHORT of the array: status then 16 elements. */
    unsigned char sts[4 + 16 * 2];
    cr_assert_eq(ca_array_get(DBR_STS_SHORT, 16, shorts, sts), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect_eq(elem_num(DBR_STS_SHORT, sts, 15), 15);

    /* Writes: LONG into a SHORT array, whole string array, MEDM-style char text. */
    dbr_long_t l[16];
    for (int i = 0; i < 16; i++)
        l[i] = -i * 100;
    cr_expect_eq(put_wait(shorts, DBR_LONG, 16, l), ECA_NORMAL);
    char w[4][MAX_STRING_SIZE] = { "one", "two", "three", "a string of thirty-nine characters..." };
    cr_expect_eq(put_wait(strings, DBR_STRING, 4, w), ECA_NORMAL);
    const char *msg = "written by test_ca_libca";
    cr_assert_eq(ca_array_put(DBR_CHAR, strlen(msg) + 1, longstr, msg), ECA_NORMAL);

    cr_assert_eq(ca_array_get(DBR_SHORT, 16, shorts, s), ECA_NORMAL);
    cr_assert_eq(ca_array_get(DBR_STRING, 4, strings, strs), ECA_NORMAL);
    memset(text, 0xFF, sizeof text);
    cr_assert_eq(ca_array_get(DBR_CHAR, 256, longstr, text), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    for (int i = 0; i < 16; i++)
        cr_expect_eq(s[i], -i * 100, "SHORTS[%d] = %d", i, s[i]);
    for (int i = 0; i < 4; i++)
        cr_expect(strncmp(strs[i], w[i], MAX_STRING_SIZE) == 0, "STRINGS[%d] = \"%.40s\"", i,
                  strs[i]);
    cr_expect_str_eq((char *)text, msg);
    for (size_t i = strlen(msg) + 1; i < 256; i++)
        if (text[i] != 0) {
            cr_expect_fail("LONGSTR[%zu] = %d past the written text, expected 0", i, text[i]);
            break;
        }
    cr_expect_eq(exc.n, 0, "unexpected exception: %s (%s)", ca_message(exc.stat), exc.ctx);
    finish();
}

Test(libca, bigwave_needs_the_extended_header)
{
    start_daemon(NULL, "10000000");
    chid c = connect1("DEMO:BIGWAVE");
    enum { N = 100000 };
    cr_assert_eq(ca_element_count(c), (unsigned long)N);
    double *v = calloc(N, sizeof *v), *want = calloc(N, sizeof *want);
    cr_assert(v != NULL && want != NULL);
    for (int i = 0; i < N; i++)
        v[i] = -1;
    cr_assert_eq(ca_array_get(DBR_DOUBLE, N, c, v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(10.0), ECA_NORMAL, "no reply to an 800 kB get");
    size_t at = 0;
    cr_expect(doubles_equal(v, want, N, &at), "BIGWAVE[%zu] = %g, expected 0", at, v[at]);

    static struct monitor m;
    monitor_init(&m, DBR_DOUBLE, N);
    cr_assert_eq(ca_create_subscription(DBR_DOUBLE, N, c, DBE_VALUE, on_update, &m, NULL),
                 ECA_NORMAL);
    WAIT_UNTIL(m.updates >= 1, 10.0);
    cr_expect_eq(m.updates, 1, "no initial update of BIGWAVE");

    for (int i = 0; i < N; i++)
        want[i] = i * 0.25 + 1;
    cr_expect_eq(put_wait(c, DBR_DOUBLE, N, want), ECA_NORMAL);
    cr_assert_eq(ca_array_get(DBR_DOUBLE, N, c, v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(10.0), ECA_NORMAL);
    cr_expect(doubles_equal(v, want, N, &at), "BIGWAVE[%zu] = %g, expected %g", at, v[at],
              want[at]);
    WAIT_UNTIL(m.updates >= 2, 10.0);
    cr_expect_eq(m.updates, 2, "no update after a put to BIGWAVE");
    cr_expect_eq(m.last, 1.0);

    /* TIME_DOUBLE of the whole array: 16 + 8 N bytes. */
    unsigned char *tv = calloc(1, harness_dbr_size_n(DBR_TIME_DOUBLE, N));
    cr_assert(tv != NULL);
    cr_assert_eq(ca_array_get(DBR_TIME_DOUBLE, N, c, tv), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(10.0), ECA_NORMAL);
    cr_expect_eq(elem_num(DBR_TIME_DOUBLE, tv, N - 1), want[N - 1]);

    /* Count 0: everything. */
    big_reply_values = v;
    big_reply_n = N;
    memset(v, 0, N * sizeof *v);
    memset(&big_reply_meta, 0, sizeof big_reply_meta);
    cr_assert_eq(ca_array_get_callback(DBR_DOUBLE, 0, c, on_array_reply, NULL), ECA_NORMAL);
    WAIT_UNTIL(big_reply_meta.done, 10.0);
    cr_expect_eq(big_reply_meta.count, N);
    cr_expect(doubles_equal(v, want, N, &at), "count-0 BIGWAVE[%zu] = %g", at, v[at]);
    free(tv);
    free(v);
    free(want);
    finish();
}

/* ---- many channels ---- */

Test(libca, five_thousand_channels_connect_and_read_their_values, .timeout = 90)
{
    static const char *const args[] = { "--demo-count", "5000", NULL };
    harness_opts o = { .args = args };
    start_daemon(&o, NULL);
    enum { N = 5000 };
    static char names[N][24];
    static const char *pnames[N];
    static chid c[N];
    static dbr_long_t v[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "DEMO:N:%d", i);
        pnames[i] = names[i];
        v[i] = -1;
    }
    size_t up = harness_ca_connect(c, pnames, N, 30.0);
    cr_assert_eq(up, (size_t)N, "%zu of %d channels connected in 30 s", up, N);
    for (int i = 0; i < N; i++)
        cr_assert_eq(ca_array_get(DBR_LONG, 1, c[i], &v[i]), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(30.0), ECA_NORMAL, "5000 gets did not complete in 30 s");
    int wrong = 0;
    for (int i = 0; i < N; i++)
        if (v[i] != i && wrong++ < 5)
            cr_expect_fail("DEMO:N:%d = %d", i, v[i]);
    cr_expect_eq(wrong, 0, "%d wrong values", wrong);

    /* Puts to all, then read back. */
    for (int i = 0; i < N; i++) {
        dbr_long_t x = N - i;
        cr_assert_eq(ca_array_put(DBR_LONG, 1, c[i], &x), ECA_NORMAL);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(ca_array_get(DBR_LONG, 1, c[i], &v[i]), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(30.0), ECA_NORMAL);
    wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += v[i] != N - i;
    cr_expect_eq(wrong, 0, "%d values wrong after 5000 puts", wrong);

    chid past;
    cr_assert_eq(ca_create_channel("DEMO:N:5000", NULL, NULL, 0, &past), ECA_NORMAL);
    harness_ca_idle(1.0);
    cr_expect_eq(ca_state(past), cs_never_conn, "DEMO:N:5000 exists with --demo-count 5000");
    finish();
}

/* ---- group removal ---- */

struct conn_log {
    int ups, downs;
};

static void on_connection(struct connection_handler_args a)
{
    struct conn_log *l = ca_puser(a.chid);
    if (a.op == CA_OP_CONN_UP)
        l->ups++;
    else if (a.op == CA_OP_CONN_DOWN)
        l->downs++;
}

Test(libca, removing_a_group_disconnects_its_channels_and_readding_reconnects, .timeout = 60)
{
    start();
    static struct conn_log la, lb;
    memset(&la, 0, sizeof la);
    memset(&lb, 0, sizeof lb);
    chid a, b;
    cr_assert_eq(ca_create_channel("DEMO:G:A", on_connection, &la, 0, &a), ECA_NORMAL);
    cr_assert_eq(ca_create_channel("DEMO:G:B", on_connection, &lb, 0, &b), ECA_NORMAL);
    chid group = connect1("DEMO:GROUP");
    WAIT_UNTIL(la.ups == 1 && lb.ups == 1, 10.0);
    cr_assert(la.ups == 1 && lb.ups == 1, "the group's channels did not connect");
    static struct monitor m;
    monitor_init(&m, DBR_DOUBLE, 1);
    cr_assert_eq(ca_create_subscription(DBR_DOUBLE, 1, a, DBE_VALUE | DBE_ALARM, on_update, &m,
                                        NULL), ECA_NORMAL);
    WAIT_UNTIL(m.updates >= 1, 5.0);
    cr_assert_eq(m.updates, 1);
    char s[MAX_STRING_SIZE];
    get_string(group, s);
    cr_expect_str_eq(s, "PRESENT");

    strcpy(s, "ABSENT");
    cr_assert_eq(put_wait(group, DBR_STRING, 1, s), ECA_NORMAL);
    WAIT_UNTIL(la.downs == 1 && lb.downs == 1, 5.0);
    cr_assert(la.downs == 1 && lb.downs == 1,
              "removing the group: G:A %d and G:B %d disconnects, expected 1 each", la.downs,
              lb.downs);
    cr_expect_eq(ca_state(a), cs_prev_conn);
    double v = 1;
    cr_expect_eq(ca_array_put(DBR_DOUBLE, 1, a, &v), ECA_DISCONN);
    get_string(group, s);
    cr_expect_str_eq(s, "ABSENT");

    /* libca waits up to 10 s after a disconnect before it searches again. */
    harness_ca_idle(1.0);
    cr_expect_eq(la.ups, 1, "G:A reconnected while its group is absent");
    strcpy(s, "PRESENT");
    cr_assert_eq(put_wait(group, DBR_STRING, 1, s), ECA_NORMAL);
    WAIT_UNTIL(la.ups == 2 && lb.ups == 2 && m.updates >= 2, 20.0);
    cr_assert(la.ups == 2 && lb.ups == 2, "re-adding the group: G:A %d and G:B %d connections, "
              "expected 2 each within 20 s", la.ups, lb.ups);
    cr_expect(m.updates >= 2, "the subscription got no update after reconnecting");
    cr_expect_eq(m.bad, 0);
    cr_expect_eq(ca_field_type(a), DBF_DOUBLE);
    cr_expect_eq(ca_write_access(a), 1u);
    cr_expect_eq(ca_write_access(b), 0u);
    v = 2.5;
    cr_expect_eq(put_wait(a, DBR_DOUBLE, 1, &v), ECA_NORMAL);
    cr_expect_eq(get_double(a), 2.5);
    cr_expect_eq(get_double(b), 1);
    finish();
}

/* ---- how the server port is given ---- */

Test(libca, server_port_from_ca_variable_or_option)
{
    enum harness_port_via via[] = { HARNESS_PORT_CA_ENV, HARNESS_PORT_OPTION };
    for (int i = 0; i < 2; i++) {
        /* With --port, a decoy EPICS_CAS_SERVER_PORT must be overridden by the option. */
        int decoy, unused;
        cr_assert_eq(harness_free_ports(&decoy, &unused), 0);
        char decoy_env[48];
        snprintf(decoy_env, sizeof decoy_env, "EPICS_CAS_SERVER_PORT=%d", decoy);
        const char *const env[] = { decoy_env, NULL };
        harness_opts o = { .port_via = via[i], .env = via[i] == HARNESS_PORT_OPTION ? env : NULL };
        start_daemon(&o, NULL);
        chid c = connect1("DEMO:DOUBLE");
        cr_expect_eq(get_double(c), 3.14159);
        finish();
    }
}
