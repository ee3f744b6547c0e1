/* test_config.c — reading the INI configuration: good files, and bad ones
 * refused with the file, the line and the problem. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/cas.h"
#include "supervisor/config.h"

static char path[64];
static struct config cfg;
static char err[512];

static void teardown(void)
{
    config_free(&cfg);
    if (path[0])
        unlink(path);
}

TestSuite(config, .fini = teardown);

/* Write `text` to a fresh file and load it. */
static int load(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/guardiand-config-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    err[0] = 0;
    return config_load(&cfg, path, err, sizeof(err));
}

/* err names the file and line, and contains `what`. */
static void expect_error(int line, const char *what)
{
    char where[96];
    snprintf(where, sizeof(where), "%s:%d: ", path, line);
    cr_expect(strncmp(err, where, strlen(where)) == 0, "error '%s' should start '%s'", err, where);
    cr_expect(strstr(err, what) != NULL, "error '%s' should say '%s'", err, what);
}

Test(config, a_full_file)
{
    cr_assert_eq(load("; comment\n"
                      "[guardiand]\n"
                      "ifo = H1\n"
                      "systems = /a:/b\n"
                      "rate = 8\n"
                      "supervisor_prefix = H1:GUARDIAND-\n"
                      "database = /tmp/x.db\n"
                      "\n"
                      "[node SUS_ETMX]\n"
                      "system = sus\n"
                      "optic = ETMX\n"
                      "[node IFO]\n"
                      "system = ifo\n"
                      "nodes = A,B\n"
                      "nodes = C\n"),
                 0, "%s", err);
    cr_expect_str_eq(cfg.ifo, "H1");
    cr_expect_str_eq(cfg.systems, "/a:/b");
    cr_expect_eq(cfg.rate, 8.0);
    cr_expect_str_eq(cfg.supervisor_prefix, "H1:GUARDIAND-");
    cr_expect_str_eq(cfg.database, "/tmp/x.db");
    cr_assert_eq(cfg.n_nodes, 2);
    cr_expect_str_eq(cfg.nodes[0].name, "SUS_ETMX");
    cr_expect_str_eq(cfg.nodes[0].system, "sus");
    cr_assert_eq(cfg.nodes[0].n_args, 1);
    cr_expect_str_eq(cfg.nodes[0].args[0], "optic=ETMX");
    cr_expect_eq(cfg.nodes[0].line, 10);
    cr_assert_eq(cfg.nodes[1].n_args, 1);
    cr_expect_str_eq(cfg.nodes[1].args[0], "nodes=A,B,C", "a repeated key continues the value");
}

Test(config, defaults_without_a_guardiand_section)
{
    cr_assert_eq(load("[node A]\nsystem = bench\n"), 0, "%s", err);
    cr_expect_str_eq(cfg.ifo, "X1");
    cr_expect_eq(cfg.rate, 16.0);
    cr_expect_eq(cfg.n_nodes, 1);
}

Test(config, bad_values_name_their_line)
{
    struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        {"[guardiand]\nifo = h1\n", 2, "ifo 'h1'"},
        {"[guardiand]\nifo = TOOLONGIFO\n", 2, "ifo"},
        {"[guardiand]\nrate = 0\n", 2, "rate '0'"},
        {"[guardiand]\nrate = 16Hz\n", 2, "rate '16Hz'"},
        {"[guardiand]\nrate = 1e9\n", 2, "rate"},
        {"[guardiand]\ncolour = blue\n", 2, "unknown key 'colour'"},
        {"\n[weird]\nx = 1\n", 3, "unknown section [weird]"},
        {"[node sus_etmx]\nsystem = sus\n", 2, "node name 'sus_etmx'"},
        {"[node A]\nsystem = sus\nsystem = sus\n", 3, "system given twice"},
        {"[node A]\nsystem = ../evil\n", 2, "bad system name"},
        {"[node A]\nsystem = sus\n[node B]\nsystem = sus\n[node A]\nx = 1\n", 5,
         "[node A] given twice (first at line 1)"},
        {"[guardiand]\nifo = H1\nthis line is not ini\n", 3, "syntax error"},
        {"[node A]\nsystem = bench\n[node B]\nx = 1\n", 4, "node B has no system"},
        {"[guardiand]\ncontrol_mode = 0999\n", 2, "control_mode '0999'"},
        {"[guardiand]\ncontrol_mode = 01777\n", 2, "control_mode"},
        {"[guardiand]\ncontrol_mode = -1\n", 2, "control_mode"},
        {"[guardiand]\ncontrol_group = a:b\n", 2, "control_group 'a:b'"},
        {"[guardiand]\noperator_group = -x\n", 2, "operator_group '-x'"},
        {"[guardiand]\nstep_budget = 0.0001\n", 2, "step_budget '0.0001': expected 0"},
        {"[guardiand]\nstep_budget = -1\n", 2, "step_budget '-1'"},
        {"[guardiand]\nstep_budget = 61\n", 2, "step_budget '61'"},
        {"[guardiand]\nstep_budget = 50ms\n", 2, "step_budget '50ms'"},
        {"[guardiand]\nstep_overruns = 0\n", 2, "step_overruns '0'"},
        {"[guardiand]\nstep_overruns = 2.5\n", 2, "step_overruns '2.5': expected a whole"},
        {"[guardiand]\nstep_window = 0\n", 2, "step_window '0'"},
        {"[guardiand]\nstep_window = nan\n", 2, "step_window 'nan'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(load(cases[i].text), -1, "case %zu should be refused", i);
        expect_error(cases[i].line, cases[i].what);
        config_free(&cfg);
        unlink(path);
        path[0] = 0;
    }
}

Test(config, step_budget_keys)
{
    cr_assert_eq(load("[guardiand]\nifo = H1\n"), 0, "%s", err);
    cr_expect_eq(cfg.step_budget, 0.05, "the default: most of a 16 Hz cycle");
    cr_expect_eq(cfg.step_overruns, 8);
    cr_expect_eq(cfg.step_window, 10.0);
    config_free(&cfg);
    unlink(path);
    cr_assert_eq(load("[guardiand]\nstep_budget = 0.2\nstep_overruns = 3\nstep_window = 60\n"),
                 0, "%s", err);
    cr_expect_eq(cfg.step_budget, 0.2);
    cr_expect_eq(cfg.step_overruns, 3);
    cr_expect_eq(cfg.step_window, 60.0);
    config_free(&cfg);
    unlink(path);
    cr_assert_eq(load("[guardiand]\nstep_budget = 0\n"), 0, "0 turns the budget off: %s", err);
    cr_expect_eq(cfg.step_budget, 0.0);
    config_free(&cfg);
    unlink(path);
    cr_assert_eq(load("[guardiand]\nstep_budget = 0.001\n"), 0, "the smallest: %s", err);
    cr_expect_eq(cfg.step_budget, 0.001);
}

Test(config, control_socket_keys)
{
    cr_assert_eq(load("[guardiand]\n"
                      "control_socket = /tmp/g/ctl.sock\n"
                      "control_mode = 0666\n"
                      "control_group = guardian\n"
                      "operator_group = ops-1\n"),
                 0, "%s", err);
    cr_expect_str_eq(cfg.control_socket, "/tmp/g/ctl.sock");
    cr_expect_eq(cfg.control_mode, 0666);
    cr_expect_str_eq(cfg.control_group, "guardian");
    cr_expect_str_eq(cfg.operator_group, "ops-1");
}

Test(config, control_socket_defaults)
{
    cr_assert_eq(load("[guardiand]\nifo = H1\n"), 0, "%s", err);
    cr_expect_null(cfg.control_socket, "NULL: resolved at start ($RUNTIME_DIRECTORY or /run)");
    cr_expect_eq(cfg.control_mode, 0660);
    cr_expect_null(cfg.control_group);
    cr_expect_null(cfg.operator_group, "no operator group: only root changes things");
}

Test(config, a_missing_file)
{
    cr_expect_eq(config_load(&cfg, "/nonexistent/guardiand.ini", err, sizeof(err)), -1);
    cr_expect(strstr(err, "/nonexistent/guardiand.ini: cannot open") != NULL, "%s", err);
}

Test(config, node_names)
{
    cr_expect(name_valid_node("SUS_ETMX"));
    cr_expect(name_valid_node("A"));
    cr_expect_not(name_valid_node(""));
    cr_expect_not(name_valid_node("SUS-ETMX"));
    cr_expect_not(name_valid_node("sus"));
    char longname[70];
    memset(longname, 'A', 64);
    longname[64] = 0;
    cr_expect_not(name_valid_node(longname));
    longname[63] = 0;
    cr_expect(name_valid_node(longname));
}

Test(config, a_line_too_long_says_how_to_split_it)
{
    char text[1200] = "[node IFO]\nsystem = ifo\nnodes = ";
    for (int i = 0; i < 60; i++)
        strcat(text, "SUS_OPTIC01,");
    strcat(text, "X\n");
    cr_expect_eq(load(text), -1);
    expect_error(3, "longer than");
    cr_expect(strstr(err, "a key given again") != NULL, "%s", err);
}

Test(config, ca_limits)
{
    cr_assert_eq(load("[guardiand]\n"), 0, "%s", err);
    cr_expect_eq(cfg.ca_max_circuits, CAS_DEFAULT_MAX_CIRCUITS);
    cr_expect_eq(cfg.ca_max_circuits_per_host, CAS_DEFAULT_MAX_CIRCUITS_PER_HOST);
    cr_expect_eq(cfg.ca_max_channels_per_circuit, CAS_DEFAULT_MAX_CHANNELS_PER_CIRCUIT);
    cr_expect_eq(cfg.ca_max_subs_per_channel, CAS_DEFAULT_MAX_SUBS_PER_CHANNEL);
    cr_expect_eq(cfg.ca_handshake_timeout, CAS_DEFAULT_HANDSHAKE_TIMEOUT);
    config_free(&cfg);
    unlink(path);
    cr_assert_eq(load("[guardiand]\nca_max_circuits = 10\nca_max_circuits_per_host = 2\n"
                      "ca_max_channels_per_circuit = 5\nca_max_subs_per_channel = 3\n"
                      "ca_handshake_timeout = 0.5\n"), 0, "%s", err);
    cr_expect_eq(cfg.ca_max_circuits, 10u);
    cr_expect_eq(cfg.ca_max_circuits_per_host, 2u);
    cr_expect_eq(cfg.ca_max_channels_per_circuit, 5u);
    cr_expect_eq(cfg.ca_max_subs_per_channel, 3u);
    cr_expect_eq(cfg.ca_handshake_timeout, 0.5);
    config_free(&cfg);
    unlink(path);
    const char *bad[] = {"ca_max_circuits = 0", "ca_max_circuits_per_host = 1.5",
                         "ca_max_channels_per_circuit = -1", "ca_max_subs_per_channel = lots",
                         "ca_handshake_timeout = 5000", "ca_max_circuits = 4294967297"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[guardiand]\n%s\n", bad[i]);
        cr_expect_eq(load(text), -1, "'%s' was accepted", bad[i]);
        expect_error(2, strchr(bad[i], ' ') ? "ca_" : "");
        config_free(&cfg);
        unlink(path);
    }
}

/* Issue 12, items 9 and 18: only a regular file is a configuration. A
 * directory read as an empty file would stop every node; /dev/zero never
 * ends; a FIFO would block the start-up. */
Test(config, only_a_regular_file_is_read)
{
    const char *not_files[] = {"/tmp", "/dev/zero", "/dev/null"};
    for (size_t i = 0; i < sizeof(not_files) / sizeof(not_files[0]); i++) {
        err[0] = 0;
        cr_assert_eq(config_load(&cfg, not_files[i], err, sizeof(err)), -1, "%s", not_files[i]);
        char want[128];
        snprintf(want, sizeof(want), "%s: not a regular file", not_files[i]);
        cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
        config_free(&cfg);
    }
    char fifo[] = "/tmp/guardiand-fifo-XXXXXX";
    cr_assert_not_null(mkdtemp(fifo));
    char fifo_path[64];
    snprintf(fifo_path, sizeof(fifo_path), "%s/f", fifo);
    cr_assert_eq(mkfifo(fifo_path, 0600), 0);
    cr_assert_eq(config_load(&cfg, fifo_path, err, sizeof(err)), -1, "a FIFO does not block");
    cr_assert(strstr(err, "not a regular file"), "%s", err);
    unlink(fifo_path);
    rmdir(fifo);
    cr_assert_eq(config_load(&cfg, "/nonexistent/guardiand.ini", err, sizeof(err)), -1);
    cr_assert(strstr(err, "cannot open: No such file or directory"), "%s", err);
}

/* Issue 12, item 9: a header without ']' and a section given twice are
 * named at their own line, with what is wrong. */
Test(config, header_mistakes_are_named_at_their_line)
{
    cr_assert_eq(load("[guardiand]\nifo = X1\n[node A]\nsystem = bench\n"
                      "[node B\nsystem = bench\n"), -1);
    expect_error(5, "'[' without ']'");
    config_free(&cfg);
    unlink(path);
    cr_assert_eq(load("[guardiand]\nifo = X1\n[node A]\nsystem = bench\n\n[node A]\n"
                      "system = sus\n"), -1);
    expect_error(6, "[node A] given twice (first at line 3)");
}

/* Issue 12: one rule for node, system and IFO names (node/names.h), so the
 * file, the control socket and the store take the same names. */
Test(config, one_rule_for_names)
{
    cr_assert(name_valid_node("SUS_ETMX") && !name_valid_node("sus_etmx") &&
              !name_valid_node("") && !name_valid_node("A-B"));
    char long_name[NAME_NODE_MAX + 2];
    memset(long_name, 'A', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    cr_assert(!name_valid_node(long_name));
    long_name[NAME_NODE_MAX] = '\0';
    cr_assert(name_valid_node(long_name));
    cr_assert(name_valid_system("sus") && name_valid_system("sus.v2") &&
              name_valid_system("my-lock") && !name_valid_system(".hidden") &&
              !name_valid_system("../evil") && !name_valid_system("a/b"));
    cr_assert(name_valid_ifo("X1") && !name_valid_ifo("x1") && !name_valid_ifo("TOOLONGIF"));
    cr_assert_eq(load("[guardiand]\nifo = X1\n[node A]\nsystem = sus.v2\n"), 0, "%s", err);
    cr_assert_str_eq(cfg.nodes[0].system, "sus.v2");
}
