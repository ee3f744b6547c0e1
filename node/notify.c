/* notify.c — notifications: which one USERMSG shows, and for how long.
 *
 * Guardian's state code calls notify() once in main() ("Waiting to load
 * coefficients!") or on every cycle of run() or a check while a condition
 * holds. Cleared after one cycle, as before, the first kind lasted 62 ms and
 * no screen ever showed it. So a node keeps two notifications:
 *
 *   lasting  the newest from main(): it stays until the node leaves the state
 *            (or starts it again);
 *   passing  the newest from anywhere else (run, checks, node_init, and the
 *            node's own: no path, holds, SPM, subordinates): it stays while
 *            it is posted again every cycle, and at least NODE_NOTICE_MIN
 *            seconds after it first appeared, so that one posted once is seen.
 *
 * USERMSG shows the newer of the two (the order they were first posted in),
 * except that a manager's priority notification (manage.c: who holds a
 * subordinate must never go unseen) is shown over both. The full text goes to
 * the node log as "USERMSG: text" when it appears, not on every repetition:
 * the few texts posted in the last NODE_NOTICE_MIN seconds are remembered by
 * hash, so a check and a run() that both notify every cycle do not flood the
 * log at the cycle rate.
 */
#include "node/node_priv.h"

#include <stdio.h>
#include <string.h>
#include <uthash.h>

void node_usermsg_cut(char dst[NODE_USERMSG_MAX + 1], const char *text)
{
    /* USERMSG holds 39 bytes: cut there, but not inside a UTF-8 character. */
    size_t len = strnlen(text, NODE_USERMSG_MAX + 1);
    if (len > NODE_USERMSG_MAX) {
        len = NODE_USERMSG_MAX;
        while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
            len--;
    }
    memcpy(dst, text, len);
    dst[len] = '\0';
}

static uint32_t text_hash(const char *text)
{
    unsigned h;
    HASH_VALUE(text, strlen(text), h);
    return (uint32_t)h;
}

/* Log `text` unless it was posted within the last NODE_NOTICE_MIN seconds. */
static void log_once(node *n, const char *text, uint32_t hash, double now, bool always)
{
    struct node_notice_seen *oldest = &n->notice_seen[0];
    for (unsigned i = 0; i < NODE_NOTICE_SEEN; i++) {
        struct node_notice_seen *s = &n->notice_seen[i];
        if (s->at > 0 && s->hash == hash) {
            bool fresh = now - s->at <= NODE_NOTICE_MIN;
            s->at = now;
            if (fresh && !always)
                return;
            node_log(n, "USERMSG: %s", text);
            return;
        }
        if (s->at < oldest->at)
            oldest = s;
    }
    oldest->hash = hash;
    oldest->at = now;
    node_log(n, "USERMSG: %s", text);
}

static void post(node *n, struct node_notice *slot, const char *text, bool lasting)
{
    double now = node_now(n);
    uint32_t hash = text_hash(text);
    log_once(n, text, hash, now, lasting);
    if (!slot->on || slot->hash != hash) {
        slot->on = true;
        slot->hash = hash;
        slot->since = now;
        slot->seq = ++n->notice_seq;
        node_usermsg_cut(slot->usermsg, text);
    }
}

void engine_notify(node *n, const char *text)
{
    n->notified = true;
    bool from_main = n->in_code && n->ctx == CTX_MAIN;
    if (n->priority_msg[0] && text != n->priority_msg && !from_main)
        return; /* the priority notification stands (manage_notify) */
    if (from_main) {
        post(n, &n->lasting, text, true);
    } else {
        post(n, &n->passing, text, false);
        n->passing_posted = true;
    }
}

void notify_state_left(node *n) { n->lasting.on = false; }

void notify_clear(node *n)
{
    n->lasting.on = n->passing.on = n->passing_posted = false;
    n->notification = false;
    n->usermsg[0] = '\0';
}

void notify_cycle_end(node *n)
{
    struct node_notice *p = &n->passing;
    if (p->on && !n->passing_posted && node_now(n) - p->since >= NODE_NOTICE_MIN)
        p->on = false;
    n->passing_posted = false;
    const struct node_notice *shown = p->on ? p : NULL;
    if (n->lasting.on && (!shown || n->lasting.seq > shown->seq))
        shown = &n->lasting;
    if (n->priority_msg[0]) {
        node_usermsg_cut(n->usermsg, n->priority_msg);
        n->notification = true;
    } else if (shown) {
        memcpy(n->usermsg, shown->usermsg, sizeof(n->usermsg));
        n->notification = true;
    } else {
        n->usermsg[0] = '\0';
        n->notification = false;
    }
}
