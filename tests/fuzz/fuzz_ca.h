/* fuzz_ca.h — the CA server the CA fuzz targets (ca_circuit.c, ca_udp.c) drive.
 *
 * Real servers (cas_new) on a private libev loop, bound to 127.0.0.1 on
 * ephemeral ports, serving a real pvdb: the demo set's names (so that traffic
 * recorded against `guardiand --demo` finds its channels) and FUZZ:<TYPE>:<N>
 * PVs of every native type with 1, 10, 5000 and 70000 elements. Created once
 * per process; fz_ca_reset() puts every PV back as it was after an input, so
 * one input cannot change what the next one sees.
 */
#ifndef GUARDIAND_FUZZ_CA_H
#define GUARDIAND_FUZZ_CA_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "ca/cas_priv.h"

/* Which server (fuzz_ca.c says how they are configured). */
enum fz_server { FZ_TIGHT = 0, FZ_SITE = 1 };

/* One of the servers, with the loop and pvdb they share, made on first use.
 * Exits on failure: a fuzz target without its server has nothing to test. */
cas *fz_ca_server(struct ev_loop **loop, enum fz_server which);

/* What the rest of the daemon does to PVs while a client talks: one change
 * chosen by r (a value, an array length, an alarm, a property, the access
 * rules, or the removable group DEMO:G: taken away or brought back). */
void fz_ca_poke(uint32_t r);

/* Every PV back to its first value, alarm and properties, DEMO:G: present,
 * the access rules back to normal. Call with no client connected. */
void fz_ca_reset(void);

#endif
