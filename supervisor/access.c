/* access.c — the access rules (format and meaning in access.h). */
#include "supervisor/access.h"
#include "supervisor/nodepv.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <fnmatch.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "node/names.h"

/* A host list's entry: a network, or a name with the addresses it had. */
struct host_item {
    uint32_t net, mask;     /* host order; a name's addresses are /32 each */
    char *name;             /* NULL for a numeric entry */
    uint32_t *addrs;        /* a name's, once resolved */
    unsigned n_addrs;
};

struct group {
    char name[ACCESS_NAME_MAX + 1];
    bool hosts;             /* a [hosts] list, else [users] */
    int line;
    char **users;
    struct host_item *items;
    unsigned n;             /* users or items */
};

/* One entry of a rule's value: USERS@HOSTS, either half possibly "any". */
struct who {
    int users, hosts;       /* group index, or -1: any */
    int line;
    char users_name[ACCESS_NAME_MAX + 1], hosts_name[ACCESS_NAME_MAX + 1]; /* until resolved */
};

struct rule {
    char key[16];           /* a writable channel's suffix, or "*" */
    int line;
    char *value;            /* as written (continued keys joined by ", ") */
    struct who *who;
    unsigned n_who;
    bool none;
};

struct section {
    char pattern[NAME_NODE_MAX + 1];
    struct rule *rules;
    unsigned n_rules;
};

struct access_rules {
    char *file;             /* the file the rules came from (the first one seen) */
    struct group *groups;
    unsigned n_groups;
    struct section *sections;
    unsigned n_sections;
    unsigned items;         /* members and entries so far (ACCESS_ITEMS_MAX) */
};

static int say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Grow an array by one element (zeroed); NULL when out of memory. */
static void *grow(void *arrp, unsigned *n, size_t size)
{
    void **arr = arrp;
    void *g = realloc(*arr, ((size_t)*n + 1) * size);
    if (!g)
        return NULL;
    *arr = g;
    void *e = (char *)g + (size_t)*n * size;
    memset(e, 0, size);
    (*n)++;
    return e;
}

struct access_rules *access_new(void) { return calloc(1, sizeof(struct access_rules)); }

void access_free(struct access_rules *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->n_groups; i++) {
        struct group *g = &r->groups[i];
        for (unsigned j = 0; j < g->n; j++) {
            if (g->hosts) {
                free(g->items[j].name);
                free(g->items[j].addrs);
            } else {
                free(g->users[j]);
            }
        }
        free(g->users);
        free(g->items);
    }
    for (unsigned i = 0; i < r->n_sections; i++) {
        for (unsigned j = 0; j < r->sections[i].n_rules; j++) {
            free(r->sections[i].rules[j].value);
            free(r->sections[i].rules[j].who);
        }
        free(r->sections[i].rules);
    }
    free(r->groups);
    free(r->sections);
    free(r->file);
    free(r);
}

bool access_open(const struct access_rules *r) { return !r || r->n_sections == 0; }

unsigned access_rule_count(const struct access_rules *r)
{
    unsigned n = 0;
    for (unsigned i = 0; r && i < r->n_sections; i++)
        n += r->sections[i].n_rules;
    return n;
}

/* ---- reading ---- */

static bool valid_group_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ACCESS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr("_.-", s[i])))
            return false;
    return true;
}

/* A CA user name as a rule may hold it: printable, no blank or comma (the
 * list's separators) and no @ (the rule's). */
static bool valid_user(const char *s, size_t n)
{
    if (n == 0 || n > ACCESS_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)s[i]) || s[i] == ',' || s[i] == '@')
            return false;
    return true;
}

/* A DNS name: labels of letters, digits and '-', separated by dots. */
static bool valid_hostname(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ACCESS_HOSTNAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

/* A node-name pattern: the characters of node names and of fnmatch globs. */
static bool valid_pattern(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_NODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr("_*?[]!-", s[i])))
            return false;
    return true;
}

static struct group *find_group(const struct access_rules *r, const char *name, bool hosts)
{
    for (unsigned i = 0; i < r->n_groups; i++)
        if (r->groups[i].hosts == hosts && strcmp(r->groups[i].name, name) == 0)
            return &r->groups[i];
    return NULL;
}

/* Calls fn for each item of a list separated by commas and blanks. */
static int each_item(const char *value, int (*fn)(void *, const char *, size_t), void *arg)
{
    const char *p = value;
    for (;;) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        size_t n = strcspn(p, ", \t");
        if (fn(arg, p, n) < 0)
            return -1;
        p += n;
    }
}

struct key_ctx {
    struct access_rules *r;
    struct group *g;
    struct rule *rule;
    int line;
    char *err;
    size_t errlen;
};

static int count_item(struct key_ctx *k)
{
    if (++k->r->items > ACCESS_ITEMS_MAX)
        return say(k->err, k->errlen, "more than %d members and rule entries", ACCESS_ITEMS_MAX);
    return 0;
}

static int add_user(void *arg, const char *s, size_t n)
{
    struct key_ctx *k = arg;
    if (!valid_user(s, n))
        return say(k->err, k->errlen, "[users %s]: '%.*s' is not a CA user name (1-%d "
                   "printable characters, no blank, comma or @)", k->g->name,
                   (int)(n > 80 ? 80 : n), s, ACCESS_USER_MAX);
    if (count_item(k) < 0)
        return -1;
    char *copy = strndup(s, n);
    char **slot = copy ? grow(&k->g->users, &k->g->n, sizeof(char *)) : NULL;
    if (!slot) {
        free(copy);
        return say(k->err, k->errlen, "out of memory");
    }
    *slot = copy;
    return 0;
}

/* "10.0.1.0/24", "10.0.2.15" or a host name. */
static int add_host(void *arg, const char *s, size_t n)
{
    struct key_ctx *k = arg;
    char text[ACCESS_HOSTNAME_MAX + 1];
    if (n >= sizeof(text))
        return say(k->err, k->errlen, "[hosts %s]: '%.40s...' is too long for a host",
                   k->g->name, s);
    memcpy(text, s, n);
    text[n] = '\0';
    struct host_item item = {.mask = 0xFFFFFFFFu};
    char *slash = strchr(text, '/');
    struct in_addr a;
    if (slash) {
        *slash = '\0';
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (inet_pton(AF_INET, text, &a) != 1 || end == slash + 1 || *end || bits < 0 ||
            bits > 32)
            return say(k->err, k->errlen, "[hosts %s]: '%s/%s' is not an IPv4 network "
                       "(a.b.c.d/0-32)", k->g->name, text, slash + 1);
        item.mask = bits ? 0xFFFFFFFFu << (32 - bits) : 0;
        item.net = ntohl(a.s_addr);
        if (item.net & ~item.mask)
            return say(k->err, k->errlen, "[hosts %s]: %s/%ld has host bits set (the network "
                       "is %u.%u.%u.%u/%ld)", k->g->name, text, bits,
                       (item.net & item.mask) >> 24, ((item.net & item.mask) >> 16) & 255,
                       ((item.net & item.mask) >> 8) & 255, item.net & item.mask & 255, bits);
    } else if (inet_pton(AF_INET, text, &a) == 1) {
        item.net = ntohl(a.s_addr);
    } else if (valid_hostname(text) && !isdigit((unsigned char)text[n - 1])) {
        if (!(item.name = strdup(text)))
            return say(k->err, k->errlen, "out of memory");
    } else {
        return say(k->err, k->errlen, "[hosts %s]: '%s' is neither an IPv4 address, a "
                   "network (a.b.c.d/n) nor a host name", k->g->name, text);
    }
    if (count_item(k) < 0) {
        free(item.name);
        return -1;
    }
    struct host_item *slot = grow(&k->g->items, &k->g->n, sizeof(*slot));
    if (!slot) {
        free(item.name);
        return say(k->err, k->errlen, "out of memory");
    }
    *slot = item;
    return 0;
}

/* One entry of a rule: USERS@HOSTS, USERS, @HOSTS, * or none. */
static int add_who(void *arg, const char *s, size_t n)
{
    struct key_ctx *k = arg;
    char text[2 * ACCESS_NAME_MAX + 2];
    if (n >= sizeof(text))
        return say(k->err, k->errlen, "'%.40s...' is not a [users] or [hosts] name", s);
    memcpy(text, s, n);
    text[n] = '\0';
    if (strcmp(text, "none") == 0) {
        k->rule->none = true;
        return 0;
    }
    if (count_item(k) < 0)
        return -1;
    struct who *w = grow(&k->rule->who, &k->rule->n_who, sizeof(*w));
    if (!w)
        return say(k->err, k->errlen, "out of memory");
    w->users = w->hosts = -1;
    w->line = k->line;
    if (strcmp(text, "*") == 0)
        return 0;
    char *at = strchr(text, '@');
    if (at)
        *at = '\0';
    const char *users = text, *hosts = at ? at + 1 : "";
    if (strcmp(users, "*") == 0)
        users = "";
    if ((at && !*hosts) || (*users && !valid_group_name(users)) ||
        (*hosts && !valid_group_name(hosts)))
        return say(k->err, k->errlen, "'%.*s' is not USERS@HOSTS, USERS, @HOSTS, * or none "
                   "(USERS and HOSTS name [users] and [hosts] sections)", (int)n, s);
    snprintf(w->users_name, sizeof(w->users_name), "%.*s", ACCESS_NAME_MAX, users);
    snprintf(w->hosts_name, sizeof(w->hosts_name), "%.*s", ACCESS_NAME_MAX, hosts);
    return 0;
}

bool access_section(const char *section)
{
    return strncmp(section, "users ", 6) == 0 || strncmp(section, "hosts ", 6) == 0 ||
           strncmp(section, "access", 6) == 0;
}

static struct group *group_of(struct access_rules *r, const char *name, bool hosts, int line,
                              char *err, size_t errlen)
{
    if (!valid_group_name(name)) {
        say(err, errlen, "[%s %s]: a name is 1-%d of A-Z a-z 0-9 _ . -",
            hosts ? "hosts" : "users", name, ACCESS_NAME_MAX);
        return NULL;
    }
    struct group *g = find_group(r, name, hosts);
    if (g)
        return g;
    if (!(g = grow(&r->groups, &r->n_groups, sizeof(*g)))) {
        say(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->hosts = hosts;
    g->line = line;
    return g;
}

static struct section *section_of(struct access_rules *r, const char *pattern)
{
    for (unsigned i = 0; i < r->n_sections; i++)
        if (strcmp(r->sections[i].pattern, pattern) == 0)
            return &r->sections[i];
    struct section *s = grow(&r->sections, &r->n_sections, sizeof(*s));
    if (s)
        snprintf(s->pattern, sizeof(s->pattern), "%s", pattern);
    return s;
}

int access_key(struct access_rules *r, const char *section, const char *key, const char *value,
               const char *file, int line, char *err, size_t errlen)
{
    assert(r && access_section(section));
    if (!r->file && !(r->file = strdup(file)))
        return say(err, errlen, "out of memory");
    struct key_ctx k = {.r = r, .line = line, .err = err, .errlen = errlen};
    if (strncmp(section, "access", 6) != 0) {
        bool hosts = section[0] == 'h';
        if (strcmp(key, "members") != 0)
            return say(err, errlen, "[%s]: unknown key '%s' (a list is given as members = ...)",
                       section, key);
        if (!(k.g = group_of(r, section + 6, hosts, line, err, errlen)))
            return -1;
        return each_item(value, hosts ? add_host : add_user, &k);
    }
    if (section[6] != ' ' || !valid_pattern(section + 7))
        return say(err, errlen, "[%s]: an access section is [access PATTERN], PATTERN a node "
                   "name or a glob of one (SUS_*, *)", section);
    struct section *sec = section_of(r, section + 7);
    if (!sec)
        return say(err, errlen, "out of memory");
    const char *chan = strcmp(key, "*") == 0 ? "*" : nodepv_writable_channel(key);
    if (chan && strcmp(chan, "REQUEST_ENUM") == 0)
        return say(err, errlen, "[%s]: REQUEST_ENUM follows REQUEST's rule; give REQUEST",
                   section);
    if (!chan) {
        char list[128];
        nodepv_writable_list(list, sizeof(list));
        return say(err, errlen, "[%s]: '%s' is not a writable node channel (%s, or * for all)",
                   section, key, list);
    }
    for (unsigned i = 0; i < sec->n_rules && !k.rule; i++)
        if (strcmp(sec->rules[i].key, chan) == 0)
            k.rule = &sec->rules[i];
    if (!k.rule) {
        if (!(k.rule = grow(&sec->rules, &sec->n_rules, sizeof(*k.rule))))
            return say(err, errlen, "out of memory");
        snprintf(k.rule->key, sizeof(k.rule->key), "%s", chan);
        k.rule->line = line;
    }
    /* The value as written, a continued key's after a comma. */
    size_t old = k.rule->value ? strlen(k.rule->value) : 0;
    char *v = realloc(k.rule->value, old + strlen(value) + 3);
    if (!v)
        return say(err, errlen, "out of memory");
    snprintf(v + old, strlen(value) + 3, "%s%s", old ? ", " : "", value);
    k.rule->value = v;
    if (each_item(value, add_who, &k) < 0)
        return -1;
    if (k.rule->none && k.rule->n_who)
        return say(err, errlen, "[%s] %s: 'none' with others: none means nobody", section, key);
    if (!k.rule->none && !k.rule->n_who)
        return say(err, errlen, "[%s] %s: empty: say who may write, or none", section, key);
    return 0;
}

int access_finish(struct access_rules *r, char *err, size_t errlen)
{
    for (unsigned i = 0; i < r->n_sections; i++)
        for (unsigned j = 0; j < r->sections[i].n_rules; j++) {
            struct rule *ru = &r->sections[i].rules[j];
            for (unsigned w = 0; w < ru->n_who; w++) {
                struct who *who = &ru->who[w];
                const char *names[2] = {who->users_name, who->hosts_name};
                int *slots[2] = {&who->users, &who->hosts};
                for (int h = 0; h < 2; h++) {
                    if (!names[h][0])
                        continue;
                    struct group *g = find_group(r, names[h], h == 1);
                    if (!g)
                        return say(err, errlen, "%s:%d: [access %s] %s: no [%s %s] section",
                                   r->file, who->line, r->sections[i].pattern, ru->key,
                                   h ? "hosts" : "users", names[h]);
                    *slots[h] = (int)(g - r->groups);
                }
            }
        }
    return 0;
}

/* ---- host names ---- */

static const struct host_item *known_name(const struct access_rules *r, const char *name)
{
    for (unsigned i = 0; r && i < r->n_groups; i++)
        for (unsigned j = 0; r->groups[i].hosts && j < r->groups[i].n; j++) {
            const struct host_item *it = &r->groups[i].items[j];
            if (it->name && it->addrs && strcasecmp(it->name, name) == 0)
                return it;
        }
    return NULL;
}

static int look_up(struct host_item *it, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(it->name, NULL, &hints, &res);
    if (rc != 0)
        return say(err, errlen, "host %s: %s", it->name, gai_strerror(rc));
    unsigned n = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        n++;
    it->addrs = calloc(n ? n : 1, sizeof(uint32_t));
    if (!it->addrs) {
        freeaddrinfo(res);
        return say(err, errlen, "out of memory");
    }
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        uint32_t ip = ntohl(((const struct sockaddr_in *)a->ai_addr)->sin_addr.s_addr);
        bool dup = false;
        for (unsigned i = 0; i < it->n_addrs && !dup; i++)
            dup = it->addrs[i] == ip;
        if (!dup)
            it->addrs[it->n_addrs++] = ip;
    }
    freeaddrinfo(res);
    return 0;
}

int access_resolve(struct access_rules *r, const struct access_rules *known, bool may_block,
                   char *err, size_t errlen)
{
    for (unsigned i = 0; i < r->n_groups; i++) {
        struct group *g = &r->groups[i];
        for (unsigned j = 0; g->hosts && j < g->n; j++) {
            struct host_item *it = &g->items[j];
            if (!it->name || it->addrs)
                continue;
            const struct host_item *old = known_name(known, it->name);
            if (!old && may_block) {
                if (look_up(it, err, errlen) < 0)
                    return -1;
                continue;
            }
            if (!old)
                return say(err, errlen, "[hosts %s]: host name %s is new: names are looked up "
                           "only when guardiand starts, never while it runs (a lookup can "
                           "block every node); give its address, or restart", g->name,
                           it->name);
            if (!(it->addrs = malloc((old->n_addrs ? old->n_addrs : 1) * sizeof(uint32_t))))
                return say(err, errlen, "out of memory");
            memcpy(it->addrs, old->addrs, old->n_addrs * sizeof(uint32_t));
            it->n_addrs = old->n_addrs;
        }
    }
    return 0;
}

/* ---- deciding ---- */

static bool user_in(const struct group *g, const char *user)
{
    for (unsigned i = 0; i < g->n; i++)
        if (strcmp(g->users[i], user) == 0)
            return true;
    return false;
}

static bool host_in(const struct group *g, uint32_t ip)
{
    if (ip == 0)
        return false;
    for (unsigned i = 0; i < g->n; i++) {
        const struct host_item *it = &g->items[i];
        if (!it->name && (ip & it->mask) == it->net)
            return true;
        for (unsigned j = 0; it->name && j < it->n_addrs; j++)
            if (it->addrs[j] == ip)
                return true;
    }
    return false;
}

/* The rule that decides node's channel, or NULL. */
static const struct rule *deciding(const struct access_rules *r, const char *node,
                                   const char *channel, const struct section **in)
{
    if (strcmp(channel, "REQUEST_ENUM") == 0)
        channel = "REQUEST";
    for (unsigned i = 0; i < r->n_sections; i++) {
        const struct section *s = &r->sections[i];
        if (fnmatch(s->pattern, node, 0) != 0)
            continue;
        const struct rule *any = NULL;
        for (unsigned j = 0; j < s->n_rules; j++) {
            if (strcmp(s->rules[j].key, channel) == 0) {
                *in = s;
                return &s->rules[j];
            }
            if (strcmp(s->rules[j].key, "*") == 0)
                any = &s->rules[j];
        }
        if (any) {
            *in = s;
            return any;
        }
    }
    return NULL;
}

bool access_may_write(const struct access_rules *r, const char *node, const char *channel,
                      const char *user, uint32_t ip, struct access_why *why)
{
    struct access_why none = {0};
    if (!why)
        why = &none;
    *why = (struct access_why){0};
    if (access_open(r)) {
        why->open = true;
        return true;
    }
    const struct section *s = NULL;
    const struct rule *ru = deciding(r, node, channel, &s);
    if (!ru)
        return false;
    *why = (struct access_why){.file = r->file, .line = ru->line, .pattern = s->pattern,
                               .key = ru->key, .value = ru->value};
    for (unsigned i = 0; i < ru->n_who; i++) {
        const struct who *w = &ru->who[i];
        if ((w->users < 0 || user_in(&r->groups[w->users], user ? user : "")) &&
            (w->hosts < 0 || host_in(&r->groups[w->hosts], ip)))
            return true;
    }
    return false;
}

/* Appends to buf (keeping it terminated, cutting with "..."). */
static void add(char *buf, size_t len, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    if (*used >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    if ((size_t)w >= len - *used) {
        if (len >= 4)
            memcpy(buf + len - 4, "...", 4);
        *used = len;
        return;
    }
    *used += (size_t)w;
}

static void ip_text(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static void group_text(const struct group *g, char *buf, size_t len, size_t *used)
{
    add(buf, len, used, "%s (", g->name);
    for (unsigned i = 0; i < g->n; i++) {
        const char *sep = i ? ", " : "";
        if (!g->hosts) {
            add(buf, len, used, "%s%s", sep, g->users[i]);
            continue;
        }
        const struct host_item *it = &g->items[i];
        char a[16];
        ip_text(it->net, a);
        if (!it->name) {
            int bits = 0;
            for (uint32_t m = it->mask; m; m <<= 1)
                bits++;
            add(buf, len, used, bits == 32 ? "%s%s" : "%s%s/%d", sep, a, bits);
            continue;
        }
        add(buf, len, used, "%s%s =", sep, it->name);
        for (unsigned j = 0; j < it->n_addrs; j++) {
            ip_text(it->addrs[j], a);
            add(buf, len, used, " %s", a);
        }
        if (!it->n_addrs)
            add(buf, len, used, " (no address)");
    }
    add(buf, len, used, ")");
}

void access_explain(const struct access_rules *r, const struct access_why *why, char *buf,
                    size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    if (why->open) {
        add(buf, len, &used, "anyone (no access rules: access is open)");
        return;
    }
    if (!why->file) {
        add(buf, len, &used, "nobody (no rule names this node and channel)");
        return;
    }
    const struct section *s = NULL;
    const struct rule *ru = NULL;
    for (unsigned i = 0; i < r->n_sections && !ru; i++)
        for (unsigned j = 0; j < r->sections[i].n_rules && !ru; j++)
            if (r->sections[i].rules[j].line == why->line &&
                strcmp(r->sections[i].rules[j].key, why->key) == 0 &&
                strcmp(r->sections[i].pattern, why->pattern) == 0) {
                s = &r->sections[i];
                ru = &s->rules[j];
            }
    if (!ru || ru->none) {
        add(buf, len, &used, "nobody");
        return;
    }
    for (unsigned i = 0; i < ru->n_who; i++) {
        const struct who *w = &ru->who[i];
        add(buf, len, &used, "%s", i ? "; " : "");
        if (w->users < 0)
            add(buf, len, &used, "any user");
        else
            group_text(&r->groups[w->users], buf, len, &used);
        add(buf, len, &used, " from ");
        if (w->hosts < 0)
            add(buf, len, &used, "any host");
        else
            group_text(&r->groups[w->hosts], buf, len, &used);
    }
}
