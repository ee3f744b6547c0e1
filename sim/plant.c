/* plant.c — which channels guardsim serves, and the tick that moves them.
 *
 * The site file decides: a suspension (sus.c) for every `sus` node's optic=,
 * load channels (bench.c) for every `bench` node's reads= and writes=, and a
 * writable DOUBLE for every `bench` node's chan=. Nodes of other systems
 * need nothing from the plant. The test channels SIM-TEST_* are always there
 * (a known channel of every kind for checking a client).
 *
 * Nodes may share plant channels (two nodes on one optic, two bench nodes
 * reading one chan=), so a channel that already exists is used again rather
 * than refused. Suspensions are made before chan= channels, so a chan= that
 * names a suspension channel reads the suspension's, whatever the order of
 * the file.
 *
 * Everything from the file is checked before use; an error names the file,
 * the node's line, the node and the argument.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

struct sim_plant {
    const struct sim_ctx *c;
    sim_sus **sus;
    unsigned n_sus;
    sim_bench *bench;
    double last_t; /* sim time of the previous tick */
};

int sim_add(const struct sim_ctx *c, const pv_def *def, pv **out, char *err, size_t errlen)
{
    int r = pv_group_add(c->group, def, out);
    if (r < 0)
        snprintf(err, errlen, "cannot serve %s%s: %s", pv_group_prefix(c->group), def->name,
                 pvdb_strerror(r));
    return r;
}

void sim_event(const struct sim_ctx *c, double t, const char *fmt, ...)
{
    if (c->opt->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("guardsim: t=%.3f ", t);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* ---- the test channels ---- */

static const char *const test_enums[] = {"ZERO", "ONE", "TWO", "THREE"};

static int add_test_channels(const struct sim_ctx *c, char *err, size_t errlen)
{
    pv *p;
    pv_def dbl = {.name = "SIM-TEST_DOUBLE", .type = PV_DOUBLE, .precision = 3, .writable = true};
    if (sim_add(c, &dbl, &p, err, errlen) < 0)
        return -1;
    pv_set_double(p, 0);
    pv_def ro = {.name = "SIM-TEST_RO", .type = PV_DOUBLE, .precision = 3};
    if (sim_add(c, &ro, &p, err, errlen) < 0)
        return -1;
    pv_set_double(p, 1.5);
    pv_def str = {.name = "SIM-TEST_STRING", .type = PV_STRING, .writable = true};
    if (sim_add(c, &str, &p, err, errlen) < 0)
        return -1;
    pv_set_string(p, "hello");
    pv_def chars = {.name = "SIM-TEST_CHARS", .type = PV_CHAR, .count = 40, .writable = true};
    if (sim_add(c, &chars, &p, err, errlen) < 0)
        return -1;
    pv_set_string(p, "char array text"); /* the text and its NUL: 16 of the 40 */
    pv_def array = {.name = "SIM-TEST_ARRAY", .type = PV_DOUBLE, .count = 8, .precision = 3,
                    .writable = true};
    if (sim_add(c, &array, &p, err, errlen) < 0)
        return -1;
    double one_to_eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    pv_set_array(p, one_to_eight, 8);
    pv_def en = {.name = "SIM-TEST_ENUM", .type = PV_ENUM, .enums = test_enums, .n_enums = 4,
                 .writable = true};
    if (sim_add(c, &en, &p, err, errlen) < 0)
        return -1;
    pv_set_enum(p, 0);
    pv_def lng = {.name = "SIM-TEST_LONG", .type = PV_LONG, .writable = true};
    if (sim_add(c, &lng, &p, err, errlen) < 0)
        return -1;
    pv_set_long(p, 0);
    return 0;
}

/* ---- the site file's nodes ---- */

/* A node's argument `key`, or NULL. */
static const char *arg(const struct config_node *n, const char *key)
{
    size_t klen = strlen(key);
    for (unsigned i = 0; i < n->n_args; i++)
        if (strncmp(n->args[i], key, klen) == 0 && n->args[i][klen] == '=')
            return n->args[i] + klen + 1;
    return NULL;
}

/* reads= and writes=: absent is 0; otherwise decimal digits, 0..SIM_BENCH_MAX. */
static int count_arg(const struct config *cfg, const struct config_node *n, const char *key,
                     unsigned *out, char *err, size_t errlen)
{
    const char *v = arg(n, key);
    *out = 0;
    if (!v)
        return 0;
    unsigned long x = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9' && x <= SIM_BENCH_MAX; p++)
        x = x * 10 + (unsigned long)(*p - '0');
    if (p == v || *p || x > SIM_BENCH_MAX) {
        snprintf(err, errlen, "%s:%d: node %s: %s = '%.40s': expected a whole number 0..%d",
                 cfg->path, n->line, n->name, key, v, SIM_BENCH_MAX);
        return -1;
    }
    *out = (unsigned)x;
    return 0;
}

/* A chan= suffix: what an EPICS record name may hold, and short enough that
 * <IFO>:<chan> is a name pvdb takes. */
static bool valid_chan(const char *chan, size_t room)
{
    size_t n = strlen(chan);
    if (n < 1 || n > room)
        return false;
    for (const char *p = chan; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("_-+:.;[]<>", *p)))
            return false;
    return true;
}

static int add_sus(sim_plant *p, const struct config *cfg, const struct config_node *n,
                   char *err, size_t errlen)
{
    const char *optic = arg(n, "optic");
    if (!optic || !sim_sus_valid_optic(optic)) {
        snprintf(err, errlen, "%s:%d: node %s: optic = '%.64s': expected 1-60 of A-Z, a-z, 0-9, "
                 "_ and -", cfg->path, n->line, n->name, optic ? optic : "");
        return -1;
    }
    char wd[128];
    snprintf(wd, sizeof(wd), "%s:SUS-%s_WD_STATE", p->c->ifo, optic);
    if (pvdb_find(p->c->db, wd))
        return 0; /* another node's optic: one suspension for both */
    sim_sus **grown = realloc(p->sus, (p->n_sus + 1) * sizeof(*grown));
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->sus = grown;
    if (!(p->sus[p->n_sus] = sim_sus_new(p->c, optic, err, errlen)))
        return -1;
    p->n_sus++;
    return 0;
}

static int add_bench(sim_plant *p, const struct config *cfg, const struct config_node *n,
                     char *err, size_t errlen)
{
    unsigned reads, writes;
    if (count_arg(cfg, n, "reads", &reads, err, errlen) < 0 ||
        count_arg(cfg, n, "writes", &writes, err, errlen) < 0)
        return -1;
    if (sim_bench_add(p->bench, n->name, reads, writes, err, errlen) < 0)
        return -1;
    return 0;
}

static int add_chan(sim_plant *p, const struct config *cfg, const struct config_node *n,
                    char *err, size_t errlen)
{
    const char *chan = arg(n, "chan");
    if (!chan)
        return 0;
    size_t room = PV_NAME_MAX - strlen(p->c->ifo) - 1;
    if (!valid_chan(chan, room)) {
        snprintf(err, errlen, "%s:%d: node %s: chan = '%.64s': expected 1-%zu of A-Z, a-z, 0-9 "
                 "and _-+:.;[]<>", cfg->path, n->line, n->name, chan, room);
        return -1;
    }
    char name[PV_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s:%s", p->c->ifo, chan);
    if (pvdb_find(p->c->db, name))
        return 0; /* read by another node too, or a suspension's */
    pv *pv;
    pv_def def = {.name = chan, .type = PV_DOUBLE, .precision = 3, .writable = true};
    if (sim_add(p->c, &def, &pv, err, errlen) < 0)
        return -1;
    pv_set_double(pv, 0);
    return 0;
}

sim_plant *sim_plant_new(const struct sim_ctx *c, const struct config *cfg, char *err,
                         size_t errlen)
{
    sim_plant *p = calloc(1, sizeof(*p));
    if (!p || !(p->bench = sim_bench_new(c))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->c = c;
    if (add_test_channels(c, err, errlen) < 0)
        goto err;
    /* Three passes, so that what a chan= finds does not depend on the order
     * of the file (see the top of this file). */
    for (unsigned i = 0; i < cfg->n_nodes; i++)
        if (strcmp(cfg->nodes[i].system, "sus") == 0 && add_sus(p, cfg, &cfg->nodes[i], err, errlen) < 0)
            goto err;
    for (unsigned i = 0; i < cfg->n_nodes; i++)
        if (strcmp(cfg->nodes[i].system, "bench") == 0 &&
            add_bench(p, cfg, &cfg->nodes[i], err, errlen) < 0)
            goto err;
    for (unsigned i = 0; i < cfg->n_nodes; i++)
        if (strcmp(cfg->nodes[i].system, "bench") == 0 &&
            add_chan(p, cfg, &cfg->nodes[i], err, errlen) < 0)
            goto err;
    return p;
err:
    sim_plant_free(p);
    return NULL;
}

void sim_plant_start(sim_plant *p)
{
    p->last_t = 0;
    for (unsigned i = 0; i < p->n_sus; i++)
        sim_sus_start(p->sus[i]);
}

void sim_plant_tick(sim_plant *p, double t)
{
    double dt = t - p->last_t;
    p->last_t = t;
    if (dt < 0)
        dt = 0; /* the loop's clock does not go back, but be sure */
    for (unsigned i = 0; i < p->n_sus; i++)
        sim_sus_tick(p->sus[i], t, dt);
    sim_bench_tick(p->bench);
}

void sim_plant_free(sim_plant *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n_sus; i++)
        sim_sus_free(p->sus[i]);
    free(p->sus);
    sim_bench_free(p->bench);
    free(p);
}
