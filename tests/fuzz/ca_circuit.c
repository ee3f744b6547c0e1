/* ca_circuit.c — fuzz target: the byte stream of one CA circuit (TCP).
 *
 * Drives the real circuit code (ca/circuit.c, monitor.c, dbr.c) through a
 * real server and pvdb (fuzz_ca.c): each input is one client. The server
 * end of a socketpair is handed to cas_client_accept(), as accept_cb() does
 * with a TCP connection, and the input is written into the other end in
 * chunks while the loop runs, reading and discarding the replies. Between
 * chunks the PVs sometimes change (values, array lengths, alarms,
 * properties, access rules, the removable group), as they do while a real
 * client talks. Then the client end is closed and the loop runs until the
 * server has freed the client, and every PV is put back.
 *
 * Input: a schedule byte, then what the client sends, starting with its
 * VERSION (fuzz_io.h); bit 7 of the schedule byte picks the server:
 * FZ_SITE (set) or FZ_TIGHT (fuzz_ca.c). A seed recorded from a real client
 * is that stream with a schedule byte in front (tools/gen-fuzz-corpus.py).
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/fuzz/fuzz_ca.h"
#include "tests/fuzz/fuzz_io.h"

static struct ev_loop *loop;
static cas *servers[2];

static size_t clients(cas *srv)
{
    struct cas_stats st;
    cas_get_stats(srv, &st);
    return st.clients;
}

/* ---- a mutator that knows the framing ----
 *
 * Byte-level mutations rarely turn one field of one message of a recorded
 * stream into the value that matters: an element count just past 2^32
 * divided by an element size, say, which a 32-bit size computation wraps.
 * Half of the mutations therefore pick one message of the stream (parsed as
 * the server parses it) and set its type, count or size to a value from
 * the edges below, making the header extended when the count needs it, or
 * repeat the message; the other half are libFuzzer's own. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* Element counts worth trying: the PVs' counts and the 16-bit header's limit,
 * then around 2^32 / size for the element sizes (1, 2, 4, 8, 40 bytes) and
 * the largest DBR metadata (88 bytes), and 2^31. */
static uint32_t edge_count(uint32_t r)
{
    static const uint32_t near[] = {0, 1, 2, 10, 16, 1000, 5000, 5001, 60000, 65534, 65535,
                                    65536, 70000, 70001, 100000, 100001, 400000, 8388608};
    static const uint32_t elem[] = {1, 2, 4, 8, 40};
    switch (r % 4) {
    case 0: return near[(r >> 2) % (sizeof(near) / sizeof(near[0]))];
    case 1: { /* past 2^32 / e, where e * n wraps to a small size */
        uint32_t e = elem[(r >> 2) % 5];
        return (uint32_t)((1ull << 32) / e + (r >> 5) % 64);
    }
    case 2: { /* where metadata m + e * (n - 1) reaches 2^32 */
        uint32_t e = elem[(r >> 2) % 5], m = 8 * ((r >> 5) % 12);
        return (uint32_t)(((1ull << 32) - m) / e + 1 - (r >> 9) % 4);
    }
    default: return (r >> 2) % 2 ? 0x80000000u - (r >> 3) % 4 : 0xFFFFFFFFu - (r >> 3) % 8;
    }
}

/* The offsets of the messages in a stream (after the schedule byte), as the
 * server frames them once the client has said its version. */
static size_t frame(const uint8_t *p, size_t len, size_t *at, size_t max)
{
    size_t n = 0, off = 0;
    while (n < max && len - off >= CA_HDR_SIZE) {
        uint64_t body = ca_get16(p + off + 2), hlen = CA_HDR_SIZE;
        if (body == 0xFFFF) {
            if (len - off < CA_EXT_HDR_SIZE)
                break;
            body = ca_get32(p + off + 16);
            hlen = CA_EXT_HDR_SIZE;
        }
        at[n++] = off;
        if (body > len - off - hlen)
            break;
        off += hlen + body;
    }
    return n;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint32_t x = seed * 2654435761u + 1;
    size_t at[256];
    size_t n = size > 1 ? frame(data + 1, size - 1, at, 256) : 0;
    if (n == 0 || fz_next(&x) % 2)
        return LLVMFuzzerMutate(data, size, max_size);
    uint8_t *h = data + 1 + at[fz_next(&x) % n];
    size_t hlen = ca_get16(h + 2) == 0xFFFF ? CA_EXT_HDR_SIZE : CA_HDR_SIZE;
    uint32_t r = fz_next(&x);
    switch (r % 4) {
    case 0: /* a type: the DBR types, and just past them */
        ca_put16(h + 4, (uint16_t)((r >> 2) % 42));
        break;
    case 1:
    case 2: { /* a count, in the extended header when it needs one */
        uint32_t count = edge_count(r >> 2);
        if (hlen == CA_HDR_SIZE && count >= 0xFFFF) {
            if (size + 8 > max_size)
                return LLVMFuzzerMutate(data, size, max_size);
            uint32_t body = ca_get16(h + 2);
            memmove(h + CA_EXT_HDR_SIZE, h + CA_HDR_SIZE, (size_t)(data + size - h) - CA_HDR_SIZE);
            size += 8;
            ca_put16(h + 2, 0xFFFF);
            ca_put16(h + 6, 0);
            ca_put32(h + 16, body);
            hlen = CA_EXT_HDR_SIZE;
        }
        if (hlen == CA_EXT_HDR_SIZE)
            ca_put32(h + 20, count);
        else
            ca_put16(h + 6, (uint16_t)count);
        break;
    }
    default: { /* the message again, right after itself */
        size_t body = hlen == CA_HDR_SIZE ? ca_get16(h + 2) : ca_get32(h + 16);
        size_t len = hlen + body;
        if ((size_t)(data + size - h) < len || size + len > max_size)
            return LLVMFuzzerMutate(data, size, max_size);
        memmove(h + 2 * len, h + len, (size_t)(data + size - h) - len);
        memcpy(h + len, h, len);
        size += len;
        break;
    }
    }
    return size;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN); /* as guardiand: a vanished peer is an error return */
    servers[FZ_TIGHT] = fz_ca_server(&loop, FZ_TIGHT);
    servers[FZ_SITE] = fz_ca_server(&loop, FZ_SITE);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t x = fz_seed(data[0]);
    cas *srv = servers[data[0] & 0x80 ? FZ_SITE : FZ_TIGHT];
    data++, size--;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    int ours = sv[1];
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cas_client_accept(srv, sv[0], &peer); /* the server owns (and closes) sv[0] now */
    fz_pump(loop, ours);

    for (size_t off = 0; off < size;) {
        size_t n = fz_chunk_len(&x, size - off);
        fz_feed(loop, ours, data + off, n);
        off += n;
        fz_pump(loop, ours);
        uint32_t r = fz_next(&x);
        if (r % 4 == 0) {
            fz_ca_poke(r / 4);
            fz_pump(loop, ours);
        }
    }

    /* The client goes away; the server must notice and free everything. */
    close(ours);
    for (int round = 0; round < 64 && clients(srv); round++)
        ev_run(loop, EVRUN_NOWAIT);
    if (clients(srv)) {
        /* Still lingering (waiting to send what it queued): the server
         * would close it by its timer; do it now. */
        for (cas_client *c = srv->clients; c; c = c->next)
            cas_client_close(c);
        cas_client_reap(srv);
    }
    fz_ca_reset();
    return 0;
}
