/* test_graph.c — paths over weighted graphs (GRD_WEIGHTS, issue 13 item 6):
 * the cheapest path, its tie rule, and that with no weights every path is the
 * one the breadth-first search of version 2 found; the weights operators see
 * (node_system_weighted) and a LOAD's comparison of them. Paths are read as
 * guardctl reads them: node_start_at(FROM, REQUEST), then node_path. */
#include <math.h>

#include "tests/node/fake_host.h"

static char err[1024];

static node_system *wrap(const grd_system *def)
{
    node_system *s = node_system_wrap(def, err, sizeof(err));
    cr_assert(s, "%s", err);
    return s;
}

/* The path a node of s takes from `from` to `to`, as "A B C" ("" for none). */
static const char *path_of(node_system *s, const char *from, const char *to)
{
    static char text[GRD_MAX_STATES * (GRD_NAME_MAX + 1) + 1];
    node_host host = fake_host();
    node *n = node_new("G", "H1", s, NULL, 0, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
    text[0] = '\0';
    const grd_state *p[GRD_MAX_STATES];
    unsigned len = node_start_at(n, from, to) == NODE_OK ? node_path(n, p, GRD_MAX_STATES) : 0;
    for (unsigned i = 0; i < len; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? " " : "",
                 p[i]->name);
    node_free(n);
    return text;
}

/* ---- the cheapest path ---- */

/* From S, T is one edge away (weight 10) or three (1 + 0.5 + 1). */
static const grd_system sys_heavy = {
    .api_version = GRD_API_VERSION, .name = "heavy",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("S", 1), GRD_STATE("A", 2),
                         GRD_STATE("B", 3), GRD_STATE("T", 4), GRD_STATE("G", 5, .goto_ = true)),
    .edges = GRD_EDGES({"INIT", "S"}, {"S", "T"}, {"S", "A"}, {"A", "B"}, {"B", "T"}),
    .weights = GRD_WEIGHTS({"S", "T", 10}, {"A", "B", 0.5}, {"T", "G", 4}, {"B", "G", 1e6}),
};

Test(graph, the_cheapest_path_beats_a_shorter_heavier_one)
{
    node_system *s = wrap(&sys_heavy);
    cr_assert_str_eq(path_of(s, "S", "T"), "S A B T");
    cr_assert_str_eq(path_of(s, "INIT", "T"), "INIT S A B T");
    /* Implicit edges to a goto state are weighted too: T->G (4) is T's only
     * way to G; B->G (1e6) loses to B->T->G (1 + 4). */
    cr_assert_str_eq(path_of(s, "T", "G"), "T G");
    cr_assert_str_eq(path_of(s, "B", "G"), "B T G");
    cr_assert_str_eq(path_of(s, "A", "G"), "A G", "A->G is unweighted: 1");
    cr_assert_str_eq(path_of(s, "G", "G"), "G");
    cr_assert_str_eq(path_of(s, "T", "S"), "", "no path");
    node_system_unref(s);
    fake_free();
}

/* Three ways from INIT to Z, all costing 2: INIT->Z (2), INIT->P->Z and
 * INIT->Q->Z (1 + 1); and a fourth costing 2 in three edges. */
static const grd_system sys_ties = {
    .api_version = GRD_API_VERSION, .name = "ties",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("P", 1), GRD_STATE("Q", 2),
                         GRD_STATE("Z", 3), GRD_STATE("R", 4), GRD_STATE("X", 5),
                         GRD_STATE("Y", 6)),
    .edges = GRD_EDGES({"INIT", "Q"}, {"INIT", "P"}, {"Q", "Z"}, {"P", "Z"}, {"INIT", "Z"},
                       {"R", "X"}, {"X", "Y"}, {"Y", "Z"}, {"R", "Z"}, {"R", "P"}),
    .weights = GRD_WEIGHTS({"INIT", "Z", 2}, {"R", "X", 0.5}, {"X", "Y", 0.5}, {"R", "Z", 2},
                           {"R", "P", 0.1}, {"P", "Z", 1.9}),
};

Test(graph, ties_go_to_fewer_edges_then_to_earlier_edges)
{
    node_system *s = wrap(&sys_ties);
    cr_assert_str_eq(path_of(s, "INIT", "Z"), "INIT Z", "equally cheap: the fewest edges");
    /* R: R->X->Y->Z 0.5+0.5+1, R->Z 2, R->P->Z 0.1+1.9 (exact: weights count to
     * a millionth): R->Z has the fewest edges. */
    cr_assert_str_eq(path_of(s, "R", "Z"), "R Z");
    node_system_unref(s);
    fake_free();
}

static const grd_system sys_ties2 = {
    .api_version = GRD_API_VERSION, .name = "ties2",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("P", 1), GRD_STATE("Q", 2),
                         GRD_STATE("Z", 3)),
    .edges = GRD_EDGES({"INIT", "Q"}, {"INIT", "P"}, {"Q", "Z"}, {"P", "Z"}),
    .weights = GRD_WEIGHTS({"INIT", "Q", 0.25}, {"Q", "Z", 2.75}, {"INIT", "P", 2},
                           {"P", "Z", 1}),
};

Test(graph, equally_cheap_and_long_the_earlier_edge_wins)
{
    node_system *s = wrap(&sys_ties2);
    cr_assert_str_eq(path_of(s, "INIT", "Z"), "INIT Q Z", "INIT->Q is listed first");
    node_system_unref(s);
    fake_free();
}

/* ---- with no weights: the path of version 2's breadth-first search ---- */

/* The search as graph.c did it before weights, over the system's own tables:
 * explicit edges in the order listed, then goto states in state order; the
 * first parent found is kept. Returns the path as path_of() prints it. */
static const char *bfs_path(const grd_system *d, const char *from, const char *to)
{
    static char text[GRD_MAX_STATES * (GRD_NAME_MAX + 1) + 1];
    int n = 0, f = -1, t = -1;
    for (; d->states[n].name; n++) {
        f = strcmp(d->states[n].name, from) == 0 ? n : f;
        t = strcmp(d->states[n].name, to) == 0 ? n : t;
    }
    int parent[GRD_MAX_STATES], queue[GRD_MAX_STATES], head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        parent[i] = -1;
    parent[f] = f;
    queue[tail++] = f;
    while (head < tail) {
        int u = queue[head++];
        int next[GRD_MAX_EDGES + GRD_MAX_STATES], k = 0;
        for (int e = 0; d->edges && d->edges[e].from; e++)
            if (strcmp(d->edges[e].from, d->states[u].name) == 0)
                for (int v = 0; v < n; v++)
                    if (strcmp(d->edges[e].to, d->states[v].name) == 0)
                        next[k++] = v;
        for (int v = 0; v < n; v++)
            if (d->states[v].goto_)
                next[k++] = v;
        for (int i = 0; i < k; i++)
            if (parent[next[i]] < 0) {
                parent[next[i]] = u;
                queue[tail++] = next[i];
            }
    }
    text[0] = '\0';
    if (parent[t] < 0)
        return text;
    int rev[GRD_MAX_STATES], len = 0;
    for (int v = t; v != f; v = parent[v])
        rev[len++] = v;
    rev[len++] = f;
    while (len-- > 0)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s",
                 text[0] ? " " : "", d->states[rev[len]].name);
    return text;
}

/* Every pair of states of def: the path is the breadth-first one. */
static void assert_bfs_paths(const grd_system *def)
{
    grd_system copy = *def; /* without node_init: nodes are only made to read paths */
    copy.node_init = NULL;
    copy.node_fini = NULL;
    node_system *s = wrap(&copy);
    unsigned pairs = 0;
    for (int i = 0; def->states[i].name; i++)
        for (int j = 0; def->states[j].name; j++, pairs++) {
            const char *from = def->states[i].name, *to = def->states[j].name;
            char want[sizeof(err)];
            snprintf(want, sizeof(want), "%s", bfs_path(def, from, to));
            cr_assert_str_eq(path_of(s, from, to), want, "system %s, %s to %s", def->name,
                             from, to);
        }
    cr_assert(pairs > 0);
    node_system_unref(s);
    fake_free();
}

static const grd_system *loaded_def(const char *dir, const char *name, node_system **keep)
{
    *keep = node_system_load(name, dir, err, sizeof(err));
    cr_assert(*keep, "%s", err);
    return node_system_def(*keep);
}

Test(graph, without_weights_paths_are_those_of_the_breadth_first_search)
{
    char systems[PATH_MAX + 16];
    snprintf(systems, sizeof(systems), "%s/../../systems", exe_dir());
    const char *const example[] = {"sus", "ifo", "bench", "lock"};
    const char *const test_modules[] = {"mod_good", "mod_good_v2", "mod_good_v3", "mod_plantio",
                                        "mod_slow", "mod_chatty"};
    node_system *keep;
    for (size_t i = 0; i < sizeof(example) / sizeof(example[0]); i++) {
        assert_bfs_paths(loaded_def(systems, example[i], &keep));
        node_system_unref(keep);
    }
    for (size_t i = 0; i < sizeof(test_modules) / sizeof(test_modules[0]); i++) {
        assert_bfs_paths(loaded_def(exe_dir(), test_modules[i], &keep));
        node_system_unref(keep);
    }
}

/* Random graphs: 3 to 14 states, some goto, edges with repeats and self-loops. */
Test(graph, without_weights_random_graphs_take_the_breadth_first_paths)
{
    static char names[16][8];
    static grd_state states[17];
    static grd_edge edges[64];
    unsigned seed = 12345;
#define RAND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
    for (int g = 0; g < 60; g++) {
        int n = 3 + (int)(RAND() % 12), m = (int)(RAND() % 40);
        for (int i = 0; i < n; i++) {
            snprintf(names[i], sizeof(names[i]), i ? "S%d" : "INIT", i);
            states[i] = (grd_state){.name = names[i], .index = i, .goto_ = RAND() % 7 == 0};
        }
        states[n] = (grd_state){.name = NULL};
        for (int e = 0; e < m; e++)
            edges[e] = (grd_edge){names[RAND() % (unsigned)n], names[RAND() % (unsigned)n]};
        edges[m] = (grd_edge){NULL, NULL};
        grd_system def = {.api_version = GRD_API_VERSION, .name = "random", .states = states,
                          .edges = edges};
        assert_bfs_paths(&def);
    }
#undef RAND
}

/* A version 2 module is unweighted whatever follows its table (mod_apiv2.c). */
Test(graph, a_version_2_module_loads_unweighted)
{
    node_system *s = node_system_load("mod_apiv2", exe_dir(), err, sizeof(err));
    cr_assert(s, "%s", err);
    cr_assert_eq(node_system_def(s)->api_version, 2);
    cr_assert_str_eq(path_of(s, "INIT", "B"), "INIT B");
    cr_assert_str_eq(path_of(s, "A", "B"), "A B");
    const grd_state *to[4];
    double w[4];
    cr_assert_eq(node_system_weighted(s, node_system_state(s, "INIT"), to, w, 4), 0);
    node_system_unref(s);
    fake_free();
}

/* ---- what operators see ---- */

Test(graph, weighted_edges_of_a_state)
{
    node_system *s = wrap(&sys_heavy);
    const grd_state *to[8];
    double w[8];
    cr_assert_eq(node_system_weighted(s, node_system_state(s, "S"), to, w, 8), 1);
    cr_assert_str_eq(to[0]->name, "T");
    cr_assert_float_eq(w[0], 10, 1e-9);
    cr_assert_eq(node_system_weighted(s, node_system_state(s, "B"), to, w, 8), 1,
                 "B->T weighs 1: not listed");
    cr_assert_str_eq(to[0]->name, "G", "an implicit edge to a goto state");
    cr_assert_float_eq(w[0], 1e6, 1e-3);
    cr_assert_eq(node_system_weighted(s, node_system_state(s, "INIT"), to, w, 8), 0);
    cr_assert_eq(node_system_weighted(s, node_system_state(s, "S"), to, w, 0), 0);
    cr_assert_eq(node_system_weighted(s, NULL, to, w, 8), 0);
    cr_assert_eq(node_system_weighted(s, node_system_state(s, "S"), NULL, w, 8), 0);
    node_system_unref(s);
}

static void list_is(const struct node_diff_list *l, unsigned count, const char *const *texts)
{
    cr_assert_eq(l->count, count, "%u entries, expected %u", l->count, count);
    for (unsigned i = 0; i < count; i++)
        cr_assert_str_eq(l->text[i], texts[i]);
}

/* sys_heavy with S->T lighter, A->B unweighted, T->G unchanged, B->G gone and
 * a new weighted implicit edge A->G. */
static const grd_system sys_heavy2 = {
    .api_version = GRD_API_VERSION, .name = "heavy2",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("S", 1), GRD_STATE("A", 2),
                         GRD_STATE("B", 3), GRD_STATE("T", 4), GRD_STATE("G", 5, .goto_ = true)),
    .edges = GRD_EDGES({"INIT", "S"}, {"S", "T"}, {"S", "A"}, {"A", "B"}, {"B", "T"}),
    .weights = GRD_WEIGHTS({"S", "T", 2.5}, {"T", "G", 4}, {"A", "G", 7}),
};

Test(graph, a_load_compares_weights_as_edges)
{
    node_system *a = wrap(&sys_heavy), *b = wrap(&sys_heavy2);
    struct node_system_diff d;
    node_system_compare(a, b, &d);
    list_is(&d.edges_removed, 3, (const char *[]){"S->T (weight 10)", "A->B (weight 0.5)",
                                                  "B->G (weight 1000000)"});
    list_is(&d.edges_added, 3, (const char *[]){"S->T (weight 2.5)", "A->B", "A->G (weight 7)"});
    node_system_compare(a, a, &d);
    cr_assert_eq(d.edges_added.count + d.edges_removed.count, 0);
    node_system_unref(a);
    node_system_unref(b);
}
