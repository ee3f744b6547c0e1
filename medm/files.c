/* files.c — writing screens (medm.h): atomically, and only what changed, so
 * that an operator's open MEDM is not disturbed by a rewrite of the same
 * screen, and never sees half a file. */
#include "medm/medm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether path holds exactly text. */
static bool same_content(const char *path, const char *text)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t len = strlen(text), got = 0;
    char buf[8192];
    bool same = true;
    for (size_t r; same && (r = fread(buf, 1, sizeof(buf), f)) > 0; got += r)
        same = got + r <= len && memcmp(buf, text + got, r) == 0;
    fclose(f);
    return same && got == len;
}

int medm_write_file(const char *dir, const char *name, const char *text, char *err,
                    size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (same_content(path, text))
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (close(fd) != 0 || done != len || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        return -1;
    }
    return 1;
}

