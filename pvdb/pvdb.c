/* pvdb.c — the process-variable database.
 *
 * PVs are found by name through one hash table (uthash: a well-kept,
 * header-only table; lookups are O(1) and 100k PVs cost one pointer pair
 * each). A PV's value is one heap block of count elements in the native type.
 * Watchers form intrusive doubly linked lists per PV, so attaching and
 * detaching never allocate and a callback may detach itself or others while
 * the list is being walked (see post()). A watcher whose mask is 0 waits on a
 * second list that posts never walk: ten thousand CA channels open on one PV
 * without a subscription cost a post nothing.
 */
#include "pvdb/pvdb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

struct pv {
    char *name;
    enum pv_type type;
    uint32_t count;
    uint32_t nelm;
    void *value;
    pv_time stamp;
    int16_t status, severity;
    char units[PV_UNITS_SIZE];
    int16_t precision;
    pv_limits limits;
    bool alarm_limits;
    bool writable;
    unsigned n_enums;
    char (*enums)[PV_ENUM_STRING_SIZE]; /* PV_ENUM_MAX slots, ENUM PVs only */
    char class_name[PV_STRING_SIZE];
    pv_write_fn on_write;
    void *arg;
    bool in_handler;       /* pv_write is inside on_write */
    bool handler_stored;   /* ... and the handler stored a value (changed or not) */
    uint64_t generation;
    pv_group *group;
    pv *group_next;        /* PVs of one group, newest first */
    pv_watch watchers;     /* list head (sentinel): watchers with a mask */
    pv_watch idle;         /* list head: watchers with mask 0 (PV_EV_DELETE only) */
    pv_watch *walk_next;   /* the next watcher of a post in progress */
    UT_hash_handle hh;
};

struct pv_group {
    pvdb *db;
    char *prefix;
    const void *owner_kind;  /* pv_group_set_owner */
    void *owner;
    pv *pvs;
    size_t count;
    pv_group *prev, *next;
};

struct pvdb {
    pv *by_name;           /* uthash head */
    size_t count;
    uint32_t max_count;    /* the largest count of any PV ever added */
    uint64_t posts;        /* posts so far: the source of generations */
    uint64_t names;        /* PVs added or removed so far (pvdb_names_version) */
    pv_group *groups;
    pv_access_fn access;   /* NULL: everyone reads and writes */
    pv_refused_fn refused;
    void *access_arg;
};

static const size_t type_size[PV_NTYPES] = {
    [PV_STRING] = PV_STRING_SIZE, [PV_SHORT] = 2, [PV_FLOAT] = 4, [PV_ENUM] = 2,
    [PV_CHAR] = 1, [PV_LONG] = 4, [PV_DOUBLE] = 8,
};

/* What DBR_CLASS_NAME reports when the definition does not say: the EPICS
 * record type a PV of this kind would most likely be. */
static const char *default_class(enum pv_type t, uint32_t count)
{
    if (count > 1)
        return "waveform";
    switch (t) {
    case PV_STRING: return "stringin";
    case PV_ENUM: return "mbbi";
    case PV_FLOAT:
    case PV_DOUBLE: return "ai";
    default: return "longin";
    }
}

const char *pvdb_strerror(int err)
{
    switch (err) {
    case PVDB_OK: return "success";
    case PVDB_ENOMEM: return "out of memory";
    case PVDB_EEXIST: return "a PV of that name already exists";
    case PVDB_EINVAL: return "invalid PV definition or argument";
    case PVDB_EREADONLY: return "PV is read-only";
    case PVDB_ERANGE: return "value out of range";
    case PVDB_EREJECT: return "value refused by the PV's write handler";
    case PVDB_EACCESS: return "no write access";
    default: return "unknown pvdb error";
    }
}

pv_time pv_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pv_time t = {0, 0};
    if (ts.tv_sec > PV_EPICS_EPOCH_UNIX) {
        t.sec = (uint32_t)(ts.tv_sec - PV_EPICS_EPOCH_UNIX);
        t.nsec = (uint32_t)ts.tv_nsec;
    }
    return t;
}

size_t pv_type_size(enum pv_type t) { return (unsigned)t < PV_NTYPES ? type_size[t] : 0; }

/* ---- the database ---- */

pvdb *pvdb_new(void) { return calloc(1, sizeof(pvdb)); }

void pvdb_free(pvdb *db)
{
    if (!db)
        return;
    while (db->groups)
        pv_group_free(db->groups);
    free(db);
}

pv *pvdb_find(const pvdb *db, const char *name)
{
    pv *p = NULL;
    HASH_FIND_STR(db->by_name, name, p);
    return p;
}

size_t pvdb_count(const pvdb *db) { return db->count; }
uint64_t pvdb_names_version(const pvdb *db) { return db->names; }
uint32_t pvdb_max_count(const pvdb *db) { return db->max_count ? db->max_count : 1; }

/* ---- groups ---- */

pv_group *pvdb_group_new(pvdb *db, const char *prefix)
{
    pv_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->prefix = strdup(prefix ? prefix : "");
    if (!g->prefix) {
        free(g);
        return NULL;
    }
    g->db = db;
    g->next = db->groups;
    if (db->groups)
        db->groups->prev = g;
    db->groups = g;
    return g;
}

const char *pv_group_prefix(const pv_group *g) { return g->prefix; }
size_t pv_group_count(const pv_group *g) { return g->count; }

static int check_def(const pv_def *def)
{
    if (!def || !def->name || (unsigned)def->type >= PV_NTYPES)
        return PVDB_EINVAL;
    if (def->type == PV_ENUM ? def->n_enums > PV_ENUM_MAX : def->n_enums != 0)
        return PVDB_EINVAL;
    if (def->n_enums && !def->enums)
        return PVDB_EINVAL;
    if (def->units && strlen(def->units) >= PV_UNITS_SIZE)
        return PVDB_EINVAL;
    /* Keep every value block addressable by a 32-bit CA payload size. */
    if (def->count > (UINT32_MAX / 2) / type_size[def->type])
        return PVDB_EINVAL;
    return PVDB_OK;
}

static void copy_enums(pv *p, const char *const *strs, unsigned n)
{
    memset(p->enums, 0, PV_ENUM_MAX * PV_ENUM_STRING_SIZE);
    for (unsigned i = 0; i < n; i++)
        if (strs[i])
            strncpy(p->enums[i], strs[i], PV_ENUM_STRING_SIZE);
    p->n_enums = n;
}

static void pv_destroy(pv *p)
{
    free(p->value);
    free(p->enums);
    free(p->name);
    free(p);
}

static pv *pv_create(pv_group *g, const pv_def *def)
{
    size_t plen = strlen(g->prefix), nlen = strlen(def->name);
    if (nlen == 0 || plen + nlen > PV_NAME_MAX)
        return NULL;
    pv *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->type = def->type;
    p->count = def->count ? def->count : 1;
    p->nelm = p->count;
    p->name = malloc(plen + nlen + 1);
    p->value = calloc(p->count, type_size[p->type]);
    if (p->type == PV_ENUM)
        p->enums = calloc(PV_ENUM_MAX, PV_ENUM_STRING_SIZE);
    if (!p->name || !p->value || (p->type == PV_ENUM && !p->enums))
        goto err;
    memcpy(p->name, g->prefix, plen);
    memcpy(p->name + plen, def->name, nlen + 1);
    if (def->units)
        strcpy(p->units, def->units);
    p->precision = def->precision;
    p->limits = def->limits;
    p->alarm_limits = def->alarm_limits;
    p->writable = def->writable;
    p->on_write = def->on_write;
    p->arg = def->arg;
    if (p->enums)
        copy_enums(p, def->enums, def->n_enums);
    snprintf(p->class_name, sizeof(p->class_name), "%s",
             def->class_name ? def->class_name : default_class(p->type, p->count));
    /* A PV that was never set is undefined, as an unprocessed EPICS record. */
    p->status = PV_ALARM_UDF;
    p->severity = PV_SEV_INVALID;
    p->stamp = pv_time_now();
    p->generation = ++g->db->posts;
    p->watchers.next = p->watchers.prev = &p->watchers;
    p->idle.next = p->idle.prev = &p->idle;
    p->group = g;
    return p;
err:
    pv_destroy(p);
    return NULL;
}

int pv_group_add(pv_group *g, const pv_def *def, pv **out)
{
    int err = check_def(def);
    if (err)
        return err;
    pv *p = pv_create(g, def);
    if (!p)
        return strlen(g->prefix) + strlen(def->name) > PV_NAME_MAX || !def->name[0] ? PVDB_EINVAL
                                                                                   : PVDB_ENOMEM;
    if (pvdb_find(g->db, p->name)) {
        pv_destroy(p);
        return PVDB_EEXIST;
    }
    HASH_ADD_KEYPTR(hh, g->db->by_name, p->name, strlen(p->name), p);
    g->db->names++;
    g->db->count++;
    if (p->count > g->db->max_count)
        g->db->max_count = p->count;
    p->group_next = g->pvs;
    g->pvs = p;
    g->count++;
    if (out)
        *out = p;
    return PVDB_OK;
}

/* Detach every watcher of p, telling each one that the PV is going away. */
static void pv_delete_watchers(pv *p)
{
    pv_watch *heads[2] = {&p->watchers, &p->idle};
    for (int i = 0; i < 2; i++)
        while (heads[i]->next != heads[i]) {
            pv_watch *w = heads[i]->next;
            pv_watch_stop(w);
            w->fn(p, PV_EV_DELETE, w->arg);
        }
}

void pv_group_free(pv_group *g)
{
    if (!g)
        return;
    pvdb *db = g->db;
    /* Unpublish every name first, so that a watcher reacting to the delete
     * (a CA client searching again, say) no longer finds any of them. */
    for (pv *p = g->pvs; p; p = p->group_next) {
        HASH_DELETE(hh, db->by_name, p);
        db->names++;
        db->count--;
    }
    while (g->pvs) {
        pv *p = g->pvs;
        g->pvs = p->group_next;
        pv_delete_watchers(p);
        pv_destroy(p);
    }
    if (g->prev)
        g->prev->next = g->next;
    else
        db->groups = g->next;
    if (g->next)
        g->next->prev = g->prev;
    free(g->prefix);
    free(g);
}

/* ---- reading ---- */

const char *pv_name(const pv *p) { return p->name; }
enum pv_type pv_type(const pv *p) { return p->type; }
uint32_t pv_count(const pv *p) { return p->count; }
uint32_t pv_nelm(const pv *p) { return p->nelm; }
const void *pv_value(const pv *p) { return p->value; }
pv_time pv_stamp(const pv *p) { return p->stamp; }
int16_t pv_status(const pv *p) { return p->status; }
int16_t pv_severity(const pv *p) { return p->severity; }
const char *pv_units(const pv *p) { return p->units; }
int16_t pv_precision(const pv *p) { return p->precision; }
const pv_limits *pv_get_limits(const pv *p) { return &p->limits; }
bool pv_has_alarm_limits(const pv *p) { return p->alarm_limits; }
unsigned pv_n_enums(const pv *p) { return p->n_enums; }
bool pv_writable(const pv *p) { return p->writable; }
const char *pv_class_name(const pv *p) { return p->class_name; }
pv_group *pv_get_group(const pv *p) { return p->group; }
uint64_t pv_generation(const pv *p) { return p->generation; }

const char *pv_enum_string(const pv *p, unsigned i)
{
    return i < p->n_enums ? p->enums[i] : NULL;
}

static double element_double(const pv *p, uint32_t i)
{
    const uint8_t *v = (const uint8_t *)p->value + i * type_size[p->type];
    switch (p->type) {
    case PV_STRING: return strtod((const char *)v, NULL);
    case PV_SHORT: { int16_t x; memcpy(&x, v, 2); return x; }
    case PV_FLOAT: { float x; memcpy(&x, v, 4); return x; }
    case PV_ENUM: { uint16_t x; memcpy(&x, v, 2); return x; }
    case PV_CHAR: return *v;
    case PV_LONG: { int32_t x; memcpy(&x, v, 4); return x; }
    case PV_DOUBLE: { double x; memcpy(&x, v, 8); return x; }
    }
    return 0;
}

double pv_get_double(const pv *p) { return element_double(p, 0); }

long pv_get_long(const pv *p)
{
    double d = element_double(p, 0);
    if (isnan(d))
        return 0;
    if (d >= 9.2e18)
        return INT64_MAX;
    if (d <= -9.2e18)
        return INT64_MIN;
    return (long)d;
}

/* ---- posting ---- */

/* Call every watcher interested in `events`. The next watcher is remembered
 * in the PV, and pv_watch_stop() advances it, so a callback may stop any
 * watcher (itself included) without breaking the walk. */
static void post(pv *p, unsigned events)
{
    p->generation = ++p->group->db->posts;
    pv_watch *w = p->watchers.next;
    while (w != &p->watchers) {
        p->walk_next = w->next;
        if (w->mask & events)
            w->fn(p, events & w->mask, w->arg);
        w = p->walk_next;
    }
    p->walk_next = NULL;
}

void pv_post(pv *p, unsigned events) { post(p, events & ~(unsigned)PV_EV_DELETE); }

/* A defined value clears the UDF alarm that every PV starts with. */
static unsigned define(pv *p)
{
    if (p->status == PV_ALARM_UDF) {
        p->status = PV_ALARM_NONE;
        p->severity = PV_SEV_NONE;
        return PV_EV_ALARM;
    }
    return 0;
}

static bool is_limit_alarm(int16_t status)
{
    return status == PV_ALARM_HIHI || status == PV_ALARM_HIGH || status == PV_ALARM_LOW ||
           status == PV_ALARM_LOLO;
}

/* Numeric PVs with alarm limits raise HIHI/HIGH/LOW/LOLO from their first
 * element, as an EPICS ai record does (a NaN limit is disabled). Only a limit
 * alarm, or none, is replaced: an alarm the owner set with pv_set_alarm()
 * stays until the owner clears it. */
static unsigned check_limits(pv *p)
{
    if (!p->alarm_limits || p->type == PV_STRING || p->type == PV_ENUM)
        return 0;
    if (p->status != PV_ALARM_NONE && !is_limit_alarm(p->status))
        return 0;
    const pv_limits *l = &p->limits;
    double v = element_double(p, 0);
    int16_t status = PV_ALARM_NONE, sev = PV_SEV_NONE;
    if (v >= l->alarm_hi)
        status = PV_ALARM_HIHI, sev = PV_SEV_MAJOR;
    else if (v <= l->alarm_lo)
        status = PV_ALARM_LOLO, sev = PV_SEV_MAJOR;
    else if (v >= l->warn_hi)
        status = PV_ALARM_HIGH, sev = PV_SEV_MINOR;
    else if (v <= l->warn_lo)
        status = PV_ALARM_LOW, sev = PV_SEV_MINOR;
    if (status == p->status && sev == p->severity)
        return 0;
    p->status = status;
    p->severity = sev;
    return PV_EV_ALARM;
}

static int store(pv *p, const void *value, uint32_t n)
{
    if (n < 1 || n > p->count)
        return PVDB_ERANGE;
    p->handler_stored |= p->in_handler;
    size_t sz = type_size[p->type];
    bool changed = n != p->nelm || memcmp(p->value, value, n * sz) != 0;
    unsigned ev = define(p);
    if (changed) {
        memmove(p->value, value, n * sz);
        if (n < p->count)
            memset((uint8_t *)p->value + n * sz, 0, (p->count - n) * sz);
        p->nelm = n;
        ev |= check_limits(p);
    }
    if (changed || ev) {
        p->stamp = pv_time_now();
        post(p, ev | PV_EV_VALUE | PV_EV_LOG);
    }
    return PVDB_OK;
}

/* Convert a double to one element of the PV's native type. Out-of-range
 * values saturate: casting them would be undefined behaviour in C. */
static void from_double(const pv *p, double d, uint8_t *out)
{
    double c = isnan(d) ? 0 : d;
    switch (p->type) {
    case PV_STRING:
        snprintf((char *)out, PV_STRING_SIZE, "%.*f", p->precision > 0 ? p->precision : 0, d);
        break;
    case PV_SHORT: {
        int16_t x = c > INT16_MAX ? INT16_MAX : c < INT16_MIN ? INT16_MIN : (int16_t)c;
        memcpy(out, &x, 2);
        break;
    }
    case PV_FLOAT: { float x = (float)d; memcpy(out, &x, 4); break; }
    case PV_ENUM: {
        uint16_t x = c > UINT16_MAX ? UINT16_MAX : c < 0 ? 0 : (uint16_t)c;
        memcpy(out, &x, 2);
        break;
    }
    case PV_CHAR: *out = c > UINT8_MAX ? UINT8_MAX : c < 0 ? 0 : (uint8_t)c; break;
    case PV_LONG: {
        int32_t x = c > INT32_MAX ? INT32_MAX : c < INT32_MIN ? INT32_MIN : (int32_t)c;
        memcpy(out, &x, 4);
        break;
    }
    case PV_DOUBLE: memcpy(out, &d, 8); break;
    }
}

int pv_set_double(pv *p, double v)
{
    uint8_t buf[PV_STRING_SIZE] = {0};
    from_double(p, v, buf);
    return store(p, buf, 1);
}

int pv_set_long(pv *p, long v)
{
    if (p->type == PV_STRING) {
        char buf[PV_STRING_SIZE] = {0};
        snprintf(buf, sizeof(buf), "%ld", v);
        return store(p, buf, 1);
    }
    return pv_set_double(p, (double)v);
}

int pv_set_string(pv *p, const char *s)
{
    if (p->type == PV_STRING) {
        char buf[PV_STRING_SIZE] = {0};
        strncpy(buf, s, PV_STRING_SIZE - 1);
        return store(p, buf, 1);
    }
    if (p->type == PV_CHAR && p->count > 1) {
        /* A char array holds a long string: the text and its NUL. */
        size_t len = strnlen(s, p->count - 1);
        uint8_t *buf = calloc(1, len + 1);
        if (!buf)
            return PVDB_ENOMEM;
        memcpy(buf, s, len);
        int r = store(p, buf, (uint32_t)len + 1);
        free(buf);
        return r;
    }
    if (p->type == PV_ENUM)
        for (unsigned i = 0; i < p->n_enums; i++)
            if (strncmp(p->enums[i], s, PV_ENUM_STRING_SIZE) == 0 &&
                strlen(s) <= PV_ENUM_STRING_SIZE)
                return pv_set_enum(p, i);
    char *end;
    double d = strtod(s, &end);
    if (end == s)
        return PVDB_EINVAL;
    return pv_set_double(p, d);
}

int pv_set_enum(pv *p, unsigned index)
{
    if (index > UINT16_MAX)
        return PVDB_ERANGE;
    return pv_set_double(p, index);
}

int pv_set_array(pv *p, const void *value, uint32_t n) { return store(p, value, n); }

void pv_set_alarm(pv *p, int16_t status, int16_t severity)
{
    if (p->status == status && p->severity == severity)
        return;
    p->status = status;
    p->severity = severity;
    p->stamp = pv_time_now();
    post(p, PV_EV_ALARM | PV_EV_VALUE);
}

int pv_set_units(pv *p, const char *units)
{
    if (!units || strlen(units) >= PV_UNITS_SIZE)
        return PVDB_EINVAL;
    if (strcmp(p->units, units) != 0) {
        strcpy(p->units, units);
        post(p, PV_EV_PROPERTY);
    }
    return PVDB_OK;
}

int pv_set_precision(pv *p, int16_t prec)
{
    if (p->precision != prec) {
        p->precision = prec;
        post(p, PV_EV_PROPERTY);
    }
    return PVDB_OK;
}

int pv_set_limits(pv *p, const pv_limits *lim, bool alarm_limits)
{
    if (memcmp(&p->limits, lim, sizeof(*lim)) != 0 || p->alarm_limits != alarm_limits) {
        p->limits = *lim;
        p->alarm_limits = alarm_limits;
        post(p, PV_EV_PROPERTY);
    }
    return PVDB_OK;
}

int pv_set_enums(pv *p, const char *const *strs, unsigned n)
{
    if (p->type != PV_ENUM || n > PV_ENUM_MAX || (n && !strs))
        return PVDB_EINVAL;
    copy_enums(p, strs, n);
    post(p, PV_EV_PROPERTY);
    return PVDB_OK;
}

/* ---- writes from outside ---- */

static int check_write(const pv *p, const void *value, uint32_t n)
{
    if (!p->writable)
        return PVDB_EREADONLY;
    if (n < 1 || n > p->count)
        return PVDB_ERANGE;
    if (p->type == PV_ENUM) {
        for (uint32_t i = 0; i < n; i++) {
            uint16_t x;
            memcpy(&x, (const uint8_t *)value + 2 * i, 2);
            if (x >= p->n_enums)
                return PVDB_ERANGE;
        }
    }
    return PVDB_OK;
}

void pvdb_set_access(pvdb *db, pv_access_fn fn, pv_refused_fn refused, void *arg)
{
    db->access = fn;
    db->refused = refused;
    db->access_arg = arg;
}

unsigned pv_access(const pv *p, const pv_client *who)
{
    const pvdb *db = p->group->db;
    unsigned r = db->access ? db->access(p, who, db->access_arg)
                            : PV_ACCESS_READ | PV_ACCESS_WRITE;
    if (!p->writable)
        r &= ~PV_ACCESS_WRITE;
    return r & (PV_ACCESS_READ | PV_ACCESS_WRITE);
}

int pv_write_refused(pv *p, const void *value, uint32_t n, const pv_client *who)
{
    int err = check_write(p, value, n);
    if (err)
        return err;
    const pvdb *db = p->group->db;
    if (db->refused)
        db->refused(p, value, n, who, db->access_arg);
    return PVDB_EACCESS;
}

void pv_group_set_owner(pv_group *g, const void *kind, void *data)
{
    g->owner_kind = kind;
    g->owner = data;
}

void *pv_group_owner(const pv_group *g, const void *kind)
{
    return g->owner_kind == kind ? g->owner : NULL;
}

int pv_write(pv *p, const void *value, uint32_t n, const pv_client *who)
{
    int err = check_write(p, value, n);
    if (err)
        return err;
    if (!(pv_access(p, who) & PV_ACCESS_WRITE))
        return pv_write_refused(p, value, n, who);
    if (p->on_write) {
        p->in_handler = true;
        p->handler_stored = false;
        err = p->on_write(p, value, n, who, p->arg);
        p->in_handler = false;
        if (err)
            return err < 0 ? err : PVDB_EREJECT;
        /* The handler stored a value of its own (even the one the PV already
         * held): keep it, not the written one. */
        if (p->handler_stored)
            return PVDB_OK;
    }
    return store(p, value, n);
}

int pv_write_double(pv *p, double v, const pv_client *who)
{
    uint8_t buf[PV_STRING_SIZE] = {0};
    from_double(p, v, buf);
    return pv_write(p, buf, 1, who);
}

int pv_write_string(pv *p, const char *s, const pv_client *who)
{
    uint8_t buf[PV_STRING_SIZE] = {0};
    if (p->type == PV_STRING) {
        strncpy((char *)buf, s, PV_STRING_SIZE - 1);
        return pv_write(p, buf, 1, who);
    }
    if (p->type == PV_ENUM)
        for (unsigned i = 0; i < p->n_enums; i++)
            if (strlen(s) <= PV_ENUM_STRING_SIZE && strncmp(p->enums[i], s, PV_ENUM_STRING_SIZE) == 0)
                return pv_write_double(p, i, who);
    char *end;
    double d = strtod(s, &end);
    if (end == s)
        return PVDB_EINVAL;
    return pv_write_double(p, d, who);
}

/* ---- watching ---- */

void pv_watch_init(pv_watch *w, pv_watch_fn fn, void *arg, unsigned mask)
{
    memset(w, 0, sizeof(*w));
    w->fn = fn;
    w->arg = arg;
    w->mask = mask;
}

void pv_watch_start(pv *p, pv_watch *w)
{
    if (w->pv)
        pv_watch_stop(w);
    pv_watch *head = w->mask ? &p->watchers : &p->idle;
    w->pv = p;
    w->prev = head->prev;
    w->next = head;
    head->prev->next = w;
    head->prev = w;
}

void pv_watch_set_mask(pv_watch *w, unsigned mask)
{
    pv *p = w->pv;
    bool moves = p && !w->mask != !mask;
    w->mask = mask;
    if (moves)
        pv_watch_start(p, w); /* stops it, then appends it to the other list */
}

void pv_watch_stop(pv_watch *w)
{
    pv *p = w->pv;
    if (!p)
        return;
    if (p->walk_next == w)
        p->walk_next = w->next;
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->pv = NULL;
}

bool pv_watch_active(const pv_watch *w) { return w->pv != NULL; }
