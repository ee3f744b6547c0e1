/* nodepv.h — a node's channels: the PV group <IFO>:GRD-<NODE>_ of
 * guardian.md Part A, bound to one node.
 *
 * Writes from clients (OP, MODE, REQUEST, REQUEST_ENUM, LOAD, MANAGER) are validated
 * here against the node and take effect at its next cycle; a refused write
 * changes nothing and fails the CA put. After each cycle nodepv_publish()
 * copies what changed into the PVs (pvdb posts only real changes).
 */
#ifndef GUARDIAND_NODEPV_H
#define GUARDIAND_NODEPV_H

#include <stddef.h>

#include "node/node.h"
#include "pvdb/pvdb.h"

typedef struct nodepv nodepv;

/* Called when a client writes LOAD=True; returns 0 if a reload was started. */
typedef int (*nodepv_load_fn)(node *n, void *arg);

nodepv *nodepv_new(pvdb *db, const char *ifo, node *n, const char *version,
                   nodepv_load_fn on_load, void *arg, char *err, size_t errlen);
/* Remove the channels (clients see them disconnect). */
void nodepv_free(nodepv *np);
/* The writable node channel named suffix, in any case ("request" gives
 * "REQUEST"): its canonical suffix, or NULL if there is none (audit queries). */
const char *nodepv_writable_channel(const char *suffix);
/* "OP, MODE, ...": the writable channels, for messages. */
void nodepv_writable_list(char *buf, size_t len);
/* If pv is a node's channel: its node's name and the channel's suffix
 * ("REQUEST"), valid while the node's channels are. */
bool nodepv_identify(const pv *pv, const char **node, const char **channel);
/* A write to a node channel refused for access (pvdb's refused hook): told
 * to the audit hook, as refused, with the value it would have written. */
void nodepv_refused(pv *pv, const void *value, uint32_t n, const pv_client *who);
/* Copy the node's state into its PVs; cheap when nothing changed. */
void nodepv_publish(nodepv *np);
/* Values the supervisor owns (crash count, quarantine, subnode counts...). */
void nodepv_set_crashes(nodepv *np, long crashes);
/* LOAD_PENDING: the module file changed on disk (or is gone) since it was loaded. */
void nodepv_set_load_pending(nodepv *np, bool pending);
/* Every client write to a node channel, accepted or refused by the node:
 * the channel suffix ("REQUEST"), old and new values as text, the client. */
typedef void (*nodepv_audit_fn)(void *arg, node *n, const char *channel, const char *old_value,
                                const char *new_value, const pv_client *who, bool accepted);
void nodepv_set_audit(nodepv *np, nodepv_audit_fn fn, void *arg);
/* A quarantined node is not executed: QUARANTINED=True, OK and ACTIVE
 * False, and usermsg (at most 39 characters shown) in USERMSG with
 * NOTIFICATION=True, until it is lifted; writes to OP, MODE, REQUEST,
 * REQUEST_ENUM and LOAD are refused meanwhile (they would do nothing). */
void nodepv_quarantine(nodepv *np, bool quarantined, const char *usermsg);
/* The system's states changed (after a reload): rebuild REQUEST_ENUM. */
void nodepv_states_changed(nodepv *np);

#endif
