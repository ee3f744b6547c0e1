/* plant.c — shared channels, routing, and libca driven from the loop
 * (plant.h says what and why).
 *
 * Words: a *channel* (struct plant_chan) is one name, shared; a *ref* is one
 * owner's use of it. A channel is LOCAL (a PV of our pvdb, simulated ones
 * included) or CA (a libca channel).
 *
 * libca callbacks (conn_cb, value_cb, enums_cb, put_cb, exception_cb) run
 * while the loop thread waits in ca_poll(); they only write a channel's
 * "arrived" fields and put it on the arrived list (or a put's status on the
 * done list). poll_ca() then applies what arrived, on the loop thread. The
 * lists need no lock: libca runs callbacks only while our thread is inside
 * ca_poll(), under its callback mutex, which also orders the memory.
 */
#include "plant/plant.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "ca/epics_ca.h"
#include "node/guardian.h"

enum chan_kind { K_NONE, K_LOCAL, K_CA };

/* What a value callback delivers; copied into the channel on our thread. */
struct reading {
    double num;
    bool num_ok;                    /* num holds a number (a STRING may not) */
    int16_t status, severity;
    unsigned index;                 /* ENUM: the state index */
};

/* An enum channel's state strings. */
struct enum_strs {
    unsigned n;
    char s[MAX_ENUM_STATES][MAX_ENUM_STRING_SIZE + 1];
};

typedef struct plant_chan {
    UT_hash_handle hh;
    plant *p;
    enum chan_kind kind;
    plant_ref *refs;                /* doubly linked */
    unsigned n_refs;
    uint64_t names_version;         /* pvdb's, when the route was chosen */

    /* LOCAL */
    pv *pv;
    pv_watch watch;                 /* PV_EV_DELETE only */

    /* CA, owned by the loop thread */
    chid id;
    evid sub;
    short type;                     /* native DBF type while connected, else -1 */
    unsigned long count_req;        /* elements subscribed */
    bool up;                        /* connected, and a first value has arrived */
    bool connected;
    bool ever_up;
    uint64_t news;                  /* CA: counts what changes plant_get's answer */
    struct reading cur;
    /* Text and state strings only for the channels that have them (most
     * have neither): allocated at connection, before the subscription that
     * fills them, each with its "arrived" twin right after it. */
    char *text;                     /* STRING and char arrays: [2][PLANT_TEXT_MAX + 1] */
    struct enum_strs *enums;        /* ENUM: [2] */
    unsigned pending_puts;          /* in p->puts */

    /* CA, written by callbacks (while we wait in ca_poll) */
    bool in_listed;                 /* on p->arrived */
    struct plant_chan *in_next;
    bool in_conn;                   /* a connection event arrived */
    bool in_connected;
    short in_type;
    unsigned long in_count;
    bool in_value;                  /* a value arrived */
    struct reading in;
    bool in_enums;                  /* state strings arrived (in enums[1]) */

    bool dead;                      /* freed once off the arrived list */
    char name[];
} plant_chan;

/* A write waiting for its channel to connect (one per ref: the newest). */
struct held_write {
    bool held;
    bool is_str;
    double num;
    char *str;                      /* when is_str (most writes are numbers) */
    double deadline;                /* ev_now seconds */
};

/* The set-point monitor's record of one ref (plant.h). */
struct spm {
    bool tracked, ignored, differs;
    bool is_str;
    double num;
    char *str;                      /* when is_str */
    double written_at, since;       /* ev_now */
};

struct plant_ref {
    plant_chan *ch;
    void *owner;
    /* utlist doubly linked lists (a head's prev is the tail): */
    plant_ref *prev, *next;         /* the channel's refs */
    plant_ref *held_prev, *held_next; /* p->held, while a write is held */
    plant_ref *spm_prev, *spm_next; /* p->tracked, while tracked */
    struct held_write w;
    struct spm spm;
};

/* A CA put in flight: found by id from its callback, so that a callback for
 * a put whose ref or channel is gone finds nothing. */
struct put {
    UT_hash_handle hh;
    uint64_t id;
    plant_chan *ch;
    plant_ref *ref;                 /* NULL once the ref is closed */
    int status;                     /* set by put_cb */
    struct put *done_next;
    char value[64];
};

struct plant {
    struct ev_loop *loop;
    pvdb *db;
    struct plant_config cfg;
    char never_simulate[PLANT_NAME_MAX + 1];
    struct plant_hooks hooks;
    plant_chan *by_name;            /* uthash */
    pv_group *sim;                  /* simulated channels */

    bool ca_started;
    ev_io wake;                     /* libca's wake-up socket */
    int wake_fd;                    /* -1 until libca registers it */
    bool poll_put_off;              /* wake stopped until plant_work_done */
    ev_timer backstop;              /* poll and held-write deadlines, 10 Hz */
    ev_prepare flush;
    bool flush_needed;
    plant_chan *arrived;            /* callbacks' list */
    struct put *puts;               /* uthash by id */
    struct put *done;               /* callbacks' list */
    uint64_t next_put_id;
    plant_ref *held;                /* refs holding a write */
    plant_ref *tracked;             /* refs the SPM watches */
    ev_timer spm_timer;             /* the SPM's pass, PLANT_SPM_PERIOD */

    /* Asynchronous errors that libca would otherwise print (or abort on),
     * noted by exception_cb and written on the loop thread. */
    char exception_text[256];
    unsigned exceptions;

    struct plant_stats st;
};

/* libca keeps its context per thread, and ours is the loop thread's: one
 * plant with a CA client per process. */
static bool ca_in_use;

static void poll_ca(plant *p);
static void route(plant_chan *ch);

/* ---- names ---- */

bool plant_valid_name(const char *name)
{
    if (!name || !name[0] || name[0] == '.')
        return false;
    size_t len = strnlen(name, PLANT_NAME_MAX + 1);
    if (len > PLANT_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && !strchr("_-+:;.[]<>{}", c))
            return false;
    }
    return true;
}

/* ---- refs and connection news ---- */

static void tell_connection(plant_chan *ch, bool up)
{
    plant *p = ch->p;
    if (!p->hooks.connection)
        return;
    for (plant_ref *r = ch->refs, *next; r; r = next) {
        next = r->next; /* the hook may close r */
        p->hooks.connection(p->hooks.arg, r->owner, ch->name, up);
    }
}

static void write_failed(plant_ref *r, bool lost, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void write_failed(plant_ref *r, bool lost, const char *fmt, ...)
{
    plant *p = r->ch->p;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    p->st.put_failures++;
    if (p->hooks.write_failed)
        p->hooks.write_failed(p->hooks.arg, r->owner, r->ch->name, lost, why);
}

static bool chan_up(const plant_chan *ch)
{
    return ch->kind == K_LOCAL ? ch->pv != NULL : ch->kind == K_CA && ch->up;
}

static void held_remove(plant_ref *r)
{
    plant *p = r->ch->p;
    if (!r->w.held)
        return;
    DL_DELETE2(p->held, r, held_prev, held_next);
    r->w.held = false;
}

/* ---- LOCAL channels ---- */

static void local_deleted(pv *pv, unsigned events, void *arg)
{
    (void)pv;
    plant_chan *ch = arg;
    if (!(events & PV_EV_DELETE))
        return;
    /* The PV is going (its node stopped, say): the name may be served
     * elsewhere. route() runs on the next use or the backstop. */
    ch->pv = NULL;
    ch->names_version = 0;
    tell_connection(ch, false);
}

static pv *simulated(plant *p, const char *name)
{
    if (!p->cfg.simulate)
        return NULL;
    if (p->never_simulate[0] && strncmp(name, p->never_simulate, strlen(p->never_simulate)) == 0)
        return NULL;
    if (!p->sim && !(p->sim = pvdb_group_new(p->db, "")))
        return NULL;
    pv *v = NULL;
    if (pv_group_add(p->sim, &(pv_def){.name = name, .type = PV_DOUBLE, .writable = true,
                                       .precision = 3, .class_name = "ao"},
                     &v) != PVDB_OK)
        return NULL;
    pv_set_double(v, 0);
    fprintf(stderr, "guardiand: plant: %s is SIMULATED (a local PV, not the plant)\n", name);
    return v;
}

/* ---- CA callbacks: note what arrived, nothing else ---- */

static void arrived(plant_chan *ch)
{
    if (ch->in_listed)
        return;
    ch->in_listed = true;
    ch->in_next = ch->p->arrived;
    ch->p->arrived = ch;
}

static void conn_cb(struct connection_handler_args args)
{
    plant_chan *ch = ca_puser(args.chid);
    if (!ch)
        return;
    ch->in_conn = true;
    ch->in_connected = args.op == CA_OP_CONN_UP;
    ch->in_type = ch->in_connected ? ca_field_type(args.chid) : -1;
    ch->in_count = ch->in_connected ? ca_element_count(args.chid) : 0;
    arrived(ch);
}

static void value_cb(struct event_handler_args args)
{
    plant_chan *ch = args.usr;
    if (args.status != ECA_NORMAL || !args.dbr || args.count < 1)
        return;
    struct reading *in = &ch->in;
    char *in_text = ch->text ? ch->text + PLANT_TEXT_MAX + 1 : NULL;
    memset(in, 0, sizeof(*in));
    in->num_ok = true;
    switch (args.type) {
    case DBR_TIME_STRING: {
        const struct dbr_time_string *d = args.dbr;
        char text[MAX_STRING_SIZE];
        in->status = d->status, in->severity = d->severity;
        snprintf(text, sizeof(text), "%.*s", MAX_STRING_SIZE - 1, d->value);
        char *end;
        in->num = strtod(text, &end);
        in->num_ok = end != text && *end == '\0';
        if (in_text)
            memcpy(in_text, text, sizeof(text));
        break;
    }
    case DBR_TIME_SHORT: {
        const struct dbr_time_short *d = args.dbr;
        in->status = d->status, in->severity = d->severity, in->num = d->value;
        break;
    }
    case DBR_TIME_FLOAT: {
        const struct dbr_time_float *d = args.dbr;
        in->status = d->status, in->severity = d->severity, in->num = d->value;
        break;
    }
    case DBR_TIME_ENUM: {
        const struct dbr_time_enum *d = args.dbr;
        in->status = d->status, in->severity = d->severity, in->num = d->value;
        in->index = d->value;
        break;
    }
    case DBR_TIME_CHAR: {
        const struct dbr_time_char *d = args.dbr;
        in->status = d->status, in->severity = d->severity, in->num = d->value;
        /* The elements follow the first one: args.count bytes in all. */
        size_t n = (size_t)args.count < PLANT_TEXT_MAX ? (size_t)args.count : PLANT_TEXT_MAX;
        const char *text = (const char *)&d->value;
        size_t len = strnlen(text, n);
        if (in_text) {
            memcpy(in_text, text, len);
            in_text[len] = '\0';
        }
        break;
    }
    case DBR_TIME_LONG: {
        const struct dbr_time_long *d = args.dbr;
        in->status = d->status, in->severity = d->severity, in->num = d->value;
        break;
    }
    case DBR_TIME_DOUBLE: {
        const struct dbr_time_double *d = args.dbr;
        in->status = d->status, in->severity = d->severity, in->num = d->value;
        break;
    }
    default:
        return;
    }
    ch->in_value = true;
    arrived(ch);
}

static void enums_cb(struct event_handler_args args)
{
    plant_chan *ch = args.usr;
    if (args.status != ECA_NORMAL || !args.dbr || args.type != DBR_GR_ENUM)
        return;
    const struct dbr_gr_enum *d = args.dbr;
    struct enum_strs *in = ch->enums ? &ch->enums[1] : NULL;
    if (!in)
        return;
    unsigned n = d->no_str < 0 ? 0 : (unsigned)d->no_str;
    if (n > MAX_ENUM_STATES)
        n = MAX_ENUM_STATES;
    for (unsigned i = 0; i < n; i++)
        snprintf(in->s[i], sizeof(in->s[i]), "%.*s", MAX_ENUM_STRING_SIZE, d->strs[i]);
    in->n = n;
    ch->in_enums = true;
    arrived(ch);
}

static void put_cb(struct event_handler_args args)
{
    /* The put's channel leads to the plant; the put itself is found by id,
     * so a put forgotten meanwhile is simply not found. */
    plant_chan *ch = args.chid ? ca_puser(args.chid) : NULL;
    plant *p = ch ? ch->p : NULL;
    uint64_t id = (uint64_t)(uintptr_t)args.usr;
    struct put *pt = NULL;
    if (!p)
        return;
    HASH_FIND(hh, p->puts, &id, sizeof(id), pt);
    if (!pt || pt->status)
        return;
    pt->status = args.status ? args.status : ECA_INTERNAL;
    pt->done_next = p->done;
    p->done = pt;
}

static void exception_cb(struct exception_handler_args args)
{
    plant *p = args.usr;
    p->exceptions++;
    snprintf(p->exception_text, sizeof(p->exception_text), "%s%s%s (%s)",
             args.chid ? ca_name(args.chid) : "", args.chid ? ": " : "",
             ca_message(args.stat), args.ctx ? args.ctx : "");
}

/* ---- CA channels, on the loop thread ---- */

static unsigned long request_count(short type, unsigned long count)
{
    if (type == DBF_CHAR && count > 1)
        return count < PLANT_TEXT_MAX ? count : PLANT_TEXT_MAX;
    return 1;
}

static void flush_soon(plant *p) { p->flush_needed = true; }

static void send_put(plant_ref *r, bool is_str, double num, const char *str);

static void ca_connected(plant_chan *ch, short type, unsigned long count)
{
    plant *p = ch->p;
    ch->connected = true;
    unsigned long want = request_count(type, count);
    if (ch->sub && (type != ch->type || want != ch->count_req)) {
        ca_clear_subscription(ch->sub);
        ch->sub = NULL;
    }
    ch->type = type;
    ch->count_req = want;
    bool texts = type == DBF_STRING || (type == DBF_CHAR && want > 1);
    if (texts && !ch->text && !(ch->text = calloc(2, PLANT_TEXT_MAX + 1)))
        return; /* no memory: it stays not up */
    if (type == DBF_ENUM && !ch->enums && !(ch->enums = calloc(2, sizeof(*ch->enums))))
        return;
    if (!ch->sub && ca_create_subscription(dbf_type_to_DBR_TIME(type), want, ch->id,
                                           DBE_VALUE | DBE_ALARM, value_cb, ch,
                                           &ch->sub) != ECA_NORMAL)
        ch->sub = NULL;
    if (type == DBF_ENUM)
        ca_array_get_callback(DBR_GR_ENUM, 1, ch->id, enums_cb, ch);
    flush_soon(p);
}

static void ca_lost(plant_chan *ch)
{
    bool was_up = ch->up;
    ch->connected = ch->up = false;
    ch->type = -1;
    if (was_up)
        tell_connection(ch, false);
}

/* A first value after a connection: the channel can be read, and writes
 * held for it go out. */
static void ca_up(plant_chan *ch)
{
    ch->up = true;
    ch->ever_up = true;
    for (plant_ref *r = ch->refs; r; r = r->next)
        if (r->w.held) {
            held_remove(r);
            send_put(r, r->w.is_str, r->w.num, r->w.str);
        }
    tell_connection(ch, true);
}

static void chan_free(plant_chan *ch);

/* Apply what the callbacks noted, channel by channel. */
static void apply_arrived(plant *p)
{
    while (p->arrived) {
        plant_chan *ch = p->arrived;
        p->arrived = ch->in_next;
        ch->in_listed = false;
        ch->in_next = NULL;
        if (ch->dead) {
            chan_free(ch);
            continue;
        }
        if (ch->kind != K_CA)
            continue;
        if (ch->in_conn || ch->in_enums || (ch->in_value && ch->connected))
            ch->news++;
        if (ch->in_conn) {
            ch->in_conn = false;
            if (ch->in_connected)
                ca_connected(ch, ch->in_type, ch->in_count);
            else
                ca_lost(ch);
        }
        if (ch->in_enums) {
            ch->in_enums = false;
            if (ch->enums)
                ch->enums[0] = ch->enums[1];
        }
        if (ch->in_value && ch->connected) {
            ch->in_value = false;
            ch->cur = ch->in;
            if (ch->text)
                memcpy(ch->text, ch->text + PLANT_TEXT_MAX + 1, PLANT_TEXT_MAX + 1);
            p->st.updates++;
            if (!ch->up)
                ca_up(ch);
            if (p->hooks.value)
                for (plant_ref *r = ch->refs, *next; r; r = next) {
                    next = r->next;
                    p->hooks.value(p->hooks.arg, r->owner, r);
                }
        }
    }
}

static void apply_done(plant *p)
{
    while (p->done) {
        struct put *pt = p->done;
        p->done = pt->done_next;
        HASH_DEL(p->puts, pt);
        pt->ch->pending_puts--;
        if (pt->status != ECA_NORMAL && pt->ref)
            write_failed(pt->ref, pt->status == ECA_DISCONN, "%s => %s: %s", pt->ch->name,
                         pt->value, ca_message(pt->status));
        free(pt);
    }
}

static void poll_ca(plant *p)
{
    if (!p->ca_started)
        return;
    ca_poll();
    p->st.polls++;
    p->flush_needed = false; /* ca_poll flushed */
    apply_arrived(p);
    apply_done(p);
    if (p->exceptions) {
        fprintf(stderr, "guardiand: plant: CA: %s%s\n", p->exception_text,
                p->exceptions > 1 ? " (and others)" : "");
        p->exceptions = 0;
    }
}

/* Poll after a put-off wake-up, and watch the wake-up socket again. */
static void poll_after_work(plant *p)
{
    if (!p->poll_put_off)
        return;
    p->poll_put_off = false;
    poll_ca(p);
    if (p->wake_fd >= 0)
        ev_io_start(p->loop, &p->wake);
}

/* Poll now, or put it off until the owner's work that is about to start
 * is done (plant_work_done). */
static void poll_or_put_off(plant *p)
{
    if (p->poll_put_off)
        return;
    if (p->hooks.next_work && p->hooks.next_work(p->hooks.arg) < PLANT_POLL_GUARD) {
        /* The wake-up socket stays readable until ca_poll drains it. */
        ev_io_stop(p->loop, &p->wake);
        p->poll_put_off = true;
        p->st.polls_put_off++;
        return;
    }
    poll_ca(p);
}

static void wake_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    poll_or_put_off(w->data);
}

void plant_work_done(plant *p)
{
    if (p)
        poll_after_work(p);
}

static void backstop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    plant *p = w->data;
    poll_or_put_off(p);
    double now = ev_now(loop);
    for (plant_ref *r = p->held, *next; r; r = next) {
        next = r->held_next;
        if (now >= r->w.deadline) {
            held_remove(r);
            write_failed(r, true, "%s: not connected after %.3g s (the write was not made)",
                         r->ch->name, p->cfg.connect_timeout);
        }
    }
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop, (void)revents;
    plant *p = w->data;
    if (p->flush_needed) {
        p->flush_needed = false;
        ca_flush_io();
    }
}

static void fd_cb(void *arg, int fd, int opened)
{
    plant *p = arg;
    /* libca has one wake-up socket per context; TCP circuits are its own. */
    if (opened && p->wake_fd < 0) {
        p->wake_fd = fd;
        ev_io_set(&p->wake, fd, EV_READ);
        if (!p->poll_put_off)
            ev_io_start(p->loop, &p->wake);
    } else if (!opened && fd == p->wake_fd) {
        ev_io_stop(p->loop, &p->wake);
        p->wake_fd = -1;
    }
}

static int ca_start(plant *p, char *err, size_t errlen)
{
    if (p->ca_started)
        return 0;
    if (ca_in_use) {
        snprintf(err, errlen, "a CA client is running already in this process");
        return -1;
    }
    int st = ca_context_create(ca_disable_preemptive_callback);
    if (st != ECA_NORMAL) {
        snprintf(err, errlen, "CA client: %s", ca_message(st));
        return -1;
    }
    ca_in_use = true;
    ca_add_exception_event(exception_cb, p);
    ca_add_fd_registration(fd_cb, p);
    p->ca_started = true;
    ev_timer_start(p->loop, &p->backstop);
    ev_prepare_start(p->loop, &p->flush);
    return 0;
}

/* ---- routing ---- */

static void to_local(plant_chan *ch, pv *v)
{
    ch->kind = K_LOCAL;
    ch->pv = v;
    pv_watch_init(&ch->watch, local_deleted, ch, 0);
    pv_watch_start(v, &ch->watch);
}

static void clear_ca(plant_chan *ch)
{
    plant *p = ch->p;
    if (ch->kind != K_CA)
        return;
    /* No callback comes for a cleared channel; its puts are dropped. */
    ca_clear_channel(ch->id);
    ch->id = NULL;
    ch->sub = NULL;
    flush_soon(p);
    if (ch->pending_puts) {
        /* Off the done list first (puts whose callbacks came in this very
         * poll, when a hook of apply_arrived closes the channel), then
         * freed. */
        for (struct put **pp = &p->done; *pp;)
            if ((*pp)->ch == ch)
                *pp = (*pp)->done_next;
            else
                pp = &(*pp)->done_next;
        struct put *pt, *tmp;
        HASH_ITER(hh, p->puts, pt, tmp) if (pt->ch == ch) {
            HASH_DEL(p->puts, pt);
            free(pt);
        }
        ch->pending_puts = 0;
    }
    ch->kind = K_NONE;
    ch->connected = ch->up = false;
}

static int to_ca(plant_chan *ch)
{
    plant *p = ch->p;
    char err[256];
    if (ca_start(p, err, sizeof(err)) < 0) {
        fprintf(stderr, "guardiand: plant: %s: %s\n", ch->name, err);
        return -1;
    }
    ch->type = -1;
    int st = ca_create_channel(ch->name, conn_cb, ch, CA_PRIORITY_DEFAULT, &ch->id);
    if (st != ECA_NORMAL) {
        fprintf(stderr, "guardiand: plant: %s: %s\n", ch->name, ca_message(st));
        ch->id = NULL;
        return -1;
    }
    ch->kind = K_CA;
    flush_soon(p);
    return 0;
}

/* Choose where the name lives now: here (pvdb, or simulated) or over CA. */
static void route(plant_chan *ch)
{
    plant *p = ch->p;
    uint64_t version = pvdb_names_version(p->db);
    if (ch->names_version == version && ch->kind != K_NONE)
        return;
    ch->names_version = version;
    pv *v = pvdb_find(p->db, ch->name);
    if (ch->kind == K_LOCAL && v == ch->pv && v)
        return;
    if (v) {
        bool was_up = chan_up(ch);
        if (ch->kind == K_LOCAL && ch->pv)
            pv_watch_stop(&ch->watch);
        clear_ca(ch);
        to_local(ch, v);
        if (!was_up)
            tell_connection(ch, true);
        return;
    }
    if (ch->kind == K_CA)
        return;
    if (ch->kind == K_LOCAL && ch->pv)
        pv_watch_stop(&ch->watch);
    ch->kind = K_NONE;
    ch->pv = NULL;
    if ((v = simulated(p, ch->name))) {
        ch->names_version = pvdb_names_version(p->db);
        to_local(ch, v);
        tell_connection(ch, true);
        return;
    }
    if (!p->cfg.simulate)
        to_ca(ch);
}

/* ---- the set-point monitor ---- */

/* Keep a copy of text in *slot (NULL text: none). False if out of memory. */
static bool keep_text(char **slot, const char *text)
{
    if (!text) {
        free(*slot);
        *slot = NULL;
        return true;
    }
    size_t len = strnlen(text, PLANT_TEXT_MAX);
    char *copy = realloc(*slot, len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len);
    copy[len] = '\0';
    *slot = copy;
    return true;
}

static void spm_tell(plant_ref *r, enum plant_spm_event ev, const char *text)
{
    plant *p = r->ch->p;
    if (p->hooks.spm)
        p->hooks.spm(p->hooks.arg, r->owner, r->ch->name, ev, text);
}

static void spm_unlist(plant_ref *r)
{
    plant *p = r->ch->p;
    if (!r->spm.tracked)
        return;
    DL_DELETE2(p->tracked, r, spm_prev, spm_next);
    r->spm.tracked = r->spm.differs = false;
    r->spm.since = 0;
}

/* The owner wrote through r: this is its set point now. */
static void spm_written(plant_ref *r, bool is_str, double num, const char *str)
{
    plant *p = r->ch->p;
    struct spm *m = &r->spm;
    if (m->ignored)
        return;
    if (!keep_text(&m->str, is_str ? str : NULL))
        return; /* no memory: the old set point stays */
    m->is_str = is_str;
    m->num = num;
    m->written_at = ev_now(p->loop);
    if (!m->tracked) {
        m->tracked = true;
        DL_PREPEND2(p->tracked, r, spm_prev, spm_next);
        spm_tell(r, PLANT_SPM_TRACKED, NULL);
    } else if (m->differs) {
        m->differs = false;
        m->since = 0;
        spm_tell(r, PLANT_SPM_MATCHES, NULL);
    }
}

static bool text_valued(const plant_chan *ch)
{
    if (ch->kind == K_LOCAL && ch->pv)
        return pv_type(ch->pv) == PV_STRING || pv_type(ch->pv) == PV_ENUM ||
               (pv_type(ch->pv) == PV_CHAR && pv_count(ch->pv) > 1);
    return ch->type == DBF_STRING || ch->type == DBF_ENUM ||
           (ch->type == DBF_CHAR && ch->count_req > 1);
}

static bool same_number(double a, double b)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return a == b || fabs(a - b) <= 1e-6 * (scale > 1 ? scale : 1);
}

/* Whether r's channel holds what r's owner wrote; false with *ok false when
 * it cannot be told (not connected). now gets the value as text. */
static bool spm_matches(plant_ref *r, bool *ok, char *now, size_t len)
{
    struct spm *m = &r->spm;
    double v;
    int st = plant_get(r, &v, now, len);
    *ok = st == GRD_OK || st == GRD_ETYPE;
    if (!*ok)
        return true;
    if (m->is_str && text_valued(r->ch))
        return strcmp(now, m->str) == 0;
    double want = m->num;
    if (m->is_str) {
        char *end;
        want = strtod(m->str, &end);
        if (end == m->str || *end)
            return strcmp(now, m->str) == 0;
    }
    return st == GRD_OK && same_number(v, want);
}

static void spm_pass(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    plant *p = w->data;
    double t = ev_now(loop);
    for (plant_ref *r = p->tracked, *next; r; r = next) {
        next = r->spm_next; /* a hook may close r */
        struct spm *m = &r->spm;
        if (t - m->written_at < PLANT_SPM_SETTLE)
            continue;
        bool ok;
        char now[PLANT_TEXT_MAX + 1];
        bool matches = spm_matches(r, &ok, now, sizeof(now));
        if (!ok || matches == !m->differs)
            continue;
        m->differs = !matches;
        m->since = m->differs ? t : 0;
        if (m->differs) {
            char text[2 * PLANT_TEXT_MAX + 64], set[72];
            if (m->is_str)
                snprintf(set, sizeof(set), "%.64s", m->str);
            else
                snprintf(set, sizeof(set), "%.15g", m->num);
            snprintf(text, sizeof(text), "%s is %.64s, set %s", r->ch->name, now, set);
            spm_tell(r, PLANT_SPM_DIFFERS, text);
        } else {
            spm_tell(r, PLANT_SPM_MATCHES, NULL);
        }
    }
}

void plant_spm_ignore(plant_ref *r)
{
    if (r->spm.ignored)
        return;
    r->spm.ignored = true;
    if (r->spm.tracked) {
        spm_unlist(r);
        spm_tell(r, PLANT_SPM_UNTRACKED, NULL);
    }
}

int plant_spm_accept(plant_ref *r)
{
    if (!r->spm.tracked)
        return -1;
    double v;
    char now[PLANT_TEXT_MAX + 1];
    int st = plant_get(r, &v, now, sizeof(now));
    if (st != GRD_OK && st != GRD_ETYPE)
        return -1;
    bool as_text = text_valued(r->ch) || st == GRD_ETYPE;
    /* As if the owner had written it, without the settling time. */
    spm_written(r, as_text, v, now);
    r->spm.written_at = 0;
    return 0;
}

void plant_spm_info(const plant_ref *r, struct plant_spm_info *info)
{
    const struct spm *m = &r->spm;
    memset(info, 0, sizeof(*info));
    info->tracked = m->tracked;
    info->ignored = m->ignored;
    info->differs = m->differs;
    info->since = m->since;
    if (m->tracked) {
        if (m->is_str)
            snprintf(info->set, sizeof(info->set), "%.63s", m->str);
        else
            snprintf(info->set, sizeof(info->set), "%.15g", m->num);
    }
    double v;
    int st = plant_get((plant_ref *)r, &v, info->now, sizeof(info->now));
    if (st != GRD_OK && st != GRD_ETYPE)
        info->now[0] = '\0';
}

/* ---- channels ---- */

static void ref_free(plant_ref *r)
{
    free(r->w.str);
    free(r->spm.str);
    free(r);
}

static void chan_free(plant_chan *ch)
{
    plant *p = ch->p;
    if (ch->kind == K_LOCAL && ch->pv)
        pv_watch_stop(&ch->watch);
    clear_ca(ch);
    if (ch->in_listed) {
        ch->dead = true; /* apply_arrived frees it */
        return;
    }
    free(ch->text);
    free(ch->enums);
    free(ch);
    (void)p;
}

plant_ref *plant_open(plant *p, const char *name, void *owner, bool *up, char *err, size_t errlen)
{
    if (!plant_valid_name(name)) {
        snprintf(err, errlen, "'%.*s%s' is not a valid channel name", 64, name ? name : "",
                 name && strlen(name) > 64 ? "..." : "");
        return NULL;
    }
    plant_ref *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    plant_chan *ch = NULL;
    size_t len = strlen(name);
    HASH_FIND(hh, p->by_name, name, len, ch);
    if (!ch) {
        if (!(ch = calloc(1, sizeof(*ch) + len + 1))) {
            ref_free(r);
            snprintf(err, errlen, "%s: out of memory", name);
            return NULL;
        }
        memcpy(ch->name, name, len + 1);
        ch->p = p;
        ch->type = -1;
        HASH_ADD_KEYPTR(hh, p->by_name, ch->name, len, ch);
        route(ch);
    }
    r->ch = ch;
    r->owner = owner;
    DL_PREPEND(ch->refs, r);
    ch->n_refs++;
    if (up)
        *up = chan_up(ch);
    return r;
}

void plant_close(plant_ref *r)
{
    if (!r)
        return;
    plant_chan *ch = r->ch;
    plant *p = ch->p;
    held_remove(r);
    spm_unlist(r); /* the owner closed it: it knows */
    if (ch->pending_puts) {
        struct put *pt, *tmp;
        HASH_ITER(hh, p->puts, pt, tmp) if (pt->ref == r) pt->ref = NULL;
    }
    DL_DELETE(ch->refs, r);
    ref_free(r);
    if (--ch->n_refs == 0) {
        HASH_DEL(p->by_name, ch);
        chan_free(ch);
    }
}

const char *plant_ref_name(const plant_ref *r) { return r->ch->name; }

bool plant_ref_up(const plant_ref *r) { return chan_up(r->ch); }

/* ---- reads ---- */

static void local_text(const pv *v, char *str, size_t len)
{
    switch (pv_type(v)) {
    case PV_STRING:
        snprintf(str, len, "%s", (const char *)pv_value(v));
        break;
    case PV_ENUM: {
        const char *s = pv_enum_string(v, (unsigned)pv_get_long(v));
        if (s)
            snprintf(str, len, "%.*s", PV_ENUM_STRING_SIZE, s);
        else
            snprintf(str, len, "%ld", pv_get_long(v));
        break;
    }
    case PV_CHAR:
        if (pv_count(v) > 1) {
            size_t n = pv_nelm(v) < len - 1 ? pv_nelm(v) : len - 1;
            snprintf(str, len, "%.*s", (int)strnlen(pv_value(v), n), (const char *)pv_value(v));
            break;
        }
        /* fall through */
    default:
        snprintf(str, len, "%.15g", pv_get_double(v));
        break;
    }
}

static void ca_text(const plant_chan *ch, char *str, size_t len)
{
    if (ch->text && (ch->type == DBF_STRING || (ch->type == DBF_CHAR && ch->count_req > 1)))
        snprintf(str, len, "%s", ch->text);
    else if (ch->type == DBF_ENUM && ch->enums && ch->cur.index < ch->enums->n)
        snprintf(str, len, "%s", ch->enums->s[ch->cur.index]);
    else
        snprintf(str, len, "%.15g", ch->cur.num);
}

int plant_get(plant_ref *r, double *num, char *str, size_t len)
{
    plant_chan *ch = r->ch;
    route(ch);
    if (!chan_up(ch))
        return GRD_ENOTCONN;
    if (ch->kind == K_LOCAL) {
        if (num) {
            if (pv_type(ch->pv) == PV_STRING) {
                char *end;
                const char *s = pv_value(ch->pv);
                *num = strtod(s, &end);
                if (end == s || *end)
                    return GRD_ETYPE;
            } else {
                *num = pv_get_double(ch->pv);
            }
        }
        if (str && len)
            local_text(ch->pv, str, len);
        return GRD_OK;
    }
    if (num) {
        if (!ch->cur.num_ok)
            return GRD_ETYPE;
        *num = ch->cur.num;
    }
    if (str && len)
        ca_text(ch, str, len);
    return GRD_OK;
}

uint64_t plant_version(plant_ref *r)
{
    plant_chan *ch = r->ch;
    route(ch);
    if (!chan_up(ch))
        return 0;
    /* pvdb's generations come from one counter: a new value, or another
     * PV under the name, gives another number. CA's count is kept apart
     * from them by the top bit. */
    return ch->kind == K_LOCAL ? pv_generation(ch->pv) : (UINT64_C(1) << 63) | ch->news;
}

/* ---- writes ---- */

static void send_put(plant_ref *r, bool is_str, double num, const char *str)
{
    plant_chan *ch = r->ch;
    plant *p = ch->p;
    char shown[64];
    if (is_str)
        snprintf(shown, sizeof(shown), "%s", str);
    else
        snprintf(shown, sizeof(shown), "%.15g", num);
    if (!ca_write_access(ch->id)) {
        write_failed(r, false, "%s => %s: %s", ch->name, shown, ca_message(ECA_NOWTACCESS));
        return;
    }
    struct put *pt = calloc(1, sizeof(*pt));
    if (!pt) {
        write_failed(r, false, "%s => %s: out of memory", ch->name, shown);
        return;
    }
    pt->id = ++p->next_put_id;
    pt->ch = ch;
    pt->ref = r;
    snprintf(pt->value, sizeof(pt->value), "%s", shown);
    int st;
    void *usr = (void *)(uintptr_t)pt->id;
    if (!is_str) {
        dbr_double_t v = num;
        st = ca_array_put_callback(DBR_DOUBLE, 1, ch->id, &v, put_cb, usr);
    } else if (ch->type == DBF_CHAR && ch->count_req > 1) {
        /* A char array takes the text and its NUL. */
        size_t n = strlen(str) + 1;
        if (n > ch->count_req)
            n = ch->count_req;
        char buf[PLANT_TEXT_MAX + 1] = {0};
        memcpy(buf, str, n - 1);
        st = ca_array_put_callback(DBR_CHAR, n, ch->id, buf, put_cb, usr);
    } else {
        dbr_string_t v = {0};
        snprintf(v, sizeof(v), "%s", str);
        st = ca_array_put_callback(DBR_STRING, 1, ch->id, v, put_cb, usr);
    }
    if (st != ECA_NORMAL) {
        free(pt);
        write_failed(r, st == ECA_DISCONN, "%s => %s: %s", ch->name, shown, ca_message(st));
        return;
    }
    HASH_ADD(hh, p->puts, id, sizeof(pt->id), pt);
    ch->pending_puts++;
    p->st.puts++;
    flush_soon(p);
}

/* Whether a CA channel can take this value; why if not. */
static bool ca_value_ok(const plant_chan *ch, bool is_str, double num, const char *str, char *why,
                        size_t whylen)
{
    if (!is_str) {
        if (ch->type == DBF_STRING || isfinite(num) || ch->type == DBF_FLOAT ||
            ch->type == DBF_DOUBLE)
            return true;
        snprintf(why, whylen, "%.15g is not a value of a%s channel", num,
                 ch->type == DBF_ENUM ? "n enum" : "n integer");
        return false;
    }
    if (ch->type == DBF_ENUM && ch->enums && ch->enums->n) {
        for (unsigned i = 0; i < ch->enums->n; i++)
            if (strcmp(ch->enums->s[i], str) == 0)
                return true;
        snprintf(why, whylen, "'%s' is not one of its %u states", str, ch->enums->n);
        return false;
    }
    if (ch->type == DBF_STRING || ch->type == DBF_CHAR || ch->type == DBF_ENUM)
        return true;
    char *end;
    strtod(str, &end);
    if (end != str && *end == '\0')
        return true;
    snprintf(why, whylen, "'%s' is not a number", str);
    return false;
}

int plant_put(plant_ref *r, const char *user, double num, const char *str, char *why, size_t whylen)
{
    plant_chan *ch = r->ch;
    plant *p = ch->p;
    route(ch);
    if (ch->kind == K_LOCAL) {
        if (!ch->pv) {
            snprintf(why, whylen, "not connected");
            return GRD_ENOTCONN;
        }
        pv_client who = {.host = PV_LOCAL_HOST, .user = user ? user : "", .ip = PV_LOCAL_IP};
        int err = str ? pv_write_string(ch->pv, str, &who) : pv_write_double(ch->pv, num, &who);
        p->st.puts++;
        if (err == PVDB_OK) {
            spm_written(r, str != NULL, num, str);
            return GRD_OK;
        }
        p->st.put_failures++;
        snprintf(why, whylen, "write refused: %s", pvdb_strerror(err));
        return err == PVDB_EINVAL || err == PVDB_ERANGE ? GRD_ETYPE : GRD_EBADCHAN;
    }
    if (ch->kind != K_CA) {
        snprintf(why, whylen, "no CA client");
        return GRD_ENOTCONN;
    }
    if (ch->up) {
        if (!ca_value_ok(ch, str != NULL, num, str, why, whylen)) {
            p->st.put_failures++;
            return GRD_ETYPE;
        }
        if (!ca_write_access(ch->id)) {
            p->st.put_failures++;
            snprintf(why, whylen, "%s", ca_message(ECA_NOWTACCESS));
            return GRD_EBADCHAN;
        }
        send_put(r, str != NULL, num, str);
        spm_written(r, str != NULL, num, str);
        return GRD_OK;
    }
    if (ch->ever_up) {
        p->st.put_failures++;
        snprintf(why, whylen, "%s", ca_message(ECA_DISCONN));
        return GRD_ENOTCONN;
    }
    /* Not connected yet: hold the newest write until it is, for a while. */
    if (!keep_text(&r->w.str, str)) {
        snprintf(why, whylen, "out of memory");
        return GRD_EINVAL;
    }
    r->w.is_str = str != NULL;
    r->w.num = num;
    r->w.deadline = ev_now(p->loop) + p->cfg.connect_timeout;
    if (!r->w.held) {
        r->w.held = true;
        DL_PREPEND2(p->held, r, held_prev, held_next);
    }
    spm_written(r, str != NULL, num, str);
    return GRD_OK;
}

int plant_sim_set(plant *p, const char *name, double value)
{
    if (!p->cfg.simulate || !plant_valid_name(name))
        return -1;
    pv *v = pvdb_find(p->db, name);
    if (!v)
        v = simulated(p, name);
    if (!v || pv_get_group(v) != p->sim)
        return -1;
    return pv_set_double(v, value) == PVDB_OK ? 0 : -1;
}

/* ---- the plant ---- */

plant *plant_new(struct ev_loop *loop, pvdb *db, const struct plant_config *cfg,
                 const struct plant_hooks *hooks, char *err, size_t errlen)
{
    plant *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->loop = loop;
    p->db = db;
    p->cfg = *cfg;
    if (!(p->cfg.connect_timeout > 0))
        p->cfg.connect_timeout = PLANT_CONNECT_TIMEOUT;
    snprintf(p->never_simulate, sizeof(p->never_simulate), "%s",
             cfg->never_simulate ? cfg->never_simulate : "");
    p->cfg.never_simulate = p->never_simulate;
    if (hooks)
        p->hooks = *hooks;
    ev_io_init(&p->wake, wake_cb, -1, EV_READ);
    p->wake_fd = -1;
    p->wake.data = p;
    ev_timer_init(&p->backstop, backstop_cb, 0.1, 0.1);
    p->backstop.data = p;
    ev_prepare_init(&p->flush, flush_cb);
    p->flush.data = p;
    ev_timer_init(&p->spm_timer, spm_pass, PLANT_SPM_PERIOD, PLANT_SPM_PERIOD);
    p->spm_timer.data = p;
    ev_timer_start(loop, &p->spm_timer);
    ev_unref(loop); /* the SPM alone does not keep a loop running */
    return p;
}

void plant_free(plant *p)
{
    if (!p)
        return;
    ev_ref(p->loop);
    ev_timer_stop(p->loop, &p->spm_timer);
    plant_chan *ch, *tmp;
    /* Clear every CA channel first, then let libca deliver what its threads
     * hold (they wait for the callback lock that only ca_poll gives up):
     * destroying the context while one waits would never return. */
    HASH_ITER(hh, p->by_name, ch, tmp) {
        if (ch->kind == K_LOCAL && ch->pv)
            pv_watch_stop(&ch->watch);
        ch->pv = NULL;
        clear_ca(ch);
    }
    if (p->ca_started) {
        ca_flush_io();
        ca_poll();
    }
    HASH_ITER(hh, p->by_name, ch, tmp) {
        /* Refs still open: their owners forgot them; free them too. */
        while (ch->refs) {
            plant_ref *r = ch->refs;
            ch->refs = r->next;
            ref_free(r);
        }
        HASH_DEL(p->by_name, ch);
        free(ch->text);
        free(ch->enums);
        free(ch);
    }
    p->arrived = NULL;
    struct put *pt, *ptmp;
    HASH_ITER(hh, p->puts, pt, ptmp) {
        HASH_DEL(p->puts, pt);
        free(pt);
    }
    if (p->ca_started) {
        ev_io_stop(p->loop, &p->wake);
        ev_timer_stop(p->loop, &p->backstop);
        ev_prepare_stop(p->loop, &p->flush);
        ca_context_destroy();
        ca_in_use = false;
    }
    pv_group_free(p->sim);
    free(p);
}

void plant_get_stats(const plant *p, struct plant_stats *st)
{
    *st = p->st;
    st->channels = st->ca = st->ca_connected = st->local = st->simulated = st->refs = 0;
    for (const plant_chan *ch = p->by_name; ch; ch = ch->hh.next) {
        st->channels++;
        st->refs += ch->n_refs;
        if (ch->kind == K_CA) {
            st->ca++;
            st->ca_connected += ch->up;
        } else if (ch->kind == K_LOCAL) {
            if (ch->pv && pv_get_group(ch->pv) == p->sim)
                st->simulated++;
            else
                st->local++;
        }
    }
}
