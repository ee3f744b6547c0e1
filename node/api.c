/* api.c — the grd_* functions state code calls (guardian.h), except plant
 * channels (chan.c) and timers (timer.c).
 *
 * State code is trusted to be C, not to be careful: every argument is
 * checked. A grd_node that is NULL or not a live node (freed, or garbage that
 * happens to be readable) is refused through its magic number; names are
 * read with a bound; text is formatted into fixed buffers and truncated.
 *
 * grd_jump and grd_error only record what state code asked for; engine.c
 * acts on it when the function returns.
 */
#include "node/node_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Record an error of the state code being run (the first one wins). */
static void code_error(node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void code_error(node *n, const char *fmt, ...)
{
    va_list ap;
    if (n->err_set)
        return;
    va_start(ap, fmt);
    node_format(n->err_msg, sizeof(n->err_msg), fmt, ap);
    va_end(ap);
    n->err_set = true;
}

/* A name from state code, safe to print: at most GRD_NAME_MAX + 3 chars. */
static void shown_name(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    for (; name[i] && i < GRD_NAME_MAX && i + 1 < len; i++)
        buf[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
    buf[i] = '\0';
    if (name[i] && i + 3 < len)
        strcat(buf, "...");
}

grd_ret grd_jump(grd_node *g, const char *state)
{
    node *n = node_live(g);
    if (!n)
        return GRD_ERROR;
    if (!n->in_code || (n->ctx != CTX_MAIN && n->ctx != CTX_RUN && n->ctx != CTX_CHECK)) {
        if (n->in_code)
            code_error(n, "grd_jump() outside main, run or check");
        return GRD_ERROR;
    }
    if (!state) {
        code_error(n, "jump to a NULL state name");
        return GRD_ERROR;
    }
    int pos = node_system_pos(n->sys, state);
    if (pos < 0) {
        char q[GRD_NAME_MAX + 4];
        shown_name(state, q, sizeof(q));
        code_error(n, "jump to unknown state '%s'", q);
        return GRD_ERROR;
    }
    n->jump_to = pos;
    return GRD_JUMP;
}

grd_ret grd_error(grd_node *g, const char *fmt, ...)
{
    node *n = node_live(g);
    if (!n)
        return GRD_ERROR;
    char msg[NODE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    node_format(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!fmt || !msg[0])
        snprintf(msg, sizeof(msg), "error");
    if (n->in_code)
        code_error(n, "%s", msg);
    else
        node_log(n, "ERROR outside state code: %s", msg); /* nothing to stop */
    return GRD_ERROR;
}

/* ---- the node ---- */

const char *grd_name(const grd_node *g)
{
    node *n = node_live(g);
    return n ? n->name : "";
}

const char *grd_ifo(const grd_node *g)
{
    node *n = node_live(g);
    return n ? n->ifo : "";
}

const char *grd_state_name(const grd_node *g)
{
    node *n = node_live(g);
    return n ? node_state_name_at(n, n->cur) : "";
}

const char *grd_request(const grd_node *g)
{
    node *n = node_live(g);
    return n ? node_state_name_at(n, n->req) : "";
}

const char *grd_arg(const grd_node *g, const char *key)
{
    node *n = node_live(g);
    if (!n || !key)
        return NULL;
    size_t klen = strnlen(key, NODE_ARG_MAX + 1);
    if (klen > NODE_ARG_MAX)
        return NULL;
    for (unsigned i = 0; i < n->n_args; i++)
        if (strcmp(n->args[i].key, key) == 0) {
            n->args[i].read = true;
            return n->args[i].value;
        }
    return NULL;
}

double grd_arg_double(const grd_node *g, const char *key, double fallback)
{
    const char *v = grd_arg(g, key);
    if (!v || !*v)
        return fallback;
    char *end;
    double d = strtod(v, &end);
    return *end == '\0' ? d : fallback;
}

void *grd_priv(grd_node *g)
{
    node *n = node_live(g);
    return n ? n->priv : NULL;
}

double grd_state_time(const grd_node *g)
{
    node *n = node_live(g);
    return n ? node_exectime(n) : 0;
}

/* ---- log and notifications ---- */

void grd_log(grd_node *g, const char *fmt, ...)
{
    node *n = node_live(g);
    if (!n)
        return;
    char prefix[GRD_NAME_MAX + 16];
    node_code_prefix(n, prefix, sizeof(prefix));
    va_list ap;
    va_start(ap, fmt);
    node_vlog(n, prefix, fmt, ap);
    va_end(ap);
}

void grd_notify(grd_node *g, const char *fmt, ...)
{
    node *n = node_live(g);
    if (!n || !fmt)
        return;
    char msg[NODE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    node_format(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    engine_notify(n, msg);
}

/* ---- other nodes ---- */

static node *other(node *n, const char *name)
{
    if (!name || !n->host.find || strnlen(name, NODE_NAME_MAX + 1) > NODE_NAME_MAX)
        return NULL;
    return node_live((grd_node *)n->host.find(n->host.arg, name));
}

int grd_node_ok(grd_node *g, const char *name, bool *ok)
{
    node *n = node_live(g);
    if (!n || !ok)
        return GRD_EINVAL;
    node *o = other(n, name);
    if (!o)
        return GRD_EBADCHAN;
    *ok = node_ok(o);
    return GRD_OK;
}

int grd_node_state(grd_node *g, const char *name, const char **state)
{
    node *n = node_live(g);
    if (!n || !state)
        return GRD_EINVAL;
    node *o = other(n, name);
    if (!o)
        return GRD_EBADCHAN;
    *state = node_state_name_at(o, o->cur);
    return GRD_OK;
}
