/* test_dbr.c — DBR sizes, wire layouts and value conversions (ca/dbr.c).
 *
 * Expected numbers are typed in from ../shared/docs/ca-protocol.md section 4
 * (tables 4.2 and 4.3, rules 4.6-4.8), not computed from dbr.c's own tables.
 * PVs are built through the pvdb API, as the CA server sees them.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "ca/caproto.h"
#include "ca/dbr.h"
#include "pvdb/pvdb.h"

static pvdb *db;
static pv_group *grp;

static void setup(void)
{
    db = pvdb_new();
    cr_assert_not_null(db);
    grp = pvdb_group_new(db, "T:");
    cr_assert_not_null(grp);
}

static void teardown(void) { pvdb_free(db); }

TestSuite(dbr, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static pv *add_pv(pv_def def)
{
    pv *p = NULL;
    cr_assert_eq(pv_group_add(grp, &def, &p), 0, "pv_group_add(%s)", def.name);
    return p;
}

static pv *scalar(const char *name, enum pv_type t)
{
    return add_pv((pv_def){.name = name, .type = t, .writable = true});
}

static const char *const states[] = {"Off", "On", "abcdefghijklmnopqrstuvwxyz"}; /* last: 26 */

static pv *enum_pv(void)
{
    return add_pv((pv_def){.name = "mode", .type = PV_ENUM, .enums = states, .n_enums = 3,
                           .writable = true});
}

static int16_t be_i16(const uint8_t *p) { return (int16_t)ca_get16(p); }
static int32_t be_i32(const uint8_t *p) { return (int32_t)ca_get32(p); }

static float be_f32(const uint8_t *p)
{
    uint32_t u = ca_get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double be_f64(const uint8_t *p)
{
    uint64_t u = (uint64_t)ca_get32(p) << 32 | ca_get32(p + 4);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    ca_put32(p, (uint32_t)(u >> 32));
    ca_put32(p + 4, (uint32_t)u);
}

static void assert_zero(const uint8_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        cr_assert_eq(p[i], 0, "byte %zu is 0x%02x, expected 0", i, p[i]);
}

static void assert_fill(const uint8_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        cr_assert_eq(p[i], 0xAA, "byte %zu was written (0x%02x)", i, p[i]);
}

/* Encode into a buffer pre-filled with 0xAA so writes past the size show. */
#define BUF 1024
static uint32_t encode(uint8_t *buf, unsigned type, uint32_t n, const pv *p)
{
    memset(buf, 0xAA, BUF);
    if (dbr_valid(type))
        cr_assert_leq(dbr_struct_size_n(type, n), BUF);
    uint32_t st = dbr_encode(buf, type, n, p);
    if (dbr_valid(type))
        assert_fill(buf, dbr_struct_size_n(type, n), BUF);
    return st;
}

/* Read a PV as DBR_STRING. */
static void get_text(char out[PV_STRING_SIZE], const pv *p)
{
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_STRING, 1, p), ECA_NORMAL);
    memcpy(out, buf, PV_STRING_SIZE);
    size_t len = strnlen(out, PV_STRING_SIZE);
    cr_assert_lt(len, PV_STRING_SIZE, "string not NUL-terminated");
    assert_zero(buf, len, PV_STRING_SIZE);
}

static void assert_text(const pv *p, const char *expect)
{
    char s[PV_STRING_SIZE];
    get_text(s, p);
    cr_assert_str_eq(s, expect);
}

/* Write a string (written as DBR_STRING, n = 1) and decode it. */
static uint32_t decode_text(void *out, uint32_t *n_out, const pv *p, const char *s)
{
    uint8_t payload[PV_STRING_SIZE] = {0};
    strncpy((char *)payload, s, PV_STRING_SIZE - 1);
    return dbr_decode(out, n_out, p, DBR_STRING, 1, payload, sizeof(payload));
}

/* ---- sizes (table 4.2) ---- */

static const struct {
    unsigned size, value_size, value_off, payload1;
} spec[39] = {
    {40, 40, 0, 40},    {2, 2, 0, 8},       {4, 4, 0, 8},      {2, 2, 0, 8},
    {1, 1, 0, 8},       {4, 4, 0, 8},       {8, 8, 0, 8},      {44, 40, 4, 48},
    {6, 2, 4, 8},       {8, 4, 4, 8},       {6, 2, 4, 8},      {6, 1, 5, 8},
    {8, 4, 4, 8},       {16, 8, 8, 16},     {52, 40, 12, 56},  {16, 2, 14, 16},
    {16, 4, 12, 16},    {16, 2, 14, 16},    {16, 1, 15, 16},   {16, 4, 12, 16},
    {24, 8, 16, 24},    {44, 40, 4, 48},    {26, 2, 24, 32},   {44, 4, 40, 48},
    {424, 2, 422, 424}, {20, 1, 19, 24},    {40, 4, 36, 40},   {72, 8, 64, 72},
    {44, 40, 4, 48},    {30, 2, 28, 32},    {52, 4, 48, 56},   {424, 2, 422, 424},
    {22, 1, 21, 24},    {48, 4, 44, 48},    {88, 8, 80, 88},   {2, 2, 0, 8},
    {2, 2, 0, 8},       {48, 40, 8, 48},    {40, 40, 0, 40},
};

Test(dbr, size_table_matches_spec)
{
    for (unsigned t = 0; t < 39; t++) {
        cr_assert(dbr_valid(t), "type %u", t);
        cr_assert_eq(dbr_struct_size(t), spec[t].size, "dbr_struct_size(%u)", t);
        cr_assert_eq(dbr_elem_size(t), spec[t].value_size, "value_size(%u)", t);
        cr_assert_eq(dbr_elem_offset(t), spec[t].value_off, "value_off(%u)", t);
        cr_assert_eq(dbr_struct_size_n(t, 1), spec[t].size, "size_n(%u, 1)", t);
        cr_assert_eq(ca_align8((uint32_t)dbr_struct_size_n(t, 1)), spec[t].payload1, "payload(%u)", t);
        cr_assert_eq(dbr_struct_size_n(t, 0), spec[t].size - spec[t].value_size, "size_n(%u, 0)", t);
    }
    cr_assert_not(dbr_valid(39));
    cr_assert_eq(dbr_struct_size_n(39, 1), SIZE_MAX);
}

Test(dbr, size_n_examples)
{
    cr_assert_eq(dbr_struct_size_n(DBR_DOUBLE, 1000), 8000);
    cr_assert_eq(dbr_struct_size_n(DBR_TIME_DOUBLE, 10), 16 + 80);
    cr_assert_eq(dbr_struct_size_n(DBR_CTRL_DOUBLE, 7), 80 + 56);
    cr_assert_eq(dbr_struct_size_n(DBR_TIME_SHORT, 3), 20);
    cr_assert_eq(ca_align8((uint32_t)dbr_struct_size_n(DBR_TIME_SHORT, 3)), 24);
    cr_assert_eq(dbr_struct_size_n(DBR_STS_STRING, 2), 84);
    cr_assert_eq(dbr_struct_size_n(DBR_CTRL_ENUM, 1), 424);
}

Test(dbr, value_types)
{
    for (unsigned t = 0; t <= DBR_CTRL_DOUBLE; t++)
        cr_assert_eq(dbr_value_type(t), (int)(t % 7), "type %u", t);
    cr_assert_eq(dbr_value_type(DBR_TIME_LONG), PV_LONG);
    for (unsigned t = DBR_PUT_ACKT; t <= 40; t++)
        cr_assert_eq(dbr_value_type(t), -1, "type %u", t);
}

/* ---- layouts (4.3) ---- */

Test(dbr, time_double_layout)
{
    pv *p = scalar("td", PV_DOUBLE);
    pv_set_double(p, 3.5);
    pv_set_alarm(p, PV_ALARM_HIGH, PV_SEV_MINOR);
    pv_time t = pv_stamp(p);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_TIME_DOUBLE, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), PV_ALARM_HIGH);
    cr_assert_eq(be_i16(buf + 2), PV_SEV_MINOR);
    cr_assert_eq(ca_get32(buf + 4), t.sec);
    cr_assert_eq(ca_get32(buf + 8), t.nsec);
    assert_zero(buf, 12, 16); /* RISC_pad */
    cr_assert_eq(be_f64(buf + 16), 3.5);
}

Test(dbr, sts_and_time_short_layout)
{
    pv *p = scalar("ts", PV_SHORT);
    pv_set_long(p, -1234);
    pv_set_alarm(p, PV_ALARM_LOLO, PV_SEV_MAJOR);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_STS_SHORT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), PV_ALARM_LOLO);
    cr_assert_eq(be_i16(buf + 2), PV_SEV_MAJOR);
    cr_assert_eq(be_i16(buf + 4), -1234);
    cr_assert_eq(encode(buf, DBR_TIME_SHORT, 1, p), ECA_NORMAL);
    assert_zero(buf, 12, 14);
    cr_assert_eq(be_i16(buf + 14), -1234);
}

Test(dbr, ctrl_double_layout)
{
    pv *p = add_pv((pv_def){
        .name = "cd", .type = PV_DOUBLE, .units = "seconds", .precision = 3,
        .limits = {.disp_hi = 10, .disp_lo = -10, .alarm_hi = 9, .warn_hi = 8,
                   .warn_lo = -8, .alarm_lo = -9, .ctrl_hi = 5, .ctrl_lo = -5},
        .alarm_limits = true});
    pv_set_double(p, 1.5);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_DOUBLE, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), PV_ALARM_NONE);
    cr_assert_eq(be_i16(buf + 4), 3);
    assert_zero(buf, 6, 8);
    cr_assert_arr_eq(buf + 8, "seconds", 8); /* 7 characters and the NUL */
    static const double lim[8] = {10, -10, 9, 8, -8, -9, 5, -5};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(be_f64(buf + 16 + 8 * i), lim[i], "limit %d", i);
    cr_assert_eq(be_f64(buf + 80), 1.5);
}

Test(dbr, gr_double_without_alarm_limits_is_nan)
{
    pv *p = add_pv((pv_def){.name = "gd", .type = PV_DOUBLE, .limits = {.disp_hi = 4, .ctrl_hi = 3}});
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_GR_DOUBLE, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f64(buf + 16), 4);
    for (int i = 2; i < 6; i++)
        cr_assert(isnan(be_f64(buf + 16 + 8 * i)), "alarm limit %d", i);
    cr_assert_eq(be_f64(buf + 64), 0);
}

Test(dbr, gr_float_layout_nan_alarm_limits)
{
    pv *p = add_pv((pv_def){.name = "gf", .type = PV_FLOAT, .units = "mm", .precision = 2,
                            .limits = {.disp_hi = 100, .disp_lo = -100, .alarm_hi = 1}});
    pv_set_double(p, 2.25);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_GR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf + 4), 2);
    assert_zero(buf, 6, 8);
    cr_assert_str_eq((const char *)buf + 8, "mm");
    assert_zero(buf, 10, 16);
    cr_assert_eq(be_f32(buf + 16), 100.0f);
    cr_assert_eq(be_f32(buf + 20), -100.0f);
    for (int i = 0; i < 4; i++)
        cr_assert(isnan(be_f32(buf + 24 + 4 * i)), "alarm limit %d not NaN", i);
    cr_assert_eq(be_f32(buf + 40), 2.25f);
}

Test(dbr, ctrl_float_limits_clamped)
{
    pv *p = add_pv((pv_def){.name = "cf", .type = PV_FLOAT,
                            .limits = {.disp_hi = 1e300, .disp_lo = -1e300, .alarm_hi = 1e-300,
                                       .warn_hi = 0.5, .ctrl_hi = 7, .ctrl_lo = -7},
                            .alarm_limits = true});
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f32(buf + 16), FLT_MAX);
    cr_assert_eq(be_f32(buf + 20), -FLT_MAX);
    cr_assert_eq(be_f32(buf + 24), FLT_MIN);
    cr_assert_eq(be_f32(buf + 28), 0.5f);
    cr_assert_eq(be_f32(buf + 32), 0.0f);
    cr_assert_eq(be_f32(buf + 40), 7.0f);
    cr_assert_eq(be_f32(buf + 44), -7.0f);
}

Test(dbr, ctrl_short_limits_truncated)
{
    pv *p = add_pv((pv_def){
        .name = "cs", .type = PV_SHORT, .units = "counts",
        .limits = {.disp_hi = 100.9, .disp_lo = -100.9, .alarm_hi = 90, .warn_hi = 80,
                   .warn_lo = -80, .alarm_lo = -90, .ctrl_hi = 50.5, .ctrl_lo = -50.5},
        .alarm_limits = true});
    pv_set_long(p, 42);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_SHORT, 1, p), ECA_NORMAL);
    cr_assert_str_eq((const char *)buf + 4, "counts");
    static const int16_t lim[8] = {100, -100, 90, 80, -80, -90, 50, -50};
    for (int i = 0; i < 8; i++)
        cr_assert_eq(be_i16(buf + 12 + 2 * i), lim[i], "limit %d", i);
    cr_assert_eq(be_i16(buf + 28), 42);
}

Test(dbr, integer_limits_wrap_after_int32)
{
    pv *p = add_pv((pv_def){.name = "cc", .type = PV_SHORT,
                            .limits = {.disp_hi = 70000, .disp_lo = 1e12, .ctrl_hi = NAN}});
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_SHORT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf + 12), (int16_t)4464);         /* 70000 mod 65536 */
    cr_assert_eq(be_i16(buf + 14), -1);                    /* INT32_MAX as int16 */
    cr_assert_eq(be_i16(buf + 24), 0);                     /* NaN */
    cr_assert_eq(encode(buf, DBR_CTRL_CHAR, 1, p), ECA_NORMAL);
    cr_assert_eq(buf[12], 70000 & 0xFF);
    cr_assert_eq(buf[13], 0xFF);
    assert_zero(buf, 14, 22); /* alarm limits (none), NaN ctrl_hi, ctrl_lo, pad, value */
}

Test(dbr, gr_long_without_alarm_limits_is_zero)
{
    pv *p = add_pv((pv_def){.name = "gl", .type = PV_LONG,
                            .limits = {.disp_hi = 1000, .disp_lo = -1000, .alarm_hi = 5}});
    pv_set_long(p, -70000);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_GR_LONG, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i32(buf + 12), 1000);
    cr_assert_eq(be_i32(buf + 16), -1000);
    assert_zero(buf, 20, 36);
    cr_assert_eq(be_i32(buf + 36), -70000);
}

Test(dbr, ctrl_enum_layout)
{
    pv *p = enum_pv();
    pv_set_enum(p, 1);
    pv_set_alarm(p, PV_ALARM_STATE, PV_SEV_MAJOR);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_ENUM, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), PV_ALARM_STATE);
    cr_assert_eq(be_i16(buf + 2), PV_SEV_MAJOR);
    cr_assert_eq(be_i16(buf + 4), 3);
    cr_assert_str_eq((const char *)buf + 6, "Off");
    assert_zero(buf, 6 + 3, 6 + 26);
    cr_assert_str_eq((const char *)buf + 6 + 26, "On");
    cr_assert_arr_eq(buf + 6 + 2 * 26, states[2], 26); /* all 26 bytes, no NUL */
    assert_zero(buf, 6 + 3 * 26, 422);
    cr_assert_eq(ca_get16(buf + 422), 1);
}

Test(dbr, gr_enum_of_non_enum_pv_has_no_states)
{
    pv *p = scalar("ge", PV_LONG);
    pv_set_long(p, 2);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_GR_ENUM, 1, p), ECA_NORMAL);
    assert_zero(buf, 4, 422);
    cr_assert_eq(ca_get16(buf + 422), 2);
}

Test(dbr, time_char_value_at_15)
{
    pv *p = scalar("tc", PV_CHAR);
    pv_set_long(p, 200);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_TIME_CHAR, 1, p), ECA_NORMAL);
    assert_zero(buf, 12, 15);
    cr_assert_eq(buf[15], 200);
    cr_assert_eq(encode(buf, DBR_STS_CHAR, 1, p), ECA_NORMAL);
    cr_assert_eq(buf[4], 0);
    cr_assert_eq(buf[5], 200);
}

Test(dbr, gr_and_ctrl_string_are_sts_string)
{
    pv *p = scalar("gs", PV_STRING);
    pv_set_string(p, "hello");
    pv_set_alarm(p, PV_ALARM_COMM, PV_SEV_INVALID);
    uint8_t sts[BUF], gr[BUF], ctrl[BUF];
    cr_assert_eq(encode(sts, DBR_STS_STRING, 1, p), ECA_NORMAL);
    cr_assert_eq(encode(gr, DBR_GR_STRING, 1, p), ECA_NORMAL);
    cr_assert_eq(encode(ctrl, DBR_CTRL_STRING, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(sts), PV_ALARM_COMM);
    cr_assert_str_eq((const char *)sts + 4, "hello");
    assert_zero(sts, 9, 44);
    cr_assert_arr_eq(gr, sts, 44);
    cr_assert_arr_eq(ctrl, sts, 44);
}

Test(dbr, stsack_string_and_class_name)
{
    pv *p = add_pv((pv_def){.name = "sa", .type = PV_DOUBLE, .precision = 1,
                            .class_name = "calcout"});
    pv_set_double(p, 2.5);
    pv_set_alarm(p, PV_ALARM_HIHI, PV_SEV_MAJOR);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_STSACK_STRING, 1, p), ECA_NORMAL);
    cr_assert_eq(ca_get16(buf), PV_ALARM_HIHI);
    cr_assert_eq(ca_get16(buf + 2), PV_SEV_MAJOR);
    assert_zero(buf, 4, 8); /* ackt, acks */
    cr_assert_str_eq((const char *)buf + 8, "2.5");
    cr_assert_eq(encode(buf, DBR_CLASS_NAME, 1, p), ECA_NORMAL);
    cr_assert_str_eq((const char *)buf, "calcout");
    assert_zero(buf, 7, 40);
    pv *q = scalar("ai", PV_DOUBLE);
    cr_assert_eq(encode(buf, DBR_CLASS_NAME, 1, q), ECA_NORMAL);
    cr_assert_str_eq((const char *)buf, pv_class_name(q));
    cr_assert_str_eq((const char *)buf, "ai");
}

Test(dbr, put_ackt_and_acks_cannot_be_read)
{
    pv *p = scalar("ack", PV_DOUBLE);
    pv_set_double(p, 1);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_PUT_ACKT, 1, p), ECA_GETFAIL);
    assert_zero(buf, 0, 2);
    cr_assert_eq(encode(buf, DBR_PUT_ACKS, 4, p), ECA_GETFAIL);
    assert_zero(buf, 0, 8);
}

Test(dbr, encode_invalid_type_writes_nothing)
{
    pv *p = scalar("bad", PV_DOUBLE);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, 39, 1, p), ECA_BADTYPE);
    assert_fill(buf, 0, BUF);
}

/* ---- element counts (4.7) ---- */

Test(dbr, short_waveform_is_zero_filled)
{
    pv *p = add_pv((pv_def){.name = "wf", .type = PV_DOUBLE, .count = 5});
    const double v[3] = {1, 2, 3};
    cr_assert_eq(pv_set_array(p, v, 3), 0);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_TIME_DOUBLE, 5, p), ECA_NORMAL);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(be_f64(buf + 16 + 8 * i), v[i]);
    assert_zero(buf, 16 + 24, 16 + 40);
    /* Fewer than available: exactly n elements, nothing past them. */
    cr_assert_eq(encode(buf, DBR_DOUBLE, 2, p), ECA_NORMAL);
    cr_assert_eq(be_f64(buf + 8), 2);
}

Test(dbr, scalar_read_with_count_above_one)
{
    pv *p = scalar("sc", PV_SHORT);
    pv_set_long(p, 7);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_TIME_SHORT, 3, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf + 14), 7);
    assert_zero(buf, 16, 20);
    cr_assert_eq(encode(buf, DBR_STRING, 2, p), ECA_NORMAL);
    cr_assert_str_eq((const char *)buf, "7");
    assert_zero(buf, 1, 80);
}

Test(dbr, count_zero_is_metadata_only)
{
    pv *p = scalar("c0", PV_DOUBLE);
    pv_set_double(p, 9);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_DOUBLE, 0, p), ECA_NORMAL); /* 80 bytes, no value */
    cr_assert_eq(encode(buf, DBR_DOUBLE, 0, p), ECA_NORMAL);      /* 0 bytes */
}

/* ---- value conversions, gets (4.6) ---- */

static pv *double_pv(const char *name, int16_t prec, double v)
{
    pv *p = add_pv((pv_def){.name = name, .type = PV_DOUBLE, .precision = prec});
    pv_set_double(p, v);
    return p;
}

Test(dbr, double_to_string_fixed_point)
{
    assert_text(double_pv("a", 3, 1.23456), "1.235");
    assert_text(double_pv("b", -1, 1.23456), "1.234560"); /* no precision: 6 */
    assert_text(double_pv("c", 0, 2.5), "3");             /* half up */
    assert_text(double_pv("d", 2, 0.125), "0.13");        /* half up, not to even */
    assert_text(double_pv("e", 3, 9.9996), "10.000");     /* carry into the whole part */
    assert_text(double_pv("f", 1, -2.5), "-2.5");
    assert_text(double_pv("g", 3, -0.0001), "0.000");
    assert_text(double_pv("h", 8, 1e7), "10000000.00000000");
}

Test(dbr, double_to_string_outside_fast_path)
{
    assert_text(double_pv("a", 3, 1e17), " 1.000e+17");       /* width prec + 7 */
    assert_text(double_pv("b", 5, 2e7), "20000000.000");      /* precision capped at 3 */
    assert_text(double_pv("c", 3, 1e16), "10000000000000000.000");
    assert_text(double_pv("d", 3, NAN), "nan");
    assert_text(double_pv("e", 10, 1.5), " 1.5000000000e+00"); /* precision > 8 */
    assert_text(double_pv("f", 30, 1.5), " 1.50000000000000000e+00"); /* capped at 17 */
}

Test(dbr, float_to_string)
{
    pv *p = add_pv((pv_def){.name = "f", .type = PV_FLOAT, .precision = 2});
    pv_set_double(p, 1.005f);
    assert_text(p, "1.00"); /* 1.005f is 1.00499999... */
    pv_set_double(p, 5e7);
    assert_text(p, "50000000.00");
    pv_set_double(p, 1e8);
    assert_text(p, "1.00e+08"); /* FLOAT goes exponential at 1e8 */
    pv_set_precision(p, 20);
    assert_text(p, "1.000000000000e+08"); /* capped at 12 */
}

Test(dbr, integers_to_string)
{
    pv *l = scalar("l", PV_LONG);
    pv_set_long(l, -42);
    assert_text(l, "-42");
    pv *c = scalar("c", PV_CHAR);
    pv_set_long(c, 200);
    assert_text(c, "200");
    pv *s = add_pv((pv_def){.name = "s", .type = PV_SHORT, .precision = 3});
    pv_set_long(s, -32768);
    assert_text(s, "-32768");
}

Test(dbr, enum_to_string_and_number)
{
    pv *p = enum_pv();
    pv_set_enum(p, 1);
    assert_text(p, "On");
    pv_set_enum(p, 2);
    assert_text(p, "abcdefghijklmnopqrstuvwxyz");
    pv_set_enum(p, 5);
    assert_text(p, "Illegal_Value");
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_DOUBLE, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f64(buf), 5);
    cr_assert_eq(encode(buf, DBR_TIME_ENUM, 1, p), ECA_NORMAL);
    cr_assert_eq(ca_get16(buf + 14), 5);
}

Test(dbr, double_to_integers_clamp)
{
    pv *p = scalar("d", PV_DOUBLE);
    uint8_t buf[BUF];
    pv_set_double(p, 1e10);
    cr_assert_eq(encode(buf, DBR_SHORT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), INT16_MAX);
    cr_assert_eq(encode(buf, DBR_LONG, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i32(buf), INT32_MAX);
    cr_assert_eq(encode(buf, DBR_CHAR, 1, p), ECA_NORMAL);
    cr_assert_eq(buf[0], 255);
    pv_set_double(p, -1e10);
    cr_assert_eq(encode(buf, DBR_LONG, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i32(buf), INT32_MIN);
    cr_assert_eq(encode(buf, DBR_ENUM, 1, p), ECA_NORMAL);
    cr_assert_eq(ca_get16(buf), 0);
    pv_set_double(p, NAN);
    cr_assert_eq(encode(buf, DBR_LONG, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i32(buf), 0);
    pv_set_double(p, -7.9);
    cr_assert_eq(encode(buf, DBR_SHORT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), -7); /* truncation */
}

Test(dbr, integer_narrowing_is_a_plain_cast)
{
    pv *p = scalar("l", PV_LONG);
    uint8_t buf[BUF];
    pv_set_long(p, 70000);
    cr_assert_eq(encode(buf, DBR_SHORT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i16(buf), 4464);
    pv_set_long(p, -1);
    cr_assert_eq(encode(buf, DBR_CHAR, 1, p), ECA_NORMAL);
    cr_assert_eq(buf[0], 255);
    cr_assert_eq(encode(buf, DBR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f32(buf), -1.0f);
}

Test(dbr, double_to_float_clamps)
{
    pv *p = scalar("d", PV_DOUBLE);
    uint8_t buf[BUF];
    pv_set_double(p, 1e300);
    cr_assert_eq(encode(buf, DBR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f32(buf), FLT_MAX);
    pv_set_double(p, -1e300);
    cr_assert_eq(encode(buf, DBR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f32(buf), -FLT_MAX);
    pv_set_double(p, 1e-300);
    cr_assert_eq(encode(buf, DBR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f32(buf), FLT_MIN);
    pv_set_double(p, -1e-300);
    cr_assert_eq(encode(buf, DBR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f32(buf), -FLT_MIN);
    pv_set_double(p, INFINITY);
    cr_assert_eq(encode(buf, DBR_FLOAT, 1, p), ECA_NORMAL);
    cr_assert(isinf(be_f32(buf)) && be_f32(buf) > 0);
    pv_set_double(p, 0);
    cr_assert_eq(encode(buf, DBR_STS_FLOAT, 1, p), ECA_NORMAL);
    cr_assert_eq(ca_get32(buf + 4), 0);
}

Test(dbr, string_to_numbers_on_read)
{
    pv *p = scalar("s", PV_STRING);
    uint8_t buf[BUF];
    pv_set_string(p, "  42  ");
    cr_assert_eq(encode(buf, DBR_LONG, 1, p), ECA_NORMAL);
    cr_assert_eq(be_i32(buf), 42);
    cr_assert_eq(encode(buf, DBR_TIME_DOUBLE, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f64(buf + 16), 42);
    pv_set_string(p, "");
    cr_assert_eq(encode(buf, DBR_DOUBLE, 1, p), ECA_NORMAL);
    cr_assert_eq(be_f64(buf), 0);
}

Test(dbr, unparseable_string_read_fails_zeroed)
{
    pv *p = scalar("s", PV_STRING);
    pv_set_string(p, "@#$%");
    pv_set_alarm(p, PV_ALARM_HIGH, PV_SEV_MINOR);
    uint8_t buf[BUF];
    cr_assert_eq(encode(buf, DBR_CTRL_DOUBLE, 1, p), ECA_GETFAIL);
    assert_zero(buf, 0, 88); /* metadata too */
    cr_assert_eq(encode(buf, DBR_STRING, 1, p), ECA_NORMAL);
    cr_assert_str_eq((const char *)buf, "@#$%");
}

Test(dbr, format_element)
{
    pv *p = add_pv((pv_def){.name = "wf", .type = PV_DOUBLE, .count = 3, .precision = 2});
    const double v[3] = {1.0, 2.5, -3.456};
    pv_set_array(p, v, 3);
    char s[PV_STRING_SIZE];
    dbr_format_element(s, p, 1);
    cr_assert_str_eq(s, "2.50");
    dbr_format_element(s, p, 2);
    cr_assert_str_eq(s, "-3.46");
    memset(s, 'x', sizeof(s));
    dbr_format_element(s, p, 3);
    assert_zero((const uint8_t *)s, 0, PV_STRING_SIZE);
    pv *e = enum_pv();
    pv_set_enum(e, 0);
    dbr_format_element(s, e, 0);
    cr_assert_str_eq(s, "Off");
}

/* ---- decoding writes (4.6 puts, 4.8) ---- */

Test(dbr, decode_plain_numbers)
{
    pv *l = scalar("l", PV_LONG);
    uint8_t payload[8] = {0};
    int32_t out = 0;
    uint32_t n = 99;
    put_f64(payload, 123.9);
    cr_assert_eq(dbr_decode(&out, &n, l, DBR_DOUBLE, 1, payload, 8), ECA_NORMAL);
    cr_assert_eq(n, 1);
    cr_assert_eq(out, 123);
    ca_put16(payload, (uint16_t)-5);
    cr_assert_eq(dbr_decode(&out, &n, l, DBR_SHORT, 1, payload, 2), ECA_NORMAL);
    cr_assert_eq(out, -5);
    payload[0] = 250;
    cr_assert_eq(dbr_decode(&out, &n, l, DBR_CHAR, 1, payload, 1), ECA_NORMAL);
    cr_assert_eq(out, 250); /* DBR_CHAR is unsigned */
}

Test(dbr, decode_string_to_numbers)
{
    pv *l = scalar("l", PV_LONG);
    pv *d = scalar("d", PV_DOUBLE);
    int32_t lv = -1;
    double dv = -1;
    uint32_t n = 0;
    cr_assert_eq(decode_text(&lv, &n, l, "12abc"), ECA_NORMAL);
    cr_assert_eq(lv, 12);
    cr_assert_eq(n, 1);
    cr_assert_eq(decode_text(&lv, &n, l, " 1e3 "), ECA_NORMAL);
    cr_assert_eq(lv, 1000);
    cr_assert_eq(decode_text(&lv, &n, l, "99999999999"), ECA_NORMAL);
    cr_assert_eq(lv, INT32_MAX);
    cr_assert_eq(decode_text(&lv, &n, l, ""), ECA_NORMAL);
    cr_assert_eq(lv, 0);
    cr_assert_eq(decode_text(&dv, &n, d, "  -3.75\t"), ECA_NORMAL);
    cr_assert_eq(dv, -3.75);
    dv = 5;
    cr_assert_eq(decode_text(&dv, &n, d, ""), ECA_NORMAL);
    cr_assert_eq(dv, 0);
}

Test(dbr, decode_unparseable_string_fails)
{
    pv *l = scalar("l", PV_LONG);
    pv *d = scalar("d", PV_DOUBLE);
    int32_t lv;
    double dv;
    uint32_t n = 7;
    cr_assert_eq(decode_text(&lv, &n, l, "@#$%"), ECA_PUTFAIL);
    cr_assert_eq(n, 0);
    cr_assert_eq(decode_text(&dv, &n, d, "@#$%"), ECA_PUTFAIL);
    cr_assert_eq(decode_text(&dv, &n, d, "   "), ECA_NORMAL); /* only blanks: "" */
    cr_assert_eq(decode_text(&dv, &n, d, "-"), ECA_PUTFAIL);
}

Test(dbr, decode_empty_string_in_array_fails)
{
    pv *w = add_pv((pv_def){.name = "w", .type = PV_LONG, .count = 4});
    uint8_t payload[80] = "5";
    int32_t out[4];
    uint32_t n;
    cr_assert_eq(dbr_decode(out, &n, w, DBR_STRING, 2, payload, sizeof(payload)), ECA_PUTFAIL);
    memcpy(payload + 40, "6", 2);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_STRING, 2, payload, sizeof(payload)), ECA_NORMAL);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0], 5);
    cr_assert_eq(out[1], 6);
}

Test(dbr, decode_enum_by_name_and_index)
{
    pv *p = enum_pv();
    uint16_t out = 99;
    uint32_t n;
    cr_assert_eq(decode_text(&out, &n, p, "On"), ECA_NORMAL);
    cr_assert_eq(out, 1);
    cr_assert_eq(decode_text(&out, &n, p, "abcdefghijklmnopqrstuvwxyz"), ECA_NORMAL);
    cr_assert_eq(out, 2);
    cr_assert_eq(decode_text(&out, &n, p, "0"), ECA_NORMAL);
    cr_assert_eq(out, 0);
    cr_assert_eq(decode_text(&out, &n, p, " 2 "), ECA_NORMAL);
    cr_assert_eq(out, 2);
}

Test(dbr, decode_enum_failures)
{
    pv *p = enum_pv();
    uint16_t out;
    uint32_t n;
    cr_assert_eq(decode_text(&out, &n, p, "3"), ECA_PUTFAIL); /* index >= no_str */
    cr_assert_eq(decode_text(&out, &n, p, "on"), ECA_PUTFAIL);  /* exact match only */
    cr_assert_eq(decode_text(&out, &n, p, "On "), ECA_PUTFAIL);
    cr_assert_eq(decode_text(&out, &n, p, "-1"), ECA_PUTFAIL);
    cr_assert_eq(decode_text(&out, &n, p, "1abc"), ECA_PUTFAIL);
    cr_assert_eq(decode_text(&out, &n, p, "@#$%"), ECA_PUTFAIL);
}

Test(dbr, decode_numbers_to_enum_cast)
{
    pv *p = enum_pv();
    uint16_t out;
    uint32_t n;
    uint8_t payload[8] = {0};
    ca_put16(payload, 7);
    cr_assert_eq(dbr_decode(&out, &n, p, DBR_SHORT, 1, payload, 2), ECA_NORMAL);
    cr_assert_eq(out, 7); /* no range check here: pv_write does it */
    ca_put32(payload, 65537);
    cr_assert_eq(dbr_decode(&out, &n, p, DBR_LONG, 1, payload, 4), ECA_NORMAL);
    cr_assert_eq(out, 1);
    put_f64(payload, 2.9);
    cr_assert_eq(dbr_decode(&out, &n, p, DBR_DOUBLE, 1, payload, 8), ECA_NORMAL);
    cr_assert_eq(out, 2);
}

Test(dbr, decode_numbers_to_string_pv)
{
    pv *s = scalar("s", PV_STRING);
    char out[PV_STRING_SIZE];
    uint32_t n;
    uint8_t payload[8];
    put_f64(payload, 3.14159);
    cr_assert_eq(dbr_decode(out, &n, s, DBR_DOUBLE, 1, payload, 8), ECA_NORMAL);
    cr_assert_str_eq(out, "3.141590"); /* a STRING PV has no PREC: 6 */
    pv_set_precision(s, 2);
    cr_assert_eq(dbr_decode(out, &n, s, DBR_DOUBLE, 1, payload, 8), ECA_NORMAL);
    cr_assert_str_eq(out, "3.14");
    assert_zero((const uint8_t *)out, 4, PV_STRING_SIZE);
    ca_put32(payload, (uint32_t)-7);
    cr_assert_eq(dbr_decode(out, &n, s, DBR_LONG, 1, payload, 4), ECA_NORMAL);
    cr_assert_str_eq(out, "-7");
    ca_put16(payload, 2);
    cr_assert_eq(dbr_decode(out, &n, s, DBR_ENUM, 1, payload, 2), ECA_NORMAL);
    cr_assert_str_eq(out, "2"); /* a written index, not a state of this PV */
}

Test(dbr, decode_uses_value_part_of_compound_types)
{
    pv *d = scalar("d", PV_DOUBLE);
    uint8_t payload[88];
    memset(payload, 0x55, sizeof(payload));
    put_f64(payload + 80, 6.25);
    double out;
    uint32_t n;
    cr_assert_eq(dbr_decode(&out, &n, d, DBR_CTRL_DOUBLE, 1, payload, 88), ECA_NORMAL);
    cr_assert_eq(out, 6.25);
    put_f64(payload + 16, -1.5);
    cr_assert_eq(dbr_decode(&out, &n, d, DBR_TIME_DOUBLE, 1, payload, 24), ECA_NORMAL);
    cr_assert_eq(out, -1.5);
    payload[5] = 77;
    cr_assert_eq(dbr_decode(&out, &n, d, DBR_STS_CHAR, 1, payload, 6), ECA_NORMAL);
    cr_assert_eq(out, 77);
    memcpy(payload + 12, "8.5", 4);
    cr_assert_eq(dbr_decode(&out, &n, d, DBR_TIME_STRING, 1, payload, 52), ECA_NORMAL);
    cr_assert_eq(out, 8.5);
}

Test(dbr, decode_ack_types_are_noops)
{
    pv *d = scalar("d", PV_DOUBLE);
    uint8_t payload[8] = {0, 1};
    double out = 3;
    uint32_t n = 5;
    cr_assert_eq(dbr_decode(&out, &n, d, DBR_PUT_ACKT, 1, payload, 2), ECA_NORMAL);
    cr_assert_eq(n, 0);
    n = 5;
    cr_assert_eq(dbr_decode(&out, &n, d, DBR_PUT_ACKS, 1, payload, 2), ECA_NORMAL);
    cr_assert_eq(n, 0);
    cr_assert_eq(out, 3);
}

Test(dbr, decode_refused_types)
{
    pv *s = scalar("s", PV_STRING);
    uint8_t payload[48] = {0};
    char out[PV_STRING_SIZE];
    uint32_t n;
    cr_assert_eq(dbr_decode(out, &n, s, DBR_STSACK_STRING, 1, payload, 48), ECA_PUTFAIL);
    cr_assert_eq(dbr_decode(out, &n, s, DBR_CLASS_NAME, 1, payload, 40), ECA_PUTFAIL);
    cr_assert_eq(dbr_decode(out, &n, s, 39, 1, payload, 48), ECA_BADTYPE);
    cr_assert_eq(dbr_decode(out, &n, s, 1000, 1, payload, 48), ECA_BADTYPE);
}

Test(dbr, decode_short_payload_fails)
{
    pv *w = add_pv((pv_def){.name = "w", .type = PV_DOUBLE, .count = 4});
    uint8_t payload[88] = {0};
    double out[4];
    uint32_t n;
    cr_assert_eq(dbr_decode(out, &n, w, DBR_DOUBLE, 2, payload, 15), ECA_PUTFAIL);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_DOUBLE, 2, payload, 16), ECA_NORMAL);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_CTRL_DOUBLE, 1, payload, 87), ECA_PUTFAIL);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_SHORT, 1, payload, 1), ECA_PUTFAIL);
    memcpy(payload, "1", 2);
    memcpy(payload + 40, "2", 2);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_STRING, 2, payload, 41), ECA_NORMAL);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_STRING, 3, payload, 79), ECA_PUTFAIL);
    cr_assert_eq(dbr_decode(out, &n, w, DBR_DOUBLE, 0, payload, 88), ECA_PUTFAIL);
}

Test(dbr, decode_short_and_unterminated_strings)
{
    pv *d = scalar("d", PV_DOUBLE);
    pv *s = scalar("s", PV_STRING);
    double dv;
    char sv[PV_STRING_SIZE];
    uint32_t n;
    const uint8_t seven[] = {'7'}; /* one byte, no NUL: read up to len */
    cr_assert_eq(dbr_decode(&dv, &n, d, DBR_STRING, 1, seven, 1), ECA_NORMAL);
    cr_assert_eq(dv, 7);
    uint8_t ones[50];
    memset(ones, '1', sizeof(ones)); /* no NUL within 40 bytes: only 40 count */
    cr_assert_eq(dbr_decode(&dv, &n, d, DBR_STRING, 1, ones, sizeof(ones)), ECA_NORMAL);
    cr_assert(dv > 1.1e39 && dv < 1.2e39, "parsed %g", dv);
    cr_assert_eq(dbr_decode(sv, &n, s, DBR_STRING, 1, ones, sizeof(ones)), ECA_NORMAL);
    cr_assert_eq(strnlen(sv, PV_STRING_SIZE), 39);
}

Test(dbr, decode_count_limited_by_pv)
{
    pv *l = scalar("l", PV_LONG);
    uint8_t payload[20];
    for (int i = 0; i < 5; i++)
        ca_put32(payload + 4 * i, (uint32_t)(10 + i));
    int32_t out[1];
    uint32_t n;
    cr_assert_eq(dbr_decode(out, &n, l, DBR_LONG, 5, payload, 20), ECA_NORMAL);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0], 10);
    pv *w = add_pv((pv_def){.name = "w", .type = PV_DOUBLE, .count = 8});
    double wv[8];
    cr_assert_eq(dbr_decode(wv, &n, w, DBR_LONG, 5, payload, 20), ECA_NORMAL);
    cr_assert_eq(n, 5);
    cr_assert_eq(wv[4], 14);
}

Test(dbr, decode_long_string_to_char_array)
{
    pv *w = add_pv((pv_def){.name = "ls", .type = PV_CHAR, .count = 20});
    uint8_t payload[40] = "hello world";
    uint8_t out[20];
    memset(out, 0xAA, sizeof(out));
    uint32_t n;
    cr_assert_eq(dbr_decode(out, &n, w, DBR_STRING, 1, payload, 40), ECA_NORMAL);
    cr_assert_eq(n, 12);
    cr_assert_arr_eq(out, "hello world", 12);
    pv *small = add_pv((pv_def){.name = "ls5", .type = PV_CHAR, .count = 5});
    cr_assert_eq(dbr_decode(out, &n, small, DBR_STRING, 1, payload, 40), ECA_NORMAL);
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(out, "hell", 5);
    pv *c = scalar("c", PV_CHAR); /* a scalar CHAR parses the number */
    memcpy(payload, "65", 3);
    cr_assert_eq(dbr_decode(out, &n, c, DBR_STRING, 1, payload, 40), ECA_NORMAL);
    cr_assert_eq(out[0], 65);
}

Test(dbr, decode_string_to_string_pv)
{
    pv *s = scalar("s", PV_STRING);
    uint8_t payload[40];
    memset(payload, 0x55, sizeof(payload));
    memcpy(payload, "abc", 4); /* bytes after the NUL are garbage */
    char out[PV_STRING_SIZE];
    uint32_t n;
    cr_assert_eq(dbr_decode(out, &n, s, DBR_STRING, 1, payload, 40), ECA_NORMAL);
    cr_assert_str_eq(out, "abc");
    assert_zero((const uint8_t *)out, 3, PV_STRING_SIZE);
}

/* ---- prefixes: the CA server encodes once and answers every count from it ---- */

/* For every type, the encoding of k elements is the first dbr_struct_size_n(type, k) bytes of
 * the encoding of n > k, and elements past the valid ones are zero. */
Test(dbr, encodings_are_prefixes_of_each_other)
{
    pv *wave = add_pv((pv_def){.name = "wave", .type = PV_DOUBLE, .count = 20, .writable = true,
                               .units = "mm", .precision = 2});
    double v[12];
    for (int i = 0; i < 12; i++)
        v[i] = i * 1.25 - 3;
    cr_assert_eq(pv_set_array(wave, v, 12), 0); /* 12 of 20 valid */
    pv *strs = add_pv((pv_def){.name = "strs", .type = PV_STRING, .count = 4, .writable = true});
    char s4[4][PV_STRING_SIZE] = {"1.5", "x", "2", ""};
    cr_assert_eq(pv_set_array(strs, s4, 4), 0);
    pv *pvs[] = {wave, strs, enum_pv()};
    for (size_t k = 0; k < sizeof pvs / sizeof pvs[0]; k++) {
        for (unsigned type = 0; type <= DBR_LAST; type++) {
            static uint8_t big[8192], small[8192];
            uint32_t good_big, good_small;
            dbr_encode_prefix(big, type, 30, pvs[k], &good_big);
            for (uint32_t n = 1; n <= 30; n++) {
                uint32_t st = dbr_encode_prefix(small, type, n, pvs[k], &good_small);
                size_t len = dbr_struct_size_n(type, n);
                cr_assert(memcmp(small, big, len) == 0, "%s type %u: %u elements are not a "
                          "prefix of 30", pv_name(pvs[k]), type, n);
                /* What the server answers for n from the encoding of 30 (cas_msg_status):
                 * normal iff the elements n needs converted. */
                uint32_t valid = pv_nelm(pvs[k]) < pv_count(pvs[k]) ? pv_nelm(pvs[k])
                                                                     : pv_count(pvs[k]);
                uint32_t need = n < valid ? n : valid;
                cr_assert_eq(st, need <= good_big ? ECA_NORMAL : ECA_GETFAIL,
                             "%s type %u count %u: status %u, but %u of 30 converted",
                             pv_name(pvs[k]), type, n, st, good_big);
            }
            /* Past the valid elements, zeros. */
            size_t used = dbr_struct_size_n(type, pv_nelm(pvs[k]) < 30 ? pv_nelm(pvs[k]) : 30);
            size_t all = dbr_struct_size_n(type, 30);
            for (size_t i = used; i < all && dbr_value_type(type) >= 0; i++)
                cr_assert_eq(big[i], 0, "%s type %u: byte %zu past the valid elements",
                             pv_name(pvs[k]), type, i);
        }
    }
    /* "x" does not convert to a number: a DOUBLE read of strs fails at element 1. */
    uint8_t out[256];
    uint32_t good;
    cr_expect_eq(dbr_encode_prefix(out, DBR_DOUBLE, 4, strs, &good), ECA_GETFAIL);
    cr_expect_eq(good, 1u);
    cr_expect_eq(dbr_encode_prefix(out, DBR_DOUBLE, 1, strs, &good), ECA_NORMAL);
    cr_expect_eq(good, 1u);
    cr_expect_eq(dbr_encode(out, DBR_DOUBLE, 4, strs), ECA_GETFAIL);
    for (int i = 0; i < 32; i++)
        cr_expect_eq(out[i], 0, "a failed dbr_encode leaves zeros");
}
