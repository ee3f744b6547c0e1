/* log.c — a node's log lines: formatting, the host's sink, the ring.
 *
 * Every line is `YYYY-MM-DD_HH:MM:SS.ffffffZ NODE message` (UTC, from
 * host->wall), one line per message: control characters in messages become
 * '?' so that state code cannot forge or split lines. A line goes to
 * host->log and into the node's ring of its last NODE_LOG_RING lines (for
 * `guardctl log`). Ring slots are heap strings reused in place, so a node
 * that logs little costs little; if memory runs out the line still reaches
 * the host, only the ring misses it.
 */
#include "node/node_priv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const ctx_names[] = {
    [CTX_NONE] = "", [CTX_MAIN] = "main", [CTX_RUN] = "run",
    [CTX_CHECK] = "check", [CTX_INIT] = "init", [CTX_FINI] = "fini",
};

const char *node_ctx_name(enum node_ctx ctx) { return ctx_names[ctx]; }

struct node_exec node_executing;

void node_exec_enter(const node *n, enum node_ctx ctx)
{
    node_executing.node = n->name;
    node_executing.state = node_state_name_at(n, n->cur);
    node_executing.phase = ctx_names[ctx];
}

void node_exec_leave(void)
{
    node_executing.phase = NULL;
    node_executing.state = NULL;
    node_executing.node = NULL;
}

void node_format(char *buf, size_t len, const char *fmt, va_list ap)
{
    if (!len)
        return;
    if (!fmt) {
        buf[0] = '\0';
        return;
    }
    vsnprintf(buf, len, fmt, ap);
    for (char *p = buf; *p; p++) {
        if (*p == '\t')
            *p = ' ';
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
}

void node_code_prefix(const node *n, char *buf, size_t len)
{
    const char *state = node_state_name_at(n, n->cur);
    if (n->ctx == CTX_NONE)
        snprintf(buf, len, "[%s] ", state);
    else
        snprintf(buf, len, "[%s.%s] ", state, ctx_names[n->ctx]);
}

/* "2018-08-05_22:18:01.411666Z" */
static void stamp(double wall, char *buf, size_t len)
{
    if (!(wall >= 0) || wall > 253402300799.0) /* NaN, before 1970, after 9999 */
        wall = 0;
    time_t sec = (time_t)floor(wall);
    long usec = (long)((wall - (double)sec) * 1e6);
    if (usec > 999999)
        usec = 999999;
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02d_%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
}

static void keep(node *n, const char *line, size_t len)
{
    unsigned slot = n->ring_next;
    if (n->ring_cap[slot] < len + 1) {
        size_t cap = len + 1 < 128 ? 128 : len + 1;
        char *p = realloc(n->ring[slot], cap);
        if (!p)
            return;
        n->ring[slot] = p;
        n->ring_cap[slot] = cap;
    }
    memcpy(n->ring[slot], line, len + 1);
    n->ring_next = (slot + 1) % NODE_LOG_RING;
    if (n->ring_count < NODE_LOG_RING)
        n->ring_count++;
}

static void emit(node *n, const char *msg)
{
    char ts[96], line[NODE_MSG_MAX + 192];
    double wall = n->host.wall(n->host.arg);
    stamp(wall, ts, sizeof(ts));
    int len = snprintf(line, sizeof(line), "%s %s %s", ts, n->name, msg);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(line))
        len = (int)sizeof(line) - 1;
    keep(n, line, (size_t)len);
    if (n->host.log)
        n->host.log(n->host.arg, n, wall, line);
}

void node_vlog(node *n, const char *prefix, const char *fmt, va_list ap)
{
    char msg[NODE_MSG_MAX];
    size_t plen = strlen(prefix);
    if (plen >= sizeof(msg))
        plen = sizeof(msg) - 1;
    memcpy(msg, prefix, plen);
    node_format(msg + plen, sizeof(msg) - plen, fmt, ap);
    emit(n, msg);
}

void node_log(node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    node_vlog(n, "", fmt, ap);
    va_end(ap);
}

unsigned node_log_lines(const node *n, const char **out, unsigned max)
{
    if (!n || !out)
        return 0;
    unsigned count = n->ring_count < max ? n->ring_count : max;
    unsigned first = (n->ring_next + NODE_LOG_RING - count) % NODE_LOG_RING;
    for (unsigned i = 0; i < count; i++)
        out[i] = n->ring[(first + i) % NODE_LOG_RING];
    return count;
}

void node_log_adopt(node *n, const char *const *lines, unsigned count)
{
    if (!n || !lines || !count)
        return;
    /* The node's own lines so far (node_new may have logged) go after the
     * adopted ones: take them out, put the old in, then them again. */
    char *own[NODE_LOG_RING];
    size_t own_len[NODE_LOG_RING];
    unsigned n_own = 0;
    const char *cur[NODE_LOG_RING];
    unsigned nc = node_log_lines(n, cur, NODE_LOG_RING);
    for (unsigned i = 0; i < nc; i++)
        if ((own[n_own] = strdup(cur[i])))
            own_len[n_own] = strlen(own[n_own]), n_own++;
    n->ring_count = n->ring_next = 0;
    unsigned room = NODE_LOG_RING - (n_own < NODE_LOG_RING ? n_own : NODE_LOG_RING);
    unsigned skip = count > room ? count - room : 0;
    for (unsigned i = skip; i < count; i++)
        if (lines[i])
            keep(n, lines[i], strlen(lines[i]));
    for (unsigned i = 0; i < n_own; i++) {
        keep(n, own[i], own_len[i]);
        free(own[i]);
    }
}

void node_log_free(node *n)
{
    for (unsigned i = 0; i < NODE_LOG_RING; i++) {
        free(n->ring[i]);
        n->ring[i] = NULL;
        n->ring_cap[i] = 0;
    }
    n->ring_count = n->ring_next = 0;
}
