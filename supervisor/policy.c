/* policy.c — the daemon's one answer to "who may write this channel".
 *
 * pvdb asks it for every writer: CA clients (their rights, sent as
 * ACCESS_RIGHTS, and each write), the control socket (the caller's Unix
 * user, from this host) and nodes writing channels in this process (the
 * node's name as the user, from this host). Node channels follow the access
 * rules (access.h); other PVs (the demo's, a simulated plant's) are written
 * by anyone. The demo's CA user `guest` writes nothing at all.
 *
 * A refused write is audited with who tried (nodepv_refused) and logged, at
 * most REFUSALS_RATE a second on average (a burst of REFUSALS_BURST): a
 * client refused in a loop must not fill the database or the journal; what
 * is dropped is counted and said with the next one recorded. The same write
 * refused again (the same PV, writer and value: a manager retrying its claim
 * every cycle) is recorded once per REFUSAL_REPEAT seconds.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/access.h"
#include "supervisor/nodepv.h"
#include "supervisor/sup.h"

#define REFUSALS_RATE 20.0
#define REFUSALS_BURST 100.0
#define REFUSAL_REPEAT 60.0

bool policy_may_write(sup *s, const char *node, const char *channel, const pv_client *who,
                      struct access_why *why)
{
    const char *user = who && who->user ? who->user : "";
    bool rules = access_may_write(s->cfg.access, node, channel, user, who ? who->ip : 0, why);
    return rules && !(s->demo && demo_read_only(user));
}

static unsigned policy_access(const pv *pv, const pv_client *who, void *arg)
{
    sup *s = arg;
    unsigned r = PV_ACCESS_READ;
    if (!pv_writable(pv))
        return r;
    const char *node, *channel;
    bool ok = nodepv_identify(pv, &node, &channel)
                  ? policy_may_write(s, node, channel, who, NULL)
                  : !(s->demo && demo_read_only(who && who->user ? who->user : ""));
    return ok ? r | PV_ACCESS_WRITE : r;
}

void policy_refusal_text(sup *s, const char *node, const char *channel, const pv_client *who,
                         char *buf, size_t len)
{
    struct access_why why;
    policy_may_write(s, node, channel, who, &why);
    char addr[INET_ADDRSTRLEN] = "?";
    struct in_addr a = {.s_addr = htonl(who->ip)};
    if (who->ip)
        inet_ntop(AF_INET, &a, addr, sizeof(addr));
    const char *user = who->user && *who->user ? who->user : "(no user)";
    if (why.file)
        snprintf(buf, len, "%s from %s may not write %s of %s: %s:%d: [access %s] %s = %s",
                 user, addr, channel, node, why.file, why.line, why.pattern, why.key, why.value);
    else if (why.open)
        snprintf(buf, len, "%s may not write %s of %s (the demo's read-only user)", user,
                 channel, node);
    else
        snprintf(buf, len, "%s from %s may not write %s of %s: no [access] rule names it, so "
                 "nobody may", user, addr, channel, node);
}

/* Whether one more refusal may be recorded now (a token bucket). */
static bool take_token(struct sup_refusals *b)
{
    double now = sup_now();
    b->tokens += (now - b->last) * REFUSALS_RATE;
    if (b->tokens > REFUSALS_BURST)
        b->tokens = REFUSALS_BURST;
    b->last = now;
    if (b->tokens < 1) {
        b->dropped++;
        return false;
    }
    b->tokens -= 1;
    return true;
}

/* FNV-1a over some bytes, continuing from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211u;
    return h;
}

/* Whether this refusal repeats one recorded less than REFUSAL_REPEAT s ago
 * (and if not, remember it). */
static bool repeated(struct sup_refusals *b, const pv *pv, const void *value, uint32_t n,
                     const pv_client *who)
{
    uint64_t h = fnv(14695981039346656037u, pv_name(pv), strlen(pv_name(pv)) + 1);
    h = fnv(h, who->user ? who->user : "", strlen(who->user ? who->user : "") + 1);
    h = fnv(h, &who->ip, sizeof(who->ip));
    h = fnv(h, value, (size_t)n * pv_type_size(pv_type(pv)));
    double now = sup_now();
    const size_t slots = sizeof(b->recent) / sizeof(b->recent[0]);
    for (size_t i = 0; i < slots; i++)
        if (b->recent[i].hash == h && now - b->recent[i].time < REFUSAL_REPEAT)
            return true;
    b->recent[b->next] = (struct sup_refusal){.hash = h, .time = now};
    b->next = (b->next + 1) % slots;
    return false;
}

static void policy_refused(pv *pv, const void *value, uint32_t n, const pv_client *who,
                           void *arg)
{
    sup *s = arg;
    static const pv_client nobody = {.host = "", .user = ""};
    if (!who)
        who = &nobody;
    if (repeated(&s->refusals, pv, value, n, who) || !take_token(&s->refusals))
        return;
    const char *node, *channel;
    bool of_node = nodepv_identify(pv, &node, &channel);
    char text[1024];
    if (of_node)
        policy_refusal_text(s, node, channel, who, text, sizeof(text));
    else
        snprintf(text, sizeof(text), "%s may not write %s",
                 who->user && *who->user ? who->user : "(no user)", pv_name(pv));
    sup_log(SUP_NOTICE, "access: refused (host name %s): %s",
            who->host && *who->host ? who->host : "(none)", text);
    if (s->refusals.dropped) {
        sup_log(SUP_NOTICE, "access: %u refused writes before that not logged or audited "
                "(more than %.0f a second)", s->refusals.dropped, REFUSALS_RATE);
        s->refusals.dropped = 0;
    }
    if (of_node)
        nodepv_refused(pv, value, n, who);
}

void policy_start(sup *s)
{
    s->refusals = (struct sup_refusals){.tokens = REFUSALS_BURST, .last = sup_now()};
    pvdb_set_access(s->db, policy_access, policy_refused, s);
    policy_changed(s, NULL);
}

void policy_changed(sup *s, const char *who)
{
    const struct access_rules *r = s->cfg.access;
    if (access_open(r))
        sup_log(SUP_WARNING, "access is OPEN: no [access] rules, so every CA client on the "
                "network, every control socket user and every node may write every node's "
                "REQUEST, MODE, OP, LOAD and MANAGER (see access_file in guardiand.ini)");
    else
        sup_log(SUP_NOTICE, "access: %u rules from %s%s%s", access_rule_count(r),
                s->cfg.access_file ? s->cfg.access_file : s->cfg.path, who ? " applied by " : "",
                who ? who : "");
    if (s->ca)
        cas_access_changed(s->ca);
}
