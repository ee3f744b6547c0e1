/* graph.c — a system's state graph and cheapest paths over it.
 *
 * The graph is the system's edges plus an implicit edge from every state to
 * each goto state. It is built once per system, in compressed adjacency
 * form: the explicit edges leaving a state in the order the system lists
 * them, then the implicit ones in state order (self-loops and repeats
 * dropped). Each edge weighs 1 unless GRD_WEIGHTS says otherwise (system.c
 * validates the weights and sets them here, in GRAPH_UNITs).
 *
 * The path is the cheapest by (total weight, number of edges); the tie rule
 * among those is the adjacency order: the path whose first edge comes
 * earliest in its state's adjacency wins, then the second edge, and so on
 * (the lexicographically least sequence of adjacency positions). That is
 * exactly what the breadth-first search used before weights picked among
 * equally short paths (it visits states in that order and keeps the first
 * parent found), so with every weight 1 the path is the same as before.
 *
 * The search: Dijkstra from `from` by (cost, edges), an O(states^2) scan
 * for the next state with no heap (states <= GRD_MAX_STATES), stopping once
 * `to` is settled; then, from `to` back through the states in the order they
 * were settled, which of them lie on some cheapest path; then from `from`
 * forward, each time the first edge in adjacency order that stays on one.
 * O(states^2 + edges), all on the stack; it runs on requests, jumps and
 * transitions, not every cycle. node_system_edges and node_system_weighted
 * list a state's edges for operators.
 */
#include "node/node_priv.h"

#include <assert.h>
#include <limits.h>
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

/* Close the gaps between states' reserved room; adj_goto[i] was the number of
 * explicit edges of state i and becomes where its implicit ones begin. */
static void compact(node_system *s, const unsigned *fill)
{
    unsigned w = 0;
    for (unsigned i = 0; i < s->n_states; i++) {
        unsigned start = s->adj_start[i];
        s->adj_start[i] = w;
        s->adj_goto[i] += w;
        memmove(&s->adj[w], &s->adj[start], (fill[i] - start) * sizeof(*s->adj));
        w += fill[i] - start;
    }
    s->adj_start[s->n_states] = w;
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
    size_t room = (size_t)s->n_edges + (size_t)n * goto_count + 1;
    s->adj_start = calloc(n + 1, sizeof(*s->adj_start));
    s->adj_goto = calloc(n + 1, sizeof(*s->adj_goto));
    s->adj = calloc(room, sizeof(*s->adj));
    s->adj_cost = calloc(room, sizeof(*s->adj_cost));
    unsigned *fill = calloc(n + 1, sizeof(*fill));
    if (!s->adj_start || !s->adj_goto || !s->adj || !s->adj_cost || !fill) {
        free(out);
        free(fill);
        return NODE_ENOMEM; /* node_system_unref frees the adj arrays */
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
        s->adj_goto[i] = fill[i] - s->adj_start[i];
    for (unsigned i = 0; i < n; i++)
        for (unsigned g = 0; g < n; g++)
            if (s->def->states[g].goto_)
                add(s, fill, i, g);
    compact(s, fill);
    for (unsigned k = 0; k < s->adj_start[n]; k++)
        s->adj_cost[k] = GRAPH_UNIT;
    free(out);
    free(fill);
    return NODE_OK;
}

int graph_edge(const node_system *s, int from, int to)
{
    if (from < 0 || to < 0 || (unsigned)from >= s->n_states || (unsigned)to >= s->n_states)
        return -1;
    for (unsigned k = s->adj_start[from]; k < s->adj_start[from + 1]; k++)
        if (s->adj[k] == (unsigned)to)
            return (int)k;
    return -1;
}

/* What a search knows of each state (see the top of the file). */
struct search {
    uint64_t cost[GRD_MAX_STATES];  /* cheapest found from `from`; UINT64_MAX: none yet */
    unsigned edges[GRD_MAX_STATES]; /* the fewest edges at that cost */
    bool settled[GRD_MAX_STATES];   /* cost and edges are final */
    bool on[GRD_MAX_STATES];        /* on a cheapest path from `from` to `to` */
    unsigned order[GRD_MAX_STATES]; /* the settled states, in the order settled */
    unsigned n_settled;
};

/* Whether the path to u followed by edge k (from u) is a cheapest way to its end. */
static bool tight(const node_system *s, const struct search *q, unsigned u, unsigned k)
{
    unsigned v = s->adj[k];
    return q->cost[u] + s->adj_cost[k] == q->cost[v] && q->edges[u] + 1 == q->edges[v];
}

/* The unsettled state reached most cheaply (by cost, then edges), -1 if none. */
static int next_state(const node_system *s, const struct search *q)
{
    int best = -1;
    for (unsigned i = 0; i < s->n_states; i++) {
        if (q->settled[i] || q->cost[i] == UINT64_MAX)
            continue;
        if (best < 0 || q->cost[i] < q->cost[best] ||
            (q->cost[i] == q->cost[best] && q->edges[i] < q->edges[best]))
            best = (int)i;
    }
    return best;
}

/* Dijkstra from `from` until `to` is settled; false if `to` cannot be reached. */
static bool settle(const node_system *s, struct search *q, unsigned from, unsigned to)
{
    for (unsigned i = 0; i < s->n_states; i++) {
        q->cost[i] = UINT64_MAX;
        q->edges[i] = UINT_MAX;
        q->settled[i] = q->on[i] = false;
    }
    q->n_settled = 0;
    q->cost[from] = 0;
    q->edges[from] = 0;
    while (!q->settled[to]) {
        int u = next_state(s, q);
        if (u < 0)
            return false;
        q->settled[u] = true;
        q->order[q->n_settled++] = (unsigned)u;
        for (unsigned k = s->adj_start[u]; k < s->adj_start[u + 1]; k++) {
            unsigned v = s->adj[k];
            uint64_t c = q->cost[u] + s->adj_cost[k];
            if (c < q->cost[v] || (c == q->cost[v] && q->edges[u] + 1 < q->edges[v])) {
                q->cost[v] = c;
                q->edges[v] = q->edges[u] + 1;
            }
        }
    }
    return true;
}

/* The first edge from u, in adjacency order, that stays on a cheapest path. */
static unsigned first_on(const node_system *s, const struct search *q, unsigned u)
{
    for (unsigned k = s->adj_start[u]; k < s->adj_start[u + 1]; k++)
        if (q->on[s->adj[k]] && tight(s, q, u, k))
            return k;
    return UINT_MAX;
}

unsigned graph_path(const node_system *s, int from, int to, int *path)
{
    if (from < 0 || to < 0 || (unsigned)from >= s->n_states || (unsigned)to >= s->n_states)
        return 0;
    struct search q;
    if (!settle(s, &q, (unsigned)from, (unsigned)to))
        return 0;
    /* A tight edge ends at a state settled later, so going back through the
     * settled order sees where each edge ends before where it starts. */
    q.on[to] = true;
    for (unsigned i = q.n_settled; i-- > 0;)
        q.on[q.order[i]] = q.on[q.order[i]] || first_on(s, &q, q.order[i]) != UINT_MAX;
    unsigned len = 0, u = (unsigned)from;
    path[len++] = from;
    while (u != (unsigned)to) {
        unsigned k = first_on(s, &q, u);
        assert(k != UINT_MAX && len < GRD_MAX_STATES); /* from is on a path; paths are simple */
        u = s->adj[k];
        path[len++] = (int)u;
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

unsigned node_system_weighted(const node_system *s, const grd_state *from, const grd_state **to,
                              double *weight, unsigned max)
{
    int pos = from ? node_system_pos(s, from->name) : -1;
    if (pos < 0 || !to || !weight)
        return 0;
    unsigned n = 0;
    for (unsigned k = s->adj_start[pos]; k < s->adj_start[pos + 1] && n < max; k++)
        if (s->adj_cost[k] != GRAPH_UNIT) {
            to[n] = node_system_at(s, (int)s->adj[k]);
            weight[n++] = (double)s->adj_cost[k] / (double)GRAPH_UNIT;
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

/* The weight of from->to in s in GRAPH_UNITs, counting only the edges
 * compared (explicit or weighted: see node.h); 0 if it is not one of them. */
static uint64_t compared_cost(const node_system *s, const char *from, const char *to)
{
    int k = graph_edge(s, node_system_pos(s, from), node_system_pos(s, to));
    uint64_t cost = k < 0 ? GRAPH_UNIT : s->adj_cost[k]; /* an explicit self-loop weighs 1 */
    return cost != GRAPH_UNIT || has_edge(s, from, to) ? cost : 0;
}

/* Edge from->to of a (weighing cost) into l unless b has it with that weight. */
static void diff_edge(const node_system *b, const char *from, const char *to, uint64_t cost,
                      struct node_diff_list *l)
{
    if (compared_cost(b, from, to) == cost)
        return;
    char t[NODE_DIFF_TEXT];
    if (cost == GRAPH_UNIT)
        snprintf(t, sizeof(t), "%s->%s", from, to);
    else
        snprintf(t, sizeof(t), "%s->%s (weight %.12g)", from, to,
                 (double)cost / (double)GRAPH_UNIT);
    diff_add(l, t);
}

/* The edges of a that b lacks or weighs otherwise: explicit ones in the
 * system's order, then the weighted implicit ones in the graph's. */
static void diff_edges(const node_system *a, const node_system *b, struct node_diff_list *l)
{
    for (unsigned e = 0; e < a->n_edges; e++) {
        const grd_edge *x = &a->def->edges[e];
        diff_edge(b, x->from, x->to, compared_cost(a, x->from, x->to), l);
    }
    for (unsigned u = 0; u < a->n_states; u++)
        for (unsigned k = a->adj_goto[u]; k < a->adj_start[u + 1]; k++) {
            const char *from = a->def->states[u].name, *to = a->def->states[a->adj[k]].name;
            if (a->adj_cost[k] != GRAPH_UNIT && !has_edge(a, from, to))
                diff_edge(b, from, to, a->adj_cost[k], l);
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
