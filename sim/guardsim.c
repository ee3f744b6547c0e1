/* guardsim.c — the plant simulator: a CA server of fake front-end channels.
 *
 * guardsim reads a guardiand site file, serves the plant channels its nodes
 * read and write (sim.h says which file does what), and moves them on a
 * tick of --rate Hz: alignment outputs follow their set points, watchdogs
 * trip at random, bench readbacks change. guardiand reaches it like a real
 * plant, over Channel Access through libca; so can any operator's client.
 *
 * It is built from guardiand's own parts: pvdb/ for the channels, ca/ for
 * the server (configured from the EPICS_CAS_* environment as guardiand's is,
 * --port overriding the server port), supervisor/config.c for the site file.
 * One libev loop, no threads, nothing blocking. It serves no CA repeater:
 * guardiand, or EPICS's caRepeater, does that for the host.
 *
 * Start-up: options, the site file, the channels, the CA server, then one
 * line "guardsim: ready: N channels on port P" on stderr (tests and
 * tools/run-demo.sh wait for it). SIGTERM and SIGINT stop it cleanly (exit
 * 0); a bad option exits 2, a bad site file 1, each with a message.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/cas.h"
#include "sim/sim.h"

static void usage(FILE *f)
{
    fputs("usage: guardsim --config FILE [options]\n"
          "\n"
          "Serves the plant channels of a guardiand site file over EPICS Channel Access,\n"
          "moving them like a (very simple) plant.\n"
          "\n"
          "options:\n"
          "  -c, --config FILE    the guardiand site file (its ifo and [node] sections)\n"
          "  --port P             CA server port (overrides EPICS_CAS_SERVER_PORT)\n"
          "  --rate HZ            ticks per second (16)\n"
          "  --tau S              time constant of the alignment outputs (1.0; 0 = at once)\n"
          "  --trip-rate N        watchdog trips per hour per optic, at random (0)\n"
          "  --trip-reset S       a tripped watchdog resets itself after S seconds (0 = never)\n"
          "  --seed N             seed of the random trips and changes (1)\n"
          "  --change F           share of the bench IN channels changed per tick (0.1)\n"
          "  --quiet              no trip and reset lines on stdout\n"
          "  -h, --help           this text\n"
          "\n"
          "channels (<IFO> is the file's ifo):\n"
          "  per sus node, optic=O:\n"
          "    <IFO>:SUS-O_WD_STATE                  ENUM TRIPPED/OK, writable; starts OK\n"
          "    <IFO>:SUS-O_M0_DAMP_{P,Y,L}_GAIN      DOUBLE, writable; 0 after a trip\n"
          "    <IFO>:SUS-O_M0_OPTICALIGN_{P,Y}_OFFSET  DOUBLE urad, writable\n"
          "    <IFO>:SUS-O_M0_OPTICALIGN_{P,Y}_OUTPUT  DOUBLE urad, read-only: follows OFFSET\n"
          "  per bench node X, reads=N writes=M (0..1000) chan=NAME:\n"
          "    <IFO>:BENCH-X_IN0..IN<N-1>            DOUBLE, read-only: --change of them move\n"
          "    <IFO>:BENCH-X_OUT0..OUT<M-1>          DOUBLE, writable\n"
          "    <IFO>:NAME                            DOUBLE, writable\n"
          "  always: <IFO>:SIM-TEST_DOUBLE, _RO (1.5, read-only), _STRING (\"hello\"),\n"
          "    _CHARS (CHAR[40]), _ARRAY (DOUBLE[8], 1..8), _ENUM (ZERO..THREE), _LONG\n"
          "\n"
          "Trips and resets are logged on stdout as \"guardsim: t=SECONDS trip|reset CHANNEL...\".\n"
          "The CA server honours the EPICS_CAS_* variables as guardiand does.\n"
          "Signals: SIGTERM/SIGINT stop it (exit 0).\n",
          f);
}

static int parse_double(const char *opt, const char *text, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= min && v <= max)) {
        fprintf(stderr, "guardsim: %s: expected a number %g..%g, got '%s'\n", opt, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_port(const char *text, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < 1 || v > 65535) {
        fprintf(stderr, "guardsim: --port: expected 1..65535, got '%s'\n", text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_seed(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    /* strtoull takes "-1" (and spaces) without complaint: digits only. */
    if (!(*text >= '0' && *text <= '9') || *end || errno) {
        fprintf(stderr, "guardsim: --seed: expected a whole number 0..%llu, got '%s'\n",
                (unsigned long long)UINT64_MAX, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 to exit 0 (help), -1 to exit 2. */
static int parse_options(int argc, char **argv, struct sim_options *o)
{
    enum { O_PORT = 256, O_RATE, O_TAU, O_TRIP_RATE, O_TRIP_RESET, O_SEED, O_CHANGE, O_QUIET };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, O_PORT},
        {"rate", required_argument, NULL, O_RATE},
        {"tau", required_argument, NULL, O_TAU},
        {"trip-rate", required_argument, NULL, O_TRIP_RATE},
        {"trip-reset", required_argument, NULL, O_TRIP_RESET},
        {"seed", required_argument, NULL, O_SEED},
        {"change", required_argument, NULL, O_CHANGE},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct sim_options){.rate = 16, .tau = 1.0, .change = 0.1, .seed = 1};
    int c, r = 0;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_PORT: r = parse_port(optarg, &o->port); break;
        case O_RATE: r = parse_double("--rate", optarg, 0.1, 1000, &o->rate); break;
        case O_TAU: r = parse_double("--tau", optarg, 0, 1e6, &o->tau); break;
        /* Up to one trip a millisecond per optic: beyond that it is not a watchdog. */
        case O_TRIP_RATE: r = parse_double("--trip-rate", optarg, 0, 3.6e6, &o->trip_rate); break;
        case O_TRIP_RESET: r = parse_double("--trip-reset", optarg, 0, 1e6, &o->trip_reset); break;
        case O_SEED: r = parse_seed(optarg, &o->seed); break;
        case O_CHANGE: r = parse_double("--change", optarg, 0, 1, &o->change); break;
        case O_QUIET: o->quiet = true; break;
        case 'h': usage(stdout); return 1;
        default:
            fputs("guardsim: see guardsim --help\n", stderr);
            return -1;
        }
        if (r < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "guardsim: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (!o->config) {
        fprintf(stderr, "guardsim: --config FILE is required (see --help)\n");
        return -1;
    }
    return 0;
}

struct guardsim {
    struct sim_ctx ctx;
    struct sim_options opt;
    struct config cfg;
    sim_plant *plant;
    cas *ca;
    ev_timer tick;
    ev_signal sigterm, sigint;
};

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    struct guardsim *g = w->data;
    sim_plant_tick(g->plant, sim_time(&g->ctx));
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    fprintf(stderr, "guardsim: signal %d: stopping\n", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void teardown(struct guardsim *g)
{
    struct ev_loop *loop = g->ctx.loop;
    if (loop) {
        ev_timer_stop(loop, &g->tick);
        ev_signal_stop(loop, &g->sigterm);
        ev_signal_stop(loop, &g->sigint);
    }
    if (g->ca)
        cas_free(g->ca);
    sim_plant_free(g->plant);
    if (g->ctx.db)
        pvdb_free(g->ctx.db); /* the channels, with their group */
    if (loop)
        ev_loop_destroy(loop);
    config_free(&g->cfg);
}

int main(int argc, char **argv)
{
    struct guardsim g = {0};
    int r = parse_options(argc, argv, &g.opt);
    if (r)
        return r > 0 ? 0 : 2;

    /* A client that vanishes must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* Trip lines reach a log or a pipe as they happen. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    char err[512];
    if (config_load(&g.cfg, g.opt.config, err, sizeof(err)) < 0) {
        fprintf(stderr, "guardsim: %s\n", err);
        config_free(&g.cfg);
        return 1;
    }
    struct cas_config cacfg;
    if (cas_config_from_env(&cacfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "guardsim: %s\n", err);
        config_free(&g.cfg);
        return 2;
    }
    if (g.opt.port)
        cacfg.port = (uint16_t)g.opt.port;

    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%s:", g.cfg.ifo);
    g.ctx.opt = &g.opt;
    g.ctx.ifo = g.cfg.ifo;
    g.ctx.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    g.ctx.db = pvdb_new();
    g.ctx.group = g.ctx.db ? pvdb_group_new(g.ctx.db, prefix) : NULL;
    if (!g.ctx.loop || !g.ctx.group) {
        fprintf(stderr, "guardsim: cannot create the event loop or the channels\n");
        teardown(&g);
        return 1;
    }
    if (!(g.plant = sim_plant_new(&g.ctx, &g.cfg, err, sizeof(err)))) {
        fprintf(stderr, "guardsim: %s\n", err);
        teardown(&g);
        return 1;
    }
    if (!(g.ca = cas_new(g.ctx.loop, g.ctx.db, &cacfg, err, sizeof(err)))) {
        fprintf(stderr, "guardsim: channel access: %s\n", err);
        teardown(&g);
        return 1;
    }

    ev_signal_init(&g.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&g.sigint, signal_cb, SIGINT);
    ev_signal_start(g.ctx.loop, &g.sigterm);
    ev_signal_start(g.ctx.loop, &g.sigint);
    /* Sim time 0 is now: random events are drawn from here. */
    ev_now_update(g.ctx.loop);
    g.ctx.t0 = ev_now(g.ctx.loop);
    sim_plant_start(g.plant);
    ev_timer_init(&g.tick, tick_cb, 1.0 / g.opt.rate, 1.0 / g.opt.rate);
    g.tick.data = &g;
    ev_timer_start(g.ctx.loop, &g.tick);

    fprintf(stderr, "guardsim: ready: %zu channels on port %u\n", pvdb_count(g.ctx.db),
            cas_udp_port(g.ca));
    ev_run(g.ctx.loop, 0);
    teardown(&g);
    return 0;
}
