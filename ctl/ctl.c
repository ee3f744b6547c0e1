/* ctl.c — the control socket: listening, framing, connections, credentials,
 * and the `log -f` streams (the protocol is in proto.h; the commands in
 * commands.c).
 *
 * Single threaded, on the daemon's loop, and never blocking it: every fd is
 * non-blocking, each connection reads with an ev_io and writes its buffered
 * output with a second ev_io only while it has output. A connection that
 * says nothing costs its fd and this struct: the header is read into the
 * struct itself and a body buffer is allocated only once a length has
 * arrived, sized to it (at most CTL_REQUEST_MAX). A request is answered
 * before the next one is read, and reading pauses while more than
 * CTL_PAUSE_OUTPUT bytes of replies wait to be written, so a client that
 * sends without reading costs bounded memory. Followed log lines are
 * dropped (and counted, then reported) while a follower has more than
 * CTL_FOLLOW_BACKLOG bytes unsent. Watchers (`watch`) get at most
 * CTL_WATCH_RATE change frames a second from one timer, and none while
 * more than CTL_WATCH_BACKLOG bytes wait: they are owed one instead.
 *
 * Anything wrong with a frame (oversize, not JSON, not an object, cut short
 * by the peer closing) is answered with an error reply and changes nothing;
 * after an oversize length or a truncated frame the connection is closed
 * once the reply is written, since the stream cannot be resynchronised.
 *
 * Credentials are read once, at accept: SO_PEERCRED's uid, gid and pid,
 * and whether operator_group is among the peer's real supplementary groups
 * (SO_PEERGROUPS; /proc/<pid>/status before Linux 4.13). No name-service
 * lookup decides anything: the groups a process runs with are what count
 * (after newgrp or sg, or a service's SupplementaryGroups=), not the group
 * file, and NSS could block the loop.
 *
 * Slots (ctl.h): a connection that would leave fewer than
 * CTL_RESERVED_CONNECTIONS free slots, or be the
 * CTL_MAX_CONNECTIONS_PER_UID+1st of its uid, is refused unless it is root's
 * or an operator's; refusals (and permission refusals, commands.c) are
 * logged at most once per CTL_LOG_PERIOD, the rest counted, so a client
 * knocking in a loop cannot flood the journal. The sweep closes a
 * connection that has not completed a request (nor had reply bytes written)
 * for control_idle_timeout and follows no log: a byte now and then does not
 * hold a slot, a half-sent request older than that is dropped.
 *
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM; or any error we do not expect), the listening socket
 * stays readable, so retrying at once would spin: accepting pauses for
 * CTL_ACCEPT_PAUSE (the watcher stopped, a one-shot timer re-armed each
 * time), connected clients are served as before, new ones wait in the
 * listen backlog, and one line is logged per episode (and one when
 * accepting works again).
 */
#include "ctl/ctl.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_PAUSE_OUTPUT (256 * 1024)
#define CTL_FOLLOW_BACKLOG (256 * 1024)
#define CTL_ACCEPT_PAUSE 1.0   /* seconds between accept() attempts after EMFILE & co */
#define CTL_LOG_PERIOD 10.0    /* seconds: at most one refusal line, then a count */
/* User names for audit records (ctl_user_name): how many uids are kept, and
 * for how long a name (or the lack of one: a directory that does not
 * answer) is trusted before it is looked up again. */
#define CTL_USER_CACHE 32
#define CTL_USER_TTL 3600.0
#define CTL_USER_TTL_UNKNOWN 60.0

struct user_name {
    uid_t uid;
    bool used, known;
    double at;                  /* loop time of the lookup */
    char name[64];
};
#define CTL_WATCH_BACKLOG (4 * 1024) /* a watcher with more unsent is owed its frame */

struct conn {
    struct ctl *ctl;
    int fd;
    ev_io rio, wio;
    struct ctl_peer peer;
    unsigned char hdr[CTL_FRAME_HEADER];
    unsigned hdr_len;
    char *body;                 /* NULL until a length has arrived */
    uint32_t body_len, body_got;
    char *out;                  /* frames waiting to be written */
    size_t out_len, out_pos, out_cap;
    bool reading;               /* rio is meant to run (not paused, not at EOF) */
    bool close_after;           /* close once out is written */
    bool following;             /* peer.follow names the node */
    uint64_t dropped;           /* followed lines not sent since the last report */
    /* Loop time of its last complete request, or of reply bytes last
     * written (at first: of the accept). Bytes of a request still coming
     * do not count: see the sweep. */
    double last_done;
    bool watching;              /* peer.watch: it gets change frames (watch_flush) */
    bool watch_owed;            /* a change it was not sent yet (it fell behind) */
    uint64_t watch_print;       /* what its nodes showed when it was last told */
    uint64_t watch_life;        /* ctl.life_epoch when it was last told */
    struct conn *prev, *next;
};

struct ctl {
    sup *sup;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
    ev_io accept_w;
    ev_timer accept_retry;      /* restarts accept_w after a failed accept() */
    bool accept_failing;        /* an episode was logged; cleared by the next accept */
    ev_timer sweep;             /* closes idle connections */
    ev_timer followers;         /* ends the follows of removed nodes (ctl_node_removed) */
    dev_t dev;                  /* the socket file we made, to remove only it */
    ino_t ino;
    bool have_operator;
    gid_t operator_gid;
    bool no_peergroups;         /* GUARDIAND_TEST_NO_PEERGROUPS: test the /proc way */
    struct conn *conns;
    unsigned n_conns, n_followers;
    double log_quiet_until;     /* refusals until then are counted, not logged */
    uint64_t log_suppressed;
    ev_timer log_summary;       /* logs the count at log_quiet_until */
    struct user_name users[CTL_USER_CACHE];
    /* watchers: sup_changed sets changed (and counts lifecycle changes);
     * watch_timer sends the frames, at most CTL_WATCH_RATE a second */
    unsigned n_watchers;
    bool changed;
    uint64_t life_epoch;
    ev_timer watch_timer;
    double watch_last;          /* loop time of the last flush */
};

const char *ctl_path(const struct ctl *c) { return c->path; }

/* ---- refusals on stderr, at a bounded rate ---- */

void ctl_log_refusal(struct ctl *c, const char *fmt, ...)
{
    struct ev_loop *loop = c->sup->loop;
    double now = ev_now(loop);
    if (now < c->log_quiet_until) {
        c->log_suppressed++;
        if (!ev_is_active(&c->log_summary)) {
            ev_timer_set(&c->log_summary, c->log_quiet_until - now, 0.0);
            ev_timer_start(loop, &c->log_summary);
        }
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sup_log(SUP_WARNING, "control: %s", msg); /* a refusal */
    c->log_quiet_until = now + CTL_LOG_PERIOD;
}

/* The count of refusals not logged, if any. */
static void log_suppressed(struct ctl *c)
{
    if (c->log_suppressed)
        sup_log(SUP_WARNING, "control: %" PRIu64 " more refusals in the last %.0f s (at most one "
                "is logged every %.0f s)", c->log_suppressed, CTL_LOG_PERIOD, CTL_LOG_PERIOD);
    c->log_suppressed = 0;
}

static void log_summary_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    log_suppressed(w->data);
}

/* ---- who the peer is ---- */

void ctl_user_name(struct ctl *c, uid_t uid, char *out, size_t len)
{
    /* getpwuid_r goes through NSS, which with a remote directory (LDAP,
     * sssd) may block the loop for seconds. It is needed: audit records and
     * CHANGED_BY name the user, as a CA put's do. So it is asked only for
     * peers that change things (root and operators: trusted, and rare;
     * permission refusals log the uid alone, so nobody else can make the
     * daemon look anything up), and the answer is kept per uid for
     * CTL_USER_TTL (a failure for CTL_USER_TTL_UNKNOWN, so that a directory
     * that hangs costs one stall a minute, not one per command). */
    double now = ev_now(c->sup->loop);
    struct user_name *u = NULL, *oldest = &c->users[0];
    for (unsigned i = 0; i < CTL_USER_CACHE && !u; i++) {
        struct user_name *e = &c->users[i];
        if (e->used && e->uid == uid)
            u = e;
        else if (!e->used || (oldest->used && e->at < oldest->at))
            oldest = e;
    }
    if (!u || now - u->at >= (u->known ? CTL_USER_TTL : CTL_USER_TTL_UNKNOWN)) {
        if (!u)
            u = oldest;
        struct passwd pw, *res = NULL;
        char buf[4096];
        u->used = true;
        u->uid = uid;
        u->at = now;
        u->known = getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res &&
                   strlen(pw.pw_name) < sizeof(u->name);
        if (u->known)
            snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
        else
            snprintf(u->name, sizeof(u->name), "uid%u", (unsigned)uid);
    }
    snprintf(out, len, "%s", u->name);
}

/* Parse the value of one /proc/<pid>/status line, after its key: decimal
 * ids separated by blanks, up to the newline ("\t0\t0\t0\t0\n",
 * "Groups:\t4 27 100 \n"). The first max go to ids[]; *has says whether
 * want is among them all. Returns how many there are, or -1 when the text
 * is anything else: the kernel writes exactly this, but what is parsed is
 * checked. */
static long status_ids(const char *p, uint32_t *ids, size_t max, uint32_t want, bool *has)
{
    long n = 0;
    *has = false;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\n')
            return n;
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p++ - '0');
            if (v > UINT32_MAX)
                return -1;
        }
        if (*p != ' ' && *p != '\t' && *p != '\n')
            return -1;
        if ((size_t)n < max)
            ids[n] = (uint32_t)v;
        *has = *has || v == want;
        if (++n > NGROUPS_MAX)
            return -1;
    }
}

/* Whether og is among the supplementary groups of the peer's process, from
 * /proc/<pid>/status: 1 or 0, -1 when that cannot be told. Only before
 * Linux 4.13 (no SO_PEERGROUPS). The pid may have ended and been reused
 * since connect(), and a process may change its groups; the line is used
 * only if the process there has the peer's effective uid and gid (the Uid
 * and Gid lines), so a reused pid can only be the same user's process with
 * the same groups it may take itself: the race gains nothing a process of
 * that uid could not have by running guardctl in it. */
static int proc_groups_has(const struct ucred *cred, gid_t og)
{
    if (cred->pid <= 0) /* 0: the peer is in a pid namespace we cannot see */
        return -1;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)cred->pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    bool uid_ok = false, gid_ok = false, has;
    int member = -1;
    uint32_t ids[4];
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "Uid:", 4) == 0)
            uid_ok = status_ids(line + 4, ids, 4, 0, &has) == 4 && ids[1] == cred->uid;
        else if (strncmp(line, "Gid:", 4) == 0)
            gid_ok = status_ids(line + 4, ids, 4, 0, &has) == 4 && ids[1] == cred->gid;
        else if (strncmp(line, "Groups:", 7) == 0)
            member = status_ids(line + 7, NULL, 0, og, &has) < 0 ? -1 : has;
    }
    free(line);
    fclose(f);
    return uid_ok && gid_ok ? member : -1;
}

/* Whether og is among the supplementary groups the kernel recorded for the
 * peer at connect() (SO_PEERGROUPS): 1 or 0, -1 when it cannot say (before
 * Linux 4.13: ENOPROTOOPT). ERANGE says how much room the list needs. */
static int peergroups_has(int fd, gid_t og)
{
    gid_t small[64], *groups = small;
    socklen_t len = sizeof(small), room = len;
    int member = -1;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
            if (len % sizeof(gid_t) != 0 || len > room)
                break;
            member = 0;
            for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (groups[i] == og)
                    member = 1;
            break;
        }
        /* ERANGE: len is the size needed now (the peer's groups are fixed
         * at connect, so once is enough; the loop is bounded regardless). */
        if (errno != ERANGE || len <= room || (uint64_t)len > (uint64_t)NGROUPS_MAX * sizeof(gid_t))
            break;
        gid_t *grown = realloc(groups == small ? NULL : groups, len);
        if (!grown)
            break;
        groups = grown;
        room = len;
    }
    if (groups != small)
        free(groups);
    return member;
}

/* Whether the peer is in operator_group: its effective gid at connect(),
 * or one of its process's supplementary groups. Not known is not a member
 * (logged): the peer may then only read. */
static bool peer_is_operator(struct ctl *c, int fd, const struct ucred *cred)
{
    if (!c->have_operator)
        return false;
    if (cred->gid == c->operator_gid)
        return true;
    int member = c->no_peergroups ? -1 : peergroups_has(fd, c->operator_gid);
    if (member < 0)
        member = proc_groups_has(cred, c->operator_gid);
    if (member < 0)
        ctl_log_refusal(c, "cannot read the supplementary groups of uid %u (pid %ld): it is "
                        "not counted in operator_group", (unsigned)cred->uid, (long)cred->pid);
    return member > 0;
}

/* ---- replies ---- */

json_t *ctl_error(const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *r = json_object();
    json_object_set_new(r, "ok", json_false());
    json_object_set_new(r, "error", ctl_string(msg));
    json_object_set_new(r, "code", json_string(code));
    return r;
}

json_t *ctl_string(const char *text)
{
    json_t *j = json_string(text ? text : "");
    if (j)
        return j;
    /* Not UTF-8 (state code may log anything): keep ASCII, mark the rest. */
    char *copy = strdup(text);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static void conn_close(struct conn *k);

static int out_reserve(struct conn *k, size_t more)
{
    if (k->out_len + more <= k->out_cap)
        return 0;
    if (k->out_pos > 0) { /* slide what is unsent to the front first */
        memmove(k->out, k->out + k->out_pos, k->out_len - k->out_pos);
        k->out_len -= k->out_pos;
        k->out_pos = 0;
        if (k->out_len + more <= k->out_cap)
            return 0;
    }
    size_t cap = k->out_cap ? k->out_cap : 4096;
    while (cap < k->out_len + more)
        cap *= 2;
    char *grown = realloc(k->out, cap);
    if (!grown)
        return -1;
    k->out = grown;
    k->out_cap = cap;
    return 0;
}

/* Queue one frame; the write watcher sends it when the socket is writable. */
static void send_json(struct conn *k, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text) {
        k->close_after = true; /* out of memory: nothing sensible to say */
        ev_io_start(k->ctl->sup->loop, &k->wio);
        return;
    }
    size_t len = strlen(text);
    if (len > CTL_REPLY_MAX) {
        free(text);
        json_t *e = ctl_error("ETOOBIG", "the reply would be larger than %d bytes: ask for less",
                              CTL_REPLY_MAX);
        text = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        if (!text)
            return;
        len = strlen(text);
    }
    if (out_reserve(k, len + CTL_FRAME_HEADER) == 0) {
        unsigned char *p = (unsigned char *)k->out + k->out_len;
        ctl_frame_put_len(p, (uint32_t)len);
        memcpy(p + CTL_FRAME_HEADER, text, len);
        k->out_len += len + CTL_FRAME_HEADER;
    } else {
        k->close_after = true;
    }
    free(text);
    ev_io_start(k->ctl->sup->loop, &k->wio);
}

static size_t out_pending(const struct conn *k) { return k->out_len - k->out_pos; }

/* ---- log following ---- */

static void log_tap(void *arg, node *n, const char *line)
{
    struct ctl *c = arg;
    const char *name = node_name(n);
    for (struct conn *k = c->conns; k; k = k->next) {
        if (!k->following || strcmp(k->peer.follow, name) != 0 || k->close_after)
            continue;
        if (out_pending(k) > CTL_FOLLOW_BACKLOG) {
            k->dropped++; /* it falls behind: drop, and say so once it catches up */
            continue;
        }
        json_t *m = json_object();
        json_object_set_new(m, "line", ctl_string(line));
        send_json(k, m);
    }
}

static void set_following(struct conn *k, bool on)
{
    struct ctl *c = k->ctl;
    if (k->following == on)
        return;
    k->following = on;
    c->n_followers += on ? 1 : -1;
    c->sup->log_tap = c->n_followers ? log_tap : NULL;
    c->sup->log_tap_arg = c;
}

static void followers_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    struct ctl *c = w->data;
    for (struct conn *k = c->conns; k; k = k->next) {
        if (!k->following || sup_node_find(c->sup, k->peer.follow))
            continue;
        json_t *m = json_object();
        char why[160];
        snprintf(why, sizeof(why), "node %s is not running any more (stopped, destroyed or "
                 "removed from the configuration)", k->peer.follow);
        json_object_set_new(m, "end", ctl_string(why));
        set_following(k, false);
        send_json(k, m);
        k->close_after = true; /* once the frame is written */
    }
}

void ctl_node_removed(struct ctl *c)
{
    /* Not at once: a restart removes the node and adds it again. */
    if (c && c->n_followers && !ev_is_active(&c->followers)) {
        ev_timer_set(&c->followers, 0.0, 0.0);
        ev_timer_start(c->sup->loop, &c->followers);
    }
}

/* ---- watching: change frames (ctl.h, `watch`) ----
 *
 * sup_changed (a step that changed a node, or a lifecycle change) only
 * sets a flag and arms the timer: a busy daemon changes thousands of times
 * a second. The timer decides, per watcher, whether it has news: any change
 * for one that watches every node; for one that names nodes, a lifecycle
 * change or a new fingerprint of those nodes (each one's generation and
 * quarantine, or its absence): O(names) hash lookups, at most
 * CTL_WATCH_RATE times a second. */

static uint64_t watch_fingerprint(struct ctl *c, json_t *names)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a over the values */
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x) {
        sup_node *sn = sup_node_find(c->sup, json_string_value(x));
        uint64_t v = sn ? (node_generation(sn->node) << 1 | sn->quarantined) + 1 : 0;
        h = (h ^ v) * 1099511628211ull;
    }
    return h;
}

static void watch_arm(struct ctl *c)
{
    if (ev_is_active(&c->watch_timer))
        return;
    double wait = c->watch_last + 1.0 / CTL_WATCH_RATE - ev_now(c->sup->loop);
    ev_timer_set(&c->watch_timer, wait > 0 ? wait : 0, 0.0);
    ev_timer_start(c->sup->loop, &c->watch_timer);
}

static void watch_tap(void *arg, bool lifecycle)
{
    struct ctl *c = arg;
    c->changed = true;
    c->life_epoch += lifecycle;
    watch_arm(c);
}

static void watch_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct ctl *c = w->data;
    c->watch_last = ev_now(loop);
    bool owed = false;
    for (struct conn *k = c->conns; k; k = k->next) {
        if (!k->watching || k->close_after)
            continue;
        json_t *names = k->peer.watch_nodes;
        uint64_t print = names ? watch_fingerprint(c, names) : 0;
        bool news = k->watch_owed || (names ? print != k->watch_print ||
                                                  c->life_epoch != k->watch_life
                                            : c->changed);
        if (!news)
            continue;
        k->watch_print = print;
        k->watch_life = c->life_epoch;
        if (out_pending(k) > CTL_WATCH_BACKLOG) { /* it does not read: one frame owed */
            k->watch_owed = owed = true;
            continue;
        }
        k->watch_owed = false;
        send_json(k, json_pack("{s:b}", "changed", 1));
    }
    c->changed = false;
    if (owed) /* try again later; news meanwhile needs no second frame */
        watch_arm(c);
}

/* After a successful `watch` (again: a new baseline and, maybe, names). */
static void start_watching(struct conn *k)
{
    struct ctl *c = k->ctl;
    if (!k->watching) {
        k->watching = true;
        c->n_watchers++;
        c->sup->watch_tap = watch_tap;
        c->sup->watch_tap_arg = c;
    }
    k->watch_owed = false;
    k->watch_life = c->life_epoch;
    k->watch_print = k->peer.watch_nodes ? watch_fingerprint(c, k->peer.watch_nodes) : 0;
}

static void stop_watching(struct conn *k)
{
    struct ctl *c = k->ctl;
    json_decref(k->peer.watch_nodes);
    k->peer.watch_nodes = NULL;
    if (!k->watching)
        return;
    k->watching = false;
    if (--c->n_watchers == 0) {
        c->sup->watch_tap = NULL;
        ev_timer_stop(c->sup->loop, &c->watch_timer);
    }
}

/* ---- reading requests ---- */

static void update_reading(struct conn *k)
{
    struct ev_loop *loop = k->ctl->sup->loop;
    if (k->reading && out_pending(k) < CTL_PAUSE_OUTPUT)
        ev_io_start(loop, &k->rio);
    else
        ev_io_stop(loop, &k->rio);
}

/* Stop reading: reply err (if any), then close once it is written. */
static void fail_stream(struct conn *k, json_t *err)
{
    k->reading = false;
    k->close_after = true;
    update_reading(k);
    if (err)
        send_json(k, err);
    else if (!out_pending(k))
        conn_close(k);
    else
        ev_io_start(k->ctl->sup->loop, &k->wio);
}

static void reset_frame(struct conn *k)
{
    free(k->body);
    k->body = NULL;
    k->hdr_len = 0;
    k->body_len = k->body_got = 0;
}

static void handle_request(struct conn *k)
{
    sup *s = k->ctl->sup;
    k->last_done = ev_now(s->loop);
    json_error_t jerr;
    json_t *req = json_loadb(k->body, k->body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *reply;
    if (!req)
        reply = ctl_error("EPROTO", "request is not valid JSON: %s (at byte %d)", jerr.text,
                          jerr.position);
    else if (!json_is_object(req))
        reply = ctl_error("EPROTO", "request must be a JSON object");
    else
        reply = ctlcmd_run(s, &k->peer, req);
    json_decref(req);
    bool ok = json_is_true(json_object_get(reply, "ok"));
    bool follow = ok && k->peer.follow[0];
    send_json(k, reply);
    if (follow)
        set_following(k, true);
    if (ok && k->peer.watch)
        start_watching(k);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    struct conn *k = w->data;
    /* A bounded number of reads per wake-up, so one busy client cannot
     * hold the loop. */
    for (int round = 0; round < 16 && k->reading && out_pending(k) < CTL_PAUSE_OUTPUT; round++) {
        ssize_t r;
        if (k->hdr_len < 4)
            r = read(k->fd, k->hdr + k->hdr_len, 4 - k->hdr_len);
        else
            r = read(k->fd, k->body + k->body_got, k->body_len - k->body_got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(k);
            return;
        }
        if (r == 0) { /* the peer closed (at least its side) */
            bool mid_frame = k->hdr_len > 0;
            reset_frame(k);
            fail_stream(k, mid_frame ? ctl_error("EPROTO", "request cut short: the connection "
                                                 "closed inside a frame") : NULL);
            return;
        }
        if (k->hdr_len < 4) {
            k->hdr_len += (unsigned)r;
            if (k->hdr_len < CTL_FRAME_HEADER)
                continue;
            uint32_t len = ctl_frame_len(k->hdr);
            if (len > CTL_REQUEST_MAX) {
                reset_frame(k);
                fail_stream(k, ctl_error("EPROTO", "request of %u bytes: at most %d", len,
                                         CTL_REQUEST_MAX));
                return;
            }
            if (len == 0) { /* complete, if useless: answered like any other */
                k->last_done = ev_now(loop);
                reset_frame(k);
                send_json(k, ctl_error("EPROTO", "empty request"));
                continue;
            }
            if (!(k->body = malloc(len))) {
                conn_close(k);
                return;
            }
            k->body_len = len;
            continue;
        }
        k->body_got += (uint32_t)r;
        if (k->body_got == k->body_len) {
            handle_request(k);
            reset_frame(k);
        }
    }
    update_reading(k);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct conn *k = w->data;
    while (out_pending(k)) {
        ssize_t r = write(k->fd, k->out + k->out_pos, out_pending(k));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_close(k); /* the peer went away */
            return;
        }
        k->out_pos += (size_t)r;
        k->last_done = ev_now(loop); /* a reply on its way is not idleness */
    }
    k->out_len = k->out_pos = 0;
    if (k->out_cap > 64 * 1024) { /* a big reply went out: give the memory back */
        free(k->out);
        k->out = NULL;
        k->out_cap = 0;
    }
    if (k->close_after) {
        conn_close(k);
        return;
    }
    if (k->dropped) {
        json_t *m = json_object();
        json_object_set_new(m, "dropped", json_integer((json_int_t)k->dropped));
        k->dropped = 0;
        send_json(k, m);
        return;
    }
    ev_io_stop(loop, &k->wio);
    update_reading(k);
}

/* ---- connections ---- */

static void conn_close(struct conn *k)
{
    struct ctl *c = k->ctl;
    set_following(k, false);
    stop_watching(k);
    ev_io_stop(c->sup->loop, &k->rio);
    ev_io_stop(c->sup->loop, &k->wio);
    close(k->fd);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    c->n_conns--;
    free(k->body);
    free(k->out);
    free(k);
}

/* No slot for this peer: one error frame (best effort: a fresh socket has
 * room in its buffer; the client may have written its request already, or
 * may find the connection closed when it writes, and then reads this),
 * then close. */
static void refuse(struct ctl *c, int fd, const struct ucred *cred, const char *msg)
{
    json_t *e = ctl_error("EBUSY", "%s", msg);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    size_t len = text ? strlen(text) : 0;
    unsigned char frame[4 + 1024];
    if (text && len <= sizeof(frame) - 4) {
        frame[0] = frame[1] = 0;
        frame[2] = (unsigned char)(len >> 8);
        frame[3] = (unsigned char)len;
        memcpy(frame + 4, text, len);
        ssize_t r = write(fd, frame, len + 4);
        (void)r;
    }
    free(text);
    close(fd);
    ctl_log_refusal(c, "refused a connection from uid %u (pid %ld): %s", (unsigned)cred->uid,
                    (long)cred->pid, msg);
}

/* Why a connection from this peer cannot have a slot, into why; false if
 * it can. */
static bool no_slot(const struct ctl *c, const struct ucred *cred, bool privileged, char *why,
                    size_t len)
{
    if (c->n_conns >= CTL_MAX_CONNECTIONS) {
        snprintf(why, len, "all %d control connections are in use: try again later",
                 CTL_MAX_CONNECTIONS);
        return true;
    }
    if (privileged)
        return false;
    const char *who = c->have_operator ? "root and the operator group have" : "root has";
    if (CTL_MAX_CONNECTIONS - c->n_conns <= CTL_RESERVED_CONNECTIONS) {
        snprintf(why, len, "all control connections for unprivileged users are in use (%d); "
                 "%s %d reserved", CTL_MAX_CONNECTIONS - CTL_RESERVED_CONNECTIONS, who,
                 CTL_RESERVED_CONNECTIONS);
        return true;
    }
    /* All of the uid's connections count, also those of its sessions that
     * have the operator group: the limit is the user's. */
    unsigned mine = 0;
    for (const struct conn *k = c->conns; k; k = k->next)
        mine += k->peer.uid == cred->uid;
    if (mine >= CTL_MAX_CONNECTIONS_PER_UID) {
        snprintf(why, len, "uid %u already has %u control connections, the most for a user "
                 "other than root%s", (unsigned)cred->uid, mine,
                 c->have_operator ? " and the operator group" : "");
        return true;
    }
    return false;
}

/* accept() failed with err (not EAGAIN, EINTR or ECONNABORTED): stop
 * accepting for CTL_ACCEPT_PAUSE, log once per episode. */
static void pause_accepting(struct ctl *c, int err)
{
    struct ev_loop *loop = c->sup->loop;
    ev_io_stop(loop, &c->accept_w);
    /* A one-shot timer that has fired is left with (about) no time to go:
     * started again as it is, it would fire at once. Set it first. */
    ev_timer_set(&c->accept_retry, CTL_ACCEPT_PAUSE, 0.0);
    ev_timer_start(loop, &c->accept_retry);
    if (!c->accept_failing) {
        c->accept_failing = true;
        sup_log(SUP_ERR, "control: accept: %s: not accepting new control connections for now "
                "(retrying every %.0f s; the %u connected ones are still served)", strerror(err),
                CTL_ACCEPT_PAUSE, c->n_conns);
    }
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct ctl *c = w->data;
    ev_io_start(loop, &c->accept_w); /* accept_cb runs if anyone is waiting */
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct ctl *c = w->data;
    /* Bounded: at most the listen backlog is waiting, plus what arrives meanwhile. */
    for (unsigned n = 0; n < 4 * CTL_MAX_CONNECTIONS; n++) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                pause_accepting(c, errno);
            return;
        }
        if (c->accept_failing) {
            c->accept_failing = false;
            sup_log(SUP_NOTICE, "control: accepting connections again");
        }
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            close(fd);
            continue;
        }
        bool member = peer_is_operator(c, fd, &cred);
        char why[256];
        if (no_slot(c, &cred, cred.uid == 0 || member, why, sizeof(why))) {
            refuse(c, fd, &cred, why);
            continue;
        }
        struct conn *k = calloc(1, sizeof(*k));
        if (!k) {
            refuse(c, fd, &cred, "out of memory: try again later");
            continue;
        }
        k->ctl = c;
        k->fd = fd;
        k->peer = (struct ctl_peer){.ctl = c, .uid = cred.uid, .gid = cred.gid, .pid = cred.pid,
                                    .operator_member = member};
        k->reading = true;
        k->last_done = ev_now(loop);
        ev_io_init(&k->rio, read_cb, fd, EV_READ);
        ev_io_init(&k->wio, write_cb, fd, EV_WRITE);
        k->rio.data = k->wio.data = k;
        k->next = c->conns;
        if (c->conns)
            c->conns->prev = k;
        c->conns = k;
        c->n_conns++;
        ev_io_start(loop, &k->rio);
    }
}

/* ---- the socket ---- */

static int resolve_path(const sup *s, char *out, size_t len, char *err, size_t errlen)
{
    char path[4096];
    const char *rt = getenv("RUNTIME_DIRECTORY");
    if (s->cfg.control_socket)
        snprintf(path, sizeof(path), "%s", s->cfg.control_socket);
    else if (rt && *rt) /* systemd: ':'-separated when there are several */
        snprintf(path, sizeof(path), "%.*s/guardiand.sock", (int)strcspn(rt, ":"), rt);
    else
        snprintf(path, sizeof(path), "%s", CTL_DEFAULT_SOCKET);
    if (strlen(path) >= len) {
        snprintf(err, errlen, "control socket %s: path longer than %zu characters", path,
                 len - 1);
        return -1;
    }
    snprintf(out, len, "%s", path);
    return 0;
}

/* mkdir -p of the socket's directory. */
static int make_parent(const char *path, char *err, size_t errlen)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = 0;
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "control socket: cannot create %s: %s", dir,
                         strerror(errno));
                return -1;
            }
            *p = saved;
            if (!saved)
                break;
        }
    }
    return 0;
}

/* A socket file left by a daemon that died is removed; one that answers
 * belongs to a running daemon, and we must not take it over. */
static int clear_stale(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "control socket %s: %s", path,
                                               strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "control socket %s exists and is not a socket: not touching it",
                 path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN) {
        snprintf(err, errlen, "another guardiand answers on the control socket %s: refusing to "
                 "start a second one (stop it, or give this one its own control_socket)", path);
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "control socket %s: cannot remove the stale socket: %s", path,
                 strerror(errno));
        return -1;
    }
    sup_log(SUP_INFO, "control: removed the stale socket %s", path);
    return 0;
}

static int group_id(const char *key, const char *name, gid_t *gid, char *err, size_t errlen)
{
    /* At start, before the loop runs: an NSS lookup may take its time here. */
    struct group gr, *res = NULL;
    char buf[16384];
    int e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
    if (!res) {
        snprintf(err, errlen, "%s '%s': %s", key, name, e ? strerror(e) : "no such group");
        return -1;
    }
    *gid = gr.gr_gid;
    return 0;
}

struct ctl *ctl_new(sup *s, char *err, size_t errlen)
{
    struct ctl *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->sup = s;
    c->fd = -1;
    gid_t sock_gid = (gid_t)-1;
    if (resolve_path(s, c->path, sizeof(c->path), err, errlen) < 0 ||
        (s->cfg.control_group &&
         group_id("control_group", s->cfg.control_group, &sock_gid, err, errlen) < 0) ||
        (s->cfg.operator_group &&
         group_id("operator_group", s->cfg.operator_group, &c->operator_gid, err, errlen) < 0) ||
        make_parent(c->path, err, errlen) < 0 || clear_stale(c->path, err, errlen) < 0)
        goto fail;
    c->have_operator = s->cfg.operator_group != NULL;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        goto fail;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
    /* Created owner-only, then opened up to control_mode once its group is
     * set: nobody outside the rule gets in between. */
    mode_t old = umask(0177);
    int r = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    struct stat st;
    if (r < 0 || stat(c->path, &st) < 0) {
        snprintf(err, errlen, "control socket %s: %s", c->path, strerror(errno));
        goto fail;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    if ((sock_gid != (gid_t)-1 && chown(c->path, (uid_t)-1, sock_gid) < 0) ||
        chmod(c->path, s->cfg.control_mode) < 0 || listen(c->fd, CTL_MAX_CONNECTIONS) < 0) {
        snprintf(err, errlen, "control socket %s: %s", c->path, strerror(errno));
        goto fail;
    }
    ev_io_init(&c->accept_w, accept_cb, c->fd, EV_READ);
    c->accept_w.data = c;
    ev_timer_init(&c->accept_retry, accept_retry_cb, CTL_ACCEPT_PAUSE, 0.0);
    c->accept_retry.data = c;
    ev_timer_init(&c->followers, followers_cb, 0.0, 0.0);
    c->followers.data = c;
    ev_timer_init(&c->log_summary, log_summary_cb, 0.0, 0.0);
    c->log_summary.data = c;
    c->no_peergroups = getenv("GUARDIAND_TEST_NO_PEERGROUPS") != NULL;
    ev_timer_init(&c->watch_timer, watch_flush, 0.0, 0.0);
    c->watch_timer.data = c;
    return c;
fail:
    ctl_free(c);
    return NULL;
}

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct ctl *c = w->data;
    double now = ev_now(loop), limit = c->sup->cfg.control_idle_timeout;
    struct conn *k = c->conns;
    while (k) {
        struct conn *next = k->next;
        /* A follower or a watcher is never idle (it waits for lines or
         * changes); anyone else must have completed a request, or read
         * some reply, within the limit. */
        if (!k->following && !k->watching && now - k->last_done > limit)
            conn_close(k);
        k = next;
    }
}

void ctl_start(struct ctl *c)
{
    ev_io_start(c->sup->loop, &c->accept_w);
    double period = c->sup->cfg.control_idle_timeout / 4;
    ev_timer_init(&c->sweep, sweep_cb, period, period);
    c->sweep.data = c;
    ev_timer_start(c->sup->loop, &c->sweep);
    sup_log(SUP_INFO, "control socket %s (mode %04o%s%s%s%s)", c->path,
            c->sup->cfg.control_mode, c->sup->cfg.control_group ? ", group " : "",
            c->sup->cfg.control_group ? c->sup->cfg.control_group : "",
            c->have_operator ? ", operators " : "",
            c->have_operator ? c->sup->cfg.operator_group : "");
}

void ctl_free(struct ctl *c)
{
    if (!c)
        return;
    ev_timer_stop(c->sup->loop, &c->sweep);
    ev_timer_stop(c->sup->loop, &c->accept_retry);
    ev_timer_stop(c->sup->loop, &c->followers);
    ev_timer_stop(c->sup->loop, &c->log_summary);
    log_suppressed(c);
    while (c->conns)
        conn_close(c->conns);
    ev_timer_stop(c->sup->loop, &c->watch_timer);
    c->sup->log_tap = NULL;
    c->sup->watch_tap = NULL;
    if (c->fd >= 0) {
        ev_io_stop(c->sup->loop, &c->accept_w);
        close(c->fd);
        /* Only the file we made: never one another process put there since. */
        struct stat st;
        if (c->ino && stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
            unlink(c->path);
    }
    free(c);
}
