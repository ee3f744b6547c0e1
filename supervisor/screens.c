/* screens.c — the site's MEDM screens from the nodes running (sup.h).
 *
 * A node's place in the overview's trees is its first manager among the
 * nodes of this daemon (the node that lists it as a subordinate); its
 * system's states come from the system loaded for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

#define SUP_CHANS_MAX 64

/* The manager of `name` among the nodes here, or NULL. */
static const char *manager_of(sup *s, const char *name)
{
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next) {
        const char *sub;
        for (unsigned i = 0; (sub = node_subnode(sn->node, i, NULL)); i++)
            if (strcmp(sub, name) == 0)
                return sn->name;
    }
    return NULL;
}

int sup_medm_files(sup *s, struct medm_file **files, unsigned *n, char *err, size_t errlen)
{
    unsigned count = s->n_nodes;
    struct medm_node *nodes = calloc(count + 1, sizeof(*nodes));
    struct medm_system *systems = calloc(count + 1, sizeof(*systems));
    struct medm_state *states = NULL;
    size_t n_states = 0;
    for (sup_node *sn = s->nodes; sn; sn = sn->hh.next)
        n_states += node_system_def(node_system_of(sn->node)) ? GRD_MAX_STATES : 0;
    int rc = -1;
    if (!nodes || !systems || !(states = calloc(n_states + 1, sizeof(*states)))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    unsigned nn = 0, ns = 0;
    size_t used = 0;
    for (sup_node *sn = s->nodes; sn && nn < count; sn = sn->hh.next) {
        const grd_system *def = node_system_def(node_system_of(sn->node));
        nodes[nn++] = (struct medm_node){.name = sn->name, .system = def ? def->name : sn->system,
                                         .manager = manager_of(s, sn->name)};
        bool known = false;
        for (unsigned k = 0; k < ns && !known; k++)
            known = strcmp(systems[k].name, nodes[nn - 1].system) == 0;
        if (known || !def)
            continue;
        struct medm_system *sys = &systems[ns++];
        sys->name = def->name;
        sys->states = &states[used];
        for (unsigned i = 0; i < GRD_MAX_STATES && def->states[i].name; i++) {
            states[used++] = (struct medm_state){.name = def->states[i].name,
                                                 .index = def->states[i].index,
                                                 .requestable = def->states[i].request};
            sys->n_states++;
        }
    }
    struct medm_chan chans[SUP_CHANS_MAX];
    char prefix[128];
    supchan_prefix(s, prefix, sizeof(prefix));
    unsigned n_chans = supchan_channels(chans, SUP_CHANS_MAX);
    struct medm_site site = {.ifo = s->cfg.ifo, .sup_prefix = prefix, .sup_chans = chans,
                             .n_sup_chans = n_chans < SUP_CHANS_MAX ? n_chans : SUP_CHANS_MAX,
                             .nodes = nodes, .n_nodes = nn, .systems = systems,
                             .n_systems = ns};
    rc = medm_screens(&site, files, n, err, errlen);
out:
    free(nodes);
    free(systems);
    free(states);
    return rc;
}

static void medm_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    sup *s = w->data;
    char err[512];
    if (s->cfg.medm_dir && sup_medm_write(s, s->cfg.medm_dir, err, sizeof(err)) != 0)
        sup_log(SUP_ERR, "medm: screens not written: %s", err);
}

void sup_medm_changed(sup *s)
{
    if (!s->cfg.medm_dir || !s->loop || ev_is_active(&s->medm_timer))
        return;
    ev_timer_init(&s->medm_timer, medm_timer_cb, SUP_MEDM_DELAY, 0);
    s->medm_timer.data = s;
    ev_timer_start(s->loop, &s->medm_timer);
}

void sup_medm_stop(sup *s)
{
    if (s->loop && ev_is_active(&s->medm_timer))
        ev_timer_stop(s->loop, &s->medm_timer);
}

int sup_medm_write(sup *s, const char *dir, char *err, size_t errlen)
{
    struct medm_file *files;
    unsigned n;
    if (sup_medm_files(s, &files, &n, err, errlen) != 0)
        return -1;
    int rc = 0;
    unsigned written = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        int w = medm_write_file(dir, files[i].name, files[i].text, err, errlen);
        if (w < 0)
            rc = -1;
        else
            written += (unsigned)w;
    }
    if (rc == 0 && written)
        sup_log(SUP_INFO, "medm: %u of %u screens written to %s", written, n, dir);
    medm_files_free(files, n);
    return rc;
}
