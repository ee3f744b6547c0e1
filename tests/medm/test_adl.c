/* test_adl.c — the .adl writer (medm/adl.h) and the screens' layout
 * (medm/medm.h) without a daemon: the rules a file's text must keep whatever
 * the site's names hold. The files themselves are checked against a strict
 * parser in tests/integration/test_medm.py. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medm/adl.h"
#include "medm/medm.h"

Test(adl, strings_are_made_safe_and_cut)
{
    adl *a = adl_new();
    char long_text[600];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    adl_text(a, (struct adl_box){0, 0, 10, 14}, ADL_BLACK, ADL_LEFT, "say \"hi\"\n caf\xc3\xa9");
    adl_text(a, (struct adl_box){0, 20, 10, 14}, ADL_BLACK, ADL_LEFT, long_text);
    char *text = adl_finish(a, "t.adl", ADL_GREY_BG);
    cr_assert(text);
    cr_assert(strstr(text, "textix=\"say 'hi'? caf??\"\n"), "%s", text);
    char cut[300];
    snprintf(cut, sizeof(cut), "textix=\"%.255s\"\n", long_text);
    cr_assert(strstr(text, cut), "cut at 255 characters");
    for (const char *p = text; *p; p++)
        cr_assert((*p >= 0x20 && *p < 0x7f) || *p == '\n' || *p == '\t', "byte %d", *p);
    free(text);
    adl_free(a);
}

Test(adl, the_display_holds_what_was_drawn_and_the_header_is_canonical)
{
    adl *a = adl_new();
    adl_rect(a, (struct adl_box){100, 50, 20, 30}, ADL_GREEN, true, NULL, false, NULL);
    char *text = adl_finish(a, "t.adl", ADL_GREY_BG);
    cr_assert(text);
    const char *head = "file {\n\tname=\"t.adl\"\n\tversion=030122\n}\ndisplay {\n";
    cr_assert(strncmp(text, head, strlen(head)) == 0, "%s", text);
    cr_assert(strstr(text, "\t\twidth=130\n\t\theight=90\n"), "extent plus the margin: %s", text);
    cr_assert(strstr(text, "\t\t1a7309,\n\t}\n}\nrectangle {\n"), "65 colours, each with a comma");
    cr_assert(strstr(text, "\t\tfill=\"outline\"\n"));
    free(text);
    adl_free(a);
}

Test(medm, a_node_of_an_unknown_system_is_refused)
{
    struct medm_node nodes[] = {{.name = "A", .system = "nosuch"}};
    struct medm_site site = {.ifo = "X1", .sup_prefix = "X1:GUARDIAND-", .nodes = nodes,
                             .n_nodes = 1};
    struct medm_file *files;
    unsigned n;
    char err[128];
    cr_assert_eq(medm_screens(&site, &files, &n, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "node A: no system nosuch");
}

Test(medm, a_manager_loop_lists_every_node_once)
{
    struct medm_state states[] = {{"INIT", 0, false}, {"RUN", 1, true}};
    struct medm_system sys[] = {{"s", states, 2}};
    /* A manages B, B manages A (a mistake in a site file): neither is a
     * top node, so both are listed with the others, once each. */
    struct medm_node nodes[] = {{"A", "s", "B"}, {"B", "s", "A"}, {"C", "s", NULL}};
    struct medm_site site = {.ifo = "X1", .sup_prefix = "X1:GUARDIAND-", .nodes = nodes,
                             .n_nodes = 3, .systems = sys, .n_systems = 1};
    struct medm_file *files;
    unsigned n;
    char err[128];
    cr_assert_eq(medm_screens(&site, &files, &n, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(files[0].name, "X1_GUARDIAN_OVERVIEW.adl");
    for (const char *node = "ABC"; *node; node++) {
        char args[64];
        snprintf(args, sizeof(args), "args=\"IFO=X1,NODE=%c,SYSTEM=s\"", *node);
        const char *at = strstr(files[0].text, args);
        cr_assert(at, "%c listed", *node);
        cr_assert_null(strstr(at + 1, args), "%c listed once", *node);
    }
    cr_assert_str_eq(files[3].name, "GUARDIAN_STATES_s.adl");
    cr_assert(strstr(files[3].text, "press_msg=\"RUN\""));
    cr_assert_null(strstr(files[3].text, "press_msg=\"INIT\""), "INIT is not requestable");
    medm_files_free(files, n);
}
