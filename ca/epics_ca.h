/* epics_ca.h — the part of EPICS Base's Channel Access client library (libca) that we use.
 *
 * Why this header exists: Debian ships libca (package libca4.13.5, EPICS Base 7.0.3.1) and
 * libCom, but not their headers (libca-dev holds only the libca.so link). So we declare here,
 * by hand, exactly the types, functions and constants our code calls, and nothing else. It is
 * the only place in guardiand that does; link with -lca -lCom.
 *
 * The declarations follow EPICS Base R7.0.3.1 (modules/ca/src/client/cadef.h, caerr.h,
 * caeventmask.h and db_access.h). Types, field order and enum values are ABI and must match
 * those files exactly; epicsStdCall is empty on Unix, so it is left out. The DBR structs are the
 * client-side layouts of ../shared/docs/ca-protocol.md 4.3 in host byte order (libca converts
 * from the network order); the static assertions at the end check their sizes and value
 * offsets against the table in 4.2.
 *
 * The ECA_* status numbers and the DBR_* type codes are the protocol's own, and libca uses the
 * same values as the wire, so they come from ca/caproto.h (enum ca_status; note ECA_NORMAL is
 * 1) and ca/dbr.h (enum dbr_type) rather than being defined a second time here. Only the
 * statuses that libca produces locally are added below.
 *
 * Link-time names: libca also exports data tables named dbr_size, dbr_value_size,
 * dbr_value_offset, dbr_value_class, dbr_text and dbf_text. A program that links libca must
 * not define global symbols with those names: its definition would take the place of libca's
 * own table (symbol interposition) and libca would compute buffer sizes from it.
 *
 * C only (the layout checks use _Static_assert).
 *
 * Threads: libca runs threads of its own. guardiand and its tests always create the context
 * with ca_disable_preemptive_callback, so callbacks only ever run while the context's thread
 * waits inside ca_pend_event(), ca_pend_io() or ca_poll(): libca's own threads may execute
 * them then, serialised with that thread by libca's callback lock. plant/plant.c therefore
 * keeps its callbacks to noting what arrived, and acts on it after ca_poll() returns.
 *
 * Shutdown: ca_context_destroy() closes each circuit cleanly and waits for the server to
 * close its end; a server on the destroying thread's own loop must be closed first.
 */
#ifndef GUARDIAND_EPICS_CA_H
#define GUARDIAND_EPICS_CA_H

#include <stdint.h>

#include "ca/caproto.h"
#include "ca/dbr.h"

/* ---- status codes produced by libca itself (caerr.h; (number << 3) | severity) ---- */

enum ca_client_status {
    ECA_TIMEOUT = 80,  /* also the normal return of ca_pend_event() and ca_poll() */
    ECA_DISCONN = 192, /* the channel is not connected */
};

/* ---- primitive DBR value types (db_access.h) ---- */

#define MAX_STRING_SIZE 40
#define MAX_UNITS_SIZE 8
#define MAX_ENUM_STRING_SIZE 26
#define MAX_ENUM_STATES 16

typedef char dbr_string_t[MAX_STRING_SIZE];
typedef uint8_t dbr_char_t;
typedef int16_t dbr_short_t;
typedef uint16_t dbr_ushort_t;
typedef uint16_t dbr_enum_t;
typedef int32_t dbr_long_t;
typedef float dbr_float_t;
typedef double dbr_double_t;

typedef struct epicsTimeStamp {
    uint32_t secPastEpoch; /* seconds since 1990-01-01 00:00:00 UTC */
    uint32_t nsec;
} epicsTimeStamp;

/* Native field types as returned by ca_field_type(): the plain DBR codes 0..6. */
#define DBF_STRING 0
#define DBF_SHORT 1
#define DBF_FLOAT 2
#define DBF_ENUM 3
#define DBF_CHAR 4
#define DBF_LONG 5
#define DBF_DOUBLE 6
#define TYPENOTCONN (-1) /* ca_field_type() of a channel that is not connected */

#define dbf_type_to_DBR_STS(type) ((type) + 7)
#define dbf_type_to_DBR_TIME(type) ((type) + 14)
#define dbf_type_to_DBR_CTRL(type) ((type) + 28)

/* ---- DBR structs (db_access.h), host byte order ---- */

struct dbr_sts_string { dbr_short_t status, severity; dbr_string_t value; };
struct dbr_sts_short { dbr_short_t status, severity; dbr_short_t value; };
struct dbr_sts_float { dbr_short_t status, severity; dbr_float_t value; };
struct dbr_sts_enum { dbr_short_t status, severity; dbr_enum_t value; };
struct dbr_sts_char { dbr_short_t status, severity; dbr_char_t RISC_pad; dbr_char_t value; };
struct dbr_sts_long { dbr_short_t status, severity; dbr_long_t value; };
struct dbr_sts_double { dbr_short_t status, severity; dbr_long_t RISC_pad; dbr_double_t value; };

struct dbr_stsack_string {
    dbr_ushort_t status, severity;
    dbr_ushort_t ackt; /* acknowledge transient alarms */
    dbr_ushort_t acks; /* highest unacknowledged severity */
    dbr_string_t value;
};

struct dbr_time_string { dbr_short_t status, severity; epicsTimeStamp stamp; dbr_string_t value; };
struct dbr_time_short {
    dbr_short_t status, severity; epicsTimeStamp stamp; dbr_short_t RISC_pad; dbr_short_t value;
};
struct dbr_time_float { dbr_short_t status, severity; epicsTimeStamp stamp; dbr_float_t value; };
struct dbr_time_enum {
    dbr_short_t status, severity; epicsTimeStamp stamp; dbr_short_t RISC_pad; dbr_enum_t value;
};
struct dbr_time_char {
    dbr_short_t status, severity; epicsTimeStamp stamp;
    dbr_short_t RISC_pad0; dbr_char_t RISC_pad1; dbr_char_t value;
};
struct dbr_time_long { dbr_short_t status, severity; epicsTimeStamp stamp; dbr_long_t value; };
struct dbr_time_double {
    dbr_short_t status, severity; epicsTimeStamp stamp; dbr_long_t RISC_pad; dbr_double_t value;
};

/* GR and CTRL: the limits come in this order: upper_disp, lower_disp, upper_alarm (HIHI),
 * upper_warning (HIGH), lower_warning (LOW), lower_alarm (LOLO), then for CTRL upper_ctrl and
 * lower_ctrl. GR_STRING and CTRL_STRING are dbr_sts_string. */
#define DBR_GR_LIMITS(t)                                                                     \
    t upper_disp_limit, lower_disp_limit, upper_alarm_limit, upper_warning_limit,            \
        lower_warning_limit, lower_alarm_limit
#define DBR_CTRL_LIMITS(t) DBR_GR_LIMITS(t), upper_ctrl_limit, lower_ctrl_limit

struct dbr_gr_short {
    dbr_short_t status, severity; char units[MAX_UNITS_SIZE];
    DBR_GR_LIMITS(dbr_short_t); dbr_short_t value;
};
struct dbr_gr_float {
    dbr_short_t status, severity; dbr_short_t precision; dbr_short_t RISC_pad0;
    char units[MAX_UNITS_SIZE]; DBR_GR_LIMITS(dbr_float_t); dbr_float_t value;
};
struct dbr_gr_enum {
    dbr_short_t status, severity; dbr_short_t no_str;
    char strs[MAX_ENUM_STATES][MAX_ENUM_STRING_SIZE]; /* not NUL-terminated at 26 characters */
    dbr_enum_t value;
};
struct dbr_gr_char {
    dbr_short_t status, severity; char units[MAX_UNITS_SIZE];
    DBR_GR_LIMITS(dbr_char_t); dbr_char_t RISC_pad; dbr_char_t value;
};
struct dbr_gr_long {
    dbr_short_t status, severity; char units[MAX_UNITS_SIZE];
    DBR_GR_LIMITS(dbr_long_t); dbr_long_t value;
};
struct dbr_gr_double {
    dbr_short_t status, severity; dbr_short_t precision; dbr_short_t RISC_pad0;
    char units[MAX_UNITS_SIZE]; DBR_GR_LIMITS(dbr_double_t); dbr_double_t value;
};

struct dbr_ctrl_short {
    dbr_short_t status, severity; char units[MAX_UNITS_SIZE];
    DBR_CTRL_LIMITS(dbr_short_t); dbr_short_t value;
};
struct dbr_ctrl_float {
    dbr_short_t status, severity; dbr_short_t precision; dbr_short_t RISC_pad;
    char units[MAX_UNITS_SIZE]; DBR_CTRL_LIMITS(dbr_float_t); dbr_float_t value;
};
struct dbr_ctrl_enum {
    dbr_short_t status, severity; dbr_short_t no_str;
    char strs[MAX_ENUM_STATES][MAX_ENUM_STRING_SIZE];
    dbr_enum_t value;
};
struct dbr_ctrl_char {
    dbr_short_t status, severity; char units[MAX_UNITS_SIZE];
    DBR_CTRL_LIMITS(dbr_char_t); dbr_char_t RISC_pad; dbr_char_t value;
};
struct dbr_ctrl_long {
    dbr_short_t status, severity; char units[MAX_UNITS_SIZE];
    DBR_CTRL_LIMITS(dbr_long_t); dbr_long_t value;
};
struct dbr_ctrl_double {
    dbr_short_t status, severity; dbr_short_t precision; dbr_short_t RISC_pad0;
    char units[MAX_UNITS_SIZE]; DBR_CTRL_LIMITS(dbr_double_t); dbr_double_t value;
};

#undef DBR_CTRL_LIMITS
#undef DBR_GR_LIMITS

/* ---- event masks (caeventmask.h) ---- */

#define DBE_VALUE 1
#define DBE_ARCHIVE 2
#define DBE_LOG DBE_ARCHIVE
#define DBE_ALARM 4
#define DBE_PROPERTY 8

/* ---- handles and callback arguments (cadef.h) ---- */

typedef struct oldChannelNotify *chid;
typedef chid chanId; /* for struct fields named chid */
typedef struct oldSubscription *evid;
typedef long chtype;
typedef double ca_real;
typedef unsigned capri;
#define CA_PRIORITY_DEFAULT 0 /* CA_PRIORITY_MAX (99) is in caproto.h */

struct connection_handler_args {
    chanId chid;
    long op; /* CA_OP_CONN_UP or CA_OP_CONN_DOWN */
};
typedef void caCh(struct connection_handler_args args);

typedef struct ca_access_rights {
    unsigned read_access : 1;
    unsigned write_access : 1;
} caar;

struct access_rights_handler_args {
    chanId chid;
    caar ar;
};
typedef void caArh(struct access_rights_handler_args args);

/* Get, put-callback and subscription callbacks. dbr is NULL unless status is ECA_NORMAL. */
struct event_handler_args {
    void *usr;
    chanId chid;
    long type;
    long count;
    const void *dbr;
    int status;
};
typedef void caEventCallBackFunc(struct event_handler_args args);

struct exception_handler_args {
    void *usr;
    chanId chid;      /* may be NULL */
    long type;        /* type requested */
    long count;       /* count requested */
    void *addr;       /* the user's buffer of a failed CA_OP_GET */
    long stat;        /* ECA_* status */
    long op;          /* CA_OP_GET, CA_OP_PUT, ... CA_OP_OTHER */
    const char *ctx;  /* context text, usually from the server */
    const char *pFile;
    unsigned lineNo;
};
typedef void caExceptionHandler(struct exception_handler_args args);

/* Called when libca opens (opened != 0) or closes a file descriptor. */
typedef void CAFDHANDLER(void *parg, int fd, int opened);

#define CA_OP_GET 0
#define CA_OP_PUT 1
#define CA_OP_CREATE_CHANNEL 2
#define CA_OP_ADD_EVENT 3
#define CA_OP_CLEAR_EVENT 4
#define CA_OP_OTHER 5
#define CA_OP_CONN_UP 6
#define CA_OP_CONN_DOWN 7

enum channel_state { cs_never_conn, cs_prev_conn, cs_conn, cs_closed };

enum ca_preemptive_callback_select {
    ca_disable_preemptive_callback = 0,
    ca_enable_preemptive_callback = 1,
};

/* ---- contexts ---- */

int ca_context_create(enum ca_preemptive_callback_select select);
void ca_context_destroy(void);
int ca_add_exception_event(caExceptionHandler *pfunc, void *pArg);
/* For the daemon's outbound channels (../shared/docs/design.md): libca reports the fd to
 * watch; when it is readable, call ca_poll() from the loop. */
int ca_add_fd_registration(CAFDHANDLER *pHandler, void *pArg);
/* Not declared: ca_modify_user_name(const char *) and ca_modify_host_name(const char *). They
 * are defunct since EPICS 3.14: libca accepts and ignores them (ECA_NORMAL). A context always
 * sends the login name of the process's real uid (getpwuid(getuid())) as CLIENT_NAME. */

/* ---- channels ---- */

int ca_create_channel(const char *pChanName, caCh *pConnStateCallback, void *pUserPrivate,
                      capri priority, chid *pChanID);
int ca_clear_channel(chid chanId);
int ca_replace_access_rights_event(chid chan, caArh *pfunc);
enum channel_state ca_state(chid chan);
short ca_field_type(chid chan);
unsigned long ca_element_count(chid chan);
const char *ca_name(chid chan);
void *ca_puser(chid chan);
unsigned ca_read_access(chid chan);
unsigned ca_write_access(chid chan);

/* ---- IO ---- */

int ca_array_get(chtype type, unsigned long count, chid chanId, void *pValue);
int ca_array_get_callback(chtype type, unsigned long count, chid chanId,
                          caEventCallBackFunc *pFunc, void *pArg);
int ca_array_put(chtype type, unsigned long count, chid chanId, const void *pValue);
int ca_array_put_callback(chtype type, unsigned long count, chid chanId, const void *pValue,
                          caEventCallBackFunc *pFunc, void *pArg);
int ca_create_subscription(chtype type, unsigned long count, chid chanId, long mask,
                           caEventCallBackFunc *pFunc, void *pArg, evid *pEventID);
int ca_clear_subscription(evid eventID);

/* ---- waiting and flushing ---- */

int ca_pend_io(ca_real timeout);    /* ECA_NORMAL, or ECA_TIMEOUT; 0 waits forever */
int ca_pend_event(ca_real timeout); /* always ECA_TIMEOUT; 0 waits forever */
#define ca_poll() ca_pend_event(1e-12)
int ca_flush_io(void);
const char *ca_message(long ca_status);

/* ---- layout checks against ../shared/docs/ca-protocol.md 4.2 ---- */

#define EPICS_CA_LAYOUT(s, size, value_off)                                                  \
    _Static_assert(sizeof(struct s) == (size), #s " size");                                 \
    _Static_assert(__builtin_offsetof(struct s, value) == (value_off), #s " value offset")
EPICS_CA_LAYOUT(dbr_sts_string, 44, 4);
EPICS_CA_LAYOUT(dbr_sts_short, 6, 4);
EPICS_CA_LAYOUT(dbr_sts_float, 8, 4);
EPICS_CA_LAYOUT(dbr_sts_enum, 6, 4);
EPICS_CA_LAYOUT(dbr_sts_char, 6, 5);
EPICS_CA_LAYOUT(dbr_sts_long, 8, 4);
EPICS_CA_LAYOUT(dbr_sts_double, 16, 8);
EPICS_CA_LAYOUT(dbr_stsack_string, 48, 8);
EPICS_CA_LAYOUT(dbr_time_string, 52, 12);
EPICS_CA_LAYOUT(dbr_time_short, 16, 14);
EPICS_CA_LAYOUT(dbr_time_float, 16, 12);
EPICS_CA_LAYOUT(dbr_time_enum, 16, 14);
EPICS_CA_LAYOUT(dbr_time_char, 16, 15);
EPICS_CA_LAYOUT(dbr_time_long, 16, 12);
EPICS_CA_LAYOUT(dbr_time_double, 24, 16);
EPICS_CA_LAYOUT(dbr_gr_short, 26, 24);
EPICS_CA_LAYOUT(dbr_gr_float, 44, 40);
EPICS_CA_LAYOUT(dbr_gr_enum, 424, 422);
EPICS_CA_LAYOUT(dbr_gr_char, 20, 19);
EPICS_CA_LAYOUT(dbr_gr_long, 40, 36);
EPICS_CA_LAYOUT(dbr_gr_double, 72, 64);
EPICS_CA_LAYOUT(dbr_ctrl_short, 30, 28);
EPICS_CA_LAYOUT(dbr_ctrl_float, 52, 48);
EPICS_CA_LAYOUT(dbr_ctrl_enum, 424, 422);
EPICS_CA_LAYOUT(dbr_ctrl_char, 22, 21);
EPICS_CA_LAYOUT(dbr_ctrl_long, 48, 44);
EPICS_CA_LAYOUT(dbr_ctrl_double, 88, 80);
#undef EPICS_CA_LAYOUT

#endif
