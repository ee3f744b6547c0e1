/* config.c — fuzz target: the configuration file parser (supervisor/config.c).
 *
 * Each input is a whole configuration file. config_load() takes a path, so
 * the input is written to a memory file and loaded through /proc/self/fd,
 * exactly as from disk (libinih reads it with our line reader). Besides
 * crashes, what config.h promises is checked: a file either loads with every
 * value valid, or is refused with a message naming the file and a line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "supervisor/config.h"

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    memfd = memfd_create("guardiand-fuzz-config", MFD_CLOEXEC);
    if (memfd < 0)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    return 0;
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "config fuzz: broken promise: %s\n", what);
        abort();
    }
}

/* What a loaded configuration guarantees (config.h). */
static void check_loaded(const struct config *cfg)
{
    check(name_valid_ifo(cfg->ifo), "ifo valid");
    check(cfg->rate >= 0.1 && cfg->rate <= 1000, "rate in range");
    check(cfg->control_mode <= 0777, "control_mode in range");
    check(!cfg->control_socket || strlen(cfg->control_socket) <= 107, "control_socket fits");
    for (unsigned i = 0; i < cfg->n_nodes; i++) {
        const struct config_node *n = &cfg->nodes[i];
        check(name_valid_node(n->name), "node name valid");
        check(n->system && *n->system && !strchr(n->system, '/'), "node system valid");
        check(n->n_args <= CONFIG_ARGS_MAX, "at most CONFIG_ARGS_MAX arguments");
        for (unsigned j = 0; j < n->n_args; j++)
            check(strchr(n->args[j], '=') != NULL, "argument is key=value");
        for (unsigned j = 0; j < i; j++)
            check(strcmp(cfg->nodes[j].name, n->name) != 0, "node names unique");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) < 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
        abort();
    struct config cfg;
    char err[512] = "";
    if (config_load(&cfg, path, err, sizeof(err)) == 0)
        check_loaded(&cfg);
    else
        check(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
              "an error names the file");
    config_free(&cfg);
    return 0;
}
