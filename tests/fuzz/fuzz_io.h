/* fuzz_io.h — what the stream fuzz targets (ca_circuit.c, ctl.c) share: the
 * schedule an input's first byte seeds, and the client end of the socket.
 *
 * Such an input is one schedule byte, then the bytes a client sends. The
 * schedule cuts the stream into writes (single bytes, pieces that split
 * headers, larger runs, or everything left) so that the server's
 * reassembly is exercised, without a mutation of the stream moving the cuts.
 */
#ifndef GUARDIAND_FUZZ_IO_H
#define GUARDIAND_FUZZ_IO_H

#include <errno.h>
#include <ev.h>
#include <linux/sockios.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The schedule's generator (xorshift32), seeded from the first byte. */
static inline uint32_t fz_seed(uint8_t b) { return 0x9E3779B9u ^ (uint32_t)b * 0x01000193u; }

static inline uint32_t fz_next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* How many of the `left` bytes the next write carries. */
static inline size_t fz_chunk_len(uint32_t *x, size_t left)
{
    uint32_t r = fz_next(x);
    size_t n;
    switch (r % 8) {
    case 0: n = 1; break;
    case 1: n = 1 + (r >> 3) % 24; break;
    case 2:
    case 3: n = 1 + (r >> 3) % 1024; break;
    default: n = left; break;
    }
    return n < left ? n : left;
}

/* Read and discard everything waiting on fd (non-blocking); bytes read. */
static inline size_t fz_drain(int fd)
{
    static uint8_t buf[1 << 16];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    return total;
}

/* Bytes written on fd that the other end has not read yet (0 if unknown). */
static inline int fz_unread(int fd)
{
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) < 0 ? 0 : n;
}

/* Run the loop until the conversation is quiet: nothing more sent to us for
 * two rounds (a reply queued in one round leaves in the next round's
 * flush) and nothing of ours left unread, or the server no longer reading
 * it. Bounded: a server that never quiets down is not what this looks for. */
static inline void fz_pump(struct ev_loop *loop, int fd)
{
    int idle = 0, last = -1;
    for (int round = 0; round < 64 && idle < 2; round++) {
        ev_run(loop, EVRUN_NOWAIT);
        size_t got = fz_drain(fd);
        int unread = fz_unread(fd);
        idle = got == 0 && (unread == 0 || unread == last) ? idle + 1 : 0;
        last = unread;
    }
}

/* Write n bytes to fd, letting the server read whenever the socket is full;
 * give up on the rest when it stops reading (a halted or closed circuit). */
static inline void fz_feed(struct ev_loop *loop, int fd, const uint8_t *p, size_t n)
{
    for (int stuck = 0; n && stuck < 16;) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            stuck = 0;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return; /* the server closed its end */
        fz_pump(loop, fd);
        stuck++;
    }
}

#endif
