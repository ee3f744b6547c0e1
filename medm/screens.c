/* screens.c — the site's MEDM screens (medm.h), laid out on a grid.
 *
 * Heights are those adl.h names after adl.md section 10, so each object
 * picks a readable font; every object lies inside the display, and no two
 * widgets or texts overlap (rectangles may lie under them: frames and lamps).
 */
#include "medm/medm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "medm/adl.h"
#include "node/node.h" /* node_channel_name: the one home of the channel names */

#define NODE_FILE "GUARDIAN_NODE.adl"
#define NODE_ARGS "IFO=$(IFO),NODE=$(NODE),SYSTEM=$(SYSTEM)"
#define CHAN(suffix) "$(IFO):GRD-$(NODE)_" suffix

/* ---- the overview: one row a node ---- */

/* Row geometry, x offsets within a column. The node's name opens its node
 * screen (an invisible related display under it): no button, so a row is
 * as tall as its text and its OK frame. */
#define ROW_PITCH 19
#define ROW_TEXT 14       /* text and text updates in a row: a 14 px font */
#define ROW_FRAME 18      /* the OK frame around the state */
#define COL_NAME 0
#define W_NAME 136
#define COL_STATE 140     /* the OK frame; the state inside it */
#define W_STATE 128
#define COL_REQUEST 272
#define W_REQUEST 112
#define COL_MODE 388
#define W_MODE 60
#define COL_OP 452
#define W_OP 42
#define COL_LAMPS 498     /* NOTIFICATION, ERROR, CONNECT, SPM, QUARANTINED */
#define W_LAMP 8
#define LAMP_PITCH 10
#define N_LAMPS 5
#define W_COLUMN 548
#define COLUMN_GAP 16
#define ROWS_MAX 54       /* rows a column (1100 px): the demo's 204 nodes in 4 columns, 2250 px */
#define HEADER_H 64
#define INDENT 10         /* px a manager tree level */

struct row {
    const struct medm_node *node; /* NULL: a heading */
    char heading[80];
    unsigned depth;
};

struct rows {
    struct row *r;
    unsigned n, cap;
};

static int add_row(struct rows *rs, const struct medm_node *node, unsigned depth,
                   const char *heading)
{
    if (rs->n == rs->cap) {
        unsigned cap = rs->cap ? 2 * rs->cap : 64;
        struct row *r = realloc(rs->r, cap * sizeof(*r));
        if (!r)
            return -1;
        rs->r = r;
        rs->cap = cap;
    }
    struct row *row = &rs->r[rs->n++];
    memset(row, 0, sizeof(*row));
    row->node = node;
    row->depth = depth;
    if (heading)
        snprintf(row->heading, sizeof(row->heading), "%s", heading);
    return 0;
}

static int find_node(const struct medm_site *s, const char *name)
{
    for (unsigned i = 0; name && i < s->n_nodes; i++)
        if (strcmp(s->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* A tree from node i down, depth first, subordinates in site order. */
static int add_tree(const struct medm_site *s, struct rows *rs, bool *placed, unsigned i,
                    unsigned depth)
{
    if (placed[i])
        return 0; /* listed already: a loop, or two managers of one node */
    placed[i] = true;
    if (add_row(rs, &s->nodes[i], depth, NULL) != 0)
        return -1;
    for (unsigned k = 0; k < s->n_nodes; k++)
        if (s->nodes[k].manager && strcmp(s->nodes[k].manager, s->nodes[i].name) == 0 &&
            add_tree(s, rs, placed, k, depth + 1) != 0)
            return -1;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const struct medm_node *x = *(const struct medm_node *const *)a;
    const struct medm_node *y = *(const struct medm_node *const *)b;
    int c = strcmp(x->system, y->system);
    return c ? c : strcmp(x->name, y->name);
}

/* Trees first (a manager no node of the site manages, and everything under
 * it), then every other node by system and name under a heading. */
static int order_rows(const struct medm_site *s, struct rows *rs)
{
    bool *placed = calloc(s->n_nodes + 1, sizeof(bool));
    const struct medm_node **rest = calloc(s->n_nodes + 1, sizeof(*rest));
    int rc = -1;
    if (!placed || !rest)
        goto out;
    for (unsigned i = 0; i < s->n_nodes; i++) {
        const struct medm_node *n = &s->nodes[i];
        bool has_subs = false;
        for (unsigned k = 0; k < s->n_nodes && !has_subs; k++)
            has_subs = s->nodes[k].manager && strcmp(s->nodes[k].manager, n->name) == 0;
        bool top = !n->manager || find_node(s, n->manager) < 0;
        if (has_subs && top) {
            if (rs->n == 0 && add_row(rs, NULL, 0, "managers") != 0)
                goto out;
            if (add_tree(s, rs, placed, i, 0) != 0)
                goto out;
        }
    }
    unsigned n_rest = 0;
    for (unsigned i = 0; i < s->n_nodes; i++)
        if (!placed[i])
            rest[n_rest++] = &s->nodes[i];
    qsort(rest, n_rest, sizeof(*rest), by_name);
    for (unsigned i = 0; i < n_rest; i++) {
        if (i == 0 || strcmp(rest[i]->system, rest[i - 1]->system) != 0) {
            unsigned count = 0;
            for (unsigned k = i; k < n_rest && strcmp(rest[k]->system, rest[i]->system) == 0; k++)
                count++;
            char heading[80];
            snprintf(heading, sizeof(heading), "%.40s (%u)", rest[i]->system, count);
            if (add_row(rs, NULL, 0, heading) != 0)
                goto out;
        }
        if (add_row(rs, rest[i], 0, NULL) != 0)
            goto out;
    }
    rc = 0;
out:
    free(placed);
    free(rest);
    return rc;
}

static void overview_row(adl *a, const struct medm_site *s, const struct row *r, int x, int y)
{
    if (!r->node) {
        adl_text(a, (struct adl_box){x, y + 2, W_COLUMN, ROW_TEXT}, ADL_BLUE_DARK, ADL_LEFT,
                 r->heading);
        return;
    }
    const char *node = r->node->name;
    char chan[160], args[200], label[120];
#define NODE_CHAN(suffix) (node_channel_name(chan, sizeof(chan), s->ifo, node, suffix), chan)
    int indent = (int)(r->depth > 6 ? 6 : r->depth) * INDENT;
    snprintf(args, sizeof(args), "IFO=%s,NODE=%s,SYSTEM=%s", s->ifo, node, r->node->system);
    snprintf(label, sizeof(label), "%s node screen", node);
    struct adl_link open = {label, NODE_FILE, args};
    struct adl_box name = {x + COL_NAME + indent, y + 2, W_NAME - indent, ROW_TEXT};
    adl_related_area(a, name, ADL_GREY_BG, ADL_GREY_BG, &open);
    adl_text(a, name, ADL_BLACK, ADL_LEFT, node); /* covers the area's stipple */
    /* STATE inside a frame in the alarm colour of OK: green, or red when not OK. */
    adl_rect(a, (struct adl_box){x + COL_STATE, y, W_STATE, ROW_FRAME}, ADL_GREEN, false,
             NODE_CHAN("OK"), true, NULL);
    adl_text_update(a, (struct adl_box){x + COL_STATE + 2, y + 2, W_STATE - 4, ROW_TEXT},
                    NODE_CHAN("STATE"), ADL_WHITE, ADL_GREY_DARKER, false, ADL_LEFT, true);
    adl_text_update(a, (struct adl_box){x + COL_REQUEST, y + 2, W_REQUEST, ROW_TEXT},
                    NODE_CHAN("REQUEST"), ADL_BLACK, ADL_GREY_LIGHT, false, ADL_LEFT, true);
    adl_text_update(a, (struct adl_box){x + COL_MODE, y + 2, W_MODE, ROW_TEXT},
                    NODE_CHAN("MODE"), ADL_BLACK, ADL_GREY_LIGHT, false, ADL_LEFT, true);
    adl_text_update(a, (struct adl_box){x + COL_OP, y + 2, W_OP, ROW_TEXT}, NODE_CHAN("OP"),
                    ADL_BLACK, ADL_GREY_LIGHT, false, ADL_LEFT, true);
    /* Lamps: the alarm colour of channels that carry a severity; SPM from
     * its count (green none changed, yellow some). */
    static const char *const lamps[N_LAMPS] = {"NOTIFICATION", "ERROR", "CONNECT", NULL,
                                               "QUARANTINED"};
    for (int i = 0; i < N_LAMPS; i++) {
        struct adl_box b = {x + COL_LAMPS + i * LAMP_PITCH, y + 2, W_LAMP, ROW_TEXT};
        if (lamps[i]) {
            adl_rect(a, b, ADL_GREEN, false, NODE_CHAN(lamps[i]), true, NULL);
        } else {
            adl_rect(a, b, ADL_GREEN, false, NODE_CHAN("SPM_CHANGED"), false, "A=0");
            adl_rect(a, b, ADL_YELLOW, false, NODE_CHAN("SPM_CHANGED"), false, "A#0");
        }
    }
#undef NODE_CHAN
}

static void column_heads(adl *a, int x, int y)
{
    static const struct { int x, w; const char *t; } heads[] = {
        {COL_NAME, W_NAME, "node (click: open)"}, {COL_STATE, W_STATE, "state (frame: OK)"},
        {COL_REQUEST, W_REQUEST, "request"}, {COL_MODE, W_MODE, "mode"}, {COL_OP, W_OP, "op"},
        {COL_LAMPS, N_LAMPS * LAMP_PITCH, "NECSQ"},
    };
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
        adl_text(a, (struct adl_box){x + heads[i].x, y, heads[i].w, ADL_H_TEXT_SMALL},
                 ADL_GREY_DARK, ADL_LEFT, heads[i].t);
}

/* A label and the supervisor channel's value after it. */
static void sup_value(adl *a, const struct medm_site *s, int x, int y, const char *label,
                      const char *suffix, bool text, bool alarm)
{
    char chan[160];
    snprintf(chan, sizeof(chan), "%s%s", s->sup_prefix, suffix);
    adl_text(a, (struct adl_box){x, y + 3, 96, ROW_TEXT}, ADL_BLACK, ADL_LEFT, label);
    adl_text_update(a, (struct adl_box){x + 100, y + 3, 90, ROW_TEXT}, chan,
                    alarm ? ADL_WHITE : ADL_BLACK, alarm ? ADL_GREY_DARKER : ADL_GREY_LIGHT,
                    alarm, ADL_LEFT, text);
}

static char *overview(const struct medm_site *s, const char *file, const char *sup_file)
{
    struct rows rs = {0};
    adl *a = adl_new();
    char *out = NULL;
    if (!a || order_rows(s, &rs) != 0)
        goto done;
    char title[120];
    snprintf(title, sizeof(title), "%s Guardian overview: %u nodes", s->ifo, s->n_nodes);
    adl_text(a, (struct adl_box){10, 8, 400, ADL_H_TEXT_LARGE}, ADL_BLACK, ADL_LEFT, title);
    sup_value(a, s, 10, 34, "nodes running", "NODES", false, false);
    sup_value(a, s, 210, 34, "loop use %", "LOOP_UTIL", false, false);
    sup_value(a, s, 410, 34, "jitter p99 ms", "JITTER_P99", false, false);
    sup_value(a, s, 610, 34, "database", "DB_STATUS", true, true);
    struct adl_link sup = {"Supervisor", sup_file, ""};
    adl_related(a, (struct adl_box){420, 8, 100, ADL_H_BUTTON}, ADL_BLACK, ADL_BLUE_BUTTON,
                "Supervisor", &sup, 1);
    unsigned cols = (rs.n + ROWS_MAX - 1) / ROWS_MAX;
    unsigned per_col = cols ? (rs.n + cols - 1) / cols : 0;
    for (unsigned c = 0; c < cols; c++) {
        int x = 10 + (int)c * (W_COLUMN + COLUMN_GAP);
        column_heads(a, x, HEADER_H);
        for (unsigned k = 0; k < per_col && c * per_col + k < rs.n; k++)
            overview_row(a, s, &rs.r[c * per_col + k], x, HEADER_H + 16 + (int)k * ROW_PITCH);
    }
    out = adl_finish(a, file, ADL_GREY_BG);
done:
    free(rs.r);
    adl_free(a);
    return out;
}

/* ---- the node screen ---- */

/* A label, then a read-only value of the node. */
static void node_value(adl *a, int x, int y, int w, const char *label, const char *chan,
                       bool text, bool alarm)
{
    adl_text(a, (struct adl_box){x, y + 3, 110, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT, label);
    adl_text_update(a, (struct adl_box){x + 114, y + 3, w, ADL_H_TEXT}, chan,
                    alarm ? ADL_WHITE : ADL_BLACK, alarm ? ADL_GREY_DARKER : ADL_GREY_LIGHT,
                    alarm, ADL_LEFT, text);
}

static char *node_screen(const struct medm_site *s)
{
    adl *a = adl_new();
    if (!a)
        return NULL;
    adl_text(a, (struct adl_box){10, 8, 400, ADL_H_TEXT_LARGE}, ADL_BLACK, ADL_LEFT,
             "$(IFO):GRD-$(NODE)");
    adl_text(a, (struct adl_box){420, 11, 160, ADL_H_TEXT}, ADL_GREY_DARK, ADL_LEFT,
             "system $(SYSTEM)");
    /* STATE, large, in a frame in OK's alarm colour. */
    adl_rect(a, (struct adl_box){10, 36, 572, 28}, ADL_GREEN, false, CHAN("OK"), true, NULL);
    adl_text_update(a, (struct adl_box){14, 40, 564, ADL_H_TEXT_LARGE}, CHAN("STATE"), ADL_WHITE,
                    ADL_GREY_DARKER, false, ADL_CENTER, true);
    adl_text_update(a, (struct adl_box){10, 70, 572, ADL_H_TEXT_LARGE}, CHAN("USERMSG"),
                    ADL_BLACK, ADL_YELLOW, false, ADL_LEFT, true);
    int y = 98;
    /* Controls: REQUEST (menu of the requestable states, and by name), OP, MODE, LOAD. */
    adl_text(a, (struct adl_box){10, y + 4, 110, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT, "request");
    adl_menu(a, (struct adl_box){124, y, 200, ADL_H_MENU}, CHAN("REQUEST_ENUM"), ADL_BLACK,
             ADL_BLUE_BUTTON);
    adl_text_entry(a, (struct adl_box){330, y + 1, 150, ADL_H_BUTTON}, CHAN("REQUEST"),
                   ADL_BLACK, ADL_WHITE, true);
    char states_file[MEDM_FILE_NAME_MAX];
    snprintf(states_file, sizeof(states_file), "GUARDIAN_STATES_$(SYSTEM).adl");
    struct adl_link states = {"all states", states_file, NODE_ARGS};
    adl_related(a, (struct adl_box){486, y + 1, 96, ADL_H_BUTTON}, ADL_BLACK, ADL_BLUE_BUTTON,
                "all states", &states, 1);
    y += 28;
    adl_text(a, (struct adl_box){10, y + 3, 110, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT, "op");
    adl_choice(a, (struct adl_box){124, y, 200, ADL_H_CHOICE}, CHAN("OP"), ADL_BLACK,
               ADL_BLUE_BUTTON);
    adl_message_button(a, (struct adl_box){330, y, 80, ADL_H_BUTTON}, CHAN("LOAD"), ADL_BLACK,
                       ADL_BLUE_BUTTON, "LOAD", "True");
    adl_text_update(a, (struct adl_box){416, y + 3, 166, ADL_H_TEXT}, CHAN("LOAD_STATUS"),
                    ADL_BLACK, ADL_GREY_LIGHT, false, ADL_LEFT, true);
    y += 26;
    adl_text(a, (struct adl_box){10, y + 3, 110, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT, "mode");
    adl_choice(a, (struct adl_box){124, y, 286, ADL_H_CHOICE}, CHAN("MODE"), ADL_BLACK,
               ADL_BLUE_BUTTON);
    y += 30;
    /* Read-backs, two columns; "seconds" after the times (their units). */
    static const struct readback {
        const char *label, *suffix;
        bool text, alarm, seconds;
    } left[] = {
        {"requested", "REQUEST_S", true, false, false}, {"target", "TARGET", true, false, false},
        {"nominal", "NOMINAL", true, false, false}, {"status", "STATUS", true, false, false},
        {"exectime", "EXECTIME", false, false, true},
        {"previous state", "EXECTIME_LAST", false, false, true},
        {"manager", "MANAGER", true, false, false},
        {"changed by", "CHANGED_BY", true, false, false},
        {"loaded", "LOAD_TIME", true, false, false},
        {"load pending", "LOAD_PENDING", true, true, false}, /* the file is not what runs */
    }, right[] = {
        {"OK", "OK", true, true, false}, {"error", "ERROR", true, true, false},
        {"connect", "CONNECT", true, true, false},
        {"notification", "NOTIFICATION", true, true, false},
        {"stalled", "STALLED", true, true, false}, {"active", "ACTIVE", true, false, false},
        {"subnodes", "SUBNODES_TOTAL", false, false, false},
        {"subnodes not OK", "SUBNODES_NOT_OK", false, false, false},
        {"SPM watched", "SPM_TOTAL", false, false, false},
        {"SPM changed", "SPM_CHANGED", false, false, false},
        {"crashes", "CRASHES", false, false, false},
        {"quarantined", "QUARANTINED", true, true, false},
        {"version", "VERSION", true, false, false},
    };
    const struct { const struct readback *rows; size_t n; int x, w; } cols[] = {
        {left, sizeof(left) / sizeof(left[0]), 10, 170},
        {right, sizeof(right) / sizeof(right[0]), 300, 150},
    };
    int bottom = y;
    for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
        int yc = y;
        for (size_t i = 0; i < cols[c].n; i++) {
            const struct readback *r = &cols[c].rows[i];
            char chan[80];
            snprintf(chan, sizeof(chan), CHAN("%s"), r->suffix);
            int w = r->seconds ? cols[c].w - 50 : cols[c].w;
            node_value(a, cols[c].x, yc, w, r->label, chan, r->text, r->alarm);
            if (r->seconds)
                adl_text(a, (struct adl_box){cols[c].x + 114 + w + 4, yc + 3, 46, ADL_H_TEXT},
                         ADL_BLACK, ADL_LEFT, "seconds");
            yc += 22;
        }
        if (yc > bottom)
            bottom = yc;
    }
    y = bottom;
    char overview_file[MEDM_FILE_NAME_MAX];
    snprintf(overview_file, sizeof(overview_file), "%s_GUARDIAN_OVERVIEW.adl", s->ifo);
    struct adl_link back = {"Overview", overview_file, "IFO=$(IFO)"};
    adl_related(a, (struct adl_box){10, y + 6, 120, ADL_H_BUTTON}, ADL_BLACK, ADL_BLUE_BUTTON,
                "Overview", &back, 1);
    char *out = adl_finish(a, NODE_FILE, ADL_GREY_BG);
    adl_free(a);
    return out;
}

/* ---- the states screen of a system ---- */

static char *states_screen(const struct medm_system *sys, const char *file)
{
    adl *a = adl_new();
    if (!a)
        return NULL;
    char title[160];
    snprintf(title, sizeof(title), "$(IFO):GRD-$(NODE) states (system %s)", sys->name);
    adl_text(a, (struct adl_box){10, 8, 400, ADL_H_TEXT_LARGE}, ADL_BLACK, ADL_LEFT, title);
    adl_text(a, (struct adl_box){10, 36, 60, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT, "state");
    adl_text_update(a, (struct adl_box){74, 36, 150, ADL_H_TEXT}, CHAN("STATE"), ADL_BLACK,
                    ADL_GREY_LIGHT, false, ADL_LEFT, true);
    adl_text(a, (struct adl_box){234, 36, 60, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT, "target");
    adl_text_update(a, (struct adl_box){298, 36, 150, ADL_H_TEXT}, CHAN("TARGET"), ADL_BLACK,
                    ADL_GREY_LIGHT, false, ADL_LEFT, true);
    adl_text(a, (struct adl_box){10, 56, 440, ADL_H_TEXT_SMALL}, ADL_GREY_DARK, ADL_LEFT,
             "green frame: the current state; yellow: the target");
    int y = 80;
    for (int pass = 0; pass < 2; pass++) {
        bool requestable = pass == 0;
        adl_text(a, (struct adl_box){10, y, 300, ADL_H_TEXT}, ADL_BLUE_DARK, ADL_LEFT,
                 requestable ? "requestable (press to request)" : "not requestable");
        y += 20;
        for (unsigned i = 0; i < sys->n_states; i++) {
            const struct medm_state *st = &sys->states[i];
            if (st->requestable != requestable)
                continue;
            char calc[32];
            struct adl_box frame = {10, y, 300, ADL_H_BUTTON + 8};
            snprintf(calc, sizeof(calc), "A=%d", st->index);
            adl_rect(a, frame, ADL_YELLOW, false, CHAN("TARGET_N"), false, calc);
            adl_rect(a, frame, ADL_GREEN, false, CHAN("STATE_N"), false, calc);
            struct adl_box inner = {14, y + 4, 292, ADL_H_BUTTON};
            if (requestable)
                adl_message_button(a, inner, CHAN("REQUEST"), ADL_BLACK, ADL_BLUE_BUTTON,
                                   st->name, st->name);
            else
                adl_text(a, (struct adl_box){18, y + 7, 288, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT,
                         st->name);
            char idx[24];
            snprintf(idx, sizeof(idx), "%d", st->index);
            adl_text(a, (struct adl_box){318, y + 7, 60, ADL_H_TEXT}, ADL_GREY_DARK, ADL_LEFT,
                     idx);
            y += ADL_H_BUTTON + 10;
        }
        y += 6;
    }
    struct adl_link back = {"Node", NODE_FILE, NODE_ARGS};
    adl_related(a, (struct adl_box){10, y + 4, 120, ADL_H_BUTTON}, ADL_BLACK, ADL_BLUE_BUTTON,
                "Node", &back, 1);
    char *out = adl_finish(a, file, ADL_GREY_BG);
    adl_free(a);
    return out;
}

/* ---- the supervisor screen ---- */

static char *supervisor_screen(const struct medm_site *s, const char *file,
                               const char *overview_file)
{
    adl *a = adl_new();
    if (!a)
        return NULL;
    char title[120];
    snprintf(title, sizeof(title), "%s guardiand supervisor (%s)", s->ifo, s->sup_prefix);
    adl_text(a, (struct adl_box){10, 8, 400, ADL_H_TEXT_LARGE}, ADL_BLACK, ADL_LEFT, title);
    int y = 40;
    for (unsigned i = 0; i < s->n_sup_chans; i++) {
        const struct medm_chan *c = &s->sup_chans[i];
        char chan[160];
        snprintf(chan, sizeof(chan), "%s%s", s->sup_prefix, c->suffix);
        adl_text(a, (struct adl_box){10, y + 3, 150, ADL_H_TEXT}, ADL_BLACK, ADL_LEFT,
                 c->suffix);
        adl_text_update(a, (struct adl_box){164, y + 3, 260, ADL_H_TEXT}, chan,
                        c->alarm ? ADL_WHITE : ADL_BLACK,
                        c->alarm ? ADL_GREY_DARKER : ADL_GREY_LIGHT, c->alarm, ADL_LEFT,
                        c->text);
        y += 22;
    }
    struct adl_link back = {"Overview", overview_file, ""};
    adl_related(a, (struct adl_box){10, y + 6, 120, ADL_H_BUTTON}, ADL_BLACK, ADL_BLUE_BUTTON,
                "Overview", &back, 1);
    char *out = adl_finish(a, file, ADL_GREY_BG);
    adl_free(a);
    return out;
}

/* ---- all of them ---- */

void medm_files_free(struct medm_file *files, unsigned n)
{
    for (unsigned i = 0; files && i < n; i++)
        free(files[i].text);
    free(files);
}

int medm_screens(const struct medm_site *s, struct medm_file **files, unsigned *n, char *err,
                 size_t errlen)
{
    *files = NULL;
    *n = 0;
    for (unsigned i = 0; i < s->n_nodes; i++) {
        bool known = false;
        for (unsigned k = 0; k < s->n_systems && !known; k++)
            known = strcmp(s->systems[k].name, s->nodes[i].system) == 0;
        if (!known) {
            snprintf(err, errlen, "node %s: no system %s", s->nodes[i].name, s->nodes[i].system);
            return -1;
        }
    }
    struct medm_file *f = calloc(3 + s->n_systems, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned k = 0;
    snprintf(f[k].name, sizeof(f[k].name), "%s_GUARDIAN_OVERVIEW.adl", s->ifo);
    char sup_file[MEDM_FILE_NAME_MAX];
    snprintf(sup_file, sizeof(sup_file), "%s_GUARDIAND_SUPERVISOR.adl", s->ifo);
    f[k].text = overview(s, f[k].name, sup_file);
    k++;
    snprintf(f[k].name, sizeof(f[k].name), "%s", sup_file);
    f[k].text = supervisor_screen(s, f[k].name, f[0].name);
    k++;
    snprintf(f[k].name, sizeof(f[k].name), "%s", NODE_FILE);
    f[k].text = node_screen(s);
    k++;
    for (unsigned i = 0; i < s->n_systems; i++, k++) {
        snprintf(f[k].name, sizeof(f[k].name), "GUARDIAN_STATES_%s.adl", s->systems[i].name);
        f[k].text = states_screen(&s->systems[i], f[k].name);
    }
    for (unsigned i = 0; i < k; i++)
        if (!f[i].text) {
            medm_files_free(f, k);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    *files = f;
    *n = k;
    return 0;
}
