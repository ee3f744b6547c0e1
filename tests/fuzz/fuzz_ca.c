/* fuzz_ca.c — the CA server and PV set the CA fuzz targets drive (fuzz_ca.h).
 *
 * The PVs cover what a circuit can meet: every native type as a scalar and
 * as arrays of 10, 5000 and 70000 elements (70000 needs the extended header
 * in every reply), writable and read-only, write handlers that refuse some
 * values, that store a value of their own, and that remove a whole group
 * (DEMO:GROUP, as in the demo), enum strings of all 26 bytes, limits with
 * and without alarm limits, and the removable group DEMO:G:. Names of the
 * demo set (docs/demo-pvs.md) are kept so that streams recorded against
 * `guardiand --demo` (tools/gen-fuzz-corpus.py) open real channels here.
 *
 * Two servers share the loop and the pvdb. Both start from the settings
 * guardiand takes from the environment (cas_config_from_env), moved to
 * 127.0.0.1 and ephemeral ports, without beacons. FZ_SITE keeps the rest as
 * guardiand would; FZ_TIGHT is an EPICS_CA_AUTO_ARRAY_BYTES=NO site with a
 * 3 MiB limit (the largest PV, 70000 strings, fits), 64 KiB of output before
 * a client is throttled, 64 channels per circuit and 8 subscriptions per
 * channel, so that every limit is within an input's reach.
 *
 * Global state: libFuzzer's entry point takes no context, so the fixture
 * lives in one static struct made once per process.
 */
#include "tests/fuzz/fuzz_ca.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_MAX_PVS 64
/* Elements valid at first in the big arrays (BIGWAVE, FUZZ:<TYPE>:70000):
 * replies for more are zero-filled, and encoding all 100000 elements for
 * every read made inputs three times slower for no more coverage. The full
 * length is reached when a client writes it or a poke sets it. */
#define BIG_VALID 1000

/* One PV and what it looked like after set-up, to put it back. */
struct fz_pv {
    pv *pv;
    pv_def def;
    char name[32];
    void *init;          /* its first value: init_n elements of the native type */
    uint32_t init_n;
    int16_t status, severity;
    uint64_t gen;        /* pv_generation() when it was last put back */
};

static struct {
    struct ev_loop *loop;
    pvdb *db;
    cas *srv[2];                /* FZ_TIGHT, FZ_SITE */
    pv_group *demo, *fuzz, *removable;
    struct fz_pv pvs[FZ_MAX_PVS];
    unsigned n_pvs;
    unsigned removable_first;   /* pvs[] index of DEMO:G:A, then DEMO:G:B */
    bool strict;                /* poke: nobody may write */
} fz;

static const char *const type_names[PV_NTYPES] = {"STRING", "SHORT", "FLOAT", "ENUM",
                                                  "CHAR", "LONG", "DOUBLE"};
static const char *const demo_enums[] = {"OFF", "ON", "STANDBY"};
static const char *const group_enums[] = {"ABSENT", "PRESENT"};
/* PV_ENUM_MAX states; the last fills all 26 bytes, with no NUL. */
static const char *const fuzz_enums[PV_ENUM_MAX] = {
    "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "TEN",
    "ELEVEN", "TWELVE", "", "with space", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_ca: %s\n", what);
    exit(1);
}

/* ---- write handlers ---- */

static int reject_negative(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)p, (void)n, (void)who, (void)arg;
    int32_t v;
    memcpy(&v, value, sizeof(v));
    return v < 0 ? PVDB_EREJECT : PVDB_OK;
}

/* Refuses a value whose first byte is odd: about half of arbitrary writes. */
static int reject_odd(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)p, (void)n, (void)who, (void)arg;
    return *(const uint8_t *)value & 1 ? PVDB_EREJECT : PVDB_OK;
}

/* Stores a value of its own (all but the last element), which pvdb keeps. */
static int store_own(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)who, (void)arg;
    return pv_set_array(p, value, n > 1 ? n - 1 : 1);
}

static void removable_add(void);
static void removable_remove(void);

/* DEMO:GROUP: ABSENT removes DEMO:G:, PRESENT adds it again (as the demo). */
static int group_write(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)n, (void)who, (void)arg;
    uint16_t want;
    memcpy(&want, value, sizeof(want));
    if (want == 0)
        removable_remove();
    else
        removable_add();
    return pv_set_enum(p, want);
}

/* ---- the PV set ---- */

/* Element i of a first value: something different per element and type. */
static void fill(enum pv_type t, uint8_t *out, uint32_t i, uint32_t n_enums)
{
    switch (t) {
    case PV_STRING: snprintf((char *)out, PV_STRING_SIZE, "s%u", i); break;
    case PV_SHORT: { int16_t v = (int16_t)(i * 7); memcpy(out, &v, 2); break; }
    case PV_FLOAT: { float v = (float)i * 0.5f; memcpy(out, &v, 4); break; }
    case PV_ENUM: { uint16_t v = (uint16_t)(n_enums ? i % n_enums : 0); memcpy(out, &v, 2); break; }
    case PV_CHAR: out[0] = (uint8_t)('a' + i % 26); break;
    case PV_LONG: { int32_t v = (int32_t)i * 1000 - 5; memcpy(out, &v, 4); break; }
    case PV_DOUBLE: { double v = i * 0.25 - 1; memcpy(out, &v, 8); break; }
    }
}

/* Add one PV to g, give it its first value (n elements of the fill pattern,
 * or `text` for a STRING or CHAR PV) and remember it. */
static pv *add(pv_group *g, const char *name, pv_def def, uint32_t n, const char *text)
{
    if (fz.n_pvs == FZ_MAX_PVS)
        die("too many PVs");
    struct fz_pv *e = &fz.pvs[fz.n_pvs++];
    snprintf(e->name, sizeof(e->name), "%s", name);
    def.name = e->name;
    e->def = def;
    if (pv_group_add(g, &def, &e->pv) != PVDB_OK)
        die("cannot add a PV");
    uint32_t count = def.count ? def.count : 1;
    size_t sz = pv_type_size(def.type);
    if (!(e->init = calloc(count, sz)))
        die("out of memory");
    if (text) {
        size_t len = strlen(text) + 1;
        n = def.type == PV_STRING ? 1 : (uint32_t)(len < count ? len : count);
        memcpy(e->init, text, def.type == PV_STRING ? len : n);
    } else {
        for (uint32_t i = 0; i < n; i++)
            fill(def.type, (uint8_t *)e->init + i * sz, i, def.n_enums);
    }
    e->init_n = n;
    pv_set_array(e->pv, e->init, n);
    e->status = pv_status(e->pv);
    e->severity = pv_severity(e->pv);
    e->gen = pv_generation(e->pv);
    return e->pv;
}

static pv_limits limits(double lo, double hi)
{
    return (pv_limits){.disp_hi = hi, .disp_lo = lo, .ctrl_hi = hi, .ctrl_lo = lo,
                       .alarm_hi = hi * 0.9, .warn_hi = hi * 0.8, .warn_lo = lo * 0.8,
                       .alarm_lo = lo * 0.9};
}

static void add_demo(void)
{
    pv_group *g = fz.demo;
    add(g, "STRING", (pv_def){.type = PV_STRING, .writable = true}, 1, "hello");
    add(g, "SHORT", (pv_def){.type = PV_SHORT, .units = "counts", .writable = true,
                             .limits = limits(-1000, 1000), .alarm_limits = true}, 1, NULL);
    add(g, "FLOAT", (pv_def){.type = PV_FLOAT, .units = "V", .precision = 3, .writable = true,
                             .limits = limits(-10, 10), .alarm_limits = true}, 1, NULL);
    add(g, "ENUM", (pv_def){.type = PV_ENUM, .enums = demo_enums, .n_enums = 3, .writable = true},
        1, NULL);
    add(g, "CHAR", (pv_def){.type = PV_CHAR, .writable = true}, 1, NULL);
    add(g, "LONG", (pv_def){.type = PV_LONG, .units = "counts", .writable = true,
                            .limits = limits(-100000, 100000)}, 1, NULL);
    add(g, "DOUBLE", (pv_def){.type = PV_DOUBLE, .units = "mm", .precision = 4, .writable = true,
                              .limits = limits(-100, 100), .alarm_limits = true}, 1, NULL);
    add(g, "EXECTIME", (pv_def){.type = PV_DOUBLE, .units = "seconds", .precision = 3}, 1, NULL);
    add(g, "COUNTER", (pv_def){.type = PV_LONG}, 1, NULL);
    add(g, "RO", (pv_def){.type = PV_DOUBLE}, 1, NULL);
    add(g, "REJECT", (pv_def){.type = PV_LONG, .writable = true, .on_write = reject_negative}, 1,
        NULL);
    add(g, "WAVE", (pv_def){.type = PV_DOUBLE, .count = 1000, .writable = true}, 1000, NULL);
    add(g, "BIGWAVE", (pv_def){.type = PV_DOUBLE, .count = 100000, .writable = true}, BIG_VALID,
        NULL);
    add(g, "SHORTS", (pv_def){.type = PV_SHORT, .count = 16, .writable = true}, 16, NULL);
    add(g, "STRINGS", (pv_def){.type = PV_STRING, .count = 4, .writable = true}, 4, NULL);
    add(g, "LONGSTR", (pv_def){.type = PV_CHAR, .count = 256, .writable = true}, 0,
        "guardiand long string");
    add(g, "GROUP", (pv_def){.type = PV_ENUM, .enums = group_enums, .n_enums = 2, .writable = true,
                             .on_write = group_write}, 1, NULL);
    for (unsigned i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "N:%u", i);
        add(g, name, (pv_def){.type = PV_LONG, .writable = true}, 1, NULL);
    }
}

/* FUZZ:<TYPE>:<N>. Scalars refuse odd values, 10-element arrays are
 * read-only, 5000-element arrays take any write, 70000-element arrays store
 * a value of their own and start with BIG_VALID elements. */
static void add_fuzz(void)
{
    static const uint32_t counts[] = {1, 10, 5000, 70000};
    for (int t = 0; t < PV_NTYPES; t++) {
        for (unsigned k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            uint32_t count = counts[k];
            char name[32];
            snprintf(name, sizeof(name), "%s:%u", type_names[t], count);
            pv_def def = {.type = (enum pv_type)t, .count = count, .writable = count != 10,
                          .on_write = count == 1 ? reject_odd : count == 70000 ? store_own : NULL};
            if (t == PV_ENUM) {
                def.enums = fuzz_enums;
                def.n_enums = PV_ENUM_MAX;
            } else if (t != PV_STRING) {
                def.units = "fz";
                def.precision = (int16_t)(t + 1);
                def.limits = limits(-50, 50);
                def.alarm_limits = t != PV_CHAR;
            }
            add(fz.fuzz, name, def, count == 70000 ? BIG_VALID : count, NULL);
        }
    }
}

static void removable_add(void)
{
    if (fz.removable)
        return;
    if (!(fz.removable = pvdb_group_new(fz.db, "DEMO:G:")))
        die("cannot create DEMO:G:");
    unsigned n = fz.n_pvs;
    fz.n_pvs = fz.removable_first; /* the same two slots every time */
    add(fz.removable, "A", (pv_def){.type = PV_DOUBLE, .writable = true}, 1, NULL);
    add(fz.removable, "B", (pv_def){.type = PV_LONG}, 1, NULL);
    if (n > fz.n_pvs)
        fz.n_pvs = n;
}

static void removable_remove(void)
{
    if (!fz.removable)
        return;
    pv_group_free(fz.removable); /* its channels get SERVER_DISCONN */
    fz.removable = NULL;
    for (unsigned i = fz.removable_first; i < fz.removable_first + 2; i++) {
        free(fz.pvs[i].init);
        fz.pvs[i].init = NULL;
        fz.pvs[i].pv = NULL;
    }
}

/* ---- access rules ---- */

/* CA user `guest` reads only (as in the demo), `nobody` and host `denied`
 * get nothing, and while `strict` is poked on nobody writes. */
static unsigned fz_access(const pv *p, const pv_client *who, void *arg)
{
    (void)arg;
    if (strcmp(who->user, "nobody") == 0 || strcmp(who->host, "denied") == 0)
        return 0;
    unsigned r = PV_ACCESS_READ;
    if (pv_writable(p) && !fz.strict && strcmp(who->user, "guest") != 0)
        r |= PV_ACCESS_WRITE;
    return r;
}

/* A refused write is looked at as the daemon's audit would (every byte of its
 * value read, so that ASan sees a value shorter than it claims). */
static volatile unsigned fz_refused_sum;
static void fz_refused(pv *p, const void *value, uint32_t n, const pv_client *who, void *arg)
{
    (void)arg, (void)who;
    size_t bytes = (size_t)n * pv_type_size(pv_type(p));
    for (size_t i = 0; i < bytes; i++)
        fz_refused_sum += ((const uint8_t *)value)[i];
}

static cas *server_new(enum fz_server which)
{
    char err[256];
    struct cas_config cfg;
    if (cas_config_from_env(&cfg, err, sizeof(err)) < 0)
        die(err);
    /* Port 0 (ephemeral, so that fuzzers run beside a daemon), loopback
     * only, no beacon destinations. */
    cfg.port = 0;
    cfg.n_intf = 1;
    cfg.intf[0].s_addr = htonl(INADDR_LOOPBACK);
    cfg.n_ignore = cfg.n_beacon = 0;
    cfg.auto_beacon = false;
    if (which == FZ_TIGHT) {
        cfg.max_array_bytes = 3u << 20;
        cfg.auto_array_bytes = false;
        cfg.client_backlog = 64u << 10;
        cfg.max_channels_per_circuit = 64;
        cfg.max_subs_per_channel = 8;
    }
    cas *srv = cas_new(fz.loop, fz.db, &cfg, err, sizeof(err));
    if (!srv)
        die(err);
    return srv;
}

cas *fz_ca_server(struct ev_loop **loop, enum fz_server which)
{
    if (!fz.loop) {
        if (!(fz.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK)) || !(fz.db = pvdb_new()) ||
            !(fz.demo = pvdb_group_new(fz.db, "DEMO:")) ||
            !(fz.fuzz = pvdb_group_new(fz.db, "FUZZ:")))
            die("out of memory");
        pvdb_set_access(fz.db, fz_access, fz_refused, NULL);
        add_demo();
        add_fuzz();
        fz.removable_first = fz.n_pvs;
        removable_add();
    }
    if (!fz.srv[which])
        fz.srv[which] = server_new(which);
    *loop = fz.loop;
    return fz.srv[which];
}

/* ---- changes while a client talks, and putting things back ---- */

void fz_ca_poke(uint32_t r)
{
    unsigned what = r % 8;
    r /= 8;
    struct fz_pv *e = &fz.pvs[r % fz.n_pvs];
    r /= fz.n_pvs;
    pv *p = e->pv;
    if (what == 6) {
        if (fz.removable)
            removable_remove();
        else
            removable_add();
        return;
    }
    if (what == 7) {
        fz.strict = !fz.strict;
        for (int i = 0; i < 2; i++)
            if (fz.srv[i])
                cas_access_changed(fz.srv[i]);
        return;
    }
    if (!p)
        return; /* DEMO:G: is away */
    switch (what) {
    case 0: pv_set_double(p, (double)(r % 2001) - 1000); break;
    case 1: pv_set_array(p, e->init, 1 + r % pv_count(p)); break;
    case 2: pv_set_alarm(p, (int16_t)(r % 22), (int16_t)(r / 22 % 4)); break;
    case 3:
        pv_set_units(p, r & 1 ? "mm/s^2" : "");
        pv_set_precision(p, (int16_t)(r / 2 % 20) - 2);
        break;
    case 4: {
        double span = (double)(r % 1000);
        pv_limits l = limits(-span, span);
        pv_set_limits(p, &l, r & 1);
        break;
    }
    case 5:
        if (pv_type(p) == PV_ENUM)
            pv_set_enums(p, fuzz_enums, r % (PV_ENUM_MAX + 1));
        else if (pv_type(p) == PV_STRING)
            pv_set_string(p, r & 1 ? "" : "a string of thirty-nine characters long");
        break;
    }
}

static void put_back(struct fz_pv *e)
{
    pv *p = e->pv;
    const pv_def *d = &e->def;
    pv_set_units(p, d->units ? d->units : "");
    pv_set_precision(p, d->precision);
    pv_set_limits(p, &d->limits, d->alarm_limits);
    if (d->type == PV_ENUM)
        pv_set_enums(p, d->enums, d->n_enums);
    pv_set_array(p, e->init, e->init_n);
    pv_set_alarm(p, e->status, e->severity);
    e->gen = pv_generation(p);
}

void fz_ca_reset(void)
{
    fz.strict = false;
    removable_add();
    for (unsigned i = 0; i < fz.n_pvs; i++)
        if (fz.pvs[i].pv && pv_generation(fz.pvs[i].pv) != fz.pvs[i].gen)
            put_back(&fz.pvs[i]);
}
