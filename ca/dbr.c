/* dbr.c — DBR types: sizes, encoding a PV as any of the 39 types, decoding writes.
 *
 * Design: every conversion goes through one host-order element. A read takes
 * a native element, converts it to the requested value type in host order and
 * then writes it big-endian; a write reads a big-endian element of the written
 * type into host order and converts it to the native type. So there is one
 * conversion routine (convert()) for gets and puts, and byte order is handled
 * in exactly two places (put_be()/get_be()). Layouts come from tables
 * (section 4.2 and 4.3 of ../shared/docs/ca-protocol.md), never from C structs:
 * the wire structs have no padding the compiler would agree with.
 *
 * Integers are carried as doubles between types (every native integer type is
 * exact in a double), with a flag saying whether the value came from an
 * integer: integer narrowing is then a plain wrap-around cast as in EPICS,
 * while a floating value is clamped first, because casting an out-of-range
 * or NaN double to an integer is undefined behaviour in C.
 */
#include "ca/dbr.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/caproto.h"

/* ---- sizes and offsets (section 4.2) ---- */

struct dbr_info {
    uint16_t size;       /* struct holding one element */
    uint16_t value_size; /* each further element */
    uint16_t value_off;  /* first element */
};

static const struct dbr_info dbr_table[DBR_LAST + 1] = {
    [DBR_STRING] = {40, 40, 0},       [DBR_SHORT] = {2, 2, 0},
    [DBR_FLOAT] = {4, 4, 0},          [DBR_ENUM] = {2, 2, 0},
    [DBR_CHAR] = {1, 1, 0},           [DBR_LONG] = {4, 4, 0},
    [DBR_DOUBLE] = {8, 8, 0},
    [DBR_STS_STRING] = {44, 40, 4},   [DBR_STS_SHORT] = {6, 2, 4},
    [DBR_STS_FLOAT] = {8, 4, 4},      [DBR_STS_ENUM] = {6, 2, 4},
    [DBR_STS_CHAR] = {6, 1, 5},       [DBR_STS_LONG] = {8, 4, 4},
    [DBR_STS_DOUBLE] = {16, 8, 8},
    [DBR_TIME_STRING] = {52, 40, 12}, [DBR_TIME_SHORT] = {16, 2, 14},
    [DBR_TIME_FLOAT] = {16, 4, 12},   [DBR_TIME_ENUM] = {16, 2, 14},
    [DBR_TIME_CHAR] = {16, 1, 15},    [DBR_TIME_LONG] = {16, 4, 12},
    [DBR_TIME_DOUBLE] = {24, 8, 16},
    [DBR_GR_STRING] = {44, 40, 4},    [DBR_GR_SHORT] = {26, 2, 24},
    [DBR_GR_FLOAT] = {44, 4, 40},     [DBR_GR_ENUM] = {424, 2, 422},
    [DBR_GR_CHAR] = {20, 1, 19},      [DBR_GR_LONG] = {40, 4, 36},
    [DBR_GR_DOUBLE] = {72, 8, 64},
    [DBR_CTRL_STRING] = {44, 40, 4},  [DBR_CTRL_SHORT] = {30, 2, 28},
    [DBR_CTRL_FLOAT] = {52, 4, 48},   [DBR_CTRL_ENUM] = {424, 2, 422},
    [DBR_CTRL_CHAR] = {22, 1, 21},    [DBR_CTRL_LONG] = {48, 4, 44},
    [DBR_CTRL_DOUBLE] = {88, 8, 80},
    [DBR_PUT_ACKT] = {2, 2, 0},       [DBR_PUT_ACKS] = {2, 2, 0},
    [DBR_STSACK_STRING] = {48, 40, 8},
    [DBR_CLASS_NAME] = {40, 40, 0},
};

/* Families of codes 0..34: code = family * 7 + value type. */
enum dbr_family { FAM_PLAIN = 0, FAM_STS = 1, FAM_TIME = 2, FAM_GR = 3, FAM_CTRL = 4 };

/* Where GR/CTRL metadata of a numeric value type sits (section 4.3); the
 * limits follow each other at the element size of the value type. prec < 0:
 * the type has no precision field. */
static const struct {
    int8_t prec;
    uint8_t units;
    uint8_t limits;
} gr_layout[PV_NTYPES] = {
    [PV_SHORT] = {-1, 4, 12}, [PV_FLOAT] = {4, 8, 16}, [PV_CHAR] = {-1, 4, 12},
    [PV_LONG] = {-1, 4, 12},  [PV_DOUBLE] = {4, 8, 16},
};

#define ENUM_NO_STR_OFF 4
#define ENUM_STRS_OFF 6
#define STSACK_ACKT_OFF 4
#define STSACK_ACKS_OFF 6
#define DEFAULT_PRECISION 6
#define ILLEGAL_ENUM_TEXT "Illegal_Value"

bool dbr_valid(unsigned type) { return type <= DBR_LAST; }

size_t dbr_struct_size(unsigned type) { return dbr_valid(type) ? dbr_table[type].size : 0; }

size_t dbr_elem_size(unsigned type) { return dbr_valid(type) ? dbr_table[type].value_size : 0; }

size_t dbr_elem_offset(unsigned type) { return dbr_valid(type) ? dbr_table[type].value_off : 0; }

size_t dbr_struct_size_n(unsigned type, uint32_t n)
{
    if (!dbr_valid(type))
        return SIZE_MAX;
    const struct dbr_info *d = &dbr_table[type];
    if (n == 0)
        return (size_t)d->size - d->value_size;
    /* Only reachable with a 32-bit size_t, but then it would wrap silently. */
    if ((size_t)(n - 1) > (SIZE_MAX - d->size) / d->value_size)
        return SIZE_MAX;
    return d->size + (size_t)(n - 1) * d->value_size;
}

int dbr_value_type(unsigned type) { return type <= DBR_CTRL_DOUBLE ? (int)(type % 7) : -1; }

/* The plain type rows of the table double as the element sizes of the seven
 * value (and native) types. */
static size_t elem_size(enum pv_type t) { return dbr_table[t].value_size; }

/* ---- byte order: the only two places that know about it ---- */

static void put_be(uint8_t *p, const void *host, size_t size)
{
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (size) {
    case 2:
        memcpy(&v16, host, 2);
        ca_put16(p, v16);
        break;
    case 4:
        memcpy(&v32, host, 4);
        ca_put32(p, v32);
        break;
    case 8:
        memcpy(&v64, host, 8);
        ca_put32(p, (uint32_t)(v64 >> 32));
        ca_put32(p + 4, (uint32_t)v64);
        break;
    default: /* chars and strings have no byte order */
        memcpy(p, host, size);
        break;
    }
}

static void get_be(void *host, const uint8_t *p, size_t size)
{
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (size) {
    case 2:
        v16 = ca_get16(p);
        memcpy(host, &v16, 2);
        break;
    case 4:
        v32 = ca_get32(p);
        memcpy(host, &v32, 4);
        break;
    case 8:
        v64 = (uint64_t)ca_get32(p) << 32 | ca_get32(p + 4);
        memcpy(host, &v64, 8);
        break;
    default:
        memcpy(host, p, size);
        break;
    }
}

/* ---- numbers ---- */

/* A value between types: integral says it came from an integer type (or was
 * truncated to one on purpose), so narrowing it wraps instead of clamping. */
struct num {
    double v;
    bool integral;
};

static struct num load_num(const void *src, enum pv_type t)
{
    int16_t s;
    float f;
    uint16_t e;
    int32_t l;
    double d;
    switch (t) {
    case PV_SHORT: memcpy(&s, src, 2); return (struct num){s, true};
    case PV_FLOAT: memcpy(&f, src, 4); return (struct num){f, false};
    case PV_ENUM: memcpy(&e, src, 2); return (struct num){e, true};
    case PV_CHAR: return (struct num){*(const uint8_t *)src, true};
    case PV_LONG: memcpy(&l, src, 4); return (struct num){l, true};
    case PV_DOUBLE: memcpy(&d, src, 8); return (struct num){d, false};
    case PV_STRING: break;
    }
    return (struct num){0, true};
}

/* A double narrowed to [lo, hi]; NaN gives 0 (a cast would be undefined). */
static int64_t clamp_int(double d, int64_t lo, int64_t hi)
{
    if (isnan(d))
        return 0;
    if (d <= (double)lo)
        return lo;
    if (d >= (double)hi)
        return hi;
    return (int64_t)d;
}

/* The integer a value becomes before a narrowing cast: exact for integers
 * (they always fit in int64), clamped to the target range for floats. */
static int64_t to_int(struct num x, int64_t lo, int64_t hi)
{
    return x.integral ? (int64_t)x.v : clamp_int(x.v, lo, hi);
}

/* rsrv's double to float: clamp to ±FLT_MAX and lift magnitudes below FLT_MIN
 * to ±FLT_MIN; 0, NaN and Inf pass through. */
static float to_float(double d)
{
    if (d == 0 || isnan(d) || isinf(d))
        return (float)d;
    double a = fabs(d);
    if (a > FLT_MAX)
        return d < 0 ? -FLT_MAX : FLT_MAX;
    if (a < FLT_MIN)
        return d < 0 ? -FLT_MIN : FLT_MIN;
    return (float)d;
}

/* Store a number as one host-order element of a numeric type. The unsigned
 * casts make integer narrowing wrap-around (defined) rather than UB. */
static void store_num(void *dst, enum pv_type t, struct num x)
{
    int16_t s;
    float f;
    uint16_t e;
    uint8_t c;
    int32_t l;
    switch (t) {
    case PV_SHORT:
        s = (int16_t)(uint16_t)to_int(x, INT16_MIN, INT16_MAX);
        memcpy(dst, &s, 2);
        break;
    case PV_FLOAT:
        f = to_float(x.v);
        memcpy(dst, &f, 4);
        break;
    case PV_ENUM:
        e = (uint16_t)to_int(x, 0, UINT16_MAX);
        memcpy(dst, &e, 2);
        break;
    case PV_CHAR:
        c = (uint8_t)to_int(x, 0, UINT8_MAX);
        memcpy(dst, &c, 1);
        break;
    case PV_LONG:
        l = (int32_t)(uint32_t)to_int(x, INT32_MIN, INT32_MAX);
        memcpy(dst, &l, 4);
        break;
    case PV_DOUBLE:
        memcpy(dst, &x.v, 8);
        break;
    case PV_STRING:
        break;
    }
}

/* ---- text ---- */

/* Copy a string of at most `max` bytes (not necessarily NUL-terminated) into
 * a 40-byte slot: at most 39 characters, NUL, zero padding. */
static void store_text(char *dst, const char *src, size_t max)
{
    size_t n = strnlen(src, max < PV_STRING_SIZE - 1 ? max : PV_STRING_SIZE - 1);
    memset(dst, 0, PV_STRING_SIZE);
    memcpy(dst, src, n);
}

/* EPICS fast path for |v| <= 1e7 and prec <= 8: fixed point, rounded half up
 * on the first dropped digit (printf rounds exact ties to even instead). */
static void format_fixed(char *out, double v, int prec)
{
    static const int64_t scale[] = {1, 10, 100, 1000, 10000, 100000,
                                    1000000, 10000000, 100000000, 1000000000};
    double a = fabs(v);
    int64_t whole = (int64_t)a;
    int64_t frac = ((int64_t)((a - (double)whole) * (double)scale[prec + 1]) + 5) / 10;
    if (frac >= scale[prec]) {
        whole++;
        frac -= scale[prec];
    }
    /* No "-0.000": the sign only when something non-zero is left. */
    const char *sign = v < 0 && (whole || frac) ? "-" : "";
    if (prec == 0)
        snprintf(out, PV_STRING_SIZE, "%s%lld", sign, (long long)whole);
    else
        snprintf(out, PV_STRING_SIZE, "%s%lld.%0*lld", sign, (long long)whole, prec,
                 (long long)frac);
}

/* EPICS cvtDoubleToString / cvtFloatToString (section 4.6). */
static void format_float(char *out, double v, int prec, bool single)
{
    if (!isnan(v) && prec <= 8 && fabs(v) <= 1e7) {
        format_fixed(out, v, prec);
        return;
    }
    bool huge = single ? fabs(v) >= 1e8 : fabs(v) > 1e16;
    if (prec > 8 || huge) {
        int cap = single ? 12 : 17;
        int p = prec < cap ? prec : cap;
        snprintf(out, PV_STRING_SIZE, "%*.*e", p + (single ? 6 : 7), p, v);
    } else {
        snprintf(out, PV_STRING_SIZE, "%.*f", prec < 3 ? prec : 3, v);
    }
}

/* What a text parsed to. */
enum text_kind { TEXT_EMPTY, TEXT_NUMBER, TEXT_BAD };

/* Parse text as a number: leading whitespace skipped, anything after the
 * number ignored ("12abc" is 12). Integer targets read a decimal integer so
 * that "010" is ten, not hex or octal; a float notation falls back to strtod
 * so "1e3" is still 1000. */
static enum text_kind parse_text(const char *s, bool integer, double *out)
{
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    *out = 0;
    if (*s == '\0')
        return TEXT_EMPTY;
    if (integer) {
        long long v = strtoll(s, &end, 10);
        if (end != s && *end != '.' && *end != 'e' && *end != 'E') {
            *out = (double)v;
            return TEXT_NUMBER;
        }
    }
    double d = strtod(s, &end);
    if (end == s)
        return TEXT_BAD;
    *out = d;
    return TEXT_NUMBER;
}

/* A state index written as text: digits only, surrounding whitespace allowed. */
static bool parse_index(const char *s, unsigned long *out)
{
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    *out = strtoul(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    return *end == '\0';
}

/* ---- one element between any two types ---- */

/* What a conversion needs besides the two elements. */
struct conv {
    const pv *pv;
    int prec;      /* decimal places for FLOAT/DOUBLE text */
    bool empty_ok; /* "" reads as 0 (gets and scalar puts; not array puts) */
};

/* Decimal places for FLOAT/DOUBLE text: the PV's precision; 6 when it has
 * none (negative), and for STRING PVs unless their owner set one, as EPICS
 * does for records without PREC. */
static int text_precision(const pv *pv)
{
    int p = pv_precision(pv);
    if (p < 0 || (p == 0 && pv_type(pv) == PV_STRING))
        return DEFAULT_PRECISION;
    return p;
}

static struct conv conv_for(const pv *pv, bool empty_ok)
{
    return (struct conv){pv, text_precision(pv), empty_ok};
}

static void enum_text(char *dst, const pv *pv, unsigned index)
{
    const char *s = pv_enum_string(pv, index);
    if (s)
        store_text(dst, s, PV_ENUM_STRING_SIZE);
    else
        store_text(dst, ILLEGAL_ENUM_TEXT, sizeof(ILLEGAL_ENUM_TEXT));
}

/* A number as text. A native ENUM gives its state text. */
static void number_to_text(char *dst, const void *src, enum pv_type from, const struct conv *c)
{
    struct num x = load_num(src, from);
    memset(dst, 0, PV_STRING_SIZE);
    if (from == PV_ENUM && pv_type(c->pv) == PV_ENUM)
        enum_text(dst, c->pv, (unsigned)x.v);
    else if (x.integral)
        snprintf(dst, PV_STRING_SIZE, "%lld", (long long)x.v);
    else
        format_float(dst, x.v, c->prec, from == PV_FLOAT);
}

/* Text written to a native ENUM: a state's exact text, else its index. */
static bool text_to_enum(uint16_t *dst, const char *s, const pv *pv)
{
    size_t len = strlen(s);
    unsigned n = pv_n_enums(pv);
    for (unsigned i = 0; i < n; i++) {
        const char *state = pv_enum_string(pv, i);
        if (state && strnlen(state, PV_ENUM_STRING_SIZE) == len && memcmp(state, s, len) == 0) {
            *dst = (uint16_t)i;
            return true;
        }
    }
    unsigned long index;
    if (!parse_index(s, &index) || index >= n)
        return false;
    *dst = (uint16_t)index;
    return true;
}

/* Text (at most PV_STRING_SIZE bytes at src) to a number. */
static bool text_to_number(void *dst, enum pv_type to, const char *src, const struct conv *c)
{
    char text[PV_STRING_SIZE + 1] = {0};
    memcpy(text, src, strnlen(src, PV_STRING_SIZE));
    if (to == PV_ENUM && pv_type(c->pv) == PV_ENUM) {
        uint16_t e;
        if (!text_to_enum(&e, text, c->pv))
            return false;
        memcpy(dst, &e, 2);
        return true;
    }
    double d;
    enum text_kind k = parse_text(text, to != PV_FLOAT && to != PV_DOUBLE, &d);
    if (k == TEXT_BAD || (k == TEXT_EMPTY && !c->empty_ok))
        return false;
    store_num(dst, to, (struct num){d, false});
    return true;
}

/* Convert one host-order element; false when text does not convert. */
static bool convert(void *dst, enum pv_type to, const void *src, enum pv_type from,
                    const struct conv *c)
{
    if (to == PV_STRING && from == PV_STRING) {
        store_text(dst, src, PV_STRING_SIZE);
        return true;
    }
    if (to == PV_STRING) {
        number_to_text(dst, src, from, c);
        return true;
    }
    if (from == PV_STRING)
        return text_to_number(dst, to, src, c);
    if (from == to) {
        memcpy(dst, src, elem_size(to));
        return true;
    }
    store_num(dst, to, load_num(src, from));
    return true;
}

/* ---- encoding (gets) ---- */

static void put_alarm(uint8_t *out, const pv *pv)
{
    ca_put16(out, (uint16_t)pv_status(pv));
    ca_put16(out + 2, (uint16_t)pv_severity(pv));
}

static void put_stamp(uint8_t *out, const pv *pv)
{
    pv_time t = pv_stamp(pv);
    ca_put32(out + 4, t.sec);
    ca_put32(out + 8, t.nsec);
}

/* GR/CTRL_ENUM: out is already zeroed, so unused state slots stay empty. */
static void put_enum_states(uint8_t *out, const pv *pv)
{
    unsigned n = pv_type(pv) == PV_ENUM ? pv_n_enums(pv) : 0;
    if (n > PV_ENUM_MAX)
        n = PV_ENUM_MAX;
    ca_put16(out + ENUM_NO_STR_OFF, (uint16_t)n);
    for (unsigned i = 0; i < n; i++) {
        const char *s = pv_enum_string(pv, i);
        if (s)
            memcpy(out + ENUM_STRS_OFF + i * PV_ENUM_STRING_SIZE, s,
                   strnlen(s, PV_ENUM_STRING_SIZE));
    }
}

/* The limits in wire order; alarm limits are NaN when the PV has none, which
 * the integer types turn into 0 (clamp_int) as rsrv does. */
static void limit_values(double lim[8], const pv *pv)
{
    const pv_limits *l = pv_get_limits(pv);
    bool alarm = pv_has_alarm_limits(pv);
    lim[0] = l->disp_hi;
    lim[1] = l->disp_lo;
    lim[2] = alarm ? l->alarm_hi : NAN;
    lim[3] = alarm ? l->warn_hi : NAN;
    lim[4] = alarm ? l->warn_lo : NAN;
    lim[5] = alarm ? l->alarm_lo : NAN;
    lim[6] = l->ctrl_hi;
    lim[7] = l->ctrl_lo;
}

/* One limit as a host element: integer types truncate to int32 and then
 * cast (wrap) to their width; FLOAT clamps; DOUBLE is unchanged. */
static void limit_element(void *dst, enum pv_type t, double v)
{
    bool integer = t != PV_FLOAT && t != PV_DOUBLE;
    if (integer)
        store_num(dst, t, (struct num){(double)clamp_int(v, INT32_MIN, INT32_MAX), true});
    else
        store_num(dst, t, (struct num){v, false});
}

/* Units, precision and limits of GR/CTRL for a numeric value type. */
static void put_numeric_display(uint8_t *out, enum pv_type vt, bool ctrl, const pv *pv)
{
    size_t w = elem_size(vt);
    double lim[8];
    uint8_t host[8];
    const char *units = pv_units(pv);
    if (gr_layout[vt].prec >= 0)
        ca_put16(out + gr_layout[vt].prec, (uint16_t)pv_precision(pv));
    if (units)
        memcpy(out + gr_layout[vt].units, units, strnlen(units, PV_UNITS_SIZE - 1));
    limit_values(lim, pv);
    for (unsigned i = 0; i < (ctrl ? 8u : 6u); i++) {
        limit_element(host, vt, lim[i]);
        put_be(out + gr_layout[vt].limits + i * w, host, w);
    }
}

static void put_display(uint8_t *out, enum pv_type vt, bool ctrl, const pv *pv)
{
    if (vt == PV_ENUM)
        put_enum_states(out, pv);
    else if (vt != PV_STRING) /* GR/CTRL_STRING are STS_STRING */
        put_numeric_display(out, vt, ctrl, pv);
}

/* n elements of value type `to` from the PV, big-endian at dst. Elements past
 * pv_nelm() are left as they are (zero). *good receives how many were
 * converted before the first that could not be (all of them on success). */
static uint32_t encode_values(uint8_t *dst, enum pv_type to, uint32_t n, const pv *pv,
                              uint32_t *good)
{
    const struct conv c = conv_for(pv, true);
    enum pv_type from = pv_type(pv);
    const uint8_t *src = pv_value(pv);
    size_t fs = elem_size(from), ts = elem_size(to);
    uint32_t valid = pv_nelm(pv) < pv_count(pv) ? pv_nelm(pv) : pv_count(pv);
    uint32_t m = n < valid ? n : valid;
    uint8_t host[PV_STRING_SIZE];
    for (uint32_t i = 0; i < m; i++) {
        if (!convert(host, to, src + (size_t)i * fs, from, &c)) {
            *good = i;
            return ECA_GETFAIL;
        }
        put_be(dst + (size_t)i * ts, host, ts);
    }
    *good = m;
    return ECA_NORMAL;
}

/* Fill a zeroed buffer; returns the ECA status and what encode_values says
 * in *good. */
static uint32_t encode_body(uint8_t *out, unsigned type, uint32_t n, const pv *pv, uint32_t *good)
{
    *good = 0;
    switch (type) {
    case DBR_PUT_ACKT:
    case DBR_PUT_ACKS:
        return ECA_GETFAIL; /* write-only; acctst checks that reads fail */
    case DBR_STSACK_STRING:
        /* guardiand keeps no acknowledge state: ackt and acks stay 0. */
        put_alarm(out, pv);
        return encode_values(out + dbr_table[type].value_off, PV_STRING, n, pv, good);
    case DBR_CLASS_NAME:
        if (n > 0)
            store_text((char *)out, pv_class_name(pv), PV_STRING_SIZE);
        *good = n;
        return ECA_NORMAL;
    default:
        break;
    }
    enum dbr_family fam = (enum dbr_family)(type / 7);
    enum pv_type vt = (enum pv_type)(type % 7);
    if (fam >= FAM_STS)
        put_alarm(out, pv);
    if (fam == FAM_TIME)
        put_stamp(out, pv);
    if (fam >= FAM_GR)
        put_display(out, vt, fam == FAM_CTRL, pv);
    return encode_values(out + dbr_table[type].value_off, vt, n, pv, good);
}

uint32_t dbr_encode_prefix(uint8_t *out, unsigned type, uint32_t n, const pv *pv, uint32_t *good)
{
    *good = 0;
    if (!dbr_valid(type))
        return ECA_BADTYPE;
    /* Zeroing first makes every pad field and every missing element 0. */
    memset(out, 0, dbr_struct_size_n(type, n));
    return encode_body(out, type, n, pv, good);
}

uint32_t dbr_encode(uint8_t *out, unsigned type, uint32_t n, const pv *pv)
{
    uint32_t good;
    uint32_t status = dbr_encode_prefix(out, type, n, pv, &good);
    if (status == ECA_GETFAIL)
        memset(out, 0, dbr_struct_size_n(type, n));
    return status;
}

/* ---- decoding (puts) ---- */

/* Does len hold k elements of vsize bytes from off? (No overflow.) */
static bool payload_holds(size_t len, size_t off, size_t vsize, uint32_t k)
{
    return off <= len && k <= (len - off) / vsize;
}

/* String element i of a payload: the bytes up to the first NUL, at most 40,
 * never past len. buf gets a NUL after them. */
static void read_wire_text(char buf[PV_STRING_SIZE + 1], const uint8_t *payload, size_t len,
                           size_t start)
{
    size_t avail = start < len ? len - start : 0;
    size_t max = avail < PV_STRING_SIZE ? avail : PV_STRING_SIZE;
    memset(buf, 0, PV_STRING_SIZE + 1);
    if (max)
        memcpy(buf, payload + start, strnlen((const char *)payload + start, max));
}

/* A string written to a CHAR array is a long string: its bytes and a NUL. */
static uint32_t decode_long_string(uint8_t *out, uint32_t *n_out, const pv *pv,
                                   const uint8_t *payload, size_t len, size_t off)
{
    char text[PV_STRING_SIZE + 1];
    read_wire_text(text, payload, len, off);
    size_t n = strlen(text);
    if (n > pv_count(pv) - 1)
        n = pv_count(pv) - 1;
    memcpy(out, text, n);
    out[n] = 0;
    *n_out = (uint32_t)n + 1;
    return ECA_NORMAL;
}

uint32_t dbr_decode(void *out, uint32_t *n_out, const pv *pv, unsigned type, uint32_t n,
                    const uint8_t *payload, size_t len)
{
    *n_out = 0;
    if (!dbr_valid(type))
        return ECA_BADTYPE;
    if (type == DBR_PUT_ACKT || type == DBR_PUT_ACKS)
        return ECA_NORMAL; /* no alarm acknowledge state to change */
    int vt_code = dbr_value_type(type);
    if (vt_code < 0 || n == 0)
        return ECA_PUTFAIL;
    enum pv_type vt = (enum pv_type)vt_code, native = pv_type(pv);
    size_t off = dbr_table[type].value_off, vsize = dbr_table[type].value_size;
    /* The last string may be short (it ends at its NUL); other elements not. */
    if (vt == PV_STRING ? !payload_holds(len, off, vsize, n - 1)
                        : !payload_holds(len, off, vsize, n))
        return ECA_PUTFAIL;
    if (vt == PV_STRING && native == PV_CHAR && pv_count(pv) > 1)
        return decode_long_string(out, n_out, pv, payload, len, off);
    const struct conv c = conv_for(pv, n == 1);
    uint32_t m = n < pv_count(pv) ? n : pv_count(pv);
    size_t ns = elem_size(native);
    char host[PV_STRING_SIZE + 1];
    for (uint32_t i = 0; i < m; i++) {
        size_t at = off + (size_t)i * vsize;
        if (vt == PV_STRING)
            read_wire_text(host, payload, len, at);
        else
            get_be(host, payload + at, vsize);
        if (!convert((uint8_t *)out + (size_t)i * ns, native, host, vt, &c))
            return ECA_PUTFAIL;
    }
    *n_out = m;
    return ECA_NORMAL;
}

void dbr_format_element(char out[PV_STRING_SIZE], const pv *pv, uint32_t i)
{
    if (i >= pv_count(pv)) {
        memset(out, 0, PV_STRING_SIZE);
        return;
    }
    const struct conv c = conv_for(pv, true);
    const uint8_t *src = (const uint8_t *)pv_value(pv) + (size_t)i * elem_size(pv_type(pv));
    convert(out, PV_STRING, src, pv_type(pv), &c);
}
