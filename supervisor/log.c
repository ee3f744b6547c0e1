/* log.c — the daemon's own messages (the nodes' logs are nodes.c's).
 *
 * One line each on stderr, "guardiand: " and the text, written with one
 * write(2) so that lines never interleave mid-line. Under systemd, when
 * stderr is the journal ($JOURNAL_STREAM names its device and inode), each
 * line starts with its syslog priority "<3>".."<6>": journald takes that as
 * the entry's priority and strips it, so `journalctl -u guardiand -p err`
 * shows the errors alone. Elsewhere (a terminal, a test's log file) the
 * lines are plain.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/sup.h"

/* Whether stderr is the journal's stream (checked once: it does not change). */
static bool to_journal(void)
{
    static int known = -1;
    if (known < 0) {
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        known = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    }
    return known;
}

void sup_log(enum sup_level level, const char *fmt, ...)
{
    assert(level >= SUP_ERR && level <= SUP_INFO);
    char line[2048];
    int at = to_journal() ? snprintf(line, sizeof(line), "<%d>", (int)level) : 0;
    at += snprintf(line + at, sizeof(line) - (size_t)at, "guardiand: ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + at, sizeof(line) - (size_t)at, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? (size_t)at : (size_t)at + (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* cut: a message is never this long but for a bug */
    line[len++] = '\n';
    for (size_t done = 0; done < len;) {
        ssize_t w = write(STDERR_FILENO, line + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stderr gone: nothing to tell it with */
        done += (size_t)w;
    }
}
