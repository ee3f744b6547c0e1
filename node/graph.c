/* graph.c — a system's state graph and shortest paths over it.
 *
 * The graph is the system's edges plus an implicit edge from every state to
 * each goto state. It is built once per system, in compressed adjacency
 * form: the explicit edges leaving a state in the order the system lists
 * them, then the implicit ones in state order (self-loops and repeats
 * dropped). Paths are unweighted shortest paths found by breadth-first
 * search in that order, so among equally short paths the one using earlier
 * edges wins, deterministically. A search is O(states + edges), at most a
 * few thousand steps; it runs on requests, jumps and transitions, not every
 * cycle. node_system_edges lists a state's explicit edges for operators.
 */
#include "node/node_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Add s->def edge from->to to the adjacency being built, unless present. */
static void add(node_system *s, unsigned *fill, unsigned from, unsigned to)
{
    if (from == to)
        return;
    for (unsigned k = s->adj_start[from]; k < fill[from]; k++)
        if (s->adj[k] == to)
            return;
    s->adj[fill[from]++] = to;
}

int graph_build(node_system *s)
{
    unsigned n = s->n_states, goto_count = 0;
    for (unsigned i = 0; i < n; i++)
        goto_count += s->def->states[i].goto_;
    unsigned *out = calloc(n + 1, sizeof(*out)); /* upper bound of each state's degree */
    if (!out)
        return NODE_ENOMEM;
    for (unsigned e = 0; e < s->n_edges; e++)
        out[node_system_pos(s, s->def->edges[e].from)]++;
    s->adj_start = calloc(n + 1, sizeof(*s->adj_start));
    s->adj = calloc((size_t)s->n_edges + (size_t)n * goto_count + 1, sizeof(*s->adj));
    unsigned *fill = calloc(n + 1, sizeof(*fill));
    if (!s->adj_start || !s->adj || !fill) {
        free(out);
        free(fill);
        return NODE_ENOMEM; /* node_system_unref frees adj and adj_start */
    }
    /* Reserve room for each state's edges, then fill; then compact. */
    for (unsigned i = 0; i < n; i++)
        s->adj_start[i + 1] = s->adj_start[i] + out[i] + goto_count;
    for (unsigned i = 0; i < n; i++)
        fill[i] = s->adj_start[i];
    for (unsigned e = 0; e < s->n_edges; e++)
        add(s, fill, (unsigned)node_system_pos(s, s->def->edges[e].from),
            (unsigned)node_system_pos(s, s->def->edges[e].to));
    for (unsigned i = 0; i < n; i++)
        for (unsigned g = 0; g < n; g++)
            if (s->def->states[g].goto_)
                add(s, fill, i, g);
    unsigned w = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned start = s->adj_start[i];
        s->adj_start[i] = w;
        memmove(&s->adj[w], &s->adj[start], (fill[i] - start) * sizeof(*s->adj));
        w += fill[i] - start;
    }
    s->adj_start[n] = w;
    free(out);
    free(fill);
    return NODE_OK;
}

unsigned graph_path(const node_system *s, int from, int to, int *path)
{
    if (from < 0 || to < 0 || (unsigned)from >= s->n_states || (unsigned)to >= s->n_states)
        return 0;
    if (from == to) {
        path[0] = from;
        return 1;
    }
    int parent[GRD_MAX_STATES];
    unsigned queue[GRD_MAX_STATES], head = 0, tail = 0;
    for (unsigned i = 0; i < s->n_states; i++)
        parent[i] = -1;
    parent[from] = from;
    queue[tail++] = (unsigned)from;
    while (head < tail && parent[to] < 0) {
        unsigned u = queue[head++];
        for (unsigned k = s->adj_start[u]; k < s->adj_start[u + 1]; k++) {
            unsigned v = s->adj[k];
            if (parent[v] < 0) {
                parent[v] = (int)u;
                queue[tail++] = v;
            }
        }
    }
    if (parent[to] < 0)
        return 0;
    unsigned len = 0;
    for (int v = to; v != from; v = parent[v])
        len++;
    len++;
    unsigned i = len;
    for (int v = to;; v = parent[v]) {
        path[--i] = v;
        if (v == from)
            break;
    }
    return len;
}

bool node_system_has_path(const node_system *s, const char *from, const char *to)
{
    int path[GRD_MAX_STATES];
    return s && graph_path(s, node_system_pos(s, from), node_system_pos(s, to), path) > 0;
}

unsigned node_system_edges(const node_system *s, const grd_state *from, const grd_state **out,
                           unsigned max)
{
    int pos = from ? node_system_pos(s, from->name) : -1;
    if (pos < 0 || !out)
        return 0;
    unsigned n = 0;
    for (unsigned e = 0; e < s->n_edges && n < max; e++) {
        if (strcmp(s->def->edges[e].from, from->name) != 0)
            continue;
        const grd_state *to = node_system_state(s, s->def->edges[e].to);
        bool seen = false;
        for (unsigned k = 0; k < n && !seen; k++)
            seen = out[k] == to;
        if (to && !seen)
            out[n++] = to;
    }
    return n;
}

/* ---- comparing two systems (a LOAD's preflight) ---- */

static void diff_add(struct node_diff_list *l, const char *text)
{
    if (l->count < NODE_DIFF_MAX)
        snprintf(l->text[l->count], sizeof(l->text[0]), "%s", text);
    l->count++;
}

static bool has_edge(const node_system *s, const char *from, const char *to)
{
    for (unsigned e = 0; e < s->n_edges; e++)
        if (strcmp(s->def->edges[e].from, from) == 0 && strcmp(s->def->edges[e].to, to) == 0)
            return true;
    return false;
}

static void diff_edges(const node_system *a, const node_system *b, struct node_diff_list *l)
{
    char t[NODE_DIFF_TEXT];
    for (unsigned e = 0; e < a->n_edges; e++)
        if (!has_edge(b, a->def->edges[e].from, a->def->edges[e].to)) {
            snprintf(t, sizeof(t), "%s->%s", a->def->edges[e].from, a->def->edges[e].to);
            diff_add(l, t);
        }
}

/* O(states + edges^2) on graphs of at most GRD_MAX_STATES states: for a
 * command an operator runs, never for the cycle. */
void node_system_compare(const node_system *old, const node_system *new_,
                         struct node_system_diff *d)
{
    char t[NODE_DIFF_TEXT];
    memset(d, 0, sizeof(*d));
    for (unsigned i = 0; i < old->n_states; i++) {
        const grd_state *o = &old->def->states[i], *n = node_system_state(new_, o->name);
        if (!n) {
            diff_add(&d->removed, o->name);
            continue;
        }
        if (n->index != o->index) {
            snprintf(t, sizeof(t), "%s %d->%d", o->name, o->index, n->index);
            diff_add(&d->index, t);
        }
        if (n->request != o->request) {
            snprintf(t, sizeof(t), "%c%s", n->request ? '+' : '-', o->name);
            diff_add(&d->requestable, t);
        }
    }
    for (unsigned i = 0; i < new_->n_states; i++)
        if (!node_system_state(old, new_->def->states[i].name))
            diff_add(&d->added, new_->def->states[i].name);
    diff_edges(old, new_, &d->edges_removed);
    diff_edges(new_, old, &d->edges_added);
}
