/* config.c — reading guardiand's INI configuration (format in config.h).
 *
 * libinih calls us once per key; we check each value as it comes and stop
 * at the first problem, naming its line. Nothing of a half-read file is used.
 */
#include "supervisor/config.h"
#include "supervisor/access.h"
#include "ca/cas.h"
#include "plant/plant.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The Makefile passes the installation's path (it follows PREFIX). */
#ifdef GUARDIAND_SYSTEMS_PATH
#define DEFAULT_SYSTEMS GUARDIAND_SYSTEMS_PATH
#else
#define DEFAULT_SYSTEMS "/usr/local/lib/guardiand/systems:/usr/lib/guardiand/systems"
#endif

struct parse {
    struct config *cfg;
    const char *path;  /* the file being read (the configuration or its access_file) */
    bool access_only;  /* access_file: only [users], [hosts] and [access] sections */
    char *err;
    size_t errlen;
    bool failed;
    char section[128]; /* the section of the previous key */
    FILE *file;
    int line;          /* lines read so far: the line libinih is looking at */
    bool partial;      /* the last piece read did not end its line */
    int too_long;      /* the first line longer than libinih takes, or 0 */
    struct seen { char name[128]; int line; } *seen; /* section headers so far */
    unsigned n_seen, cap_seen;
};

static int fail(struct parse *p, int line, const char *fmt, const char *a, const char *b);

/* A section header line, checked before libinih sees it: libinih takes a
 * '[' without ']' for a syntax error only after the keys below it went to
 * the section before, and merges a section given twice, so a duplicated
 * [node A] read as "system given twice". Name the line and the mistake. */
static void check_header(struct parse *p, const char *text)
{
    if (*text != '[' || p->failed) /* (an indented line continues a value) */
        return;
    const char *end = strchr(text, ']');
    if (!end) {
        fail(p, p->line, "'[' without ']': a section header is [guardiand] or [node NAME]%s%s",
             "", "");
        return;
    }
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)(end - text - 1), text + 1);
    for (unsigned i = 0; i < p->n_seen; i++)
        if (strcmp(p->seen[i].name, name) == 0) {
            char first[32];
            snprintf(first, sizeof(first), "%d", p->seen[i].line);
            fail(p, p->line, "[%s] given twice (first at line %s): one section each", name, first);
            return;
        }
    if (p->n_seen == p->cap_seen) {
        unsigned cap = p->cap_seen ? 2 * p->cap_seen : 64;
        struct seen *grown = realloc(p->seen, cap * sizeof(*grown));
        if (!grown) {
            fail(p, p->line, "out of memory%s%s", "", "");
            return;
        }
        p->seen = grown;
        p->cap_seen = cap;
    }
    snprintf(p->seen[p->n_seen].name, sizeof(p->seen[0].name), "%s", name);
    p->seen[p->n_seen++].line = p->line;
}

/* libinih as Debian builds it does not pass line numbers; count them here. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *r = fgets(str, num, p->file);
    if (r) {
        size_t len = strlen(r);
        /* A line libinih cannot hold arrives in pieces: count it once. */
        bool whole = len == 0 || r[len - 1] == '\n' || feof(p->file);
        if (!p->partial) {
            p->line++;
            check_header(p, r);
        }
        if (!whole && !p->too_long)
            p->too_long = p->line;
        p->partial = !whole;
    }
    return r;
}

bool config_valid_group_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 32 || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)name[i]) || strchr("_.-", name[i])))
            return false;
    return true;
}

static int fail(struct parse *p, int line, const char *fmt, const char *a, const char *b)
{
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, a, b);
    snprintf(p->err, p->errlen, "%s:%d: %s", p->path, line, msg);
    p->failed = true;
    return 0; /* tells libinih to stop */
}

static int set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* A number in [min, max] for `key`; 1 when stored, 0 (failed) otherwise. */
static int number(struct parse *p, int line, const char *key, const char *value, double min,
                  double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end || errno || !(v >= min && v <= max)) {
        char range[64];
        snprintf(range, sizeof(range), ": expected a number from %g to %g", min, max);
        char what[128];
        snprintf(what, sizeof(what), "%s '%%s'%%s", key);
        return fail(p, line, what, value, range);
    }
    *out = v;
    return 1;
}

/* A whole number in [min, max] for `key`; 1 when stored, 0 (failed) otherwise. */
static int whole_number(struct parse *p, int line, const char *key, const char *value,
                        unsigned min, unsigned max, unsigned *out)
{
    double v;
    if (!number(p, line, key, value, min, max, &v))
        return 0;
    if (v != (unsigned)v) {
        char what[128];
        snprintf(what, sizeof(what), "%s '%%s': expected a whole number%%s", key);
        return fail(p, line, what, value, "");
    }
    *out = (unsigned)v;
    return 1;
}

/* The ca_* keys: the CA server's limits. Returns -1 if key is not one. */
static int ca_key(struct parse *p, const char *key, const char *value, int line)
{
    struct config *cfg = p->cfg;
    static const struct {
        const char *key;
        size_t offset;
    } limits[] = {
        {"ca_max_circuits", offsetof(struct config, ca_max_circuits)},
        {"ca_max_circuits_per_host", offsetof(struct config, ca_max_circuits_per_host)},
        {"ca_max_channels_per_circuit", offsetof(struct config, ca_max_channels_per_circuit)},
        {"ca_max_subs_per_channel", offsetof(struct config, ca_max_subs_per_channel)},
    };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        if (strcmp(key, limits[i].key) == 0)
            return whole_number(p, line, key, value, 1, 10000000,
                                (unsigned *)((char *)cfg + limits[i].offset));
    if (strcmp(key, "ca_handshake_timeout") == 0)
        return number(p, line, key, value, 0, 3600, &cfg->ca_handshake_timeout);
    return -1;
}

bool config_valid_addr_list(const char *list)
{
    const char *s = list;
    unsigned n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        size_t len = strcspn(s, " \t");
        char word[64], *colon;
        if (len >= sizeof(word))
            return false;
        memcpy(word, s, len);
        word[len] = '\0';
        s += len;
        if ((colon = strchr(word, ':'))) {
            char *end;
            errno = 0;
            unsigned long port = strtoul(colon + 1, &end, 10);
            if (end == colon + 1 || *end || errno || port < 1 || port > 65535)
                return false;
            *colon = '\0';
        }
        struct in_addr a;
        if (inet_pton(AF_INET, word, &a) != 1)
            return false;
        n++;
    }
    return n > 0;
}

/* The plant_* keys and simulate_plant. Returns -1 if key is not one. */
static int plant_key(struct parse *p, const char *key, const char *value, int line)
{
    struct config *cfg = p->cfg;
    if (strcmp(key, "simulate_plant") == 0 || strcmp(key, "plant_auto_addr_list") == 0) {
        bool yes = strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 ||
                   strcmp(value, "1") == 0;
        bool no = strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 ||
                  strcmp(value, "0") == 0;
        if (!yes && !no)
            return fail(p, line, "%s '%s': expected yes or no", key, value);
        if (key[0] == 's')
            cfg->simulate_plant = yes;
        else
            cfg->plant_auto_addr_list = yes;
        return 1;
    }
    if (strcmp(key, "plant_addr_list") == 0) {
        if (!config_valid_addr_list(value))
            return fail(p, line, "plant_addr_list '%s': expected numeric IPv4 addresses, each "
                        "with an optional :port, separated by spaces (no host names: libca "
                        "would look them up on the loop)%s", value, "");
        return set_string(&cfg->plant_addr_list, value) == 0 ? 1
                                                              : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "plant_connect_timeout") == 0)
        return number(p, line, key, value, 0.1, 3600, &cfg->plant_connect_timeout);
    return -1;
}

static int global_key(struct parse *p, const char *key, const char *value, int line)
{
    struct config *cfg = p->cfg;
    int ca = ca_key(p, key, value, line);
    if (ca >= 0)
        return ca;
    int pl = plant_key(p, key, value, line);
    if (pl >= 0)
        return pl;
    if (strcmp(key, "ifo") == 0) {
        if (!name_valid_ifo(value))
            return fail(p, line, "ifo '%s': expected 1-8 characters of A-Z, 0-9%s", value, "");
        return set_string(&cfg->ifo, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "systems") == 0)
        return set_string(&cfg->systems, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    if (strcmp(key, "supervisor_prefix") == 0) {
        if (!*value || strlen(value) > 100)
            return fail(p, line, "supervisor_prefix '%s': expected 1-100 characters%s", value, "");
        return set_string(&cfg->supervisor_prefix, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "database") == 0)
        return set_string(&cfg->database, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    if (strcmp(key, "crash_journal") == 0)
        return set_string(&cfg->crash_journal, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    if (strcmp(key, "hang_limit") == 0)
        return number(p, line, key, value, 0, 3600, &cfg->hang_limit);
    if (strcmp(key, "quarantine_window") == 0)
        return number(p, line, key, value, 1, 365 * 86400.0, &cfg->quarantine_window);
    if (strcmp(key, "step_budget") == 0) {
        /* Below a millisecond every node would be "too slow" for the clock's
         * and the cache's noise, not for its code. */
        if (!number(p, line, key, value, 0, 60, &cfg->step_budget))
            return 0;
        if (cfg->step_budget > 0 && cfg->step_budget < 0.001)
            return fail(p, line, "step_budget '%s': expected 0 (no budget) or 0.001 to 60 "
                        "seconds%s", value, "");
        return 1;
    }
    if (strcmp(key, "step_overruns") == 0)
        return whole_number(p, line, key, value, 1, 100000, &cfg->step_overruns);
    if (strcmp(key, "step_window") == 0)
        return number(p, line, key, value, 0.1, 86400, &cfg->step_window);
    if (strcmp(key, "retention_days") == 0)
        return number(p, line, key, value, 1, 100000, &cfg->retention_days);
    if (strcmp(key, "log_retention_days") == 0)
        return number(p, line, key, value, 0, 100000, &cfg->log_retention_days);
    if (strcmp(key, "quarantine_crashes") == 0)
        return whole_number(p, line, key, value, 1, 1000, &cfg->quarantine_crashes);
    if (strcmp(key, "control_socket") == 0) {
        /* sun_path holds 107 characters and a NUL */
        if (!*value || strlen(value) > 107)
            return fail(p, line, "control_socket '%s': expected a path of 1-107 characters%s",
                        value, "");
        return set_string(&cfg->control_socket, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "access_file") == 0) {
        if (!*value || strlen(value) > 1000)
            return fail(p, line, "access_file '%s': expected a path of 1-1000 characters%s",
                        value, "");
        return set_string(&cfg->access_file, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "medm_dir") == 0) {
        if (!*value || strlen(value) > 1000)
            return fail(p, line, "medm_dir '%s': expected a directory of 1-1000 characters%s",
                        value, "");
        return set_string(&cfg->medm_dir, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "control_idle_timeout") == 0)
        return number(p, line, key, value, 0.1, 86400, &cfg->control_idle_timeout);
    if (strcmp(key, "control_mode") == 0) {
        char *end;
        errno = 0;
        unsigned long m = strtoul(value, &end, 8);
        if (end == value || *end || errno || m > 0777 || *value == '-')
            return fail(p, line, "control_mode '%s': expected octal permission bits, 0 to 0777%s",
                        value, "");
        cfg->control_mode = (unsigned)m;
        return 1;
    }
    if (strcmp(key, "control_group") == 0 || strcmp(key, "operator_group") == 0) {
        if (!config_valid_group_name(value))
            return fail(p, line, "%s '%s': expected a group name (1-32 characters of "
                        "A-Z a-z 0-9 _ . -)", key, value);
        char **slot = key[0] == 'c' ? &cfg->control_group : &cfg->operator_group;
        return set_string(slot, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    if (strcmp(key, "rate") == 0) {
        char *end;
        errno = 0;
        double r = strtod(value, &end);
        if (end == value || *end || errno || !(r >= 0.1 && r <= 1000))
            return fail(p, line, "rate '%s': expected a number of cycles per second, 0.1 to 1000%s",
                        value, "");
        cfg->rate = r;
        return 1;
    }
    return fail(p, line, "unknown key '%s' in [guardiand]%s", key, "");
}

static struct config_node *find_node(struct config *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->n_nodes; i++)
        if (strcmp(cfg->nodes[i].name, name) == 0)
            return &cfg->nodes[i];
    return NULL;
}

/* A [node NAME] section: create the node on its first key. */
static struct config_node *section_node(struct parse *p, const char *section, int line)
{
    const char *name = section + 5;
    while (*name == ' ')
        name++;
    if (!name_valid_node(name)) {
        fail(p, line, "node name '%s': expected 1-63 characters of A-Z, 0-9 and _%s", name, "");
        return NULL;
    }
    struct config *cfg = p->cfg;
    struct config_node *n = find_node(cfg, name);
    /* libinih reports keys, not section headers: a node seen before under
     * another section than the previous key's is a second definition. */
    bool same_section = strncmp(p->section, section, sizeof(p->section)) == 0;
    snprintf(p->section, sizeof(p->section), "%s", section);
    if (n && !same_section) {
        fail(p, line, "node %s is defined twice%s", name, "");
        return NULL;
    }
    if (n)
        return n;
    struct config_node *grown = realloc(cfg->nodes, (cfg->n_nodes + 1) * sizeof(*grown));
    if (!grown) {
        fail(p, line, "out of memory%s%s", "", "");
        return NULL;
    }
    cfg->nodes = grown;
    n = &cfg->nodes[cfg->n_nodes++];
    memset(n, 0, sizeof(*n));
    strcpy(n->name, name);
    n->line = line;
    return n;
}

static int node_key(struct parse *p, struct config_node *n, const char *key, const char *value,
                    int line)
{
    if (strcmp(key, "system") == 0) {
        if (n->system)
            return fail(p, line, "node %s: system given twice%s", n->name, "");
        if (!name_valid_system(value))
            return fail(p, line, "node %s: bad system name '%s'", n->name, value);
        return set_string(&n->system, value) == 0 ? 1 : fail(p, line, "out of memory%s%s", "", "");
    }
    /* A key given again, or an indented continuation line, extends the value
     * with a comma: long lists (an ifo node's nodes=) stay within INI lines. */
    size_t klen = strlen(key);
    for (unsigned i = 0; i < n->n_args; i++) {
        if (strncmp(n->args[i], key, klen) != 0 || n->args[i][klen] != '=')
            continue;
        size_t len = strlen(n->args[i]) + strlen(value) + 2;
        char *grown = realloc(n->args[i], len);
        if (!grown)
            return fail(p, line, "out of memory%s%s", "", "");
        strcat(strcat(grown, ","), value);
        n->args[i] = grown;
        return 1;
    }
    if (n->n_args == CONFIG_ARGS_MAX)
        return fail(p, line, "node %s: more than 32 arguments%s", n->name, "");
    size_t len = strlen(key) + strlen(value) + 2;
    char *arg = malloc(len);
    if (!arg)
        return fail(p, line, "out of memory%s%s", "", "");
    snprintf(arg, len, "%s=%s", key, value);
    n->args[n->n_args++] = arg;
    return 1;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    struct parse *p = user;
    int line = p->line;
    if (p->failed)
        return 0;
    if (access_section(section)) {
        if (!p->cfg->access && !(p->cfg->access = access_new()))
            return fail(p, line, "out of memory%s%s", "", "");
        char msg[256];
        if (access_key(p->cfg->access, section, key, value, p->path, line, msg, sizeof(msg)) < 0)
            return fail(p, line, "%s%s", msg, "");
        return 1;
    }
    if (p->access_only)
        return fail(p, line, "[%s] in an access file (only [users NAME], [hosts NAME] and "
                    "[access PATTERN] sections)%s", section, "");
    if (strcmp(section, "guardiand") == 0) {
        snprintf(p->section, sizeof(p->section), "%s", section);
        return global_key(p, key, value, line);
    }
    if (strncmp(section, "node ", 5) == 0) {
        struct config_node *n = section_node(p, section, line);
        return n ? node_key(p, n, key, value, line) : 0;
    }
    return fail(p, line, "unknown section [%s] (expected [guardiand], [node NAME], [users NAME], "
                "[hosts NAME] or [access PATTERN])%s", section, "");
}

int config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->rate = 16;
    cfg->hang_limit = 5;
    cfg->quarantine_crashes = 3;
    cfg->quarantine_window = 3600;
    cfg->step_budget = 0.05;
    cfg->step_overruns = 8;
    cfg->step_window = 10;
    cfg->retention_days = 90;
    cfg->log_retention_days = 14;
    cfg->control_mode = 0660;
    cfg->control_idle_timeout = 30;
    cfg->ca_max_circuits = CAS_DEFAULT_MAX_CIRCUITS;
    cfg->ca_max_circuits_per_host = CAS_DEFAULT_MAX_CIRCUITS_PER_HOST;
    cfg->ca_max_channels_per_circuit = CAS_DEFAULT_MAX_CHANNELS_PER_CIRCUIT;
    cfg->ca_max_subs_per_channel = CAS_DEFAULT_MAX_SUBS_PER_CHANNEL;
    cfg->ca_handshake_timeout = CAS_DEFAULT_HANDSHAKE_TIMEOUT;
    cfg->plant_auto_addr_list = -1;
    cfg->plant_connect_timeout = PLANT_CONNECT_TIMEOUT;
    if (set_string(&cfg->ifo, "X1") || set_string(&cfg->systems, DEFAULT_SYSTEMS) ||
        set_string(&cfg->database, "guardiand.db") || set_string(&cfg->path, "(defaults)"))
        return -1;
    return 0;
}

/* Read one file (the configuration, or its access_file) into p->cfg. */
static int read_file(struct parse *p, const char *path)
{
    char *err = p->err;
    size_t errlen = p->errlen;
    p->path = path;
    /* Only a regular file of a sane size: a directory reads as an empty file
     * (which would stop every node), /dev/zero never ends. Opened without
     * blocking, so a FIFO cannot hold the start-up either. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, !S_ISREG(st.st_mode)
                     ? "not a regular file (a configuration file is expected)"
                     : "larger than " CONFIG_FILE_MAX_TEXT ": not a configuration file");
        close(fd);
        return -1;
    }
    if (!(p->file = fdopen(fd, "re"))) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int r = ini_parse_stream(read_line, p, on_key, p);
    fclose(p->file);
    free(p->seen);
    p->seen = NULL;
    p->n_seen = p->cap_seen = 0;
    if (p->too_long) {
        snprintf(err, errlen,
                 "%s:%d: line longer than %d characters: split it (a key given again in a "
                 "[node] section continues its value)",
                 path, p->too_long, INI_MAX_LINE - 2);
        return -1;
    }
    if (p->failed)
        return -1;
    if (r > 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, r);
        return -1;
    }
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    if (config_defaults(cfg) < 0 || set_string(&cfg->path, path) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct parse p = {.cfg = cfg, .err = err, .errlen = errlen};
    if (read_file(&p, path) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->n_nodes; i++)
        if (!cfg->nodes[i].system) {
            snprintf(err, errlen, "%s:%d: node %s has no system", path, cfg->nodes[i].line,
                     cfg->nodes[i].name);
            return -1;
        }
    if (cfg->access_file) {
        if (cfg->access) {
            snprintf(err, errlen, "%s: access rules both here and in access_file %s: keep them "
                     "in one place", path, cfg->access_file);
            return -1;
        }
        struct parse a = {.cfg = cfg, .err = err, .errlen = errlen, .access_only = true};
        if (read_file(&a, cfg->access_file) < 0)
            return -1;
        if (!cfg->access && !(cfg->access = access_new())) { /* an empty file: open */
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (cfg->access && access_finish(cfg->access, err, errlen) < 0)
        return -1;
    return 0;
}

void config_free(struct config *cfg)
{
    for (unsigned i = 0; i < cfg->n_nodes; i++) {
        free(cfg->nodes[i].system);
        for (unsigned j = 0; j < cfg->nodes[i].n_args; j++)
            free(cfg->nodes[i].args[j]);
    }
    free(cfg->nodes);
    free(cfg->path);
    free(cfg->ifo);
    free(cfg->systems);
    free(cfg->supervisor_prefix);
    free(cfg->database);
    free(cfg->crash_journal);
    free(cfg->control_socket);
    free(cfg->medm_dir);
    free(cfg->control_group);
    free(cfg->operator_group);
    free(cfg->plant_addr_list);
    free(cfg->access_file);
    access_free(cfg->access);
    memset(cfg, 0, sizeof(*cfg));
}
