/* pvdb.h — the process-variable database.
 *
 * A PV is a named, typed value with EPICS metadata (units, precision, limits,
 * enum strings), a timestamp and an alarm state. PVs live in groups (one group
 * per node later); a group shares a name prefix and is added or removed whole.
 *
 * pvdb knows nothing of sockets or of Channel Access. Readers attach a
 * pv_watch to a PV and are called back on changes; writers from outside go
 * through pv_write(), which enforces the PV's write rules and its handler.
 *
 * Words used here:
 *   native type  one of the seven EPICS DBF types below; a PV never changes it.
 *   count        the PV's maximum number of elements (1 for a scalar).
 *   nelm         how many elements are currently valid (1..count).
 *   value        count elements of the native type, host byte order; strings are
 *                PV_STRING_SIZE-byte NUL-terminated slots, zero-padded.
 *
 * Invariants: every PV name is unique in its pvdb; a PV's type and count are
 * fixed for its life; nelm is in 1..count; an ENUM value may be >= n_enums only
 * if set that way by its owner (writes from outside are range-checked).
 *
 * Single threaded: everything runs on the caller's loop.
 */
#ifndef GUARDIAND_PVDB_H
#define GUARDIAND_PVDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pv_type {
    PV_STRING = 0,
    PV_SHORT = 1,
    PV_FLOAT = 2,
    PV_ENUM = 3,
    PV_CHAR = 4,
    PV_LONG = 5,
    PV_DOUBLE = 6,
};
#define PV_NTYPES 7

#define PV_STRING_SIZE 40      /* 39 characters and a NUL */
#define PV_UNITS_SIZE 8        /* 7 characters and a NUL */
#define PV_ENUM_MAX 16
#define PV_ENUM_STRING_SIZE 26 /* EPICS allows all 26 bytes without a NUL */
#define PV_NAME_MAX 500        /* longer names are refused */

/* Event bits, the same values as EPICS DBE_*. */
enum pv_event {
    PV_EV_VALUE = 1,
    PV_EV_LOG = 2,
    PV_EV_ALARM = 4,
    PV_EV_PROPERTY = 8,
    PV_EV_DELETE = 0x100, /* the PV is being removed; always delivered */
};

/* Alarm severities and the statuses guardiand uses (EPICS values). */
enum pv_severity { PV_SEV_NONE = 0, PV_SEV_MINOR = 1, PV_SEV_MAJOR = 2, PV_SEV_INVALID = 3 };
enum pv_alarm {
    PV_ALARM_NONE = 0,
    PV_ALARM_READ = 1,
    PV_ALARM_WRITE = 2,
    PV_ALARM_HIHI = 3,
    PV_ALARM_HIGH = 4,
    PV_ALARM_LOLO = 5,
    PV_ALARM_LOW = 6,
    PV_ALARM_STATE = 7,
    PV_ALARM_COMM = 9,
    PV_ALARM_TIMEOUT = 10,
    PV_ALARM_SOFT = 15,
    PV_ALARM_UDF = 17,
    PV_ALARM_DISABLE = 18,
};

/* Error codes returned by pvdb functions (0 is success). */
enum pvdb_err {
    PVDB_OK = 0,
    PVDB_ENOMEM = -1,
    PVDB_EEXIST = -2,   /* name already served */
    PVDB_EINVAL = -3,   /* a definition or argument that makes no sense */
    PVDB_EREADONLY = -4, /* write to a read-only PV */
    PVDB_ERANGE = -5,   /* value out of range (enum index, count) */
    PVDB_EREJECT = -6,  /* the PV's write handler refused the value */
    PVDB_EACCESS = -7,  /* the writer has no write access (pvdb_set_access) */
};
const char *pvdb_strerror(int err);

/* EPICS time: seconds and nanoseconds since 1990-01-01 00:00:00 UTC. */
typedef struct pv_time {
    uint32_t sec;
    uint32_t nsec;
} pv_time;
#define PV_EPICS_EPOCH_UNIX 631152000u
pv_time pv_time_now(void);

/* Display, alarm and control limits, in the native type's units. */
typedef struct pv_limits {
    double disp_hi, disp_lo;
    double alarm_hi, warn_hi, warn_lo, alarm_lo; /* HIHI, HIGH, LOW, LOLO */
    double ctrl_hi, ctrl_lo;
} pv_limits;

/* Who is writing: filled in by the CA server from CLIENT_NAME/HOST_NAME and
 * the circuit's peer address, by other writers as they know themselves. */
typedef struct pv_client {
    const char *host;   /* the host as the client names it (HOST_NAME) */
    const char *user;   /* the CA user name (CLIENT_NAME) */
    uint32_t ip;        /* the address it connects from, IPv4, host order; 0: none */
} pv_client;

/* Writers inside this process (the control socket, nodes) write as from
 * this host: 127.0.0.1, named "localhost". */
#define PV_LOCAL_HOST "localhost"
#define PV_LOCAL_IP 0x7F000001u

typedef struct pvdb pvdb;
typedef struct pv pv;
typedef struct pv_group pv_group;

/* Write handler: called by pv_write() with the new value already converted to
 * the native type (host order, n elements, 1 <= n <= count). Return 0 to accept
 * (pvdb then stores the value and posts it, unless the handler already stored
 * a value itself with a pv_set_* call), or a negative pvdb_err (normally
 * PVDB_EREJECT) to refuse; a refused write changes nothing. */
typedef int (*pv_write_fn)(pv *pv, const void *value, uint32_t n, const pv_client *who, void *arg);

/* A PV definition. Zero-initialise and set what you need:
 *   .name (required; the part after the group prefix), .type, .count (0 = 1),
 *   .units, .precision, .limits (+ .alarm_limits to say the alarm limits are set),
 *   .enums/.n_enums for ENUM, .writable and .on_write, .class_name (reported as
 *   DBR_CLASS_NAME; a record-like default from the type otherwise).
 * Strings are copied; the definition need not outlive the call. */
typedef struct pv_def {
    const char *name;
    enum pv_type type;
    uint32_t count;
    const char *units;
    int16_t precision;
    pv_limits limits;
    bool alarm_limits;
    const char *const *enums;
    unsigned n_enums;
    bool writable;
    pv_write_fn on_write;
    void *arg;
    const char *class_name;
} pv_def;

/* ---- the database ---- */

pvdb *pvdb_new(void);
void pvdb_free(pvdb *db);              /* removes every group (PV_EV_DELETE is delivered) */
pv *pvdb_find(const pvdb *db, const char *name); /* O(1); NULL if not served */
size_t pvdb_count(const pvdb *db);
/* Changes whenever a PV is added or removed: a name looked up before is
 * still served (or not) as long as this has not changed. */
uint64_t pvdb_names_version(const pvdb *db);
/* The largest element count of any PV added so far (at least 1; it never
 * shrinks): what the largest legitimate request for its values can need. */
uint32_t pvdb_max_count(const pvdb *db);

/* Who may read and write what: one policy for every writer (CA clients,
 * and anything else calling pv_write). fn gives PV_ACCESS_READ and/or
 * PV_ACCESS_WRITE for a writer on a PV (write only counts on a writable
 * PV); refused, if not NULL, hears of each write pv_write refuses for
 * access, with the value it would have written (checked as pv_write checks
 * values). Default (fn NULL): everyone reads and writes. */
#define PV_ACCESS_READ 1u
#define PV_ACCESS_WRITE 2u
typedef unsigned (*pv_access_fn)(const pv *pv, const pv_client *who, void *arg);
typedef void (*pv_refused_fn)(pv *pv, const void *value, uint32_t n, const pv_client *who,
                              void *arg);
void pvdb_set_access(pvdb *db, pv_access_fn fn, pv_refused_fn refused, void *arg);
/* The rights of who on pv under the policy (no write on a read-only PV). */
unsigned pv_access(const pv *pv, const pv_client *who);

/* ---- groups ---- */

/* A new, empty group whose PVs are named prefix + def.name. */
pv_group *pvdb_group_new(pvdb *db, const char *prefix);
/* Add a PV to the group. Returns 0 and sets *out (if out is not NULL), or a
 * negative pvdb_err (bad definition, duplicate name, no memory). */
int pv_group_add(pv_group *g, const pv_def *def, pv **out);
/* Remove every PV of the group and free it. Each watcher gets PV_EV_DELETE
 * once, after it has been detached, and must not use the PV afterwards. */
void pv_group_free(pv_group *g);
const char *pv_group_prefix(const pv_group *g);
/* What the group belongs to, for the access policy: data tagged with kind (a
 * pointer unique to the owner's module). pv_group_owner returns the data if
 * the group's kind is `kind`, else NULL. */
void pv_group_set_owner(pv_group *g, const void *kind, void *data);
void *pv_group_owner(const pv_group *g, const void *kind);
size_t pv_group_count(const pv_group *g);

/* ---- reading a PV ---- */

const char *pv_name(const pv *pv);
enum pv_type pv_type(const pv *pv);
uint32_t pv_count(const pv *pv);       /* maximum elements */
uint32_t pv_nelm(const pv *pv);        /* valid elements */
const void *pv_value(const pv *pv);    /* count elements, host order */
size_t pv_type_size(enum pv_type t);   /* bytes per element */
pv_time pv_stamp(const pv *pv);
int16_t pv_status(const pv *pv);
int16_t pv_severity(const pv *pv);
const char *pv_units(const pv *pv);
int16_t pv_precision(const pv *pv);
const pv_limits *pv_get_limits(const pv *pv);
bool pv_has_alarm_limits(const pv *pv);
unsigned pv_n_enums(const pv *pv);
const char *pv_enum_string(const pv *pv, unsigned i); /* NULL if i >= n_enums; may lack a NUL at 26 bytes: use strnlen(s, PV_ENUM_STRING_SIZE) */
bool pv_writable(const pv *pv);
const char *pv_class_name(const pv *pv);
pv_group *pv_get_group(const pv *pv);
/* Scalar helpers: the first element converted to double / long (strings parse). */
double pv_get_double(const pv *pv);
long pv_get_long(const pv *pv);

/* ---- changing a PV (its owner; no write rules apply) ---- */
/* Each setter stamps the time and posts PV_EV_VALUE|PV_EV_LOG when the value
 * changed, and nothing when it did not. */
int pv_set_double(pv *pv, double v);
int pv_set_long(pv *pv, long v);
int pv_set_string(pv *pv, const char *s);          /* truncated to 39 characters */
int pv_set_enum(pv *pv, unsigned index);
int pv_set_array(pv *pv, const void *value, uint32_t n); /* native type, 1 <= n <= count */
/* Alarm: posts PV_EV_ALARM (and VALUE, as EPICS does) when it changed. */
void pv_set_alarm(pv *pv, int16_t status, int16_t severity);
/* Properties: each posts PV_EV_PROPERTY when it changed. */
int pv_set_units(pv *pv, const char *units);
int pv_set_precision(pv *pv, int16_t prec);
int pv_set_limits(pv *pv, const pv_limits *lim, bool alarm_limits);
int pv_set_enums(pv *pv, const char *const *strs, unsigned n);
/* Post events by hand (for example after changing several things). */
void pv_post(pv *pv, unsigned events);

/* ---- writes from outside (CA clients) ---- */
/* Enforces writable, count and enum range, then the access policy (refused:
 * PVDB_EACCESS, and the policy's refused hook hears of it), then runs the
 * handler. value is in the native type, host order, n elements. Returns 0
 * or a negative pvdb_err. */
int pv_write(pv *pv, const void *value, uint32_t n, const pv_client *who);
/* A write the caller refused for access itself (a CA channel whose rights,
 * as sent to its client, have no write): told to the refused hook like
 * pv_write's own refusals, when the value is one pv_write would take.
 * Returns PVDB_EACCESS, or the value's pvdb_err. */
int pv_write_refused(pv *pv, const void *value, uint32_t n, const pv_client *who);
/* The same from a double or a string, converted as the pv_set_* setters do
 * (an ENUM takes a state name or an index). */
int pv_write_double(pv *pv, double v, const pv_client *who);
int pv_write_string(pv *pv, const char *s, const pv_client *who);

/* ---- watching a PV ---- */

typedef struct pv_watch pv_watch;
/* Called with the events that happened (masked by the watch's mask, plus
 * PV_EV_DELETE). A callback may remove its own watch, and others. */
typedef void (*pv_watch_fn)(pv *pv, unsigned events, void *arg);

struct pv_watch {
    pv_watch_fn fn;
    void *arg;
    unsigned mask;
    /* private: */
    pv *pv;
    pv_watch *prev, *next;
};

/* Attach w (caller-owned memory) to pv. w stays valid until pv_unwatch() or
 * until the PV is deleted (after its PV_EV_DELETE callback). */
void pv_watch_init(pv_watch *w, pv_watch_fn fn, void *arg, unsigned mask);
void pv_watch_start(pv *pv, pv_watch *w);
void pv_watch_stop(pv_watch *w);        /* safe on a stopped watch */
/* Change what w wants. A watch with mask 0 costs posts nothing (it waits on a
 * list they do not walk) and still gets PV_EV_DELETE. A watch that starts
 * wanting events during a post of the same PV may be called for that post. */
void pv_watch_set_mask(pv_watch *w, unsigned mask);
bool pv_watch_active(const pv_watch *w);

/* Changes with every post of the PV, and is never the same for two PVs of one
 * pvdb (generations come from one counter): (PV, generation) names a value
 * even across a PV freed and another made at the same address, so readers
 * may cache encodings by it. */
uint64_t pv_generation(const pv *pv);

#endif
