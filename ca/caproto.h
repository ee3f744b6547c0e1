/* caproto.h — Channel Access protocol constants (protocol 4.13).
 *
 * Values from ../shared/docs/ca-protocol.md (sections 0, 2, 3.19). Private to
 * ca/ and its tests; the rest of guardiand sees only cas.h.
 */
#ifndef GUARDIAND_CAPROTO_H
#define GUARDIAND_CAPROTO_H

#include <stdint.h>

#define CA_MINOR_VERSION 13
#define CA_SERVER_PORT 5064
#define CA_REPEATER_PORT 5065
#define CA_HDR_SIZE 16
#define CA_EXT_HDR_SIZE 24
#define CA_MAX_UDP_SEND 1024
#define CA_MAX_UDP_RECV (0xFFFF + 16)
#define CA_MAX_TCP 16384
#define CA_PRIORITY_MAX 99
#define CA_DOREPLY 10
#define CA_DONTREPLY 5
#define CA_SEQUENCE_VALID 1
#define CA_ACCESS_READ 1
#define CA_ACCESS_WRITE 2
#define CA_BEACON_FIRST_DELAY 0.02
#define CA_BEACON_PERIOD_DEFAULT 15.0
#define CA_MAX_ARRAY_BYTES_DEFAULT 16384

enum ca_cmd {
    CA_PROTO_VERSION = 0,
    CA_PROTO_EVENT_ADD = 1,
    CA_PROTO_EVENT_CANCEL = 2,
    CA_PROTO_READ = 3,
    CA_PROTO_WRITE = 4,
    CA_PROTO_SNAPSHOT = 5,
    CA_PROTO_SEARCH = 6,
    CA_PROTO_BUILD = 7,
    CA_PROTO_EVENTS_OFF = 8,
    CA_PROTO_EVENTS_ON = 9,
    CA_PROTO_READ_SYNC = 10,
    CA_PROTO_ERROR = 11,
    CA_PROTO_CLEAR_CHANNEL = 12,
    CA_PROTO_RSRV_IS_UP = 13,
    CA_PROTO_NOT_FOUND = 14,
    CA_PROTO_READ_NOTIFY = 15,
    CA_PROTO_READ_BUILD = 16,
    CA_REPEATER_CONFIRM = 17,
    CA_PROTO_CREATE_CHAN = 18,
    CA_PROTO_WRITE_NOTIFY = 19,
    CA_PROTO_CLIENT_NAME = 20,
    CA_PROTO_HOST_NAME = 21,
    CA_PROTO_ACCESS_RIGHTS = 22,
    CA_PROTO_ECHO = 23,
    CA_REPEATER_REGISTER = 24,
    CA_PROTO_SIGNAL = 25,
    CA_PROTO_CREATE_CH_FAIL = 26,
    CA_PROTO_SERVER_DISCONN = 27,
    CA_PROTO_LAST = 27,
};

/* ECA status codes as sent on the wire: (message number << 3) | severity. */
enum ca_status {
    ECA_NORMAL = 1,
    ECA_ALLOCMEM = 48,
    ECA_TOLARGE = 72,
    ECA_BADTYPE = 114,
    ECA_INTERNAL = 142,
    ECA_GETFAIL = 152,
    ECA_PUTFAIL = 160,
    ECA_BADCOUNT = 176,
    ECA_BADMONID = 242,
    ECA_DEFUNCT = 278,
    ECA_BADMASK = 330,
    ECA_PUTCBINPROG = 362,
    ECA_NORDACCESS = 368,
    ECA_NOWTACCESS = 376,
    ECA_16KARRAYCLIENT = 464,
};

/* A decoded message header (host byte order). For the extended form,
 * postsize and count hold the 32-bit values. */
typedef struct ca_hdr {
    uint16_t cmd;
    uint16_t data_type;
    uint32_t postsize;
    uint32_t count;
    uint32_t p1; /* m_cid */
    uint32_t p2; /* m_available */
} ca_hdr;

/* Big-endian field access. */
static inline uint16_t ca_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ca_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void ca_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void ca_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Round a payload size up to the protocol's 8-byte alignment. In 64 bits:
 * sizes computed from wire counts must never wrap before they are checked. */
static inline uint64_t ca_align8(uint64_t n) { return (n + 7u) & ~(uint64_t)7u; }

#endif
