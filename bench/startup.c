/* startup.c — bench-startup: how long guardiand takes from exec to serving every restored
 * node over Channel Access.
 *
 * A configuration of N bench nodes (default 1000) and a fresh database in a temporary folder.
 * A first run seeds the registry; every node's REQUEST is then set to STEP_B over CA, so that
 * the later runs restore something that is not the default; the first run is stopped with
 * SIGTERM. Then RUNS timed runs: exec -> the "ready" line, and exec -> all N STATE channels
 * connected through libca (the client's own context creation included), after which every
 * node's REQUEST is read back and must be STEP_B (a wrong one is reported as a note).
 * Prints figures; asserts nothing about timings (target: all 1000 served within 1 s).
 *
 * Usage: bench-startup [--nodes N] [--runs R]
 * The daemon is $GUARDIAND, else build/bin/guardiand.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/epics_ca.h"
#include "tests/lib/harness.h"

static int write_config(const char *dir, int nodes, char *config, size_t len)
{
    char systems[512];
    if (harness_systems_dir(systems, sizeof(systems)) < 0)
        return -1;
    snprintf(config, len, "%s/guardiand.ini", dir);
    FILE *f = fopen(config, "w");
    if (!f)
        return -1;
    fprintf(f, "[guardiand]\nifo = X1\nsystems = %s\ndatabase = %s/guardiand.db\n\n", systems,
            dir);
    for (int i = 0; i < nodes; i++)
        fprintf(f, "[node BENCH%04d]\nsystem = bench\n\n", i);
    return fclose(f);
}

static char **names_of(int nodes, const char *suffix)
{
    char **names = calloc((size_t)nodes, sizeof(char *));
    for (int i = 0; names && i < nodes; i++) {
        names[i] = malloc(64);
        snprintf(names[i], 64, "X1:GRD-BENCH%04d_%s", i, suffix);
    }
    return names;
}

static int start(harness_daemon *d, const char *config)
{
    const char *args[] = {"--config", config, "--no-repeater", NULL};
    harness_opts o = {.args = args, .no_demo = true, .ready_timeout = 60};
    return harness_start(d, &o);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int nodes = 1000, runs = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            nodes = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench-startup [--nodes N] [--runs R]\n");
            return 2;
        }
    }
    if (nodes < 1 || nodes > 9999 || runs < 1 || runs > 100) {
        fprintf(stderr, "bench-startup: --nodes 1..9999, --runs 1..100\n");
        return 2;
    }
    char dir[PATH_MAX], config[PATH_MAX + 32];
    if (harness_temp_dir(dir, sizeof dir, "bench-startup") != 0 ||
        write_config(dir, nodes, config, sizeof(config)) < 0) {
        perror("bench-startup: temporary configuration");
        return 1;
    }
    char **state = names_of(nodes, "STATE"), **request = names_of(nodes, "REQUEST");
    chid *chans = calloc((size_t)nodes, sizeof(chid));
    chid *reqs = calloc((size_t)nodes, sizeof(chid));
    if (!state || !request || !chans || !reqs)
        return 1;

    /* Seed: register the nodes, and give each a request that is not its default. */
    harness_daemon d;
    if (start(&d, config) != 0)
        return 1;
    harness_ca_context(&d);
    if (harness_ca_connect(reqs, (const char *const *)request, (size_t)nodes, 30) != (size_t)nodes) {
        fprintf(stderr, "bench-startup: seed run: not every REQUEST connected\n");
        return 1;
    }
    for (int i = 0; i < nodes; i++)
        ca_array_put(DBR_STRING, 1, reqs[i], "STEP_B");
    ca_pend_io(30);
    harness_ca_idle(1.0); /* past a few database flushes */
    ca_context_destroy();
    if (harness_stop(&d, 30) != 0) {
        fprintf(stderr, "bench-startup: seed run did not stop cleanly\n");
        return 1;
    }

    printf("bench-startup: %d bench nodes, %d runs (database restored each time)\n", nodes, runs);
    printf("%4s %14s %22s %10s\n", "run", "exec->ready s", "exec->all served s", "restored");
    double *served = calloc((size_t)runs, sizeof(double));
    int bad_runs = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = harness_now();
        if (start(&d, config) != 0)
            return 1;
        double ready = harness_now() - t0;
        harness_ca_context(&d);
        size_t got = harness_ca_connect(chans, (const char *const *)state, (size_t)nodes, 30);
        served[r] = harness_now() - t0;
        if (got != (size_t)nodes)
            fprintf(stderr, "bench-startup: run %d: only %zu of %d connected\n", r + 1, got,
                    nodes);
        /* Every node restored with its request. */
        harness_ca_connect(reqs, (const char *const *)request, (size_t)nodes, 30);
        char (*values)[40] = calloc((size_t)nodes, 40);
        for (int i = 0; i < nodes; i++)
            ca_array_get(DBR_STRING, 1, reqs[i], values[i]);
        ca_pend_io(30);
        int restored = 0;
        for (int i = 0; i < nodes; i++)
            restored += strcmp(values[i], "STEP_B") == 0;
        free(values);
        bad_runs += restored != nodes;
        printf("%4d %14.3f %22.3f %6d/%d\n", r + 1, ready, served[r], restored, nodes);
        ca_context_destroy();
        harness_stop(&d, 30);
    }
    qsort(served, (size_t)runs, sizeof(double), cmp);
    printf("exec -> all %d nodes served over CA: median %.3f s, max %.3f s (target <= 1 s)\n",
           nodes, served[runs / 2], served[runs - 1]);
    if (bad_runs)
        printf("note: %d run(s) did not restore every node's REQUEST\n", bad_runs);

    harness_remove_dir(dir);
    return bad_runs ? 1 : 0;
}
