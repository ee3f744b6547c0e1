/* rng.c — guardsim's random numbers: xoshiro256** seeded through splitmix64.
 *
 * Our own generator rather than rand() or random(): tests need the same trips
 * for the same --seed on every libc, and each model needs a stream of its own
 * (an optic's trips must not move when a bench node is added). A stream is
 * named: its state comes from the seed and the name's FNV-1a hash, expanded
 * by splitmix64 as xoshiro's authors recommend.
 */
#include <math.h>

#include "sim/sim.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3u;
    return h;
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed, const char *name)
{
    /* Mixed once more so that seed ^ hash collisions of nearby seeds and
     * names do not give related streams. */
    uint64_t x = seed;
    x = splitmix64(&x) ^ fnv1a(name);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 never gives four zero words in a row, but xoshiro's only
     * forbidden state costs nothing to rule out. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sim_rng_uniform(struct sim_rng *r) { return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53; }

/* Lemire's multiply-shift: the bias is below n / 2^64, far under anything a
 * simulator could notice, so no rejection loop. */
uint32_t sim_rng_below(struct sim_rng *r, uint32_t n)
{
    return (uint32_t)(((unsigned __int128)sim_rng_next(r) * n) >> 64);
}

double sim_rng_exponential(struct sim_rng *r, double rate)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    return -log(1.0 - sim_rng_uniform(r)) / rate;
}
