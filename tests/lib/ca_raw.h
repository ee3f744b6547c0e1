/* ca_raw.h — Channel Access messages built by hand, for clients that speak the protocol over
 * their own sockets rather than through libca: the raw-socket tests (malformed and hostile
 * input) and bench-nodes' hostile client.
 *
 * The builders write at b, which must have room, and return the bytes written; they are
 * written from ../shared/docs/ca-protocol.md, independent of the server's encoder (ca/), and
 * take no care that the values make sense: writing nonsense is what the tests need.
 */
#ifndef GUARDIAND_TESTS_CA_RAW_H
#define GUARDIAND_TESTS_CA_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 16-byte header; returns 16. */
size_t raw_hdr(uint8_t *b, uint16_t cmd, uint16_t postsize, uint16_t dtype, uint16_t count,
               uint32_t p1, uint32_t p2);

/* An extended header (section 4.9): m_postsize 0xFFFF and m_count 0, then the 32-bit size and
 * count; returns 24. */
size_t raw_hdr_ext(uint8_t *b, uint16_t cmd, uint32_t postsize, uint16_t dtype, uint32_t count,
                   uint32_t p1, uint32_t p2);

/* A header whose payload is s, NUL-terminated and zero-padded to 8 bytes (CREATE_CHAN,
 * SEARCH, CLIENT_NAME, HOST_NAME); returns the bytes written. */
size_t raw_hdr_str(uint8_t *b, uint16_t cmd, uint16_t dtype, uint16_t count, uint32_t p1,
                   uint32_t p2, const char *s);

/* Send all n bytes on a non-blocking send per try, waiting (poll) while the socket buffer is
 * full, for at most timeout seconds. False if time ran out or the peer has closed. */
bool raw_send_all(int fd, const void *buf, size_t n, double timeout);

#endif
