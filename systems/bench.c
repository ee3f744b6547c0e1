/* bench.c — a system for load tests: it never settles and never blocks.
 *
 * Node arguments:
 *   period=<seconds>  how long each step lasts (default 1; 0 = one cycle)
 *   chan=<suffix>     optional: a plant channel read every cycle
 *                     (<IFO>:<suffix>), to load the channel path too
 *   reads=<N>         optional (0..1000): plant channels <IFO>:BENCH-<NODE>_IN<i>,
 *                     i = 0..N-1, read every cycle
 *   writes=<M>        optional (0..1000): plant channels <IFO>:BENCH-<NODE>_OUT<k>,
 *                     k = 0..M-1, written on every state change
 *                     (guardsim serves both: README, "guardsim")
 *
 * The graph:  INIT (goto) -> IDLE (goto) -> STEP_A -> STEP_B -> STEP_C -> STEP_A
 * With the default request STEP_A the node cycles for ever: STEP_A waits its
 * period and jumps to STEP_B; STEP_B and STEP_C wait theirs and complete, so
 * the node follows the edges back to STEP_A. Every path, edge, jump and timer
 * of the engine is exercised, with a log line or two per step. Each cycle
 * does a little arithmetic (a few dozen xorshift rounds). Request IDLE to park
 * a node.
 */
#if __has_include("node/guardian.h")
#include "node/guardian.h" /* in the guardiand tree */
#else
#include <guardian.h>
#endif

#include <stdint.h>
#include <stdlib.h>

#define BENCH_CHANS_MAX 1000

struct bench {
    uint64_t x;          /* xorshift state: the "work" */
    unsigned long cycles;
    double sum;          /* of the channel reads */
    double period;
    const char *chan;
    unsigned n_in, n_out;
    const char **in, **out;  /* grd_chan names */
};

/* A count argument: a whole number in 0..BENCH_CHANS_MAX (0 when absent);
 * anything else is an error of the node (guardsim refuses it too). */
static unsigned count_arg(grd_node *n, const char *key)
{
    const char *text = grd_arg(n, key);
    if (!text)
        return 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 0 || v > BENCH_CHANS_MAX) {
        grd_error(n, "%s=%s: expected a whole number from 0 to %d", key, text, BENCH_CHANS_MAX);
        return 0;
    }
    return (unsigned)v;
}

static void bench_init(grd_node *n)
{
    struct bench *b = grd_priv(n);
    b->x = 0x9e3779b97f4a7c15ull;
    b->period = grd_arg_double(n, "period", 1.0);
    if (!(b->period >= 0))
        b->period = 0;
    const char *chan = grd_arg(n, "chan");
    b->chan = chan && *chan ? grd_chan(n, "%s", chan) : NULL;
    b->n_in = count_arg(n, "reads");
    b->n_out = count_arg(n, "writes");
    b->in = b->n_in ? calloc(b->n_in, sizeof(*b->in)) : NULL;
    b->out = b->n_out ? calloc(b->n_out, sizeof(*b->out)) : NULL;
    if (!b->in)
        b->n_in = 0;
    if (!b->out)
        b->n_out = 0;
    for (unsigned i = 0; i < b->n_in; i++)
        b->in[i] = grd_chan(n, "BENCH-%s_IN%u", grd_name(n), i);
    for (unsigned k = 0; k < b->n_out; k++)
        b->out[k] = grd_chan(n, "BENCH-%s_OUT%u", grd_name(n), k);
}

static void bench_fini(grd_node *n)
{
    struct bench *b = grd_priv(n);
    free(b->in);
    free(b->out);
    b->in = b->out = NULL;
    b->n_in = b->n_out = 0;
}

static void work(grd_node *n)
{
    struct bench *b = grd_priv(n);
    for (int i = 0; i < 32; i++) {
        b->x ^= b->x << 13;
        b->x ^= b->x >> 7;
        b->x ^= b->x << 17;
    }
    b->cycles++;
    double v;
    if (b->chan && grd_get_double(n, b->chan, &v) == GRD_OK)
        b->sum += v;
    for (unsigned i = 0; i < b->n_in; i++)
        if (b->in[i] && grd_get_double(n, b->in[i], &v) == GRD_OK)
            b->sum += v;
}

static grd_ret step_main(grd_node *n)
{
    struct bench *b = grd_priv(n);
    grd_timer_start(n, "step", b->period);
    work(n);
    for (unsigned k = 0; k < b->n_out; k++)
        if (b->out[k])
            grd_put(n, b->out[k], (double)b->cycles);
    return GRD_CONTINUE;
}

static grd_ret step_a_run(grd_node *n)
{
    work(n);
    return grd_timer_done(n, "step") ? grd_jump(n, "STEP_B") : GRD_CONTINUE;
}

static grd_ret step_run(grd_node *n)
{
    work(n);
    return grd_timer_done(n, "step") ? GRD_DONE : GRD_CONTINUE;
}

GRD_SYSTEM(bench,
    .request = "STEP_A",
    .priv_size = sizeof(struct bench),
    .node_init = bench_init,
    .node_fini = bench_fini,
    .states = GRD_STATES(
        GRD_STATE("INIT", 0, .goto_ = true),
        GRD_STATE("IDLE", 5, .request = true, .goto_ = true),
        GRD_STATE("STEP_A", 10, .request = true, .main = step_main, .run = step_a_run),
        GRD_STATE("STEP_B", 20, .main = step_main, .run = step_run),
        GRD_STATE("STEP_C", 30, .main = step_main, .run = step_run)),
    .edges = GRD_EDGES({"IDLE", "STEP_A"}, {"STEP_A", "STEP_B"}, {"STEP_B", "STEP_C"},
                       {"STEP_C", "STEP_A"}));
