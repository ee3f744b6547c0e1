/* names.h — the one rule for the names of nodes, systems and the IFO.
 *
 * The configuration file, the control socket, the store, node/ and
 * guardctl all check names with these, so a name one part takes every
 * other part takes too. Header only and without dependencies: store/ and
 * guardctl include it as well.
 *
 *   node    1-63 of A-Z 0-9 _. Guardian's node names are upper case, and
 *           they are part of channel names: <IFO>:GRD-<NODE>_STATE.
 *   system  1-64 of A-Z a-z 0-9 _ . -, not starting with . or -: the stem
 *           of a module file (<system>.so) found on the systems path, so
 *           never a path ("sus", "sus.v2", "my-lock").
 *   IFO     1-8 of A-Z 0-9: the first part of every channel name ("X1").
 *   snapshot  1-64 of A-Z a-z 0-9 _ . -, not starting with . or -: a site
 *           snapshot's name ("before-vent", "2026-11-28"), typed by operators.
 */
#ifndef GUARDIAND_NAMES_H
#define GUARDIAND_NAMES_H

#include <stdbool.h>
#include <string.h>

#define NAME_NODE_MAX 63
#define NAME_SYSTEM_MAX 64
#define NAME_IFO_MAX 8
#define NAME_SNAPSHOT_MAX 64

static inline bool name_chars(const char *s, size_t max, bool lower, const char *extra)
{
    if (!s || !s[0])
        return false;
    /* Byte by byte up to the NUL (strnlen with a bound beyond a short
     * literal makes gcc's -Wstringop-overread complain once inlined). */
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (i == max || !((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          (lower && c >= 'a' && c <= 'z') || strchr(extra, c)))
            return false;
    }
    return true;
}

static inline bool name_valid_node(const char *s) { return name_chars(s, NAME_NODE_MAX, false, "_"); }

static inline bool name_valid_system(const char *s)
{
    return name_chars(s, NAME_SYSTEM_MAX, true, "_.-") && s[0] != '.' && s[0] != '-';
}

static inline bool name_valid_ifo(const char *s) { return name_chars(s, NAME_IFO_MAX, false, ""); }

static inline bool name_valid_snapshot(const char *s)
{
    return name_chars(s, NAME_SNAPSHOT_MAX, true, "_.-") && s[0] != '.' && s[0] != '-';
}

#endif
