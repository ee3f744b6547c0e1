/* ca_raw.c — Channel Access messages built by hand (see ca_raw.h). */
#include "tests/lib/ca_raw.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "ca/caproto.h"
#include "tests/lib/harness.h"

size_t raw_hdr(uint8_t *b, uint16_t cmd, uint16_t postsize, uint16_t dtype, uint16_t count,
               uint32_t p1, uint32_t p2)
{
    ca_put16(b, cmd);
    ca_put16(b + 2, postsize);
    ca_put16(b + 4, dtype);
    ca_put16(b + 6, count);
    ca_put32(b + 8, p1);
    ca_put32(b + 12, p2);
    return CA_HDR_SIZE;
}

size_t raw_hdr_ext(uint8_t *b, uint16_t cmd, uint32_t postsize, uint16_t dtype, uint32_t count,
                   uint32_t p1, uint32_t p2)
{
    raw_hdr(b, cmd, 0xFFFF, dtype, 0, p1, p2);
    ca_put32(b + 16, postsize);
    ca_put32(b + 20, count);
    return CA_EXT_HDR_SIZE;
}

size_t raw_hdr_str(uint8_t *b, uint16_t cmd, uint16_t dtype, uint16_t count, uint32_t p1,
                   uint32_t p2, const char *s)
{
    size_t len = ca_align8((uint32_t)strlen(s) + 1);
    raw_hdr(b, cmd, (uint16_t)len, dtype, count, p1, p2);
    memset(b + CA_HDR_SIZE, 0, len);
    memcpy(b + CA_HDR_SIZE, s, strlen(s));
    return CA_HDR_SIZE + len;
}

bool raw_send_all(int fd, const void *buf, size_t n, double timeout)
{
    const uint8_t *p = buf;
    double deadline = harness_now() + timeout;
    while (n > 0 && harness_now() < deadline) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = { fd, POLLOUT, 0 };
            poll(&pfd, 1, 50);
        } else {
            return false;
        }
    }
    return n == 0;
}
