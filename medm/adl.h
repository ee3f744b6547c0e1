/* adl.h — writing MEDM display files (.adl) in one canonical form.
 *
 * The form is ../shared/docs/adl.md section 14.1: MEDM's own layout (one
 * key=value a line, tab indentation, every `}` on a line of its own), the
 * header blocks with version 030122 and the full default colour map, every
 * string and enumerated value quoted, every colour written, numbers plain.
 * Objects are written in the order the calls are made, which is painting
 * order (adl.md section 8: backgrounds first).
 *
 * Strings are made safe here: printable ASCII only (anything else becomes
 * '?'), no '"' (becomes '\''), at most ADL_STRING_MAX characters. The
 * display's size is the extent of what was drawn plus a margin.
 *
 * Errors (no memory) are sticky: adl_finish returns NULL.
 */
#ifndef GUARDIAND_ADL_H
#define GUARDIAND_ADL_H

#include <stdbool.h>
#include <stddef.h>

#define ADL_STRING_MAX 255
#define ADL_MARGIN 10 /* px right of and below the last object */

/* Colours of MEDM's default map (adl.md section 5.3) used by the screens. */
enum adl_color {
    ADL_WHITE = 0, ADL_GREY_LIGHT = 2, ADL_GREY_READ = 3, ADL_GREY_BG = 4, ADL_GREY_DARK = 10,
    ADL_GREY_DARKER = 12, ADL_BLACK = 14, ADL_GREEN = 15, ADL_RED = 20, ADL_BLUE_DARK = 29,
    ADL_YELLOW = 30, ADL_ORANGE = 33, ADL_BLUE_BUTTON = 51,
};

/* Object heights that select a font of exactly that height or a readable
 * one for the object type (adl.md section 10). */
#define ADL_H_TEXT_SMALL 13   /* text, text update */
#define ADL_H_TEXT 14
#define ADL_H_TEXT_LARGE 20
#define ADL_H_BUTTON 20       /* text entry, message button, related display: 14 px font */
#define ADL_H_MENU 22         /* menu: 14 px font */
#define ADL_H_CHOICE 20       /* choice button side by side (stacking "column"): 16 px font */

typedef struct adl adl;

struct adl_box {
    int x, y, width, height;
};

enum adl_align { ADL_LEFT, ADL_CENTER, ADL_RIGHT };

/* A related display entry: the file (with .adl) and its macros
 * ("IFO=X1,NODE=SUS_A"). */
struct adl_link {
    const char *label, *file, *args;
};

adl *adl_new(void);
void adl_free(adl *a);

/* Static text in colour clr. */
void adl_text(adl *a, struct adl_box b, int clr, enum adl_align align, const char *text);
/* A rectangle: filled (or outline) in clr. With chan: drawn in the alarm
 * colour of chan's severity (alarm), or shown only while calc holds (vis
 * "calc", e.g. "A=3"), or both static (alarm false, calc NULL: a dynamic
 * object that never connects, drawn above static graphics). */
void adl_rect(adl *a, struct adl_box b, int clr, bool outline, const char *chan, bool alarm,
              const char *calc);
/* A read-only value: text in clr (or the alarm colour) on bclr. string: the
 * channel is a STRING or ENUM (format "string"), else decimal. */
void adl_text_update(adl *a, struct adl_box b, const char *chan, int clr, int bclr, bool alarm,
                     enum adl_align align, bool string);
void adl_text_entry(adl *a, struct adl_box b, const char *chan, int clr, int bclr, bool string);
void adl_menu(adl *a, struct adl_box b, const char *chan, int clr, int bclr);
/* Choice buttons side by side (stacking "column"). */
void adl_choice(adl *a, struct adl_box b, const char *chan, int clr, int bclr);
void adl_message_button(adl *a, struct adl_box b, const char *chan, int clr, int bclr,
                        const char *label, const char *press);
/* A related display: one button (label shown without MEDM's icon) opening
 * links[0], or a menu of up to 16 links. */
void adl_related(adl *a, struct adl_box b, int clr, int bclr, const char *label,
                 const struct adl_link *links, unsigned n);
/* An invisible related display: clicking anywhere in b opens link. MEDM
 * paints it as a stipple in the static layer, so write what covers it
 * (a text) after it (adl.md 7.9). */
void adl_related_area(adl *a, struct adl_box b, int clr, int bclr, const struct adl_link *link);

/* The whole file: header (name, the computed size, background bclr) then the
 * objects. Returns a malloc'd string (the caller frees it), or NULL. */
char *adl_finish(adl *a, const char *file_name, int bclr);

#endif
