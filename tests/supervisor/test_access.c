/* test_access.c — the access rules: read from a configuration file (with
 * the file and line of each mistake), and the answer they give to "may
 * USER from HOST write CHANNEL of NODE", with the rule that decides. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/access.h"
#include "supervisor/config.h"

static char path[64], extra[64];
static struct config cfg;
static char err[512];

static void teardown(void)
{
    config_free(&cfg);
    if (path[0])
        unlink(path);
    if (extra[0])
        unlink(extra);
}

TestSuite(access, .fini = teardown);

static void write_file(char *name, const char *text)
{
    snprintf(name, 64, "/tmp/guardiand-access-XXXXXX");
    int fd = mkstemp(name);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static int load(const char *text)
{
    write_file(path, text);
    err[0] = 0;
    return config_load(&cfg, path, err, sizeof(err));
}

static uint32_t ip(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return a << 24 | b << 16 | c << 8 | d;
}


Test(access, who_may_write_by_user_and_address)
{
    cr_assert_eq(load("[guardiand]\n"
                      "[users operators]\nmembers = alice, bob\nmembers = dave\n"
                      "[users commissioners]\nmembers = carol\n"
                      "[hosts control_room]\nmembers = 10.0.1.0/24, 10.0.2.15\n"
                      "[access SUS_ETMX]\nOP = none\n"
                      "[access SUS_*]\nREQUEST = operators@control_room, commissioners\n"
                      "MODE = commissioners\n* = @control_room\n"
                      "[access *]\n* = *\n"), 0, "%s", err);
    const struct access_rules *r = cfg.access;
    cr_assert(!access_open(r));
    struct access_why why;
    /* operators only from the control room; commissioners from anywhere */
    cr_expect(access_may_write(r, "SUS_ITMX", "REQUEST", "alice", ip(10, 0, 1, 7), &why));
    cr_expect_eq(why.line, 12);
    cr_expect_str_eq(why.pattern, "SUS_*");
    cr_expect_str_eq(why.key, "REQUEST");
    cr_expect(access_may_write(r, "SUS_ITMX", "REQUEST", "dave", ip(10, 0, 2, 15), NULL));
    cr_expect(!access_may_write(r, "SUS_ITMX", "REQUEST", "alice", ip(10, 0, 2, 16), NULL));
    cr_expect(!access_may_write(r, "SUS_ITMX", "REQUEST", "alice", 0, NULL));
    cr_expect(access_may_write(r, "SUS_ITMX", "REQUEST", "carol", ip(192, 168, 0, 1), NULL));
    cr_expect(!access_may_write(r, "SUS_ITMX", "REQUEST", "mallory", ip(10, 0, 1, 7), NULL));
    /* REQUEST_ENUM is REQUEST */
    cr_expect(access_may_write(r, "SUS_ITMX", "REQUEST_ENUM", "alice", ip(10, 0, 1, 7), NULL));
    cr_expect(!access_may_write(r, "SUS_ITMX", "REQUEST_ENUM", "alice", ip(10, 0, 3, 1), NULL));
    /* the section's own key before its * */
    cr_expect(!access_may_write(r, "SUS_ITMX", "MODE", "alice", ip(10, 0, 1, 7), NULL));
    cr_expect(access_may_write(r, "SUS_ITMX", "MODE", "carol", 0, NULL));
    cr_expect(access_may_write(r, "SUS_ITMX", "LOAD", "anyone", ip(10, 0, 1, 200), &why));
    cr_expect_str_eq(why.key, "*");
    /* the first section that names the channel decides: SUS_ETMX's OP is nobody's,
     * its REQUEST falls through to SUS_* */
    cr_expect(!access_may_write(r, "SUS_ETMX", "OP", "carol", ip(10, 0, 1, 7), &why));
    cr_expect_str_eq(why.pattern, "SUS_ETMX");
    cr_expect(access_may_write(r, "SUS_ETMX", "REQUEST", "carol", 0, NULL));
    /* other nodes: [access *] */
    cr_expect(access_may_write(r, "ISC_LOCK", "OP", "", 0, &why));
    cr_expect_str_eq(why.pattern, "*");
    char text[512];
    access_may_write(r, "SUS_ITMX", "REQUEST", "x", 0, &why);
    access_explain(r, &why, text, sizeof(text));
    cr_expect_str_eq(text, "operators (alice, bob, dave) from control_room (10.0.1.0/24, "
                           "10.0.2.15); commissioners (carol) from any host");
}

Test(access, a_channel_no_rule_names_is_closed_and_no_rules_is_open)
{
    cr_assert_eq(load("[access SUS_*]\nREQUEST = *\n"), 0, "%s", err);
    struct access_why why;
    cr_expect(!access_may_write(cfg.access, "ISC_LOCK", "REQUEST", "alice", 1, &why));
    cr_expect_null(why.file);
    cr_expect(!access_may_write(cfg.access, "SUS_X", "MODE", "alice", 1, NULL));
    cr_expect(access_may_write(cfg.access, "SUS_X", "REQUEST", "", 0, NULL));
    config_free(&cfg);
    cr_assert_eq(load("[guardiand]\nifo = X1\n"), 0, "%s", err);
    cr_expect(access_open(cfg.access));
    cr_expect(access_may_write(cfg.access, "ISC_LOCK", "OP", "", 0, &why));
    cr_expect(why.open);
}

Test(access, rules_from_an_access_file)
{
    write_file(extra, "[users ops]\nmembers = alice\n[access *]\nOP = ops\n");
    char text[256];
    snprintf(text, sizeof(text), "[guardiand]\naccess_file = %s\n", extra);
    cr_assert_eq(load(text), 0, "%s", err);
    struct access_why why;
    cr_expect(access_may_write(cfg.access, "A", "OP", "alice", 0, &why));
    cr_expect_str_eq(why.file, extra);
    cr_expect_eq(why.line, 4);
    config_free(&cfg);
    /* rules in both places, and other sections in the access file, are mistakes */
    snprintf(text, sizeof(text), "[guardiand]\naccess_file = %s\n[access *]\nOP = *\n", extra);
    cr_expect_eq(load(text), -1);
    cr_expect(strstr(err, "both here and in access_file"), "%s", err);
    config_free(&cfg);
    unlink(extra);
    write_file(extra, "[users ops]\nmembers = alice\n[node A]\nsystem = x\n");
    snprintf(text, sizeof(text), "[guardiand]\naccess_file = %s\n", extra);
    cr_expect_eq(load(text), -1);
    char where[96];
    snprintf(where, sizeof(where), "%s:4: [node A] in an access file", extra);
    cr_expect(strstr(err, where), "%s", err);
}

/* Each mistake is refused with its line. */
Test(access, mistakes_name_their_line)
{
    static const struct {
        const char *text;
        const char *what;
    } bad[] = {
        {"[access SUS_*]\nREQUEST = ops\n", ":2: [access SUS_*] REQUEST: no [users ops] section"},
        {"[access SUS_*]\nREQUEST = @room\n", ":2: [access SUS_*] REQUEST: no [hosts room]"},
        {"[access SUS_*]\nSTATE = *\n", ":2: [access SUS_*]: 'STATE' is not a writable node "
                                          "channel"},
        {"[access SUS_*]\nREQUEST_ENUM = *\n", ":2: [access SUS_*]: REQUEST_ENUM follows"},
        {"[access]\nOP = *\n", ":2: [access]: an access section is [access PATTERN]"},
        {"[access sus_*]\nOP = *\n", "[access sus_*]: an access section"},
        {"[access A]\nOP = none, *\n", "'none' with others"},
        {"[access A]\nOP = a@\n", "'a@' is not USERS@HOSTS"},
        {"[hosts h]\nmembers = 10.0.0.1/33\n", ":2: [hosts h]: '10.0.0.1/33' is not an IPv4 "
                                                "network"},
        {"[hosts h]\nmembers = 10.0.0.1/8\n", "has host bits set (the network is 10.0.0.0/8)"},
        {"[hosts h]\nmembers = 10.0.0\n", "'10.0.0' is neither"},
        {"[hosts h]\nmembers = no_such_host!\n", "is neither"},
        {"[hosts h]\nnames = a\n", ":2: [hosts h]: unknown key 'names'"},
        {"[users u]\nmembers = a@b\n", "'a@b' is not a CA user name"},
        {"[users bad name!]\nmembers = a\n", "a name is 1-32 of"},
        {"[whatever]\nx = 1\n", "unknown section [whatever]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(load(bad[i].text), -1, "accepted: %s", bad[i].text);
        cr_expect(strstr(err, bad[i].what), "for %s: got '%s', expected '%s'", bad[i].text, err,
                  bad[i].what);
        cr_expect(strstr(err, path), "no file name in '%s'", err);
        config_free(&cfg);
        unlink(path);
        path[0] = 0;
    }
}

/* Names are looked up only when allowed to block; a reload reuses what the
 * rules in force had, and refuses a new name. */
Test(access, host_names_resolve_at_start_and_are_reused_at_reload)
{
    cr_assert_eq(load("[hosts h]\nmembers = localhost\n[access *]\nOP = @h\n"), 0, "%s", err);
    cr_expect(!access_may_write(cfg.access, "A", "OP", "x", ip(127, 0, 0, 1), NULL),
              "a name not looked up must match nothing");
    cr_assert_eq(access_resolve(cfg.access, NULL, true, err, sizeof(err)), 0, "%s", err);
    cr_expect(access_may_write(cfg.access, "A", "OP", "x", ip(127, 0, 0, 1), NULL));
    struct config first = cfg;
    memset(&cfg, 0, sizeof(cfg));
    unlink(path);
    cr_assert_eq(load("[hosts h]\nmembers = localhost\n[access *]\nOP = @h\n"), 0, "%s", err);
    cr_expect_eq(access_resolve(cfg.access, first.access, false, err, sizeof(err)), 0, "%s", err);
    cr_expect(access_may_write(cfg.access, "A", "OP", "x", ip(127, 0, 0, 1), NULL));
    config_free(&cfg);
    unlink(path);
    cr_assert_eq(load("[hosts h]\nmembers = localhost, ip6-localhost\n[access *]\nOP = @h\n"), 0,
                 "%s", err);
    cr_expect_eq(access_resolve(cfg.access, first.access, false, err, sizeof(err)), -1);
    cr_expect(strstr(err, "host name ip6-localhost is new"), "%s", err);
    config_free(&first);
}
