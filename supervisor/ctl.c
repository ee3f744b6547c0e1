/* ctl.c — the control socket: listening, framing, connections, credentials,
 * and the `log -f` streams (the protocol is in ctl.h; the commands in
 * ctlcmd.c).
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
 * When accept() fails for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM; or any error we do not expect), the listening socket
 * stays readable, so retrying at once would spin: accepting pauses for
 * CTL_ACCEPT_PAUSE (the watcher stopped, a one-shot timer re-armed each
 * time), connected clients are served as before, new ones wait in the
 * listen backlog, and one line is logged per episode (and one when
 * accepting works again).
 */
#include "supervisor/ctl.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_PAUSE_OUTPUT (256 * 1024)
/* A connection that has sent nothing for control_idle_timeout, follows no
 * log and has nothing left to write is closed: silent clients cannot hold
 * every slot. The sweep runs a few times per timeout. */
#define CTL_FOLLOW_BACKLOG (256 * 1024)
#define CTL_ACCEPT_PAUSE 1.0   /* seconds between accept() attempts after EMFILE & co */
#define CTL_WATCH_BACKLOG (4 * 1024) /* a watcher with more unsent is owed its frame */

struct conn {
    struct ctl *ctl;
    int fd;
    ev_io rio, wio;
    struct ctl_peer peer;
    unsigned char hdr[4];
    unsigned hdr_len;
    char *body;                 /* NULL until a length has arrived */
    uint32_t body_len, body_got;
    char *out;                  /* frames waiting to be written */
    size_t out_len, out_pos, out_cap;
    bool reading;               /* rio is meant to run (not paused, not at EOF) */
    bool close_after;           /* close once out is written */
    bool following;             /* peer.follow names the node */
    uint64_t dropped;           /* followed lines not sent since the last report */
    bool watching;              /* peer.watch: it gets change frames (watch_flush) */
    bool watch_owed;            /* a change it was not sent yet (it fell behind) */
    uint64_t watch_print;       /* what its nodes showed when it was last told */
    uint64_t watch_life;        /* ctl.life_epoch when it was last told */
    double last_active;         /* loop time of its last input */
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
    struct conn *conns;
    unsigned n_conns, n_followers;
    /* watchers: sup_changed sets changed (and counts lifecycle changes);
     * watch_timer sends the frames, at most CTL_WATCH_RATE a second */
    unsigned n_watchers;
    bool changed;
    uint64_t life_epoch;
    ev_timer watch_timer;
    double watch_last;          /* loop time of the last flush */
};

const char *ctl_path(const struct ctl *c) { return c->path; }

bool ctl_operator_gid(const struct ctl *c, gid_t *gid)
{
    *gid = c->operator_gid;
    return c->have_operator;
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
    if (out_reserve(k, len + 4) == 0) {
        unsigned char *p = (unsigned char *)k->out + k->out_len;
        p[0] = (unsigned char)(len >> 24);
        p[1] = (unsigned char)(len >> 16);
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        memcpy(p + 4, text, len);
        k->out_len += len + 4;
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
    k->last_active = ev_now(loop);
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
            if (k->hdr_len < 4)
                continue;
            uint32_t len = (uint32_t)k->hdr[0] << 24 | (uint32_t)k->hdr[1] << 16 |
                           (uint32_t)k->hdr[2] << 8 | k->hdr[3];
            if (len > CTL_REQUEST_MAX) {
                reset_frame(k);
                fail_stream(k, ctl_error("EPROTO", "request of %u bytes: at most %d", len,
                                         CTL_REQUEST_MAX));
                return;
            }
            if (len == 0) {
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

/* Past the connection cap: say so (best effort, it is a fresh socket with
 * room in its buffer) and close. */
static void refuse(int fd)
{
    static const char msg[] = "{\"ok\":false,\"code\":\"EBUSY\",\"error\":\"too many control "
                              "connections: try again later\"}";
    unsigned char frame[4 + sizeof(msg)];
    size_t len = sizeof(msg) - 1;
    frame[0] = frame[1] = 0;
    frame[2] = (unsigned char)(len >> 8);
    frame[3] = (unsigned char)len;
    memcpy(frame + 4, msg, len);
    ssize_t r = write(fd, frame, len + 4);
    (void)r;
    close(fd);
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
        fprintf(stderr,
                "guardiand: control: accept: %s: not accepting new control connections for "
                "now (retrying every %.0f s; the %u connected ones are still served)\n",
                strerror(err), CTL_ACCEPT_PAUSE, c->n_conns);
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
            fprintf(stderr, "guardiand: control: accepting connections again\n");
        }
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            close(fd);
            continue;
        }
        struct conn *k = c->n_conns < CTL_MAX_CONNECTIONS ? calloc(1, sizeof(*k)) : NULL;
        if (!k) {
            refuse(fd);
            continue;
        }
        k->ctl = c;
        k->fd = fd;
        k->peer = (struct ctl_peer){.ctl = c, .uid = cred.uid, .gid = cred.gid, .pid = cred.pid,
                                    .operator_member = -1};
        k->reading = true;
        k->last_active = ev_now(loop);
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
    fprintf(stderr, "guardiand: control: removed the stale socket %s\n", path);
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
        if (!k->following && !k->watching && out_pending(k) == 0 &&
            now - k->last_active > limit)
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
    fprintf(stderr, "guardiand: control socket %s (mode %04o%s%s%s%s)\n", c->path,
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
