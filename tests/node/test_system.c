/* test_system.c — loading and validating systems: the modules
 * tests/node/mod_*.so (built next to this binary) and in-memory tables. */
#include <dlfcn.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#include "tests/node/fake_host.h"

static char err[1024];

static node_system *load(const char *name)
{
    err[0] = '\0';
    return node_system_load(name, exe_dir(), err, sizeof(err));
}

/* The load of `mod` fails, and err contains every one of the strings. */
#define assert_refused(mod, ...)                                                                   \
    do {                                                                                           \
        cr_assert_null(load(mod), "%s was accepted", mod);                                        \
        const char *want_[] = {__VA_ARGS__};                                                       \
        for (size_t i_ = 0; i_ < sizeof(want_) / sizeof(want_[0]); i_++)                            \
            cr_assert(strstr(err, want_[i_]), "'%s' not in: %s", want_[i_], err);                 \
    } while (0)

static char path_of_buf[PATH_MAX + 64];
static const char *path_of(const char *mod)
{
    snprintf(path_of_buf, sizeof(path_of_buf), "%s/%s.so", exe_dir(), mod);
    return path_of_buf;
}

Test(loader, good_module)
{
    node_system *s = load("mod_good");
    cr_assert(s, "%s", err);
    const grd_system *d = node_system_def(s);
    cr_assert_str_eq(d->name, "good");
    cr_assert_str_eq(node_system_path(s), path_of("mod_good"));
    cr_assert_eq(node_system_state(s, "UP")->index, 100);
    cr_assert_null(node_system_state(s, "NOPE"));
    cr_assert_null(node_system_state(s, NULL));
    const grd_state *menu[8];
    cr_assert_eq(node_system_requestable(s, menu, 8), 2);
    cr_assert_str_eq(menu[0]->name, "DOWN");
    cr_assert_str_eq(menu[1]->name, "UP");
    cr_assert_eq(node_system_requestable(s, menu, 1), 1);
    node_system_unref(s);
}

Test(loader, module_code_runs_in_a_node)
{
    node_system *s = load("mod_good");
    cr_assert(s, "%s", err);
    node_host host = fake_host();
    node *n = node_new("G", "H1", s, NULL, 0, &host, err, sizeof(err));
    node_system_unref(s); /* the node holds its own reference */
    cr_assert(n, "%s", err);
    for (int i = 0; i < 5; i++)
        step(n);
    cr_assert(node_ok(n));
    cr_assert_neq(log_find(0, "[INIT.main] good v1"), -1);
    node_free(n);
    fake_free();
}

Test(loader, wrong_api_version)
{
    char want[64];
    snprintf(want, sizeof(want), "built for guardian API version 1, this guardiand has %d",
             GRD_API_VERSION);
    assert_refused("mod_badapi", path_of("mod_badapi"), want);
}

Test(loader, duplicate_state_names)
{
    assert_refused("mod_dupname", path_of("mod_dupname"), "duplicate state name 'SAFE' (states 1 and 3)");
}

Test(loader, duplicate_indexes)
{
    assert_refused("mod_dupindex", path_of("mod_dupindex"),
                   "states 'SAFE' and 'DAMPED' have the same index 10");
}

Test(loader, edge_to_an_unknown_state)
{
    assert_refused("mod_badedge", path_of("mod_badedge"), "edge 1 DAMPED->ALIGNED: unknown state 'ALIGNED'");
}

Test(loader, weight_of_a_missing_edge)
{
    assert_refused("mod_badweight", path_of("mod_badweight"),
                   "weight 1 DAMPED->INIT: no such edge (not in edges, and INIT is not a goto "
                   "state)");
}

/* A version 2 module is loaded; its grd_system ends before weights, and
 * mod_apiv2 puts junk there: never read (test_graph.c checks its paths). */
Test(loader, version_2_is_still_loaded)
{
    node_system *s = load("mod_apiv2");
    cr_assert(s, "%s", err);
    cr_assert_str_eq(node_system_def(s)->name, "apiv2");
    cr_assert(node_system_has_path(s, "INIT", "B"));
    node_system_unref(s);
}

Test(loader, no_init)
{
    assert_refused("mod_noinit", path_of("mod_noinit"), "no INIT state");
}

Test(loader, unknown_request_and_nominal)
{
    assert_refused("mod_badrequest", path_of("mod_badrequest"), "request 'ALIGNED' is not a state");
    assert_refused("mod_badnominal", path_of("mod_badnominal"), "nominal 'LOCKED' is not a state");
}

Test(loader, missing_symbol)
{
    assert_refused("mod_nosym", path_of("mod_nosym"), "no symbol grd_system_entry",
                   "not a guardiand system");
}

Test(loader, unresolved_symbol)
{
    assert_refused("mod_unresolved", path_of("mod_unresolved"), "grd_no_such_function");
}

Test(loader, missing_module_names_the_search_path)
{
    err[0] = '\0';
    cr_assert_null(node_system_load("nothere", "/nonexistent:/also/not", err, sizeof(err)));
    cr_assert(strstr(err, "no nothere.so in the search path '/nonexistent:/also/not'"), "%s", err);
}

Test(loader, bad_system_names)
{
    const char *bad[] = {"", "../mod_good", "a/b", ".hidden"};
    for (unsigned i = 0; i < 4; i++) {
        err[0] = '\0';
        cr_assert_null(node_system_load(bad[i], exe_dir(), err, sizeof(err)), "%s", bad[i]);
        cr_assert(strstr(err, "bad system name"), "%s", err);
    }
    cr_assert_null(node_system_load(NULL, exe_dir(), err, sizeof(err)));
    cr_assert_null(node_system_load("mod_good", NULL, err, sizeof(err)));
}

Test(loader, first_directory_of_the_path_wins)
{
    char search[PATH_MAX * 2];
    snprintf(search, sizeof(search), "/nonexistent::%s:/tmp", exe_dir());
    node_system *s = node_system_load("mod_good", search, err, sizeof(err));
    cr_assert(s, "%s", err);
    cr_assert_str_eq(node_system_path(s), path_of("mod_good"));
    node_system_unref(s);
}

Test(loader, last_reference_closes_the_module)
{
    node_system *s = load("mod_good");
    cr_assert(s, "%s", err);
    node_system_ref(s);
    node_system_unref(s);
    void *h = dlopen(path_of("mod_good"), RTLD_NOW | RTLD_NOLOAD);
    cr_assert(h, "still loaded while a reference is held");
    dlclose(h);
    node_system_unref(s);
    h = dlopen(path_of("mod_good"), RTLD_NOW | RTLD_NOLOAD);
    cr_assert_null(h, "closed with the last reference");
    node_system_unref(NULL);
}

static void copy_file(const char *from, const char *to)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    cr_assert(in && out);
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof(buf), in)) > 0)
        cr_assert_eq(fwrite(buf, 1, k, out), k);
    fclose(in);
    fclose(out);
    cr_assert_eq(rename(tmp, to), 0); /* replace, never rewrite in place */
}

/* mod_good copied to <dir>/<name>.so in a new folder dir (a mkdtemp
 * template), and loaded from there. */
static node_system *load_a_copy(char *dir, char *so, size_t len, const char *name)
{
    cr_assert(mkdtemp(dir));
    snprintf(so, len, "%s/%s.so", dir, name);
    copy_file(path_of("mod_good"), so);
    node_system *s = node_system_load(name, dir, err, sizeof(err));
    cr_assert(s, "%s", err);
    return s;
}

Test(loader, loading_a_replaced_module_gives_the_new_code)
{
    char dir[] = "/tmp/test_system-XXXXXX", so[64];
    node_system *v1 = load_a_copy(dir, so, sizeof(so), "x");
    cr_assert_str_eq(node_system_def(v1)->request, "UP");
    node_system *again = node_system_load("x", dir, err, sizeof(err));
    cr_assert(again, "%s", err);
    cr_assert_eq(again, v1, "unchanged file: the system already loaded");
    node_system_unref(again);

    copy_file(path_of("mod_good_v2"), so);
    node_system *v2 = node_system_load("x", dir, err, sizeof(err));
    cr_assert(v2, "%s", err);
    cr_assert_str_eq(node_system_def(v2)->request, "DOWN", "the new code, though v1 is held");
    cr_assert_str_eq(node_system_def(v1)->request, "UP", "and v1 still works");
    cr_assert_str_eq(node_system_path(v2), so);
    node_system *v2_again = node_system_load("x", dir, err, sizeof(err));
    cr_assert_eq(v2_again, v2, "the replaced file, unchanged since: v2 again");
    node_system_unref(v2_again);
    node_system_unref(v1);
    node_system_unref(v2);
    node_system *v2_reopened = node_system_load("x", dir, err, sizeof(err));
    cr_assert(v2_reopened, "%s", err);
    cr_assert_str_eq(node_system_def(v2_reopened)->request, "DOWN", "loaded again once closed");
    node_system_unref(v2_reopened);
    void *h = dlopen(so, RTLD_NOW | RTLD_NOLOAD);
    cr_assert_null(h, "closed with the last reference");
    unlink(so);
    rmdir(dir);
}

static enum node_module_state module_state(const node_system *s)
{
    struct node_module m;
    node_system_module(s, &m);
    return m.state;
}

Test(loader, a_module_file_changed_on_disk_is_seen_and_a_touch_is_not)
{
    char dir[] = "/tmp/test_system-XXXXXX", so[64];
    node_system *v1 = load_a_copy(dir, so, sizeof(so), "y");
    struct node_module m;
    node_system_module(v1, &m);
    uint64_t hash, size;
    struct timespec mtime;
    cr_assert_eq(node_file_hash(so, &hash, &mtime, &size, NULL), 0);
    cr_assert_str_eq(m.path, so);
    cr_assert_eq(m.hash, hash, "the hash of the file as loaded");
    cr_assert_eq(m.size, size);
    cr_assert_eq(m.state, NODE_MODULE_SAME);
    cr_assert_eq(node_systems_check(), 0);

    struct timespec later[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    cr_assert_eq(utimensat(AT_FDCWD, so, later, 0), 0); /* a touch: same content */
    cr_assert_eq(node_systems_check(), 0);
    cr_assert_eq(module_state(v1), NODE_MODULE_SAME, "a touch alone is not a change");

    copy_file(path_of("mod_good_v2"), so);
    cr_assert_eq(node_systems_check(), 1);
    cr_assert_eq(module_state(v1), NODE_MODULE_CHANGED);
    cr_assert_eq(node_systems_check(), 0, "known: nothing new");
    cr_assert_str_eq(node_module_state_text(NODE_MODULE_CHANGED),
                     "module changed on disk since it was loaded");

    node_system *v2 = node_system_load("y", dir, err, sizeof(err));
    cr_assert(v2, "%s", err);
    cr_assert_eq(module_state(v2), NODE_MODULE_SAME, "the new code is what the file holds");
    cr_assert_eq(node_systems_check(), 0);
    cr_assert_eq(module_state(v1), NODE_MODULE_CHANGED, "v1 still is not what the file holds");

    cr_assert_eq(unlink(so), 0);
    cr_assert_eq(node_systems_check(), 2);
    cr_assert_eq(module_state(v1), NODE_MODULE_MISSING);
    cr_assert_eq(module_state(v2), NODE_MODULE_MISSING);
    cr_assert_str_eq(node_module_state_text(NODE_MODULE_MISSING), "module missing");

    copy_file(path_of("mod_good"), so); /* v1's content, in a new file */
    cr_assert_eq(node_systems_check(), 2);
    cr_assert_eq(module_state(v1), NODE_MODULE_SAME, "the same content is the same code");
    cr_assert_eq(module_state(v2), NODE_MODULE_CHANGED);
    node_system_unref(v1);
    node_system_unref(v2);
    unlink(so);
    rmdir(dir);
}

Test(loader, module_info_of_bad_arguments_and_wrapped_systems)
{
    struct node_module m = {.state = NODE_MODULE_CHANGED};
    node_system_module(NULL, &m);
    cr_assert_eq(m.state, NODE_MODULE_NONE);
    cr_assert_str_eq(m.path, "");
    node_system_module(NULL, NULL); /* no crash */
    uint64_t hash, size;
    struct timespec mtime;
    cr_assert_eq(node_file_hash(NULL, &hash, &mtime, &size, NULL), -1);
    cr_assert_eq(node_file_hash("/nonexistent/x.so", &hash, &mtime, &size, NULL), -1);
    cr_assert_eq(node_file_hash("/tmp", &hash, &mtime, &size, NULL), -1, "not a regular file");
    cr_assert_str_eq(node_module_state_text(NODE_MODULE_SAME), "");
}

/* ---- in-memory validation ---- */

static grd_ret fn(grd_node *n) { (void)n; return GRD_DONE; }

static node_system *wrap(const grd_system *s)
{
    err[0] = '\0';
    return node_system_wrap(s, err, sizeof(err));
}

#define assert_wrap_refused(sys, want)                                                             \
    do {                                                                                           \
        cr_assert_null(wrap(sys));                                                                 \
        cr_assert(strstr(err, want), "'%s' not in: %s", want, err);                               \
    } while (0)

static const grd_system sys_ok = {
    .api_version = GRD_API_VERSION, .name = "ok", .request = "B", .nominal = "B",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("B", 2, .request = true),
                         GRD_STATE("A", 1, .request = true)),
    .edges = GRD_EDGES({"INIT", "A"}, {"A", "B"}),
};
static const grd_system sys_nine_checks = {
    .api_version = GRD_API_VERSION, .name = "checks",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn, fn))),
};
static const grd_system sys_eight_checks = {
    .api_version = GRD_API_VERSION, .name = "checks",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn))),
};
static const grd_system sys_nine_main_checks = {
    .api_version = GRD_API_VERSION, .name = "checks",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .main_checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn, fn))),
};
static const grd_system sys_nine_run_checks = {
    .api_version = GRD_API_VERSION, .name = "checks",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .run_checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn, fn))),
};
/* Each list has its own bound: eight of each is 24 checks before run and main. */
static const grd_system sys_eight_of_each = {
    .api_version = GRD_API_VERSION, .name = "checks",
    .states = GRD_STATES(GRD_STATE("INIT", 0, .checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn),
                                   .main_checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn),
                                   .run_checks = GRD_CHECKS(fn, fn, fn, fn, fn, fn, fn, fn))),
};
static const grd_system sys_bad_char = {
    .api_version = GRD_API_VERSION, .name = "badchar",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("A->B", 1)),
};
static const grd_system sys_empty_name = {
    .api_version = GRD_API_VERSION, .name = "empty",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("", 1)),
};
static const grd_system sys_long_name = {
    .api_version = GRD_API_VERSION, .name = "long",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("A234567890123456789012345678901234567890", 1)),
};
static const grd_system sys_max_name = {
    .api_version = GRD_API_VERSION, .name = "max",
    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("A23456789012345678901234567890123456789", 1)),
};
static const grd_system sys_no_states = {.api_version = GRD_API_VERSION, .name = "none"};
static const grd_system sys_no_name = {
    .api_version = GRD_API_VERSION,
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
};
static const grd_system sys_null_edge = {
    .api_version = GRD_API_VERSION, .name = "nulledge",
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
    .edges = GRD_EDGES({"INIT", NULL}),
};
static const grd_system sys_big_priv = {
    .api_version = GRD_API_VERSION, .name = "big", .priv_size = GRD_MAX_PRIV + 1,
    .states = GRD_STATES(GRD_STATE("INIT", 0)),
};

Test(validate, a_good_table)
{
    node_system *s = wrap(&sys_ok);
    cr_assert(s, "%s", err);
    cr_assert_str_eq(node_system_path(s), "");
    const grd_state *menu[4];
    cr_assert_eq(node_system_requestable(s, menu, 4), 2);
    cr_assert_str_eq(menu[0]->name, "A", "by index, not table order");
    node_system_unref(s);
}

Test(validate, checks_are_bounded)
{
    assert_wrap_refused(&sys_nine_checks, "state 'INIT' has more than 8 checks");
    assert_wrap_refused(&sys_nine_main_checks, "state 'INIT' has more than 8 main_checks");
    assert_wrap_refused(&sys_nine_run_checks, "state 'INIT' has more than 8 run_checks");
    node_system *s = wrap(&sys_eight_checks);
    cr_assert(s, "%s", err);
    node_system_unref(s);
    s = wrap(&sys_eight_of_each);
    cr_assert(s, "%s", err);
    node_system_unref(s);
}

Test(validate, state_names)
{
    assert_wrap_refused(&sys_bad_char, "state 1: bad name 'A->B'");
    assert_wrap_refused(&sys_empty_name, "state 1: bad name ''");
    assert_wrap_refused(&sys_long_name, "bad name 'A234567890123456789012345678901234567890'");
    node_system *s = wrap(&sys_max_name);
    cr_assert(s, "39 characters are fine: %s", err);
    node_system_unref(s);
}

Test(validate, missing_parts)
{
    assert_wrap_refused(&sys_no_states, "system 'none': no states");
    assert_wrap_refused(&sys_no_name, "the system has no name");
    assert_wrap_refused(&sys_null_edge, "edge 0 INIT->(null): unknown state '(null)'");
    assert_wrap_refused(&sys_big_priv, "priv_size");
    cr_assert_null(node_system_wrap(NULL, err, sizeof(err)));
    cr_assert_null(node_system_wrap(NULL, NULL, 0), "no error buffer is fine");
}

/* GRD_WEIGHTS: each entry names an edge that exists, once, weighing from
 * GRD_WEIGHT_MIN to GRD_WEIGHT_MAX. */
#define WEIGHTED(...)                                                                              \
    (grd_system)                                                                                   \
    {                                                                                              \
        .api_version = GRD_API_VERSION, .name = "w",                                              \
        .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("A", 1),                              \
                             GRD_STATE("G", 2, .goto_ = true)),                                    \
        .edges = GRD_EDGES({"INIT", "A"}, {"A", "INIT"}, {"INIT", "A"}),                           \
        .weights = GRD_WEIGHTS(__VA_ARGS__)                                                        \
    }

static void assert_weights_refused(grd_system def, const char *want)
{
    assert_wrap_refused(&def, want);
}

static void assert_weights_taken(grd_system def)
{
    node_system *s = wrap(&def);
    cr_assert(s, "%s", err);
    node_system_unref(s);
}

Test(validate, weights)
{
    assert_weights_refused(WEIGHTED({"INIT", "A", 2}, {"A", "NOPE", 2}),
                           "system 'w': weight 1 A->NOPE: unknown state 'NOPE'");
    assert_weights_refused(WEIGHTED({"INIT", NULL, 2}), "weight 0 INIT->(null): unknown state '(null)'");
    assert_weights_refused(WEIGHTED({NULL, "A", 2}), "weight 0 (null)->A: unknown state '(null)'");
    assert_weights_refused(WEIGHTED({"A", "INIT", 2}, {"G", "A", 2}),
                           "weight 1 G->A: no such edge (not in edges, and A is not a goto state)");
    assert_weights_refused(WEIGHTED({"A", "A", 2}),
                           "weight 0 A->A: an edge from a state to itself is never on a path");
    assert_weights_refused(WEIGHTED({"G", "G", 2}), "weight 0 G->G: an edge from a state to itself");
    assert_weights_refused(WEIGHTED({"INIT", "A", 0}),
                           "weight 0 INIT->A: weight 0 is not from 1e-06 to 1e+06");
    assert_weights_refused(WEIGHTED({"INIT", "A", -1}), "weight -1 is not from");
    assert_weights_refused(WEIGHTED({"INIT", "A", 1e-7}), "weight 1e-07 is not from");
    assert_weights_refused(WEIGHTED({"INIT", "A", 1000001}), "weight 1e+06 is not from");
    assert_weights_refused(WEIGHTED({"INIT", "A", NAN}), "weight nan is not from");
    assert_weights_refused(WEIGHTED({"INIT", "A", INFINITY}), "weight inf is not from");
    assert_weights_refused(WEIGHTED({"INIT", "A", 2}, {"A", "G", 2}, {"INIT", "A", 2}),
                           "weight 2 INIT->A: the edge is weighted twice (weights 0 and 2)");
    /* an explicit edge that is also to a goto state is one edge */
    assert_weights_refused(WEIGHTED({"INIT", "G", 2}, {"INIT", "G", 3}), "weighted twice");
    assert_weights_taken(WEIGHTED({"INIT", "A", GRD_WEIGHT_MIN}, {"A", "INIT", GRD_WEIGHT_MAX},
                                  {"A", "G", 5}, {"INIT", "G", 1}));
}

Test(validate, weights_are_bounded)
{
    static grd_state states[GRD_MAX_STATES + 1];
    static char names[GRD_MAX_STATES][8];
    static grd_weight weights[GRD_MAX_WEIGHTS + 2];
    for (int i = 0; i < 70; i++) {
        snprintf(names[i], sizeof(names[i]), i ? "S%d" : "INIT", i);
        states[i] = (grd_state){.name = names[i], .index = i, .goto_ = true};
    }
    for (int i = 0; i <= GRD_MAX_WEIGHTS; i++) /* 70 * 69 > 4096 different edges */
        weights[i] = (grd_weight){names[i / 69], names[(i / 69 + 1 + i % 69) % 70], 2};
    grd_system s = {.api_version = GRD_API_VERSION, .name = "weights", .states = states,
                    .weights = weights};
    assert_wrap_refused(&s, "more than 4096 weights");
    weights[GRD_MAX_WEIGHTS] = (grd_weight){NULL, NULL, 0};
    node_system *ok = wrap(&s);
    cr_assert(ok, "%s", err);
    node_system_unref(ok);
}

Test(validate, states_are_bounded)
{
    static grd_state states[GRD_MAX_STATES + 2];
    static char names[GRD_MAX_STATES + 1][8];
    for (int i = 0; i <= GRD_MAX_STATES; i++) {
        snprintf(names[i], sizeof(names[i]), i ? "S%d" : "INIT", i);
        states[i] = (grd_state){.name = names[i], .index = i};
    }
    grd_system s = {.api_version = GRD_API_VERSION, .name = "many", .states = states};
    cr_assert_null(wrap(&s));
    cr_assert(strstr(err, "more than 256 states"), "%s", err);
    states[GRD_MAX_STATES].name = NULL; /* exactly 256 */
    node_system *ok = wrap(&s);
    cr_assert(ok, "%s", err);
    node_system_unref(ok);
}

Test(validate, edges_are_bounded)
{
    static grd_edge edges[GRD_MAX_EDGES + 2];
    for (int i = 0; i <= GRD_MAX_EDGES; i++)
        edges[i] = (grd_edge){"INIT", "X"};
    grd_system s = {.api_version = GRD_API_VERSION, .name = "edges",
                    .states = GRD_STATES(GRD_STATE("INIT", 0), GRD_STATE("X", 1)), .edges = edges};
    cr_assert_null(wrap(&s));
    cr_assert(strstr(err, "more than 4096 edges"), "%s", err);
    edges[GRD_MAX_EDGES] = (grd_edge){NULL, NULL};
    node_system *ok = wrap(&s);
    cr_assert(ok, "repeated edges are harmless: %s", err);
    node_system_unref(ok);
}

Test(validate, a_goto_graph_of_256_states_finds_paths)
{
    static grd_state states[GRD_MAX_STATES + 1];
    static char names[GRD_MAX_STATES][8];
    static grd_edge edges[GRD_MAX_STATES];
    for (int i = 0; i < GRD_MAX_STATES; i++) {
        snprintf(names[i], sizeof(names[i]), i ? "S%d" : "INIT", i);
        states[i] = (grd_state){.name = names[i], .index = i, .goto_ = i % 2 == 0};
        if (i)
            edges[i - 1] = (grd_edge){names[i - 1], names[i]};
    }
    grd_system s = {.api_version = GRD_API_VERSION, .name = "chain", .request = "S255",
                    .states = states, .edges = edges};
    node_system *sys = wrap(&s);
    cr_assert(sys, "%s", err);
    node_host host = fake_host();
    node *n = node_new("CHAIN", "H1", sys, NULL, 0, &host, err, sizeof(err));
    cr_assert(n, "%s", err);
    /* INIT -> S254 (goto) -> S255 */
    cr_assert_str_eq(node_target(n)->name, "S254");
    for (int i = 0; i < 4; i++)
        step(n);
    cr_assert(node_done(n));
    node_free(n);
    node_system_unref(sys);
    fake_free();
}
