/* bench.c — the load channels of `bench` nodes.
 *
 * A bench node X with reads=N and writes=M gets <IFO>:BENCH-X_IN0..IN<N-1>
 * (read-only DOUBLE: the plant's readbacks) and <IFO>:BENCH-X_OUT0..OUT<M-1>
 * (writable DOUBLE: its set points). Each tick a share --change of all IN
 * channels, picked at random, gets a new value and is posted: that is the
 * load a node host sees from a busy plant (1000 nodes x 20 channels at
 * 16 Hz: 2000 changes a tick).
 *
 * Cost: a tick picks its k channels with k steps of a Fisher-Yates shuffle
 * of the IN array (a uniform choice without repeats, O(k), nothing
 * allocated), then one pv_set_double() each; channels nobody watches cost
 * no more than storing the value.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim/sim.h"

struct sim_bench {
    const struct sim_ctx *c;
    pv **in;        /* every IN channel; shuffled in place by the ticks */
    size_t n_in, cap_in;
    struct sim_rng rng;
    double owed;    /* the fraction of a change carried to the next tick */
};

sim_bench *sim_bench_new(const struct sim_ctx *c)
{
    sim_bench *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->c = c;
    sim_rng_seed(&b->rng, c->opt->seed, "bench");
    return b;
}

static int add_double(sim_bench *b, const char *name, bool writable, pv **out, char *err,
                      size_t errlen)
{
    pv_def def = {.name = name, .type = PV_DOUBLE, .precision = 3, .writable = writable};
    if (sim_add(b->c, &def, out, err, errlen) < 0)
        return -1;
    pv_set_double(*out, 0);
    return 0;
}

int sim_bench_add(sim_bench *b, const char *node, unsigned reads, unsigned writes, char *err,
                  size_t errlen)
{
    /* sim_rng_below() picks among at most 2^32 channels. */
    if (reads > SIM_BENCH_MAX || writes > SIM_BENCH_MAX || b->n_in + reads > UINT32_MAX) {
        snprintf(err, errlen, "node %s: too many bench channels", node);
        return -1;
    }
    if (b->n_in + reads > b->cap_in) {
        size_t cap = b->cap_in ? b->cap_in : 1024;
        while (cap < b->n_in + reads)
            cap *= 2;
        pv **grown = realloc(b->in, cap * sizeof(*grown));
        if (!grown) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        b->in = grown;
        b->cap_in = cap;
    }
    char name[128];
    for (unsigned i = 0; i < reads; i++) {
        snprintf(name, sizeof(name), "BENCH-%s_IN%u", node, i);
        if (add_double(b, name, false, &b->in[b->n_in], err, errlen) < 0)
            return -1;
        b->n_in++;
    }
    for (unsigned i = 0; i < writes; i++) {
        pv *out;
        snprintf(name, sizeof(name), "BENCH-%s_OUT%u", node, i);
        if (add_double(b, name, true, &out, err, errlen) < 0)
            return -1;
    }
    return 0;
}

size_t sim_bench_inputs(const sim_bench *b) { return b->n_in; }

void sim_bench_tick(sim_bench *b)
{
    size_t n = b->n_in;
    b->owed += b->c->opt->change * (double)n;
    size_t k = (size_t)b->owed;
    if (k > n)
        k = n;
    b->owed -= (double)k;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + sim_rng_below(&b->rng, (uint32_t)(n - i));
        pv *pick = b->in[j];
        b->in[j] = b->in[i];
        b->in[i] = pick;
        pv_set_double(pick, sim_rng_uniform(&b->rng));
    }
}

void sim_bench_free(sim_bench *b)
{
    if (!b)
        return;
    free(b->in);
    free(b);
}
