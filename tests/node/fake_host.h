/* fake_host.h — a node_host for driving nodes cycle by cycle in tests.
 *
 * A fake clock (now and wall advance together, 1/16 s a step), a log that
 * keeps every line, a table of plant channels (a channel that is not in the
 * table, or is marked disconnected, reads GRD_ENOTCONN), a record of writes,
 * and a table of nodes for host->find. Criterion runs each test in its own
 * process, so the one static `fake` starts clean in every test.
 */
#ifndef TESTS_NODE_FAKE_HOST_H
#define TESTS_NODE_FAKE_HOST_H

#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node.h"

#define FAKE_LINES 8192
#define FAKE_CHANS 256
#define FAKE_PUTS 4096
#define FAKE_NODES 16
#define FAKE_T0 1000.0
#define FAKE_WALL0 1700000000.0 /* 2023-11-14_22:13:20Z */
#define CYCLE 0.0625

struct fake_chan {
    char name[256];
    double value;
    char str[64];
    bool disconnected;
    char refuse[64]; /* a put is refused with this reason ("" accepts) */
};

struct fake_put {
    char name[256];
    double value;
    char str[64];
    bool is_str;
};

static struct fake {
    double now, wall;
    char *lines[FAKE_LINES];
    unsigned n_lines;
    struct fake_chan chans[FAKE_CHANS];
    unsigned n_chans;
    struct fake_put puts[FAKE_PUTS];
    unsigned n_puts;
    node *nodes[FAKE_NODES];
    unsigned n_nodes;
    unsigned gets;
} fake = {.now = FAKE_T0, .wall = FAKE_WALL0};

static inline double fake_now(void *arg) { return ((struct fake *)arg)->now; }
static inline double fake_wall(void *arg) { return ((struct fake *)arg)->wall; }

static inline void fake_log(void *arg, node *n, double wall, const char *line)
{
    struct fake *f = arg;
    (void)n, (void)wall;
    if (f->n_lines < FAKE_LINES)
        f->lines[f->n_lines++] = strdup(line);
}

static inline struct fake_chan *fake_chan(const char *name)
{
    for (unsigned i = 0; i < fake.n_chans; i++)
        if (strcmp(fake.chans[i].name, name) == 0)
            return &fake.chans[i];
    return NULL;
}

/* Set a plant channel (connected). */
static inline void chan_set(const char *name, double value)
{
    struct fake_chan *c = fake_chan(name);
    if (!c) {
        cr_assert(fake.n_chans < FAKE_CHANS);
        c = &fake.chans[fake.n_chans++];
        snprintf(c->name, sizeof(c->name), "%s", name);
    }
    c->value = value;
    snprintf(c->str, sizeof(c->str), "%g", value);
    c->disconnected = false;
}

/* Set a plant channel to a string (connected); its number is the string's. */
static inline void chan_set_str(const char *name, const char *s)
{
    chan_set(name, strtod(s, NULL));
    snprintf(fake_chan(name)->str, sizeof(fake_chan(name)->str), "%s", s);
}

static inline void chan_disconnect(const char *name)
{
    struct fake_chan *c = fake_chan(name);
    if (c)
        c->disconnected = true;
}

static inline int fake_get(void *arg, node *n, const char *chan, void *handle, double *num,
                           char *str, size_t len)
{
    (void)arg, (void)n, (void)handle;
    fake.gets++;
    struct fake_chan *c = fake_chan(chan);
    if (!c || c->disconnected)
        return GRD_ENOTCONN;
    if (num)
        *num = c->value;
    if (str && len)
        snprintf(str, len, "%s", c->str);
    return GRD_OK;
}

static inline int fake_put(void *arg, node *n, const char *chan, void *handle, double num,
                           const char *str, char *why, size_t whylen)
{
    (void)arg, (void)n, (void)handle;
    struct fake_chan *r = fake_chan(chan);
    if (r && r->refuse[0]) {
        snprintf(why, whylen, "%s", r->refuse);
        return GRD_EBADCHAN;
    }
    if (fake.n_puts < FAKE_PUTS) {
        struct fake_put *p = &fake.puts[fake.n_puts++];
        snprintf(p->name, sizeof(p->name), "%s", chan);
        p->value = num;
        p->is_str = str != NULL;
        snprintf(p->str, sizeof(p->str), "%s", str ? str : "");
    }
    struct fake_chan *c = fake_chan(chan);
    if (c && !c->disconnected) {
        c->value = num;
        snprintf(c->str, sizeof(c->str), "%s", str ? str : "");
    }
    return GRD_OK;
}

/* How many writes a channel got (of `str`, when non-NULL). */
static inline unsigned put_count(const char *chan, const char *str)
{
    unsigned k = 0;
    for (unsigned i = 0; i < fake.n_puts; i++)
        k += strcmp(fake.puts[i].name, chan) == 0 && (!str || strcmp(fake.puts[i].str, str) == 0);
    return k;
}

/* The last value written to a channel; NAN if never written. */
static inline double put_value(const char *chan)
{
    for (unsigned i = fake.n_puts; i-- > 0;)
        if (strcmp(fake.puts[i].name, chan) == 0)
            return fake.puts[i].value;
    return __builtin_nan("");
}

static inline node *fake_find(void *arg, const char *name)
{
    (void)arg;
    for (unsigned i = 0; i < fake.n_nodes; i++)
        if (strcmp(node_name(fake.nodes[i]), name) == 0)
            return fake.nodes[i];
    return NULL;
}

static inline node_host fake_host(void)
{
    return (node_host){.arg = &fake, .now = fake_now, .wall = fake_wall, .log = fake_log,
                       .get = fake_get, .put = fake_put, .find = fake_find};
}

static inline void fake_free(void)
{
    for (unsigned i = 0; i < fake.n_lines; i++)
        free(fake.lines[i]);
    fake.n_lines = 0;
}

static inline void advance(double seconds)
{
    fake.now += seconds;
    fake.wall += seconds;
}

/* One cycle: the clock moves 1/16 s, then the node steps. */
static inline void step(node *n)
{
    advance(CYCLE);
    node_step(n);
}

static inline void steps(node *n, unsigned k)
{
    while (k--)
        step(n);
}

/* The message of a log line: after the stamp and the node name. */
static inline const char *msg_of(const char *line)
{
    const char *p = strchr(line, ' ');
    p = p ? strchr(p + 1, ' ') : NULL;
    return p ? p + 1 : line;
}

/* Index of the first line at or after `from` whose message is exactly m. */
static inline int log_find(unsigned from, const char *m)
{
    for (unsigned i = from; i < fake.n_lines; i++)
        if (strcmp(msg_of(fake.lines[i]), m) == 0)
            return (int)i;
    return -1;
}

/* Index of the first line at or after `from` whose message contains s. */
static inline int log_find_sub(unsigned from, const char *s)
{
    for (unsigned i = from; i < fake.n_lines; i++)
        if (strstr(msg_of(fake.lines[i]), s))
            return (int)i;
    return -1;
}

static inline unsigned log_count(const char *m)
{
    unsigned c = 0;
    for (unsigned i = 0; i < fake.n_lines; i++)
        c += strcmp(msg_of(fake.lines[i]), m) == 0;
    return c;
}

static inline void log_dump(void)
{
    for (unsigned i = 0; i < fake.n_lines; i++)
        fprintf(stderr, "%s\n", fake.lines[i]);
}

/* Assert that the messages appear in this order, from line `from` on. */
#define assert_log_seq(from, ...)                                                                  \
    do {                                                                                           \
        const char *seq_[] = {__VA_ARGS__};                                                        \
        int at_ = (int)(from);                                                                     \
        for (size_t i_ = 0; i_ < sizeof(seq_) / sizeof(seq_[0]); i_++) {                            \
            int f_ = log_find((unsigned)at_, seq_[i_]);                                            \
            if (f_ < 0)                                                                            \
                log_dump();                                                                        \
            cr_assert(f_ >= 0, "log line '%s' missing (after line %d)", seq_[i_], at_);            \
            at_ = f_ + 1;                                                                          \
        }                                                                                          \
    } while (0)

/* ---- subordinate nodes, as their node channels show them (managers) ---- */

static const char *fake_ifo = "X1"; /* the IFO of the node channels below */

/* "<IFO>:GRD-<sub>_<suffix>" (eight names may be in use at once). */
static inline const char *ch(const char *sub, const char *suffix)
{
    static char name[8][128];
    static unsigned k;
    k = (k + 1) % 8;
    node_channel_name(name[k], sizeof(name[k]), fake_ifo, sub, suffix);
    return name[k];
}

static inline void sub_set(const char *sub, const char *suffix, const char *value)
{
    chan_set_str(ch(sub, suffix), value);
}

static inline const char *sub_get(const char *sub, const char *suffix)
{
    struct fake_chan *c = fake_chan(ch(sub, suffix));
    cr_assert(c, "no channel %s", ch(sub, suffix));
    return c->str;
}

/* A subordinate at rest in `state`: AUTO, no manager, OK. */
static inline void sub_new(const char *sub, const char *state)
{
    const char *values[][2] = {
        {"STATE", state}, {"REQUEST", state}, {"TARGET", state}, {"STATUS", "DONE"},
        {"MODE", "AUTO"}, {"MANAGER", ""}, {"OK", "True"}, {"ERROR", "False"},
        {"CONNECT", "OK"}, {"NOTIFICATION", "False"}, {"USERMSG", ""}, {"STALLED", "False"},
        {"CHANGED_BY", ""}, {"SPM_CHANGED", "0"},
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        sub_set(sub, values[i][0], values[i][1]);
}

/* The subordinate arrives where it was asked to go. */
static inline void sub_arrive(const char *sub)
{
    char req[64];
    snprintf(req, sizeof(req), "%s", sub_get(sub, "REQUEST"));
    sub_set(sub, "STATE", req);
    sub_set(sub, "TARGET", req);
    sub_set(sub, "STATUS", "DONE");
}

/* Another manager holds the subordinate: claims are refused as its node
 * would refuse them, until sub_freed. */
static inline void sub_held_by(const char *sub, const char *other)
{
    sub_set(sub, "MANAGER", other);
    snprintf(fake_chan(ch(sub, "MANAGER"))->refuse, 64, "Channel write request failed");
}

static inline void sub_freed(const char *sub)
{
    fake_chan(ch(sub, "MANAGER"))->refuse[0] = '\0';
    sub_set(sub, "MANAGER", "");
}

/* The folder this test binary is in (build/tests/node or build/asan/...). */
static inline const char *exe_dir(void)
{
    static char dir[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    cr_assert(len > 0);
    exe[len] = '\0';
    snprintf(dir, sizeof(dir), "%s", dirname(exe));
    return dir;
}

#endif
