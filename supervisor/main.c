/* main.c — guardiand: one process, one libev loop, one CA server.
 *
 * Start-up order: options, the PV database, what it serves, then the CA
 * server; a "ready" line on stderr once every socket is bound. SIGTERM and
 * SIGINT end the loop; everything is then torn down in reverse order, so a
 * clean exit leaks nothing (the sanitizer runs check that).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

#define GUARDIAND_VERSION "0.1.0"

struct options {
    bool demo;
    unsigned demo_count;
    long port; /* 0: from the environment */
    bool no_repeater;
};

static void usage(FILE *f)
{
    fputs("usage: guardiand [options]\n"
          "\n"
          "Runs Guardian-style automation nodes on one event loop and serves their\n"
          "channels over EPICS Channel Access.\n"
          "\n"
          "options:\n"
          "  --demo              serve the demo PV set (docs/demo-pvs.md)\n"
          "  --demo-count N      number of DEMO:N:<i> PVs (default 1000)\n"
          "  --port P            CA server port (overrides EPICS_CAS_SERVER_PORT)\n"
          "  --no-repeater       do not serve a CA repeater on the beacon port\n"
          "  --version           print the version and exit\n"
          "  -h, --help          this text\n"
          "\n"
          "The CA server honours EPICS_CAS_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST,\n"
          "EPICS_CAS_IGNORE_ADDR_LIST, EPICS_CAS_BEACON_ADDR_LIST,\n"
          "EPICS_CAS_AUTO_BEACON_ADDR_LIST, EPICS_CAS_BEACON_PORT, EPICS_CAS_BEACON_PERIOD,\n"
          "EPICS_CA_MAX_ARRAY_BYTES and EPICS_CA_AUTO_ARRAY_BYTES.\n",
          f);
}

static int parse_uint(const char *text, long min, long max, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 to run, 1 to exit 0 (help, version), -1 to exit 2. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"demo", no_argument, NULL, 'd'},      {"demo-count", required_argument, NULL, 'n'},
        {"port", required_argument, NULL, 'p'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},      {"no-repeater", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){.demo_count = 1000};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->demo = true; break;
        case 'n':
            if (parse_uint(optarg, 0, 1000000, &v) < 0) {
                fprintf(stderr, "guardiand: --demo-count: expected 0..1000000, got '%s'\n", optarg);
                return -1;
            }
            o->demo_count = (unsigned)v;
            break;
        case 'p':
            if (parse_uint(optarg, 1, 65535, &o->port) < 0) {
                fprintf(stderr, "guardiand: --port: expected 1..65535, got '%s'\n", optarg);
                return -1;
            }
            break;
        case 'R': o->no_repeater = true; break;
        case 'V': printf("guardiand %s\n", GUARDIAND_VERSION); return 1;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "guardiand: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    fprintf(stderr, "guardiand: signal %d: shutting down\n", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

static void sup_teardown(sup *s)
{
    cas_free(s->ca);
    cas_repeater_free(s->repeater);
    demo_free(s->demo);
    pvdb_free(s->db);
    ev_signal_stop(s->loop, &s->sigterm);
    ev_signal_stop(s->loop, &s->sigint);
    ev_loop_destroy(s->loop);
}

int main(int argc, char **argv)
{
    struct options opt;
    int r = parse_options(argc, argv, &opt);
    if (r)
        return r > 0 ? 0 : 2;

    /* A client that vanishes must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    char err[256];
    struct cas_config cfg;
    if (cas_config_from_env(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "guardiand: %s\n", err);
        return 2;
    }
    if (opt.port)
        cfg.port = (uint16_t)opt.port;

    sup s = {0};
    s.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    s.db = pvdb_new();
    if (!s.loop || !s.db) {
        fprintf(stderr, "guardiand: cannot create the event loop\n");
        return 1;
    }
    ev_signal_init(&s.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&s.sigint, signal_cb, SIGINT);
    ev_signal_start(s.loop, &s.sigterm);
    ev_signal_start(s.loop, &s.sigint);

    if (opt.demo && !(s.demo = demo_new(&s, opt.demo_count, err, sizeof(err)))) {
        fprintf(stderr, "guardiand: %s\n", err);
        sup_teardown(&s);
        return 1;
    }
    if (!(s.ca = cas_new(s.loop, s.db, &cfg, err, sizeof(err)))) {
        fprintf(stderr, "guardiand: channel access: %s\n", err);
        sup_teardown(&s);
        return 1;
    }
    if (opt.demo)
        cas_set_access(s.ca, demo_access, s.demo);
    /* A host without EPICS tools has no caRepeater: serve one, unless one runs. */
    if (!opt.no_repeater && !(s.repeater = cas_repeater_new(s.loop, cfg.beacon_port, err, sizeof(err))))
        fprintf(stderr, "guardiand: no CA repeater of our own (%s): another one serves this host\n",
                err);

    fprintf(stderr, "guardiand: ready: ca port %u (tcp %u), %zu PVs\n", cas_udp_port(s.ca),
            cas_tcp_port(s.ca), pvdb_count(s.db));
    ev_run(s.loop, 0);
    sup_teardown(&s);
    return 0;
}
