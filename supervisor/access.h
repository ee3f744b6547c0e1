/* access.h — who may write which node channel: the site's access rules.
 *
 * In the spirit of EPICS access security groups (UAG, HAG, ASG), written in
 * the configuration file (or the file its access_file names):
 *
 *   [users operators]               ; a named list of CA user names
 *   members = alice, bob, controls
 *
 *   [hosts control_room]            ; a named list of hosts
 *   members = 10.0.1.0/24, 10.0.2.15, opws1
 *
 *   [access SUS_*]                  ; nodes whose name matches (a glob)
 *   REQUEST = operators@control_room, commissioners
 *   MODE = commissioners
 *   * = commissioners               ; every other writable channel
 *
 * A value lists who may write: USERS@HOSTS (both must match), USERS (from
 * any host), @HOSTS (any user there), * (anyone) or none. USERS and HOSTS
 * name [users]/[hosts] sections. A key given twice continues its list.
 *
 * Which rule decides: the [access] sections are read in file order; the
 * first whose pattern matches the node and that has a key for the channel
 * (or *) decides, its own key before its *. REQUEST_ENUM follows REQUEST's
 * rule (it is the same request by index). A channel no rule names is not
 * writable by anyone; with no [access] section at all every channel is
 * writable by everyone (access is "open": the daemon warns at start-up).
 * Reads are never restricted.
 *
 * Hosts count by the client's address (the TCP peer, which the network
 * proves), never by the HOST_NAME it says, which any client can set to
 * anything; users are the CA user name (CLIENT_NAME), the only thing CA
 * says about users. A host given by name is resolved when the rules are
 * first loaded (before the loop runs); a reload on the running loop only
 * reuses those addresses (see access_resolve).
 */
#ifndef GUARDIAND_ACCESS_H
#define GUARDIAND_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCESS_NAME_MAX 32      /* a [users]/[hosts] name: 1-32 of A-Z a-z 0-9 _ . - */
#define ACCESS_USER_MAX 63      /* a CA user name (as ca/ takes CLIENT_NAME) */
#define ACCESS_HOSTNAME_MAX 253 /* a host name (DNS) */
#define ACCESS_ITEMS_MAX 100000 /* members and rule entries together, per file */

struct access_rules;

struct access_rules *access_new(void);
void access_free(struct access_rules *r);

/* Whether a section belongs to the access rules ("users X", "hosts X",
 * "access P", or a malformed "access"). */
bool access_section(const char *section);
/* One key of such a section, as the configuration reader meets it, with the
 * file and line for messages. 0, or -1 with a message (without file:line)
 * in err. */
int access_key(struct access_rules *r, const char *section, const char *key, const char *value,
               const char *file, int line, char *err, size_t errlen);
/* After the file's last key: every group a rule names must exist. 0, or -1
 * with "file:line: ..." in err. */
int access_finish(struct access_rules *r, char *err, size_t errlen);
/* Give each host name its addresses: those known (the rules in force, or
 * NULL) had are reused; the others are looked up when may_block
 * (getaddrinfo, which blocks: only before the loop runs), else they are an
 * error that says to give the address or restart. 0 or -1 with err. */
int access_resolve(struct access_rules *r, const struct access_rules *known, bool may_block,
                   char *err, size_t errlen);

/* No [access] section: everyone may write. NULL rules are open. */
bool access_open(const struct access_rules *r);
unsigned access_rule_count(const struct access_rules *r);

/* What decided a question: the rule, or none. Pointers live as long as r. */
struct access_why {
    bool open;           /* no rules at all */
    const char *file;    /* NULL: no rule names this node and channel */
    int line;            /* of the deciding key */
    const char *pattern; /* its [access PATTERN] */
    const char *key;     /* "REQUEST" or "*" */
    const char *value;   /* who it allows, as written */
};

/* May user, connecting from ip (IPv4, host order; 0 = no address, which no
 * host list holds), write channel (a suffix: "REQUEST") of node? */
bool access_may_write(const struct access_rules *r, const char *node, const char *channel,
                      const char *user, uint32_t ip, struct access_why *why);
/* The groups of why's rule spelled out, for guardctl access:
 * "operators (alice, bob) from control_room (10.0.1.0/24, opws1 = 10.0.3.4);
 * commissioners (carol) from any host". */
void access_explain(const struct access_rules *r, const struct access_why *why, char *buf,
                    size_t len);

#endif
