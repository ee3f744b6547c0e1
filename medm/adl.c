/* adl.c — the canonical .adl writer (adl.h). */
#include "medm/adl.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MEDM's default colour map, in index order (adl.md section 5.3). */
static const char *const colors[65] = {
    "ffffff", "ececec", "dadada", "c8c8c8", "bbbbbb", "aeaeae", "9e9e9e", "919191", "858585",
    "787878", "696969", "5a5a5a", "464646", "2d2d2d", "000000", "00d800", "1ebb00", "339900",
    "2d7f00", "216c00", "fd0000", "de1309", "be190b", "a01207", "820400", "5893ff", "597ee1",
    "4b6ec7", "3a5eab", "27548d", "fbf34a", "f9da3c", "eeb62b", "e19015", "cd6100", "ffb0ff",
    "d67fe2", "ae4ebc", "8b1a96", "610a75", "a4aaff", "8793e2", "6a73c1", "4d52a4", "343386",
    "c7bb6d", "b79d5c", "a47e3c", "7d5627", "58340f", "99ffff", "73dfff", "4ea5f9", "2a63e4",
    "0a00b8", "ebf1b5", "d4db9d", "bbc187", "a6a462", "8b8239", "73ff6b", "52da3b", "3cb420",
    "289315", "1a7309",
};

struct adl {
    char *buf;       /* the objects */
    size_t len, cap;
    bool oom;
    int depth;       /* blocks open */
    int right, bottom; /* extent of what was drawn */
};

adl *adl_new(void) { return calloc(1, sizeof(adl)); }

void adl_free(adl *a)
{
    if (a)
        free(a->buf);
    free(a);
}

static void put(adl *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(adl *a, const char *fmt, ...)
{
    if (a->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(a->buf ? a->buf + a->len : NULL, a->buf ? a->cap - a->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            a->oom = true;
            return;
        }
        if (a->buf && a->len + (size_t)n < a->cap) {
            a->len += (size_t)n;
            return;
        }
        size_t cap = a->cap ? 2 * a->cap : 4096;
        while (cap < a->len + (size_t)n + 1)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b) {
            a->oom = true;
            return;
        }
        a->buf = b;
        a->cap = cap;
    }
}

static void indent(adl *a)
{
    for (int i = 0; i < a->depth; i++)
        put(a, "\t");
}

static void open_block(adl *a, const char *name)
{
    indent(a);
    put(a, "%s {\n", name);
    a->depth++;
}

static void close_block(adl *a)
{
    assert(a->depth > 0);
    a->depth--;
    indent(a);
    put(a, "}\n");
}

static void key_int(adl *a, const char *key, int v)
{
    indent(a);
    put(a, "%s=%d\n", key, v);
}

/* A quoted string, made safe (adl.h). */
static void key_str(adl *a, const char *key, const char *v)
{
    char safe[ADL_STRING_MAX + 1];
    size_t i = 0;
    for (; v && v[i] && i < ADL_STRING_MAX; i++) {
        unsigned char c = (unsigned char)v[i];
        safe[i] = c == '"' ? '\'' : c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    safe[i] = '\0';
    indent(a);
    put(a, "%s=\"%s\"\n", key, safe);
}

static void color(adl *a, const char *key, int c)
{
    assert(c >= 0 && c < 65);
    key_int(a, key, c >= 0 && c < 65 ? c : ADL_BLACK);
}

static void object(adl *a, struct adl_box b)
{
    assert(b.width > 0 && b.height > 0 && b.x >= 0 && b.y >= 0);
    open_block(a, "object");
    key_int(a, "x", b.x);
    key_int(a, "y", b.y);
    key_int(a, "width", b.width);
    key_int(a, "height", b.height);
    close_block(a);
    if (b.x + b.width > a->right)
        a->right = b.x + b.width;
    if (b.y + b.height > a->bottom)
        a->bottom = b.y + b.height;
}

static const char *align_name(enum adl_align al)
{
    return al == ADL_CENTER ? "horiz. centered" : al == ADL_RIGHT ? "horiz. right" : "horiz. left";
}

static void basic(adl *a, int clr, bool outline)
{
    open_block(a, "\"basic attribute\"");
    color(a, "clr", clr);
    if (outline)
        key_str(a, "fill", "outline");
    close_block(a);
}

static void monitor_or_control(adl *a, const char *block, const char *chan, int clr, int bclr)
{
    open_block(a, block);
    key_str(a, "chan", chan);
    color(a, "clr", clr);
    color(a, "bclr", bclr);
    close_block(a);
}

void adl_text(adl *a, struct adl_box b, int clr, enum adl_align align, const char *text)
{
    open_block(a, "text");
    object(a, b);
    basic(a, clr, false);
    key_str(a, "textix", text);
    if (align != ADL_LEFT)
        key_str(a, "align", align_name(align));
    close_block(a);
}

void adl_rect(adl *a, struct adl_box b, int clr, bool outline, const char *chan, bool alarm,
              const char *calc)
{
    open_block(a, "rectangle");
    object(a, b);
    basic(a, clr, outline);
    if (chan) {
        open_block(a, "\"dynamic attribute\"");
        if (alarm)
            key_str(a, "clr", "alarm");
        if (calc) {
            key_str(a, "vis", "calc");
            key_str(a, "calc", calc);
        }
        key_str(a, "chan", chan);
        close_block(a);
    }
    close_block(a);
}

static void limits(adl *a)
{
    open_block(a, "limits");
    close_block(a);
}

void adl_text_update(adl *a, struct adl_box b, const char *chan, int clr, int bclr, bool alarm,
                     enum adl_align align, bool string)
{
    open_block(a, "\"text update\"");
    object(a, b);
    monitor_or_control(a, "monitor", chan, clr, bclr);
    if (alarm)
        key_str(a, "clrmod", "alarm");
    if (align != ADL_LEFT)
        key_str(a, "align", align_name(align));
    key_str(a, "format", string ? "string" : "decimal");
    limits(a);
    close_block(a);
}

void adl_text_entry(adl *a, struct adl_box b, const char *chan, int clr, int bclr, bool string)
{
    open_block(a, "\"text entry\"");
    object(a, b);
    monitor_or_control(a, "control", chan, clr, bclr);
    key_str(a, "format", string ? "string" : "decimal");
    limits(a);
    close_block(a);
}

void adl_menu(adl *a, struct adl_box b, const char *chan, int clr, int bclr)
{
    open_block(a, "menu");
    object(a, b);
    monitor_or_control(a, "control", chan, clr, bclr);
    close_block(a);
}

void adl_choice(adl *a, struct adl_box b, const char *chan, int clr, int bclr)
{
    open_block(a, "\"choice button\"");
    object(a, b);
    monitor_or_control(a, "control", chan, clr, bclr);
    key_str(a, "stacking", "column");
    close_block(a);
}

void adl_message_button(adl *a, struct adl_box b, const char *chan, int clr, int bclr,
                        const char *label, const char *press)
{
    open_block(a, "\"message button\"");
    object(a, b);
    monitor_or_control(a, "control", chan, clr, bclr);
    key_str(a, "label", label);
    key_str(a, "press_msg", press);
    close_block(a);
}

static void related(adl *a, struct adl_box b, int clr, int bclr, const char *label,
                    const struct adl_link *links, unsigned n, bool invisible)
{
    assert(n >= 1 && n <= 16);
    open_block(a, "\"related display\"");
    object(a, b);
    for (unsigned i = 0; i < n && i < 16; i++) {
        char key[16];
        snprintf(key, sizeof(key), "display[%u]", i);
        open_block(a, key);
        key_str(a, "label", links[i].label);
        key_str(a, "name", links[i].file);
        if (links[i].args && links[i].args[0])
            key_str(a, "args", links[i].args);
        close_block(a);
    }
    color(a, "clr", clr);
    color(a, "bclr", bclr);
    char shown[ADL_STRING_MAX + 2];
    snprintf(shown, sizeof(shown), "%s%s", n == 1 ? "-" : "", label); /* one: no icon */
    key_str(a, "label", shown);
    if (invisible)
        key_str(a, "visual", "invisible");
    close_block(a);
}

void adl_related(adl *a, struct adl_box b, int clr, int bclr, const char *label,
                 const struct adl_link *links, unsigned n)
{
    related(a, b, clr, bclr, label, links, n, false);
}

void adl_related_area(adl *a, struct adl_box b, int clr, int bclr, const struct adl_link *link)
{
    related(a, b, clr, bclr, link->label, link, 1, true);
}

char *adl_finish(adl *a, const char *file_name, int bclr)
{
    assert(a->depth == 0);
    adl *h = adl_new();
    if (!h || a->oom)
        goto fail;
    open_block(h, "file");
    key_str(h, "name", file_name);
    indent(h);
    put(h, "version=030122\n"); /* MEDM 3.1.22, six digits as MEDM writes it */
    close_block(h);
    open_block(h, "display");
    object(h, (struct adl_box){10, 10, a->right + ADL_MARGIN, a->bottom + ADL_MARGIN});
    color(h, "clr", ADL_BLACK);
    color(h, "bclr", bclr);
    key_str(h, "cmap", "");
    key_int(h, "gridSpacing", 5);
    key_int(h, "gridOn", 0);
    key_int(h, "snapToGrid", 0);
    close_block(h);
    open_block(h, "\"color map\"");
    key_int(h, "ncolors", 65);
    open_block(h, "colors");
    for (int i = 0; i < 65; i++) {
        indent(h);
        put(h, "%s,\n", colors[i]);
    }
    close_block(h);
    close_block(h);
    if (h->oom)
        goto fail;
    size_t total = h->len + a->len;
    char *out = malloc(total + 1);
    if (!out)
        goto fail;
    memcpy(out, h->buf, h->len);
    if (a->len)
        memcpy(out + h->len, a->buf, a->len);
    out[total] = '\0';
    adl_free(h);
    return out;
fail:
    adl_free(h);
    return NULL;
}
