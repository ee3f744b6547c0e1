/* main.c — guardiand: one process, one libev loop, one CA server, many nodes.
 *
 * Start-up order: options and the configuration file, the PV database, the
 * nodes (a node that cannot start is reported and skipped; the others run),
 * the supervisor channels, then the CA server; a "ready" line on stderr once
 * every node is served. SIGTERM and SIGINT end the loop; everything is torn
 * down in reverse order, so a clean exit leaks nothing (the sanitizer runs
 * check that).
 *
 * SIGHUP (and `guardctl reload`) reads the configuration file again and
 * applies its node list through lifecycle.c: nodes new to the file start,
 * nodes gone from it stop (their channels disconnect from clients), nodes
 * whose system or arguments changed restart, and nodes that failed to start
 * before are tried again. The IFO and the rate need a restart; a file that
 * does not parse, or drops most nodes (lifecycle.c), changes nothing.
 *
 * `guardiand --check-config FILE` reads FILE as a start would and says
 * whether it is good (file:line of the first mistake) without running
 * anything.
 *
 * `guardiand --run SYSTEM STATE [REQUEST]` runs one state (or the path from
 * STATE to REQUEST) of a system without serving channels, like Guardian's
 * `guardian MODULE STATE [REQUEST]`, for testing a system.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "store/store.h"
#include "supervisor/access.h"
#include "supervisor/crash.h"
#include "ctl/ctl.h"
#include "supervisor/notify.h"
#include "supervisor/sup.h"

struct options {
    const char *config;
    const char *ifo, *systems, *database;
    const char *control_socket; /* --control-socket PATH */
    double rate;
    bool demo;
    unsigned demo_count;
    long port; /* 0: from the environment */
    bool no_repeater;
    bool run;  /* --run SYSTEM STATE [REQUEST] [key=value...] */
    char **run_args;
    int n_run_args;
    const char *plant[64];   /* --plant CHAN=VALUE, applied in order */
    unsigned n_plant;
    bool simulate_plant;     /* --simulate-plant (or --plant) */
    bool force;              /* --force: apply a file that drops most nodes */
    const char *check;       /* --check-config FILE */
};

static void usage(FILE *f)
{
    fputs("usage: guardiand [--config FILE] [options]\n"
          "       guardiand --run SYSTEM STATE [REQUEST] [key=value...] [--systems PATH]\n"
          "\n"
          "Runs Guardian-style automation nodes on one event loop and serves their\n"
          "channels over EPICS Channel Access.\n"
          "\n"
          "options:\n"
          "  -c, --config FILE   configuration file (see etc/guardiand.ini)\n"
          "  --ifo IFO           override the configuration's IFO prefix\n"
          "  --systems PATH      override the system search path (dirs separated by ':')\n"
          "  --rate HZ           override the node cycle rate (default 16)\n"
          "  --database PATH     override the database path (the crash journal follows it)\n"
          "  --port P            CA server port (overrides EPICS_CAS_SERVER_PORT)\n"
          "  --control-socket PATH  guardctl's socket (overrides control_socket)\n"
          "  --no-repeater       do not serve a CA repeater on the beacon port\n"
          "  --demo              also serve the demo PV set (docs/demo-pvs.md)\n"
          "  --demo-count N      number of DEMO:N:<i> PVs (default 1000)\n"
          "  --run               run SYSTEM from STATE (to REQUEST) without channels;\n"
          "                      exits 0 when done, 1 on a state error\n"
          "  --simulate-plant    simulate plant channels in-process instead of reaching\n"
          "                      them over CA (tests; config simulate_plant)\n"
          "  --plant CHAN=VALUE  start a simulated plant channel at VALUE (repeatable;\n"
          "                      implies --simulate-plant)\n"
          "  --force             apply the configuration file even if it drops most of the\n"
          "                      nodes it named before (else they run on as they were)\n"
          "  --check-config FILE check FILE (and that its systems load) and exit:\n"
          "                      0 good, 2 with file:line of the first mistake\n"
          "  --version           print the version and exit\n"
          "  -h, --help          this text\n"
          "\n"
          "The CA server honours EPICS_CAS_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST,\n"
          "EPICS_CAS_IGNORE_ADDR_LIST, EPICS_CAS_BEACON_ADDR_LIST,\n"
          "EPICS_CAS_AUTO_BEACON_ADDR_LIST, EPICS_CAS_BEACON_PORT, EPICS_CAS_BEACON_PERIOD,\n"
          "EPICS_CA_MAX_ARRAY_BYTES and EPICS_CA_AUTO_ARRAY_BYTES. Plant channels are\n"
          "reached through libca, which honours EPICS_CA_ADDR_LIST, EPICS_CA_AUTO_ADDR_LIST\n"
          "and the other EPICS_CA_* variables (config plant_addr_list sets the list).\n"
          "\n"
          "Signals: SIGTERM/SIGINT shut down cleanly; SIGHUP reads the configuration\n"
          "file again and starts, stops or restarts nodes to match it.\n",
          f);
}

static int parse_long(const char *opt, const char *text, long min, long max, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > max) {
        sup_log(SUP_ERR, "%s: expected %ld..%ld, got '%s'", opt, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 to go on, 1 to exit 0 (help, version), -1 to exit 2. */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum { O_IFO = 256, O_SYSTEMS, O_RATE, O_DATABASE, O_PORT, O_NOREP, O_DEMO, O_DEMO_COUNT,
           O_RUN, O_VERSION, O_PLANT, O_CONTROL_SOCKET, O_SIMULATE, O_FORCE, O_CHECK };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},  {"ifo", required_argument, NULL, O_IFO},
        {"systems", required_argument, NULL, O_SYSTEMS}, {"rate", required_argument, NULL, O_RATE},
        {"database", required_argument, NULL, O_DATABASE},
        {"port", required_argument, NULL, O_PORT}, {"no-repeater", no_argument, NULL, O_NOREP},
        {"demo", no_argument, NULL, O_DEMO},       {"demo-count", required_argument, NULL, O_DEMO_COUNT},
        {"run", no_argument, NULL, O_RUN},         {"version", no_argument, NULL, O_VERSION},
        {"plant", required_argument, NULL, O_PLANT},
        {"simulate-plant", no_argument, NULL, O_SIMULATE},
        {"force", no_argument, NULL, O_FORCE},
        {"check-config", required_argument, NULL, O_CHECK},
        {"control-socket", required_argument, NULL, O_CONTROL_SOCKET},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    *o = (struct options){.demo_count = 1000};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case O_IFO:
            if (!name_valid_ifo(optarg)) {
                sup_log(SUP_ERR, "--ifo: expected 1-8 characters of A-Z, 0-9");
                return -1;
            }
            o->ifo = optarg;
            break;
        case O_SYSTEMS: o->systems = optarg; break;
        case O_DATABASE: o->database = optarg; break;
        case O_CONTROL_SOCKET: o->control_socket = optarg; break;
        case O_RATE: {
            char *end;
            o->rate = strtod(optarg, &end);
            if (end == optarg || *end || !(o->rate >= 0.1 && o->rate <= 1000)) {
                sup_log(SUP_ERR, "--rate: expected 0.1..1000 Hz, got '%s'", optarg);
                return -1;
            }
            break;
        }
        case O_PORT:
            if (parse_long("--port", optarg, 1, 65535, &o->port) < 0)
                return -1;
            break;
        case O_NOREP: o->no_repeater = true; break;
        case O_DEMO: o->demo = true; break;
        case O_DEMO_COUNT:
            if (parse_long("--demo-count", optarg, 0, 1000000, &v) < 0)
                return -1;
            o->demo_count = (unsigned)v;
            break;
        case O_RUN: o->run = true; break;
        case O_SIMULATE: o->simulate_plant = true; break;
        case O_FORCE: o->force = true; break;
        case O_CHECK: o->check = optarg; break;
        case O_PLANT: {
            const char *eq = strchr(optarg, '=');
            char *end = NULL;
            if (eq)
                strtod(eq + 1, &end);
            if (!eq || eq == optarg || end == eq + 1 || *end) {
                sup_log(SUP_ERR, "--plant: expected CHANNEL=NUMBER, got '%s'", optarg);
                return -1;
            }
            if (o->n_plant == sizeof(o->plant) / sizeof(o->plant[0])) {
                sup_log(SUP_ERR, "--plant: at most 64");
                return -1;
            }
            o->plant[o->n_plant++] = optarg;
            o->simulate_plant = true;
            break;
        }
        case O_VERSION: printf("guardiand %s\n", GUARDIAND_VERSION); return 1;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (o->run) {
        if (argc - optind < 2) {
            sup_log(SUP_ERR, "--run needs SYSTEM and STATE");
            return -1;
        }
        o->run_args = argv + optind;
        o->n_run_args = argc - optind;
    } else if (optind < argc) {
        sup_log(SUP_ERR, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    return 0;
}

static int replace(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* The configuration file (or the defaults), then the command line's
 * overrides; -1 with the reason in err. Host names in the access rules are
 * looked up only when !running (before the loop runs); a running daemon
 * reuses those `in_force` has (access.h). */
static int load_config(struct config *cfg, const struct options *o, bool running,
                       const struct access_rules *in_force, char *err, size_t errlen)
{
    if (o->config ? config_load(cfg, o->config, err, errlen) < 0 : config_defaults(cfg) < 0) {
        if (!o->config)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cfg->access && access_resolve(cfg->access, in_force, !running, err, errlen) < 0)
        return -1;
    if ((o->ifo && replace(&cfg->ifo, o->ifo)) || (o->systems && replace(&cfg->systems, o->systems)) ||
        (o->database && replace(&cfg->database, o->database)) ||
        (o->control_socket && replace(&cfg->control_socket, o->control_socket))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (o->rate)
        cfg->rate = o->rate;
    if (o->simulate_plant)
        cfg->simulate_plant = true;
    /* Another database (a test run, say) keeps its crash journal beside it,
     * not in the configured one. */
    if (o->database) {
        free(cfg->crash_journal);
        cfg->crash_journal = NULL;
    }
    return 0;
}

/* The plant nodes reach: libca's address list from the configuration (read
 * by libca when its context is created, on the first CA channel), or the
 * in-process simulation, said once since nothing else would show it. */
static int start_plant(sup *s)
{
    char err[512];
    if (s->cfg.plant_addr_list && setenv("EPICS_CA_ADDR_LIST", s->cfg.plant_addr_list, 1) < 0)
        return -1;
    if (s->cfg.plant_auto_addr_list >= 0 &&
        setenv("EPICS_CA_AUTO_ADDR_LIST", s->cfg.plant_auto_addr_list ? "YES" : "NO", 1) < 0)
        return -1;
    if (sup_plant_init(s, err, sizeof(err)) < 0) {
        sup_log(SUP_ERR, "plant: %s", err);
        return -1;
    }
    if (s->cfg.simulate_plant)
        sup_log(SUP_WARNING, "plant: SIMULATED in this process (simulate_plant): channels "
                             "that nothing here serves are created as local PVs, not reached over CA");
    return 0;
}

/* Below this many descriptors a site-sized daemon runs short (see below). */
#define FD_LIMIT_LOW 4096

/* Every CA circuit and control connection holds a descriptor (plant
 * channels will too), and the usual soft limit of 1024 is far below what a
 * site needs, so the soft limit is raised to the hard one (the unit sets
 * LimitNOFILE). The loop uses epoll, which has no FD_SETSIZE ceiling.
 * Nothing is said unless the limit stays low or cannot be raised. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max && rl.rlim_max != RLIM_INFINITY) {
        struct rlimit up = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
        else
            sup_log(SUP_ERR, "cannot raise the open-files limit from %llu to %llu: %s",
                    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                    strerror(errno));
    }
    if (rl.rlim_cur < FD_LIMIT_LOW)
        sup_log(SUP_WARNING,
                "only %llu open files allowed (RLIMIT_NOFILE): CA circuits and control "
                "connections beyond that are refused (LimitNOFILE in the unit, ulimit -Hn "
                "otherwise)", (unsigned long long)rl.rlim_cur);
}

static int last_signal; /* the signal that ended the loop, for --run's exit status */

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    last_signal = w->signum;
    sup_log(SUP_NOTICE, "signal %d: shutting down", w->signum);
    ev_break(loop, EVBREAK_ALL);
}

/* ---- SIGHUP and guardctl reload: apply the configuration file again ---- */

static const struct options *the_options; /* for reread_config: set once, in main */

static int reread_config(sup *s, struct config *out, char *err, size_t errlen)
{
    return load_config(out, the_options, true, s->cfg.access, err, errlen);
}

/* SIGHUP, told to systemd (`systemctl reload` waits for the READY=1; a
 * failure shows in its STATUS=, see notify.c). */
static void reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop, (void)revents;
    sup *s = w->data;
    notify_reloading(s->notify);
    struct life_report r = {0};
    life_reload(s, "SIGHUP", false, &r);
    life_report_free(&r);
    notify_ready(s->notify, s->n_nodes, -1);
}

/* --check-config FILE: the file as a start would read it, and its systems
 * loaded (as a start would, so a missing or broken module shows here). */
static int check_config(const struct options *o)
{
    struct options copy = *o;
    copy.config = o->check;
    struct config cfg;
    char err[1024];
    if (load_config(&cfg, &copy, false, NULL, err, sizeof(err)) < 0) {
        sup_log(SUP_ERR, "%s", err);
        config_free(&cfg);
        return 2;
    }
    int bad = 0;
    for (unsigned i = 0; i < cfg.n_nodes; i++) {
        node_system *sys = node_system_load(cfg.nodes[i].system, cfg.systems, err, sizeof(err));
        if (!sys) {
            sup_log(SUP_ERR, "%s: node %s: %s", o->check, cfg.nodes[i].name, err);
            bad++;
        } else {
            node_system_unref(sys);
        }
    }
    if (!bad)
        printf("%s: good: IFO %s, %u nodes\n", o->check, cfg.ifo, cfg.n_nodes);
    config_free(&cfg);
    return bad ? 2 : 0;
}

static void sup_teardown(sup *s)
{
    sup_medm_stop(s);
    notify_free(s->notify); /* its timer, before the loop goes */
    s->notify = NULL;
    ctl_free(s->ctl); /* its clients first: they may follow node logs */
    s->ctl = NULL;
    sched_stop(s);
    sup_module_watch_stop(s);
    persist_close(s, true); /* a controlled exit is a clean one */
    cas_free(s->ca);
    cas_repeater_free(s->repeater);
    supchan_free(s->supchan);
    sup_nodes_free(s);
    life_forget_logs(s);
    life_report_free(&s->last_reload);
    sup_plant_free(s);
    demo_free(s->demo);
    pvdb_free(s->db);
    ev_signal_stop(s->loop, &s->sigterm);
    ev_signal_stop(s->loop, &s->sigint);
    ev_loop_destroy(s->loop);
    config_free(&s->cfg);
    sup_log_flush();
}

/* ---- guardiand --run SYSTEM STATE [REQUEST] [key=value...] ---- */

struct run {
    sup *sup;
    node *node;
    ev_timer timer;
    int status;
};

static void run_step(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct run *r = w->data;
    node_step(r->node);
    sup_log_flush();
    /* A jump leaves the path that was asked for: like Guardian, stop there. */
    struct node_transition_info tr[NODE_TRANSITIONS_MAX];
    unsigned nt = node_take_transitions(r->node, tr, NODE_TRANSITIONS_MAX);
    for (unsigned i = 0; i < nt; i++)
        if (tr[i].how == NODE_TRANS_JUMP) {
            sup_log(SUP_NOTICE, "jumped %s->%s: the run ends", tr[i].from, tr[i].to);
            r->status = 1;
            ev_break(loop, EVBREAK_ALL);
            return;
        }
    if (node_error(r->node) == NODE_ERROR_TRUE) {
        r->status = 1;
        ev_break(loop, EVBREAK_ALL);
    } else if (node_done(r->node)) {
        r->status = 0;
        ev_break(loop, EVBREAK_ALL);
    }
}

static int run_system(sup *s, const struct options *o)
{
    const char *system = o->run_args[0], *state = o->run_args[1], *request = NULL;
    int first_arg = 2;
    if (o->n_run_args > 2 && !strchr(o->run_args[2], '=')) {
        request = o->run_args[2];
        first_arg = 3;
    }
    char err[512];
    node_system *sys = node_system_load(system, s->cfg.systems, err, sizeof(err));
    if (!sys) {
        sup_log(SUP_ERR, "%s", err);
        return 2;
    }
    /* A node named after the system, as Guardian does: upper case, and
     * what a node name cannot hold (the . and - of "sus.v2") as _. */
    char name[CONFIG_NAME_MAX];
    snprintf(name, sizeof(name), "%s", system);
    for (char *p = name; *p; p++)
        *p = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : (*p == '.' || *p == '-') ? '_' : *p;
    /* States and path are checked before the node exists: a node starts in
     * INIT and would log a path from there first, which this run never takes. */
    bool state_ok = node_system_state(sys, state) != NULL;
    bool request_ok = !request || node_system_state(sys, request) != NULL;
    node *n = NULL;
    int status = 2;
    if (!state_ok || !request_ok) {
        /* Name only the state that is not there. */
        sup_log(SUP_ERR, "%s: no state %s%s%s in system %s", name, state_ok ? "" : state,
                !state_ok && !request_ok ? " or " : "", request_ok ? "" : request, system);
    } else if (request && !node_system_has_path(sys, state, request)) {
        /* A run that can never arrive fails (1), as one that ends elsewhere does;
         * the states themselves were fine, so it is not a usage error (2). */
        sup_log(SUP_ERR, "%s: no path from %s to %s in system %s", name, state, request, system);
        status = 1;
    } else if (!(n = node_new(name, s->cfg.ifo, sys, (const char *const *)o->run_args + first_arg,
                              (unsigned)(o->n_run_args - first_arg), &s->host, err,
                              sizeof(err)))) {
        sup_log(SUP_ERR, "%s", err);
    } else if (node_start_at(n, state, request) != NODE_OK) {
        sup_log(SUP_ERR, "%s: cannot start in %s", name, state); /* checked above */
    } else {
        struct run r = {.sup = s, .node = n, .status = 130};
        ev_timer_init(&r.timer, run_step, 0, 1.0 / s->cfg.rate);
        r.timer.data = &r;
        ev_timer_start(s->loop, &r.timer);
        ev_run(s->loop, 0);
        ev_timer_stop(s->loop, &r.timer);
        status = last_signal ? 128 + last_signal : r.status;
    }
    node_free(n);
    node_system_unref(sys);
    return status;
}

int main(int argc, char **argv)
{
    struct options opt;
    int r = parse_options(argc, argv, &opt);
    if (r)
        return r > 0 ? 0 : 2;

    /* A client that vanishes must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* We start no child processes, but libca spawns a caRepeater when none
     * holds the repeater port and never reaps it: let the kernel do so. */
    signal(SIGCHLD, SIG_IGN);
    raise_fd_limit();
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (opt.check)
        return check_config(&opt);
    the_options = &opt;
    sup s = {.db_lock_fd = -1};
    char err[1024];
    if (load_config(&s.cfg, &opt, false, NULL, err, sizeof(err)) < 0) {
        sup_log(SUP_ERR, "%s", err);
        config_free(&s.cfg);
        return 2;
    }
    if (opt.config)
        s.reread_config = reread_config;
    struct cas_config cacfg;
    if (!opt.run && cas_config_from_env(&cacfg, err, sizeof(err)) < 0) {
        sup_log(SUP_ERR, "%s", err);
        config_free(&s.cfg);
        return 2;
    }
    if (opt.port)
        cacfg.port = (uint16_t)opt.port;
    cacfg.max_circuits = s.cfg.ca_max_circuits;
    cacfg.max_circuits_per_host = s.cfg.ca_max_circuits_per_host;
    cacfg.max_channels_per_circuit = s.cfg.ca_max_channels_per_circuit;
    cacfg.max_subs_per_channel = s.cfg.ca_max_subs_per_channel;
    cacfg.handshake_timeout = s.cfg.ca_handshake_timeout;

    s.started = sup_now();
    s.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    s.db = pvdb_new();
    if (!s.loop || !s.db) {
        sup_log(SUP_ERR, "cannot create the event loop");
        return 1;
    }
    policy_start(&s); /* before anything can write */
    sup_host_init(&s);
    if (start_plant(&s) < 0) {
        sup_teardown(&s);
        return 2;
    }
    ev_signal_init(&s.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&s.sigint, signal_cb, SIGINT);
    ev_signal_start(s.loop, &s.sigterm);
    ev_signal_start(s.loop, &s.sigint);

    for (unsigned i = 0; i < opt.n_plant; i++) {
        char chan[PV_NAME_MAX + 1];
        const char *eq = strchr(opt.plant[i], '=');
        snprintf(chan, sizeof(chan), "%.*s", (int)(eq - opt.plant[i]), opt.plant[i]);
        if (sup_plant_set(&s, chan, strtod(eq + 1, NULL)) < 0) {
            sup_log(SUP_ERR, "--plant: cannot simulate '%s'", chan);
            sup_teardown(&s);
            return 2;
        }
    }

    if (opt.run) {
        int status = run_system(&s, &opt);
        sup_teardown(&s);
        return status;
    }

    if (opt.demo && !(s.demo = demo_new(&s, opt.demo_count, err, sizeof(err)))) {
        sup_log(SUP_ERR, "%s", err);
        sup_teardown(&s);
        return 1;
    }
    /* The control socket before the database: a second daemon on the same
     * socket must stop before it touches the first one's database. */
    if (!(s.ctl = ctl_new(&s, err, sizeof(err)))) {
        sup_log(SUP_ERR, "%s", err);
        sup_teardown(&s);
        return 2;
    }
    /* The database (the previous run's crashes imported), then crash capture
     * for this run, before any node code runs. */
    if (persist_open(&s, err, sizeof(err)) < 0) {
        sup_log(SUP_ERR, "%s", err);
        sup_teardown(&s);
        return 2;
    }
    struct store_status st = {0};
    if (s.store)
        store_status(s.store, &st);
    /* Without a database the boot is named by its start time in ms, so
     * journal records stay distinct until a later start imports them. */
    int64_t boot = st.boot_id > 0 ? st.boot_id : -(int64_t)(sup_wall() * 1000);
    if (crash_init(s.journal, boot, s.cfg.hang_limit, err, sizeof(err)) < 0)
        sup_log(SUP_WARNING, "%s: crashes will not be recorded", err);
    const char *logbuf;
    const volatile size_t *loglen;
    sup_log_buffer(&logbuf, &loglen);
    crash_pending_output(logbuf, loglen);
    /* A host without EPICS tools has no caRepeater: serve one, unless one
     * runs. Before the nodes: their plant channels start libca, which
     * spawns a caRepeater process when nothing holds the repeater port. */
    if (!opt.no_repeater &&
        !(s.repeater = cas_repeater_new(s.loop, cacfg.beacon_port, err, sizeof(err))))
        sup_log(SUP_WARNING, "no CA repeater of our own (%s): another one serves this host",
                err);
    struct life_report first = {0};
    life_apply(&s, NULL, opt.force, LIFE_BOOT, &first);
    int failed = (int)first.failed;
    if (!first.applied) /* shown by guardctl status as the last reload until one works */
        life_note_reload(&s, &first);
    life_report_free(&first);
    if (!(s.supchan = supchan_new(&s, err, sizeof(err)))) {
        sup_log(SUP_ERR, "%s", err);
        sup_teardown(&s);
        return 1;
    }
    if (!(s.ca = cas_new(s.loop, s.db, &cacfg, err, sizeof(err)))) {
        sup_log(SUP_ERR, "channel access: %s", err);
        sup_teardown(&s);
        return 1;
    }
    ev_signal sighup;
    ev_signal_init(&sighup, reload_cb, SIGHUP);
    sighup.data = &s;
    ev_signal_start(s.loop, &sighup);
    if (sched_start(&s) < 0) {
        sup_log(SUP_ERR, "cannot create the schedule's timer: %s", strerror(errno));
        sup_teardown(&s);
        return 1;
    }

    sup_module_watch_start(&s);
    ctl_start(s.ctl);
    sup_log(SUP_NOTICE, "ready: ca port %u (tcp %u), %u nodes (%d failed), %zu PVs",
            cas_udp_port(s.ca), cas_tcp_port(s.ca), s.n_nodes, failed, pvdb_count(s.db));
    s.notify = notify_new(&s); /* NULL unless run by systemd (Type=notify) */
    notify_ready(s.notify, s.n_nodes, failed);
    ev_run(s.loop, 0);
    notify_stopping(s.notify);
    ev_signal_stop(s.loop, &sighup);
    persist_close(&s, true);
    sup_teardown(&s);
    crash_fini();
    return 0;
}
