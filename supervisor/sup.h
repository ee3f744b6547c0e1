/* sup.h — the supervisor: the one context of a guardiand process.
 *
 * The supervisor owns the loop, the PV database and the CA server, and is
 * passed down explicitly; it is the only mutable state that is not local to
 * a module object.
 */
#ifndef GUARDIAND_SUP_H
#define GUARDIAND_SUP_H

#include <ev.h>
#include <stdbool.h>

#include "ca/cas.h"
#include "pvdb/pvdb.h"

struct demo;

typedef struct sup {
    struct ev_loop *loop;
    pvdb *db;
    cas *ca;
    cas_repeater *repeater;
    ev_signal sigterm, sigint;
    struct demo *demo;
} sup;

/* demo.c: the demo PV set of docs/demo-pvs.md. */
struct demo *demo_new(sup *s, unsigned count, char *err, size_t errlen);
void demo_free(struct demo *d);
unsigned demo_access(const pv *pv, const char *host, const char *user, void *arg);

#endif
