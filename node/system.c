/* system.c — system modules: finding, loading, validating, sharing.
 *
 * A system is a grd_system table that a module exports as GRD_SYSTEM_SYMBOL
 * (or that a program wraps). It is validated once, here, and everything
 * downstream relies on the result: names are unique, non-empty, short and
 * made of A-Z a-z 0-9 _; indexes are unique; INIT exists; every edge names
 * known states; request and nominal, when set, name states; every weight
 * names an existing edge, once, with a weight in range; every array is
 * bounded (states, edges, weights, checks). A refusal names the module and
 * the state, edge or weight at fault. The API version is checked first: the
 * current one or GRD_API_OLDEST (whose grd_system ends before weights, never
 * read for it), nothing else.
 *
 * node_system objects are reference counted: each node holds one, so a
 * module stays mapped while any node runs its code, and the last unref
 * dlcloses it.
 *
 * Loading again: a module whose file is unchanged (same path, device and
 * inode) since it was loaded gives the node_system already loaded, with one
 * more reference. That list mirrors glibc's own table of loaded objects,
 * which is process-wide too, so it is the one static of this folder (the
 * loop is the only thread that loads). It is not just a saving: glibc adds
 * every new name under which it finds a loaded file to that object, for as
 * long as the object stays loaded, and searches all of them on every
 * dlopen; so opening an unchanged module under fresh names, once per node
 * start, grew without bound and slowed every later start.
 *
 * A replaced file (new inode): glibc returns the already loaded object when
 * dlopen is given a path it has loaded before, even if the file has since
 * been replaced. So when the path is still loaded, the module is opened
 * through a fresh symlink in a private temporary folder: a name glibc has
 * not seen, for a file it has not loaded. The symlink and folder are removed
 * at once. Modules rewritten in place (same inode) are not detected, and
 * would crash the code mapped from them anyway.
 *
 * The file on disk: each loaded module keeps its file's mtime, size and
 * content hash from the load, and node_systems_check() (a timer of the
 * supervisor) says when the file no longer holds the code that runs, so
 * operators see code that is installed but not loaded.
 */
#include "node/node_priv.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define API_WEIGHTS 3 /* the API version whose grd_system gained weights */

const grd_state *node_system_at(const node_system *s, int pos)
{
    if (!s || pos < 0 || (unsigned)pos >= s->n_states)
        return NULL;
    return &s->def->states[pos];
}

int node_system_pos(const node_system *s, const char *name)
{
    if (!s || !name)
        return -1;
    /* O(states) with states <= GRD_MAX_STATES: requests and jumps are rare
     * next to cycles, so a hash table would not pay for itself. */
    size_t len = strnlen(name, GRD_NAME_MAX + 1);
    if (len > GRD_NAME_MAX)
        return -1;
    for (unsigned i = 0; i < s->n_states; i++)
        if (strcmp(s->def->states[i].name, name) == 0)
            return (int)i;
    return -1;
}

const grd_state *node_system_state(const node_system *s, const char *name)
{
    return node_system_at(s, node_system_pos(s, name));
}

const grd_system *node_system_def(const node_system *s) { return s ? s->def : NULL; }
const char *node_system_path(const node_system *s) { return s ? s->path : ""; }

unsigned node_system_requestable(const node_system *s, const grd_state **out, unsigned max)
{
    unsigned n = 0;
    if (!s || !out)
        return 0;
    /* Selection by index: repeatedly the smallest index above the last one. */
    long last = (long)INT_MIN - 1;
    while (n < max) {
        const grd_state *best = NULL;
        for (unsigned i = 0; i < s->n_states; i++) {
            const grd_state *st = &s->def->states[i];
            if (st->request && st->index > last && (!best || st->index < best->index))
                best = st;
        }
        if (!best)
            break;
        out[n++] = best;
        last = best->index;
    }
    return n;
}

void node_system_ref(node_system *s)
{
    if (s)
        s->refs++;
}

/* Modules loaded from files, newest first. */
static node_system *loaded;

void node_system_unref(node_system *s)
{
    if (!s || s->refs == 0)
        return;
    if (--s->refs > 0)
        return;
    for (node_system **p = &loaded; *p; p = &(*p)->next_loaded)
        if (*p == s) {
            *p = s->next_loaded;
            break;
        }
    if (s->handle)
        dlclose(s->handle);
    free(s->adj_start);
    free(s->adj_goto);
    free(s->adj);
    free(s->adj_cost);
    free(s->path);
    free(s);
}

/* ---- validation ---- */

bool node_valid_word(const char *name, size_t max)
{
    size_t len = strnlen(name, max + 1);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* A name safe to quote in a message: at most 60 characters, printable. */
static const char *quote(const char *name, char *buf, size_t len)
{
    if (!name)
        return "(null)";
    size_t i = 0;
    for (; name[i] && i < 60 && i + 1 < len; i++)
        buf[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
    buf[i] = '\0';
    if (name[i] && i + 4 < len)
        strcpy(buf + i, "...");
    return buf;
}

/* A GRD_CHECKS list: NULL-terminated within GRD_MAX_CHECKS (each list has
 * its own bound: the engine stops at GRD_MAX_CHECKS per list). */
static int count_checks(const grd_state_fn *checks, const char *state, const char *field,
                        const char *who, char *err, size_t errlen)
{
    for (unsigned c = 0; checks && checks[c]; c++) {
        if (c == GRD_MAX_CHECKS) {
            snprintf(err, errlen, "%s: state '%s' has more than %d %s", who, state,
                     GRD_MAX_CHECKS, field);
            return -1;
        }
    }
    return 0;
}

static int validate_states(node_system *s, const char *who, char *err, size_t errlen)
{
    const grd_system *d = s->def;
    char q[80];
    unsigned n = 0;
    if (!d->states) {
        snprintf(err, errlen, "%s: no states", who);
        return -1;
    }
    for (; d->states[n].name; n++) {
        if (n == GRD_MAX_STATES) {
            snprintf(err, errlen, "%s: more than %d states", who, GRD_MAX_STATES);
            return -1;
        }
    }
    s->n_states = n;
    s->init = s->request = s->nominal = -1;
    for (unsigned i = 0; i < n; i++) {
        const grd_state *st = &d->states[i];
        if (!node_valid_word(st->name, GRD_NAME_MAX)) {
            snprintf(err, errlen,
                     "%s: state %u: bad name '%s' (1-%d characters of A-Z, a-z, 0-9, _)", who, i,
                     quote(st->name, q, sizeof(q)), GRD_NAME_MAX);
            return -1;
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(d->states[j].name, st->name) == 0) {
                snprintf(err, errlen, "%s: duplicate state name '%s' (states %u and %u)", who,
                         st->name, j, i);
                return -1;
            }
            if (d->states[j].index == st->index) {
                snprintf(err, errlen, "%s: states '%s' and '%s' have the same index %d", who,
                         d->states[j].name, st->name, st->index);
                return -1;
            }
        }
        if (count_checks(st->checks, st->name, "checks", who, err, errlen) < 0 ||
            count_checks(st->main_checks, st->name, "main_checks", who, err, errlen) < 0 ||
            count_checks(st->run_checks, st->name, "run_checks", who, err, errlen) < 0)
            return -1;
        if (strcmp(st->name, "INIT") == 0)
            s->init = (int)i;
    }
    if (s->init < 0) {
        snprintf(err, errlen, "%s: no INIT state", who);
        return -1;
    }
    return 0;
}

/* Whether both ends name states of s; if not, *bad is the one that does not
 * (NULL when that end is NULL). */
static bool ends_known(const node_system *s, const char *from, const char *to, const char **bad)
{
    *bad = !from || node_system_pos(s, from) < 0 ? from
           : !to || node_system_pos(s, to) < 0   ? to
                                                 : NULL;
    return from && to && !*bad;
}

static int validate_edges(node_system *s, const char *who, char *err, size_t errlen)
{
    const grd_system *d = s->def;
    char q[80];
    unsigned n = 0;
    for (; d->edges && (d->edges[n].from || d->edges[n].to); n++) {
        const grd_edge *e = &d->edges[n];
        if (n == GRD_MAX_EDGES) {
            snprintf(err, errlen, "%s: more than %d edges", who, GRD_MAX_EDGES);
            return -1;
        }
        const char *bad;
        if (!ends_known(s, e->from, e->to, &bad)) {
            char qf[80], qt[80];
            snprintf(err, errlen, "%s: edge %u %s->%s: unknown state '%s'", who, n,
                     quote(e->from, qf, sizeof(qf)), quote(e->to, qt, sizeof(qt)),
                     quote(bad, q, sizeof(q)));
            return -1;
        }
    }
    s->n_edges = n;
    return 0;
}

/* What is wrong with weight i, w, of a system whose graph is built, or NULL;
 * first[k] is 1 + the index of the weight of edge adj[k] so far, 0 for none. */
static const char *weight_fault(const node_system *s, const grd_weight *w, unsigned *first,
                                unsigned i, char *buf, size_t len)
{
    const char *bad;
    char q[80];
    if (!ends_known(s, w->from, w->to, &bad)) {
        snprintf(buf, len, "unknown state '%s'", quote(bad, q, sizeof(q)));
        return buf;
    }
    if (!(w->weight >= GRD_WEIGHT_MIN && w->weight <= GRD_WEIGHT_MAX)) { /* NaN too */
        snprintf(buf, len, "weight %g is not from %g to %g", w->weight, GRD_WEIGHT_MIN,
                 GRD_WEIGHT_MAX);
        return buf;
    }
    int from = node_system_pos(s, w->from), to = node_system_pos(s, w->to);
    if (from == to)
        return "an edge from a state to itself is never on a path";
    int k = graph_edge(s, from, to);
    if (k < 0) {
        snprintf(buf, len, "no such edge (not in edges, and %s is not a goto state)", w->to);
        return buf;
    }
    if (first[k]) {
        snprintf(buf, len, "the edge is weighted twice (weights %u and %u)", first[k] - 1, i);
        return buf;
    }
    first[k] = i + 1;
    return NULL;
}

/* GRD_WEIGHTS, once the graph is built: checked, then applied to it. */
static int validate_weights(node_system *s, const grd_weight *ws, const char *who, char *err,
                            size_t errlen)
{
    unsigned *first = calloc((size_t)s->adj_start[s->n_states] + 1, sizeof(*first));
    if (!first) {
        snprintf(err, errlen, "%s: out of memory", who);
        return -1;
    }
    char qf[80], qt[80], why[160];
    unsigned n = 0;
    for (; ws && (ws[n].from || ws[n].to); n++) {
        if (n == GRD_MAX_WEIGHTS) {
            snprintf(err, errlen, "%s: more than %d weights", who, GRD_MAX_WEIGHTS);
            break;
        }
        const char *fault = weight_fault(s, &ws[n], first, n, why, sizeof(why));
        if (fault) {
            snprintf(err, errlen, "%s: weight %u %s->%s: %s", who, n,
                     quote(ws[n].from, qf, sizeof(qf)), quote(ws[n].to, qt, sizeof(qt)), fault);
            break;
        }
    }
    free(first);
    if (ws && (ws[n].from || ws[n].to)) /* stopped before the end */
        return -1;
    for (unsigned i = 0; i < n; i++) {
        int k = graph_edge(s, node_system_pos(s, ws[i].from), node_system_pos(s, ws[i].to));
        s->adj_cost[k] = (uint64_t)llround(ws[i].weight * (double)GRAPH_UNIT);
    }
    return 0;
}

static int validate(node_system *s, const char *who, char *err, size_t errlen)
{
    const grd_system *d = s->def;
    char q[80];
    if (d->api_version != GRD_API_VERSION && d->api_version != GRD_API_OLDEST) {
        snprintf(err, errlen,
                 "%s: built for guardian API version %u, this guardiand has %d (and still loads "
                 "%d): rebuild it against this guardiand's node/guardian.h",
                 who, d->api_version, GRD_API_VERSION, GRD_API_OLDEST);
        return -1;
    }
    if (!d->name || !d->name[0] || strnlen(d->name, 256) == 256) {
        snprintf(err, errlen, "%s: the system has no name", who);
        return -1;
    }
    if (d->priv_size > GRD_MAX_PRIV) {
        snprintf(err, errlen, "%s: priv_size %zu is larger than %u", who, d->priv_size,
                 GRD_MAX_PRIV);
        return -1;
    }
    if (validate_states(s, who, err, errlen) < 0 || validate_edges(s, who, err, errlen) < 0)
        return -1;
    if (d->request && (s->request = node_system_pos(s, d->request)) < 0) {
        snprintf(err, errlen, "%s: request '%s' is not a state", who, quote(d->request, q, sizeof(q)));
        return -1;
    }
    if (d->nominal && (s->nominal = node_system_pos(s, d->nominal)) < 0) {
        snprintf(err, errlen, "%s: nominal '%s' is not a state", who, quote(d->nominal, q, sizeof(q)));
        return -1;
    }
    if (graph_build(s) != NODE_OK) {
        snprintf(err, errlen, "%s: out of memory", who);
        return -1;
    }
    /* A version 2 grd_system ends before weights: not a field to read. */
    return validate_weights(s, d->api_version >= API_WEIGHTS ? d->weights : NULL, who, err, errlen);
}

/* A new node_system for def (one reference), validated; NULL with err. */
static node_system *system_new(const grd_system *def, void *handle, const char *path,
                               const char *who, char *err, size_t errlen)
{
    node_system *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path))) {
        free(s);
        snprintf(err, errlen, "%s: out of memory", who);
        return NULL;
    }
    s->def = def;
    s->refs = 1;
    if (validate(s, who, err, errlen) < 0) {
        node_system_unref(s); /* does not dlclose: the handle is not ours yet */
        return NULL;
    }
    s->handle = handle;
    return s;
}

node_system *node_system_wrap(const grd_system *sys, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen)
        err = dummy, errlen = sizeof(dummy);
    if (!sys) {
        snprintf(err, errlen, "no system");
        return NULL;
    }
    char who[300], q[80];
    snprintf(who, sizeof(who), "system '%s'", sys->name ? quote(sys->name, q, sizeof(q)) : "");
    return system_new(sys, NULL, "", who, err, errlen);
}

/* ---- loading ---- */

/* dlerror() names the file it was given; say the module's own path. */
static void dl_failed(const char *path, const char *opened, char *err, size_t errlen)
{
    const char *why = dlerror();
    size_t olen = strlen(opened);
    if (!why)
        why = "cannot load";
    else if (strncmp(why, opened, olen) == 0 && why[olen] == ':')
        why += olen + 1 + (why[olen + 1] == ' ');
    snprintf(err, errlen, "%s: %s", path, why);
}

/* Open a module file, newly loaded if the file changed since it was loaded
 * under this path (see the top of the file). */
static void *open_module(const char *path, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (!h) {
        if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL)))
            dl_failed(path, path, err, errlen);
        return h;
    }
    dlclose(h); /* RTLD_NOLOAD counted a reference */

    char real[PATH_MAX];
    if (!realpath(path, real)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX], alias[PATH_MAX + 32];
    if (snprintf(dir, sizeof(dir), "%s/guardiand-load-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
            (int)sizeof(dir) ||
        !mkdtemp(dir)) {
        snprintf(err, errlen, "%s: cannot reload (temporary folder: %s)", path, strerror(errno));
        return NULL;
    }
    snprintf(alias, sizeof(alias), "%s/module.so", dir);
    h = NULL;
    if (symlink(real, alias) < 0)
        snprintf(err, errlen, "%s: cannot reload (symlink: %s)", path, strerror(errno));
    else if (!(h = dlopen(alias, RTLD_NOW | RTLD_LOCAL)))
        dl_failed(path, alias, err, errlen);
    unlink(alias);
    rmdir(dir);
    return h;
}

/* ---- the module file on disk (node.h, "modified, not loaded") ---- */

int node_file_hash(const char *path, uint64_t *hash, struct timespec *mtime, uint64_t *size,
                   ino_t *ino)
{
    if (!path || !hash || !mtime || !size) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int bad = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
    if (bad) {
        close(fd);
        errno = bad;
        return -1;
    }
    uint64_t h = 14695981039346656037ull; /* FNV-1a, 64 bits */
    unsigned char buf[64 * 1024];
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        for (ssize_t i = 0; i < r; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    }
    close(fd);
    *hash = h;
    *mtime = st.st_mtim;
    *size = (uint64_t)st.st_size;
    if (ino)
        *ino = st.st_ino;
    return 0;
}

/* The file as loaded: hashed once (node_systems_check compares with it). */
static void module_record(node_system *s)
{
    struct module_file *f = &s->loaded_file;
    f->valid = node_file_hash(s->path, &f->hash, &f->mtime, &f->size, &f->ino) == 0;
    s->seen_file = *f;
    s->module_state = NODE_MODULE_SAME;
}

static bool same_stat(const struct module_file *f, const struct stat *st)
{
    /* The inode too: a file replaced by one of the same size and mtime
     * (rsync -t, install -p) is read again. */
    return f->valid && f->ino == st->st_ino && f->size == (uint64_t)st->st_size &&
           f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Look at s's file: one stat, and a read only if its inode, mtime or size moved
 * since the last look (a touch is read once, then known). */
static void module_look(node_system *s)
{
    struct stat st;
    struct module_file *seen = &s->seen_file;
    if (stat(s->path, &st) < 0 || !S_ISREG(st.st_mode)) {
        seen->valid = false;
        return;
    }
    if (same_stat(seen, &st))
        return;
    if (same_stat(&s->loaded_file, &st)) {
        *seen = s->loaded_file;
        return;
    }
    seen->valid = node_file_hash(s->path, &seen->hash, &seen->mtime, &seen->size,
                                 &seen->ino) == 0;
}

static enum node_module_state module_verdict(const node_system *s)
{
    if (!s->seen_file.valid)
        return NODE_MODULE_MISSING;
    /* A module that could not be read at load (valid false) has no hash to
     * compare: only a file that is back counts, as unchanged. */
    if (s->loaded_file.valid && s->seen_file.hash != s->loaded_file.hash)
        return NODE_MODULE_CHANGED;
    return NODE_MODULE_SAME;
}

unsigned node_systems_check(void)
{
    unsigned changed = 0;
    for (node_system *s = loaded; s; s = s->next_loaded) {
        /* Old and new code of one module are both loaded while nodes run
         * either: the path is looked at once, by its newest system. */
        node_system *first = loaded;
        while (first != s && strcmp(first->path, s->path) != 0)
            first = first->next_loaded;
        if (first == s)
            module_look(s);
        else
            s->seen_file = first->seen_file;
        enum node_module_state st = module_verdict(s);
        changed += st != s->module_state;
        s->module_state = st;
    }
    return changed;
}

void node_system_module(const node_system *s, struct node_module *out)
{
    if (!out)
        return;
    *out = (struct node_module){.path = "", .state = NODE_MODULE_NONE};
    if (!s || !s->path[0])
        return;
    out->path = s->path;
    out->mtime = (double)s->loaded_file.mtime.tv_sec + s->loaded_file.mtime.tv_nsec * 1e-9;
    out->size = s->loaded_file.size;
    out->hash = s->loaded_file.hash;
    out->state = s->module_state;
}

const char *const node_module_state_names[NODE_MODULE_MISSING + 1] = {"none", "same", "changed",
                                                                       "missing"};

const char *node_module_state_text(enum node_module_state st)
{
    switch (st) {
    case NODE_MODULE_CHANGED:
        return "module changed on disk since it was loaded";
    case NODE_MODULE_MISSING:
        return "module missing";
    default:
        return "";
    }
}

/* The first <dir>/<name>.so of the search path into buf, and its file into
 * *st; false if none. */
static bool find_module(const char *name, const char *search_path, char *buf, size_t len,
                        struct stat *st)
{
    const char *p = search_path;
    while (*p) {
        size_t dl = strcspn(p, ":");
        if (dl > 0 && snprintf(buf, len, "%.*s/%s.so", (int)dl, p, name) < (int)len) {
            if (stat(buf, st) == 0 && S_ISREG(st->st_mode))
                return true;
        }
        p += dl;
        if (*p == ':')
            p++;
    }
    return false;
}

node_system *node_system_load(const char *name, const char *search_path, char *err, size_t errlen)
{
    char dummy[1], q[80];
    if (!err || !errlen)
        err = dummy, errlen = sizeof(dummy);
    if (!name_valid_system(name)) {
        snprintf(err, errlen, "bad system name '%s'", quote(name, q, sizeof(q)));
        return NULL;
    }
    if (!search_path)
        search_path = "";
    char path[PATH_MAX];
    struct stat st;
    if (!find_module(name, search_path, path, sizeof(path), &st)) {
        snprintf(err, errlen, "system %s: no %s.so in the search path '%s'", name, name,
                 search_path);
        return NULL;
    }
    for (node_system *s = loaded; s; s = s->next_loaded)
        if (s->dev == st.st_dev && s->ino == st.st_ino && strcmp(s->path, path) == 0) {
            node_system_ref(s);
            return s;
        }
    void *h = open_module(path, err, errlen);
    if (!h)
        return NULL;
    dlerror();
    const grd_system *def = dlsym(h, GRD_SYSTEM_SYMBOL);
    if (!def) {
        snprintf(err, errlen, "%s: no symbol %s: not a guardiand system (GRD_SYSTEM missing?)",
                 path, GRD_SYSTEM_SYMBOL);
        dlclose(h);
        return NULL;
    }
    node_system *s = system_new(def, h, path, path, err, errlen);
    if (!s) {
        dlclose(h);
        return NULL;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    module_record(s);
    s->next_loaded = loaded;
    loaded = s;
    return s;
}
