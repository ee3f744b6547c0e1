/* test_raw_socket.c — guardiand against hand-made CA messages on raw TCP and UDP sockets.
 *
 * No libca here except where a test needs a well-behaved second client. Two kinds of test:
 *   - exact wire replies (search reply layout, ACCESS_RIGHTS before CREATE_CHAN, the EVENT_CANCEL
 *     confirmation, ECHO, status codes), from ../shared/docs/ca-protocol.md sections 2, 3 and 5;
 *   - hostile input (garbage, huge or misaligned sizes, unknown commands, bad ids, truncated
 *     messages, oversize names, a client that never reads). After each, the daemon must be
 *     alive and a fresh client must get correct answers (server_is_healthy()).
 * Every test starts its own daemon on free 127.0.0.1 ports and ends by requiring exit status 0
 * on SIGTERM. Every socket wait is bounded by poll() timeouts; sends use MSG_NOSIGNAL.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ca/caproto.h"
#include "ca/epics_ca.h"
#include "tests/lib/ca_raw.h"
#include "tests/lib/harness.h"

/* ---- fixture ---- */

static harness_daemon gd;
static bool ca_up;

static void start(void)
{
    cr_assert_eq(harness_start(&gd, NULL), 0, "guardiand did not start");
}

static void finish(void)
{
    if (ca_up)
        ca_context_destroy();
    ca_up = false;
    bool alive = harness_alive(&gd);
    int code = harness_stop(&gd, 0);
    gd.log_path[0] = '\0';
    cr_assert(alive, "guardiand died during the test (exit status %d)", code);
    cr_assert_eq(code, 0, "guardiand exited with status %d after SIGTERM, expected 0", code);
}

static void cleanup(void)
{
    if (ca_up)
        ca_context_destroy();
    ca_up = false;
    harness_stop(&gd, 5);
}

TestSuite(raw, .fini = cleanup, .timeout = 60);

/* ---- encoding (headers: tests/lib/ca_raw.h) ---- */

static void put_f64(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (56 - 8 * i));
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ---- TCP ---- */

static int tcp_connect(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)gd.port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s",
                 strerror(errno));
    return fd;
}

/* Send everything within 5 s; false if the peer has closed. */
static bool send_all(int fd, const void *buf, size_t n) { return raw_send_all(fd, buf, n, 5.0); }

/* Read exactly n bytes before the deadline: 1, 0 on timeout, -1 on EOF or error. */
static int read_exact(int fd, uint8_t *buf, size_t n, double deadline)
{
    size_t got = 0;
    while (got < n) {
        double left = deadline - harness_now();
        if (left <= 0)
            return 0;
        struct pollfd pfd = { fd, POLLIN, 0 };
        int r = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0)
            return k < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        got += (size_t)k;
    }
    return 1;
}

struct msg {
    uint16_t cmd, dtype;
    uint32_t postsize, count, p1, p2;
    bool extended;
    uint8_t head[24];     /* the header as received */
    uint8_t payload[4096]; /* the first bytes of the payload */
    bool tail_nonzero;    /* a byte past those was not zero */
};

/* Read one message: 1, 0 on timeout, -1 on EOF or error. Payload bytes past 4096 are read
 * and dropped. */
static int recv_msg(int fd, struct msg *m, double timeout)
{
    double deadline = harness_now() + timeout;
    int r = read_exact(fd, m->head, CA_HDR_SIZE, deadline);
    if (r <= 0)
        return r;
    m->cmd = ca_get16(m->head);
    m->postsize = ca_get16(m->head + 2);
    m->dtype = ca_get16(m->head + 4);
    m->count = ca_get16(m->head + 6);
    m->p1 = ca_get32(m->head + 8);
    m->p2 = ca_get32(m->head + 12);
    m->extended = m->postsize == 0xFFFF;
    if (m->extended) {
        r = read_exact(fd, m->head + 16, 8, deadline + 5);
        if (r <= 0)
            return -1;
        m->postsize = ca_get32(m->head + 16);
        m->count = ca_get32(m->head + 20);
    }
    uint32_t left = m->postsize;
    size_t at = 0;
    m->tail_nonzero = false;
    while (left > 0) {
        uint8_t sink[4096];
        uint8_t *dst = at < sizeof m->payload ? m->payload + at : sink;
        size_t room = at < sizeof m->payload ? sizeof m->payload - at : sizeof sink;
        size_t n = left < room ? left : room;
        r = read_exact(fd, dst, n, deadline + 10);
        if (r <= 0)
            return -1;
        for (size_t i = 0; dst == sink && i < n; i++)
            m->tail_nonzero |= sink[i] != 0;
        at += n;
        left -= (uint32_t)n;
    }
    return 1;
}

/* Read until a message with command cmd (and, if p2 >= 0, that m_available) arrives. Other
 * messages (monitor updates, say) are skipped. True if found in time. */
static bool expect_msg(int fd, struct msg *m, uint16_t cmd, long long p2, double timeout)
{
    double deadline = harness_now() + timeout;
    while (harness_now() < deadline) {
        if (recv_msg(fd, m, deadline - harness_now()) <= 0)
            return false;
        if (m->cmd == cmd && (p2 < 0 || m->p2 == (uint32_t)p2))
            return true;
    }
    return false;
}

/* Read and drop everything until the server closes the circuit. True if it did in time. If
 * err is not NULL it receives the first ERROR message seen (err->cmd stays 0xFFFF if none). */
static bool wait_closed(int fd, double timeout, struct msg *err)
{
    if (err != NULL)
        err->cmd = 0xFFFF;
    double deadline = harness_now() + timeout;
    static struct msg m;
    while (harness_now() < deadline) {
        int r = recv_msg(fd, &m, deadline - harness_now());
        if (r < 0)
            return true;
        if (r > 0 && m.cmd == CA_PROTO_ERROR && err != NULL && err->cmd == 0xFFFF)
            *err = m;
    }
    return false;
}

/* Connect, send VERSION, CLIENT_NAME and HOST_NAME, and read the server's VERSION. */
static int raw_client_as(const char *user, int rcvbuf)
{
    int fd = tcp_connect(rcvbuf);
    uint8_t b[256];
    size_t n = raw_hdr(b, CA_PROTO_VERSION, 0, 0, CA_MINOR_VERSION, 0, 0);
    n += raw_hdr_str(b + n, CA_PROTO_CLIENT_NAME, 0, 0, 0, 0, user);
    n += raw_hdr_str(b + n, CA_PROTO_HOST_NAME, 0, 0, 0, 0, "localhost");
    cr_assert(send_all(fd, b, n));
    static struct msg m;
    cr_assert_eq(recv_msg(fd, &m, 5.0), 1, "no VERSION from the server");
    cr_assert_eq(m.cmd, CA_PROTO_VERSION, "first message is command %u, not VERSION", m.cmd);
    cr_assert_eq(m.postsize, 0u);
    cr_expect_eq(m.count, (uint32_t)CA_MINOR_VERSION, "server minor version %u", m.count);
    return fd;
}

static int raw_client(void) { return raw_client_as("tester", 0); }

struct chan {
    uint32_t cid, sid, count, access;
    uint16_t type;
};

/* CREATE_CHAN; expects ACCESS_RIGHTS then the CREATE_CHAN reply (false on CREATE_CH_FAIL). */
static bool raw_create(int fd, const char *name, uint32_t cid, struct chan *ch)
{
    uint8_t b[600];
    size_t n = raw_hdr_str(b, CA_PROTO_CREATE_CHAN, 0, 0, cid, CA_MINOR_VERSION, name);
    cr_assert(send_all(fd, b, n));
    static struct msg m;
    cr_assert_eq(recv_msg(fd, &m, 5.0), 1, "%s: no reply to CREATE_CHAN", name);
    if (m.cmd == CA_PROTO_CREATE_CH_FAIL) {
        cr_expect_eq(m.p1, cid, "%s: CREATE_CH_FAIL for cid %u, expected %u", name, m.p1, cid);
        return false;
    }
    cr_assert_eq(m.cmd, CA_PROTO_ACCESS_RIGHTS, "%s: command %u before the CREATE_CHAN reply "
                 "(ACCESS_RIGHTS must come first)", name, m.cmd);
    cr_expect_eq(m.p1, cid, "%s: ACCESS_RIGHTS for cid %u", name, m.p1);
    ch->access = m.p2;
    cr_assert_eq(recv_msg(fd, &m, 5.0), 1, "%s: no CREATE_CHAN reply", name);
    cr_assert_eq(m.cmd, CA_PROTO_CREATE_CHAN, "%s: command %u, expected CREATE_CHAN", name,
                 m.cmd);
    cr_expect_eq(m.p1, cid);
    ch->cid = cid;
    ch->sid = m.p2;
    ch->type = m.dtype;
    ch->count = m.count;
    return true;
}

/* READ_NOTIFY of one DBR_DOUBLE; returns the value, asserting a normal reply. */
static double raw_get_double(int fd, const struct chan *ch, uint32_t ioid)
{
    uint8_t b[16];
    raw_hdr(b, CA_PROTO_READ_NOTIFY, 0, DBR_DOUBLE, 1, ch->sid, ioid);
    cr_assert(send_all(fd, b, sizeof b));
    static struct msg m;
    cr_assert(expect_msg(fd, &m, CA_PROTO_READ_NOTIFY, ioid, 5.0), "no READ_NOTIFY reply");
    cr_assert_eq(m.p1, (uint32_t)ECA_NORMAL, "READ_NOTIFY status %u", m.p1);
    cr_assert_eq(m.postsize, 8u);
    cr_assert_eq(m.dtype, DBR_DOUBLE);
    cr_assert_eq(m.count, 1u);
    return get_f64(m.payload);
}

/* ---- UDP ---- */

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void udp_send(int fd, const void *b, size_t n)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)gd.port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof a), (ssize_t)n);
}

/* Receive one datagram within timeout: its length, or -1. */
static ssize_t udp_recv(int fd, uint8_t *b, size_t cap, double timeout, struct sockaddr_in *from)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    if (poll(&pfd, 1, (int)(timeout * 1000)) <= 0)
        return -1;
    socklen_t len = sizeof *from;
    return recvfrom(fd, b, cap, 0, (struct sockaddr *)from, &len);
}

/* A search datagram: VERSION with sequence number seq, then one SEARCH per name with
 * cid = first_cid + i. */
static size_t search_datagram(uint8_t *b, uint32_t seq, const char *const *names, int n,
                              uint32_t first_cid, uint16_t reply_flag)
{
    size_t len = raw_hdr(b, CA_PROTO_VERSION, 0, CA_SEQUENCE_VALID, CA_MINOR_VERSION, seq, 0);
    for (int i = 0; i < n; i++)
        len += raw_hdr_str(b + len, CA_PROTO_SEARCH, reply_flag, CA_MINOR_VERSION,
                       first_cid + (uint32_t)i, first_cid + (uint32_t)i, names[i]);
    return len;
}

/* Whether the server answers a search for DEMO:DOUBLE within 2 s. */
static bool search_answered(void)
{
    int u = udp_socket();
    uint8_t b[1024];
    const char *name = "DEMO:DOUBLE";
    udp_send(u, b, search_datagram(b, 1, &name, 1, 4242, CA_DONTREPLY));
    struct sockaddr_in from;
    bool ok = false;
    double deadline = harness_now() + 2.0;
    while (!ok && harness_now() < deadline) {
        ssize_t n = udp_recv(u, b, sizeof b, deadline - harness_now(), &from);
        if (n < 0)
            break;
        ok = n >= 40 && ca_get16(b + 16) == CA_PROTO_SEARCH && ca_get32(b + 28) == 4242;
    }
    close(u);
    return ok;
}

/* After hostile input: the daemon runs, answers searches, and a fresh TCP client can create a
 * channel, read the right value and get its ECHO back. */
static void server_is_healthy(const char *after)
{
    cr_assert(harness_alive(&gd), "guardiand died after %s", after);
    cr_assert(search_answered(), "no search reply after %s", after);
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 77, &ch), "CREATE_CHAN failed after %s", after);
    cr_assert_eq(raw_get_double(fd, &ch, 1), 3.14159, "wrong DEMO:DOUBLE after %s", after);
    uint8_t b[16];
    raw_hdr(b, CA_PROTO_ECHO, 0, 0, 0, 0, 0);
    cr_assert(send_all(fd, b, 16));
    static struct msg m;
    cr_assert(expect_msg(fd, &m, CA_PROTO_ECHO, -1, 5.0), "no ECHO reply after %s", after);
    close(fd);
}

/* ---- search ---- */

Test(raw, search_for_a_served_name_gets_a_40_byte_reply)
{
    start();
    int u = udp_socket();
    uint8_t b[1024];
    const char *name = "DEMO:DOUBLE";
    udp_send(u, b, search_datagram(b, 7, &name, 1, 99, CA_DONTREPLY));
    struct sockaddr_in from;
    ssize_t n = udp_recv(u, b, sizeof b, 2.0, &from);
    cr_assert_eq(n, 40, "search reply of %zd bytes, expected 40", n);
    cr_expect_eq(ntohs(from.sin_port), gd.port, "reply sent from port %d, not the server port",
                 ntohs(from.sin_port));
    cr_expect_eq(ntohl(from.sin_addr.s_addr), INADDR_LOOPBACK);
    /* VERSION echoing the sequence number. */
    cr_expect_eq(ca_get16(b), CA_PROTO_VERSION);
    cr_expect_eq(ca_get16(b + 2), 0);
    cr_expect_eq(ca_get16(b + 4), CA_SEQUENCE_VALID);
    cr_expect_eq(ca_get16(b + 6), CA_MINOR_VERSION);
    cr_expect_eq(ca_get32(b + 8), 7u, "sequence number %u, expected 7", ca_get32(b + 8));
    cr_expect_eq(ca_get32(b + 12), 0u);
    /* The SEARCH reply. */
    cr_expect_eq(ca_get16(b + 16), CA_PROTO_SEARCH);
    cr_expect_eq(ca_get16(b + 18), 8);
    cr_expect_eq(ca_get16(b + 20), gd.port, "TCP port %u in m_dataType, expected %d",
                 ca_get16(b + 20), gd.port);
    cr_expect_eq(ca_get16(b + 22), 0);
    cr_expect_eq(ca_get32(b + 24), 0xFFFFFFFFu, "m_cid %#x, expected 0xFFFFFFFF",
                 ca_get32(b + 24));
    cr_expect_eq(ca_get32(b + 28), 99u, "cid %u, expected 99", ca_get32(b + 28));
    cr_expect_eq(ca_get16(b + 32), CA_MINOR_VERSION);
    for (int i = 34; i < 40; i++)
        cr_expect_eq(b[i], 0, "pad byte %d is %d", i, b[i]);
    close(u);
    finish();
}

Test(raw, search_for_unknown_names_gets_no_reply)
{
    start();
    int u = udp_socket();
    uint8_t b[1024];
    const char *names[] = { "DEMO:NOPE", "DEMO:N:1000", "", "DEMO:G:" };
    udp_send(u, b, search_datagram(b, 1, names, 4, 1, CA_DONTREPLY));
    udp_send(u, b, search_datagram(b, 2, names, 4, 1, CA_DOREPLY));
    struct sockaddr_in from;
    ssize_t n = udp_recv(u, b, sizeof b, 0.7, &from);
    cr_expect_eq(n, -1, "a %zd-byte reply to searches for names that are not served", n);
    close(u);
    cr_assert(search_answered(), "the server is not answering at all");
    finish();
}

Test(raw, one_datagram_with_many_names_gets_replies_for_the_served_ones)
{
    start();
    int u = udp_socket();
    uint8_t b[1024];
    const char *names[] = { "DEMO:DOUBLE", "DEMO:NOPE", "DEMO:WAVE", "DEMO:N:5", "X" };
    udp_send(u, b, search_datagram(b, 3, names, 5, 10, CA_DONTREPLY));
    int seen[5] = { 0 };
    struct sockaddr_in from;
    double deadline = harness_now() + 1.0;
    while (harness_now() < deadline) {
        ssize_t n = udp_recv(u, b, sizeof b, deadline - harness_now(), &from);
        if (n < 0)
            break;
        cr_assert(n >= 40 && (n - 16) % 24 == 0, "reply datagram of %zd bytes", n);
        cr_expect_eq(ca_get16(b), CA_PROTO_VERSION, "reply datagram does not start with VERSION");
        cr_expect_eq(ca_get32(b + 8), 3u, "sequence number %u", ca_get32(b + 8));
        for (ssize_t at = 16; at + 24 <= n; at += 24) {
            cr_expect_eq(ca_get16(b + at), CA_PROTO_SEARCH);
            uint32_t cid = ca_get32(b + at + 12);
            cr_assert(cid >= 10 && cid < 15, "reply for cid %u that was never asked", cid);
            seen[cid - 10]++;
        }
    }
    int want[5] = { 1, 0, 1, 1, 0 };
    for (int i = 0; i < 5; i++)
        cr_expect_eq(seen[i], want[i], "%s: %d replies, expected %d", names[i], seen[i], want[i]);
    close(u);
    finish();
}

Test(raw, garbage_datagrams_are_ignored)
{
    start();
    int u = udp_socket();
    uint8_t b[2048];
    srand(12345);

    udp_send(u, b, 0);
    for (int i = 0; i < 7; i++)
        b[i] = (uint8_t)rand();
    udp_send(u, b, 7);
    udp_send(u, b, raw_hdr(b, 200, 0, 0, 0, 0, 0));
    udp_send(u, b, raw_hdr(b, CA_PROTO_EVENT_ADD, 0, 0, 0, 0, 0));
    /* SEARCH claiming more payload than the datagram holds. */
    size_t n = raw_hdr(b, CA_PROTO_VERSION, 0, 1, 13, 1, 0);
    n += raw_hdr(b + n, CA_PROTO_SEARCH, 0xFFF0, 5, 13, 1, 1);
    memcpy(b + n, "DEMO:DOU", 8);
    udp_send(u, b, n + 8);
    /* A name without a NUL, a zero-length name, a misaligned one, the extended-header mark. */
    n = raw_hdr(b, CA_PROTO_SEARCH, 8, 5, 13, 2, 2);
    memcpy(b + n, "DEMO:DOU", 8);
    udp_send(u, b, n + 8);
    udp_send(u, b, raw_hdr(b, CA_PROTO_SEARCH, 0, 5, 13, 3, 3));
    n = raw_hdr(b, CA_PROTO_SEARCH, 5, 5, 13, 4, 4);
    memcpy(b + n, "DEMO\0", 5);
    udp_send(u, b, n + 5);
    n = raw_hdr(b, CA_PROTO_SEARCH, 0xFFFF, 5, 0, 5, 5);
    memset(b + n, 0, 8);
    ca_put32(b + n, 16);
    udp_send(u, b, n + 8 + 16);
    /* Random datagrams of every size up to 1500 bytes. */
    for (int i = 0; i < 60; i++) {
        size_t len = (size_t)(rand() % 1500);
        for (size_t k = 0; k < len; k++)
            b[k] = (uint8_t)rand();
        if (i % 3 == 0 && len >= 16)
            ca_put16(b, CA_PROTO_SEARCH); /* plausible-looking headers too */
        udp_send(u, b, len);
    }
    close(u);
    server_is_healthy("garbage datagrams");
    finish();
}

/* ---- channels ---- */

Test(raw, create_chan_sends_access_rights_then_the_reply)
{
    start();
    int fd = raw_client();
    struct {
        const char *name;
        uint16_t type;
        uint32_t count, access;
    } cases[] = {
        { "DEMO:DOUBLE", DBF_DOUBLE, 1, 3 },  { "DEMO:RO", DBF_DOUBLE, 1, 1 },
        { "DEMO:STRINGS", DBF_STRING, 4, 3 }, { "DEMO:EXECTIME", DBF_DOUBLE, 1, 1 },
        { "DEMO:LONGSTR", DBF_CHAR, 256, 3 }, { "DEMO:ENUM", DBF_ENUM, 1, 3 },
    };
    for (uint32_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chan ch;
        cr_assert(raw_create(fd, cases[i].name, 100 + i, &ch), "%s: CREATE_CH_FAIL",
                  cases[i].name);
        cr_expect_eq(ch.type, cases[i].type, "%s: type %u", cases[i].name, ch.type);
        cr_expect_eq(ch.count, cases[i].count, "%s: count %u", cases[i].name, ch.count);
        cr_expect_eq(ch.access, cases[i].access, "%s: access %u, expected %u", cases[i].name,
                     ch.access, cases[i].access);
    }
    struct chan ch;
    cr_expect(!raw_create(fd, "DEMO:NOPE", 500, &ch), "DEMO:NOPE was created");

    /* A count that needs the extended header even with no payload. */
    cr_assert(raw_create(fd, "DEMO:BIGWAVE", 501, &ch));
    cr_expect_eq(ch.count, 100000u, "BIGWAVE count %u", ch.count);
    close(fd);
    finish();
}

Test(raw, reads_and_writes_with_status_codes)
{
    start();
    int fd = raw_client();
    struct chan d, ex;
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 1, &d));
    cr_assert(raw_create(fd, "DEMO:EXECTIME", 2, &ex));
    cr_expect_eq(raw_get_double(fd, &d, 10), 3.14159);

    uint8_t b[256];
    static struct msg m;
    /* CTRL_DOUBLE of EXECTIME: 88 bytes, precision 3, units "seconds". */
    cr_assert(send_all(fd, b, raw_hdr(b, CA_PROTO_READ_NOTIFY, 0, DBR_CTRL_DOUBLE, 1, ex.sid, 11)));
    cr_assert(expect_msg(fd, &m, CA_PROTO_READ_NOTIFY, 11, 5.0));
    cr_expect_eq(m.p1, (uint32_t)ECA_NORMAL);
    cr_expect_eq(m.postsize, 88u);
    cr_expect_eq(ca_get16(m.payload + 4), 3, "precision %u", ca_get16(m.payload + 4));
    cr_expect(strncmp((char *)m.payload + 8, "seconds", 8) == 0, "units \"%.8s\"",
              (char *)m.payload + 8);

    /* PUT_ACKT cannot be read: ECA_GETFAIL with a zeroed 8-byte payload. */
    cr_assert(send_all(fd, b, raw_hdr(b, CA_PROTO_READ_NOTIFY, 0, DBR_PUT_ACKT, 1, d.sid, 12)));
    cr_assert(expect_msg(fd, &m, CA_PROTO_READ_NOTIFY, 12, 5.0));
    cr_expect_eq(m.p1, (uint32_t)ECA_GETFAIL, "status %u, expected ECA_GETFAIL", m.p1);
    cr_expect_eq(m.postsize, 8u);
    cr_expect(memcmp(m.payload, "\0\0\0\0\0\0\0\0", 8) == 0, "payload not zeroed");

    /* WRITE_NOTIFY of "@#$%": ECA_PUTFAIL in the reply. */
    size_t n = raw_hdr(b, CA_PROTO_WRITE_NOTIFY, 8, DBR_STRING, 1, d.sid, 13);
    memcpy(b + n, "@#$%\0\0\0\0", 8);
    cr_assert(send_all(fd, b, n + 8));
    cr_assert(expect_msg(fd, &m, CA_PROTO_WRITE_NOTIFY, 13, 5.0));
    cr_expect_eq(m.p1, (uint32_t)ECA_PUTFAIL, "status %u, expected ECA_PUTFAIL", m.p1);
    cr_expect_eq(m.postsize, 0u);
    cr_expect_eq(m.dtype, DBR_STRING);
    cr_expect_eq(m.count, 1u);

    /* WRITE of "@#$%": an ERROR naming the channel's cid, with our header copied. */
    n = raw_hdr(b, CA_PROTO_WRITE, 8, DBR_STRING, 1, d.sid, d.cid);
    memcpy(b + n, "@#$%\0\0\0\0", 8);
    cr_assert(send_all(fd, b, n + 8));
    cr_assert(expect_msg(fd, &m, CA_PROTO_ERROR, -1, 5.0), "no ERROR for a failed WRITE");
    cr_expect_eq(m.p1, d.cid, "ERROR m_cid %u, expected the cid %u", m.p1, d.cid);
    cr_expect_eq(m.p2, (uint32_t)ECA_PUTFAIL, "ERROR status %u, expected ECA_PUTFAIL", m.p2);
    cr_expect(m.postsize >= 16 && memcmp(m.payload, b, 16) == 0,
              "the ERROR does not carry the WRITE header");
    cr_expect_eq(m.postsize % 8, 0u);

    /* A good WRITE_NOTIFY and WRITE, read back. */
    n = raw_hdr(b, CA_PROTO_WRITE_NOTIFY, 8, DBR_DOUBLE, 1, d.sid, 14);
    put_f64(b + n, 2.5);
    cr_assert(send_all(fd, b, n + 8));
    cr_assert(expect_msg(fd, &m, CA_PROTO_WRITE_NOTIFY, 14, 5.0));
    cr_expect_eq(m.p1, (uint32_t)ECA_NORMAL);
    cr_expect_eq(raw_get_double(fd, &d, 15), 2.5);
    n = raw_hdr(b, CA_PROTO_WRITE, 8, DBR_STRING, 1, d.sid, d.cid);
    memcpy(b + n, "-7.25\0\0\0", 8);
    cr_assert(send_all(fd, b, n + 8));
    cr_expect_eq(raw_get_double(fd, &d, 16), -7.25);
    close(fd);
    finish();
}

Test(raw, event_cancel_is_confirmed_with_an_empty_event_add)
{
    start();
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:EXECTIME", 1, &ch));
    uint8_t b[64];
    size_t n = raw_hdr(b, CA_PROTO_EVENT_ADD, 16, DBR_TIME_DOUBLE, 1, ch.sid, 5);
    memset(b + n, 0, 16);
    ca_put16(b + n + 12, DBE_VALUE | DBE_ALARM);
    cr_assert(send_all(fd, b, n + 16));
    static struct msg m;
    cr_assert(expect_msg(fd, &m, CA_PROTO_EVENT_ADD, 5, 5.0), "no first update");
    cr_expect_eq(m.p1, (uint32_t)ECA_NORMAL);
    cr_expect_eq(m.postsize, 24u);
    cr_expect_eq(m.dtype, DBR_TIME_DOUBLE);
    cr_expect_eq(m.count, 1u);

    /* Let some updates flow (16 Hz), then cancel. */
    int updates = 1;
    double until = harness_now() + 0.5;
    while (harness_now() < until && expect_msg(fd, &m, CA_PROTO_EVENT_ADD, 5, 0.3))
        updates++;
    cr_expect(updates >= 3, "%d updates in 0.5 s from a 16 Hz PV", updates);
    cr_assert(send_all(fd, b, raw_hdr(b, CA_PROTO_EVENT_CANCEL, 0, DBR_TIME_DOUBLE, 1, ch.sid, 5)));
    bool confirmed = false;
    double deadline = harness_now() + 2.0;
    while (!confirmed && harness_now() < deadline &&
           expect_msg(fd, &m, CA_PROTO_EVENT_ADD, 5, deadline - harness_now()))
        confirmed = m.postsize == 0;
    cr_assert(confirmed, "EVENT_CANCEL was not confirmed by a zero-payload EVENT_ADD");
    cr_expect_eq(m.dtype, DBR_TIME_DOUBLE);
    cr_expect_eq(m.count, 1u);
    cr_expect_eq(m.p1, ch.sid, "confirmation m_cid %u, expected the sid %u", m.p1, ch.sid);
    cr_expect(!expect_msg(fd, &m, CA_PROTO_EVENT_ADD, 5, 0.4),
              "an update for subscription 5 after its cancel was confirmed");
    close(fd);
    finish();
}

Test(raw, echo_read_sync_and_clear_channel_are_echoed)
{
    start();
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:LONG", 9, &ch));
    uint8_t b[16];
    static struct msg m;
    cr_assert(send_all(fd, b, raw_hdr(b, CA_PROTO_ECHO, 0, 0, 0, 0, 0)));
    cr_assert_eq(recv_msg(fd, &m, 5.0), 1);
    cr_expect(m.cmd == CA_PROTO_ECHO && memcmp(m.head, b, 16) == 0, "ECHO not echoed verbatim");
    cr_assert(send_all(fd, b, raw_hdr(b, CA_PROTO_READ_SYNC, 0, 0, 0, 0, 0)));
    cr_assert_eq(recv_msg(fd, &m, 5.0), 1);
    cr_expect_eq(m.cmd, CA_PROTO_READ_SYNC, "READ_SYNC answered with command %u", m.cmd);
    cr_assert(send_all(fd, b, raw_hdr(b, CA_PROTO_CLEAR_CHANNEL, 0, 0, 0, ch.sid, ch.cid)));
    cr_assert_eq(recv_msg(fd, &m, 5.0), 1);
    cr_expect(m.cmd == CA_PROTO_CLEAR_CHANNEL && m.p1 == ch.sid && m.p2 == ch.cid &&
                  m.postsize == 0,
              "CLEAR_CHANNEL reply: cmd %u sid %u cid %u", m.cmd, m.p1, m.p2);
    close(fd);
    finish();
}

Test(raw, guest_user_is_read_only)
{
    start();
    int fd = raw_client_as("guest", 0);
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 3, &ch));
    cr_expect_eq(ch.access, 1u, "guest has access %u to DEMO:DOUBLE, expected 1 (read)",
                 ch.access);
    uint8_t b[64];
    static struct msg m;
    size_t n = raw_hdr(b, CA_PROTO_WRITE, 8, DBR_DOUBLE, 1, ch.sid, ch.cid);
    put_f64(b + n, 99);
    cr_assert(send_all(fd, b, n + 8));
    cr_assert(expect_msg(fd, &m, CA_PROTO_ERROR, -1, 5.0), "no ERROR for a guest WRITE");
    cr_expect_eq(m.p2, (uint32_t)ECA_NOWTACCESS, "status %u, expected ECA_NOWTACCESS", m.p2);
    cr_expect_eq(m.p1, ch.cid);
    n = raw_hdr(b, CA_PROTO_WRITE_NOTIFY, 8, DBR_DOUBLE, 1, ch.sid, 4);
    put_f64(b + n, 99);
    cr_assert(send_all(fd, b, n + 8));
    cr_assert(expect_msg(fd, &m, CA_PROTO_WRITE_NOTIFY, 4, 5.0));
    cr_expect_eq(m.p1, (uint32_t)ECA_NOWTACCESS, "status %u, expected ECA_NOWTACCESS", m.p1);
    cr_expect_eq(raw_get_double(fd, &ch, 5), 3.14159, "a guest changed DEMO:DOUBLE");
    close(fd);

    /* Anyone else may write. */
    fd = raw_client_as("operator", 0);
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 3, &ch));
    cr_expect_eq(ch.access, 3u);
    close(fd);
    finish();
}

/* ---- hostile TCP input ---- */

Test(raw, garbage_bytes_on_tcp)
{
    start();
    srand(777);
    uint8_t b[4096];
    for (int round = 0; round < 6; round++) {
        int fd = round % 2 ? raw_client() : tcp_connect(0);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (uint8_t)rand();
        send_all(fd, b, sizeof b);
        wait_closed(fd, 1.0, NULL); /* closing or ignoring are both fine */
        close(fd);
    }
    server_is_healthy("garbage on TCP");
    finish();
}

Test(raw, huge_payload_claims)
{
    start();
    long rss0 = harness_rss_kb(&gd);
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:WAVE", 1, &ch));
    uint8_t b[65536];
    memset(b, 0, sizeof b);
    /* Extended WRITE claiming ~2 GiB, 1 GiB elements; then 64 KiB of it, then close. */
    size_t n = raw_hdr(b, CA_PROTO_WRITE, 0xFFFF, DBR_DOUBLE, 0, ch.sid, ch.cid);
    ca_put32(b + n, 0x7FFFFFF0u);
    ca_put32(b + n + 4, 0x0FFFFFFEu);
    send_all(fd, b, sizeof b);
    close(fd);

    /* A normal header claiming 0xFFF8 bytes with only 100 sent. */
    fd = raw_client();
    memset(b, 0, sizeof b);
    raw_hdr(b, CA_PROTO_ECHO, 0xFFF8, 0, 0, 0, 0);
    send_all(fd, b, 116);
    close(fd);

    /* An extended READ_NOTIFY asking for 4 billion elements. */
    fd = raw_client();
    cr_assert(raw_create(fd, "DEMO:BIGWAVE", 2, &ch));
    n = raw_hdr(b, CA_PROTO_READ_NOTIFY, 0xFFFF, DBR_DOUBLE, 0, ch.sid, 1);
    ca_put32(b + n, 0);
    ca_put32(b + n + 4, 0xFFFFFFFFu);
    send_all(fd, b, n + 8);
    wait_closed(fd, 1.0, NULL);
    close(fd);

    server_is_healthy("huge payload claims");
    long rss1 = harness_rss_kb(&gd);
    cr_expect(rss1 - rss0 < 50 * 1024, "RSS grew from %ld to %ld KiB", rss0, rss1);
    finish();
}

/* Obsolete and unknown commands close the circuit (3.18); an ERROR, if sent, must not copy a
 * command >= 28 (libca would index past its handler table, 3.15). */
Test(raw, unknown_commands_close_the_circuit)
{
    start();
    const uint16_t cmds[] = { 5, 7, 16, 25, 28, 200 };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int fd = raw_client();
        uint8_t b[16];
        send_all(fd, b, raw_hdr(b, cmds[i], 0, 0, 0, 0, 0));
        static struct msg err;
        cr_expect(wait_closed(fd, 3.0, &err), "command %u did not close the circuit", cmds[i]);
        if (err.cmd != 0xFFFF) {
            uint16_t copied = ca_get16(err.payload);
            cr_expect(copied < 28, "ERROR copies command %u (>= 28)", copied);
            cr_expect_eq(err.p2, (uint32_t)ECA_INTERNAL, "command %u: ERROR status %u",
                         cmds[i], err.p2);
        } else {
            cr_expect(cmds[i] >= 28, "command %u: no ERROR ECA_INTERNAL before closing",
                      cmds[i]);
        }
        close(fd);
    }
    server_is_healthy("unknown commands");
    finish();
}

Test(raw, bad_ids_get_an_error)
{
    start();
    struct {
        uint16_t cmd, postsize, dtype;
        uint32_t status;
    } cases[] = {
        { CA_PROTO_READ_NOTIFY, 0, DBR_DOUBLE, ECA_INTERNAL },
        { CA_PROTO_WRITE, 8, DBR_DOUBLE, ECA_INTERNAL },
        { CA_PROTO_WRITE_NOTIFY, 8, DBR_DOUBLE, 0 }, /* any failure, or closing */
        { CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE, ECA_INTERNAL },
        { CA_PROTO_CLEAR_CHANNEL, 0, 0, ECA_INTERNAL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = raw_client();
        struct chan ch;
        cr_assert(raw_create(fd, "DEMO:DOUBLE", 1, &ch));
        uint8_t b[64] = { 0 };
        size_t n = raw_hdr(b, cases[i].cmd, cases[i].postsize, cases[i].dtype,
                       cases[i].dtype == 0 ? 0 : 1, ch.sid + 0x10000, 1);
        if (cases[i].cmd == CA_PROTO_EVENT_ADD)
            ca_put16(b + n + 12, DBE_VALUE);
        send_all(fd, b, n + cases[i].postsize);
        static struct msg m;
        int r;
        do
            r = recv_msg(fd, &m, 3.0);
        while (r == 1 && m.cmd != CA_PROTO_ERROR && m.cmd != cases[i].cmd);
        if (cases[i].status != 0) {
            cr_expect(r == 1 && m.cmd == CA_PROTO_ERROR, "command %u with a bad sid: no ERROR",
                      cases[i].cmd);
            if (r == 1 && m.cmd == CA_PROTO_ERROR) {
                cr_expect_eq(m.p2, cases[i].status, "command %u with a bad sid: status %u",
                             cases[i].cmd, m.p2);
                cr_expect(memcmp(m.payload, b, 16) == 0, "the ERROR does not copy the request");
            }
        } else if (r == 1) {
            cr_expect(m.cmd == CA_PROTO_ERROR || m.p1 != (uint32_t)ECA_NORMAL,
                      "WRITE_NOTIFY with a bad sid succeeded");
        }
        close(fd);
    }

    /* EVENT_CANCEL of a subscription that does not exist: ECA_BADMONID. */
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 1, &ch));
    uint8_t b[16];
    send_all(fd, b, raw_hdr(b, CA_PROTO_EVENT_CANCEL, 0, DBR_DOUBLE, 1, ch.sid, 4711));
    static struct msg m;
    cr_expect(expect_msg(fd, &m, CA_PROTO_ERROR, -1, 3.0), "EVENT_CANCEL of an unknown subid: "
              "no ERROR");
    cr_expect_eq(m.p2, (uint32_t)ECA_BADMONID, "status %u, expected ECA_BADMONID", m.p2);
    close(fd);
    server_is_healthy("bad ids");
    finish();
}

Test(raw, misaligned_and_truncated_messages)
{
    start();
    uint8_t b[256];
    memset(b, 0, sizeof b);

    /* Misaligned payload sizes: a WRITE of 3 bytes, a CREATE_CHAN of 13. */
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:LONG", 1, &ch));
    size_t n = raw_hdr(b, CA_PROTO_WRITE, 3, DBR_CHAR, 3, ch.sid, ch.cid);
    send_all(fd, b, n + 3);
    n = raw_hdr(b, CA_PROTO_CREATE_CHAN, 13, 0, 0, 2, 13);
    memcpy(b + n, "DEMO:DOUBLE\0\0", 13);
    send_all(fd, b, n + 13);
    wait_closed(fd, 1.0, NULL);
    close(fd);

    /* Half a header, then close. */
    fd = raw_client();
    send_all(fd, b, raw_hdr(b, CA_PROTO_ECHO, 0, 0, 0, 0, 0) / 2);
    close(fd);

    /* A header promising 64 bytes, 10 of them, then close. */
    fd = raw_client();
    raw_hdr(b, CA_PROTO_CREATE_CHAN, 64, 0, 0, 5, 13);
    send_all(fd, b, 26);
    close(fd);

    /* No handshake at all: CREATE_CHAN straight away, then close. */
    fd = tcp_connect(0);
    send_all(fd, b, raw_hdr_str(b, CA_PROTO_CREATE_CHAN, 0, 0, 1, 13, "DEMO:DOUBLE"));
    close(fd);

    /* A complete WRITE followed at once by close: it must still take effect (5.6). */
    fd = raw_client();
    cr_assert(raw_create(fd, "DEMO:LONG", 1, &ch));
    n = raw_hdr(b, CA_PROTO_WRITE, 8, DBR_LONG, 1, ch.sid, ch.cid);
    ca_put32(b + n, 777);
    memset(b + n + 4, 0, 4);
    cr_assert(send_all(fd, b, n + 8));
    close(fd);
    fd = raw_client();
    cr_assert(raw_create(fd, "DEMO:LONG", 1, &ch));
    double v = 0;
    for (int tries = 0; tries < 20 && (v = raw_get_double(fd, &ch, 1)) != 777; tries++)
        usleep(50000);
    cr_expect_eq(v, 777, "a WRITE sent just before closing was lost (DEMO:LONG = %g)", v);
    close(fd);
    server_is_healthy("misaligned and truncated messages");
    finish();
}

Test(raw, oversize_or_unterminated_client_name_closes_the_circuit)
{
    start();
    static uint8_t b[2048];
    char name[1001];
    memset(name, 'u', 1000);
    name[1000] = '\0';
    int fd = tcp_connect(0);
    size_t n = raw_hdr(b, CA_PROTO_VERSION, 0, 0, CA_MINOR_VERSION, 0, 0);
    n += raw_hdr_str(b + n, CA_PROTO_CLIENT_NAME, 0, 0, 0, 0, name);
    send_all(fd, b, n);
    cr_expect(wait_closed(fd, 3.0, NULL), "a 1000-character CLIENT_NAME did not close the circuit");
    close(fd);

    fd = tcp_connect(0);
    n = raw_hdr(b, CA_PROTO_VERSION, 0, 0, CA_MINOR_VERSION, 0, 0);
    n += raw_hdr(b + n, CA_PROTO_HOST_NAME, 16, 0, 0, 0, 0);
    memset(b + n, 'h', 16);
    send_all(fd, b, n + 16);
    cr_expect(wait_closed(fd, 3.0, NULL), "an unterminated HOST_NAME did not close the circuit");
    close(fd);
    server_is_healthy("oversize names");
    finish();
}

Test(raw, many_short_lived_circuits)
{
    start();
    for (int i = 0; i < 100; i++) {
        int fd = raw_client();
        struct chan ch;
        cr_assert(raw_create(fd, i % 2 ? "DEMO:EXECTIME" : "DEMO:WAVE", 1, &ch));
        uint8_t b[32];
        size_t n = raw_hdr(b, CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE, ch.count, ch.sid, 1);
        memset(b + n, 0, 16);
        ca_put16(b + n + 12, DBE_VALUE);
        send_all(fd, b, n + 16);
        close(fd);
    }
    server_is_healthy("100 short-lived circuits");
    finish();
}

/* ---- beacons ---- */

/* Beacons go to 127.0.0.1:<beacon port>. guardiand also runs a CA repeater on that port
 * (ca/repeater.c), so if the port is taken we register with it, as libca does, and get the
 * beacons forwarded. */
Test(raw, beacons_reach_the_beacon_port)
{
    start();
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(u >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)gd.beacon_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool via_repeater = bind(u, (struct sockaddr *)&a, sizeof a) != 0;
    if (via_repeater) {
        close(u);
        u = udp_socket();
        cr_assert_eq(sendto(u, "", 0, 0, (struct sockaddr *)&a, sizeof a), 0);
    }
    uint8_t b[64];
    uint32_t ids[2];
    int got = 0, confirms = 0;
    struct sockaddr_in from;
    double deadline = harness_now() + 8.0;
    while (got < 2 && harness_now() < deadline) {
        ssize_t n = udp_recv(u, b, sizeof b, deadline - harness_now(), &from);
        if (n < 0)
            break;
        if (n >= 16 && ca_get16(b) == CA_REPEATER_CONFIRM) {
            confirms++;
            cr_expect_eq(ca_get32(b + 12), INADDR_LOOPBACK, "REPEATER_CONFIRM for %#x",
                         ca_get32(b + 12));
            continue;
        }
        if (n >= 16 && ca_get16(b) == CA_PROTO_VERSION)
            continue; /* the repeater's liveness no-op when others register */
        cr_assert_eq(n, 16, "beacon of %zd bytes", n);
        cr_expect_eq(ca_get16(b), CA_PROTO_RSRV_IS_UP, "command %u", ca_get16(b));
        cr_expect_eq(ca_get16(b + 2), 0);
        cr_expect_eq(ca_get16(b + 4), CA_MINOR_VERSION);
        cr_expect_eq(ca_get16(b + 6), gd.port, "beacon carries port %u", ca_get16(b + 6));
        uint32_t addr = ca_get32(b + 12);
        if (via_repeater)
            cr_expect_eq(addr, INADDR_LOOPBACK, "forwarded beacon address %#x", addr);
        else
            cr_expect(addr == 0 || addr == INADDR_LOOPBACK, "beacon address %#x", addr);
        ids[got++] = ca_get32(b + 8);
    }
    if (via_repeater)
        cr_expect_eq(confirms, 1, "%d REPEATER_CONFIRMs", confirms);
    cr_assert_eq(got, 2, "%d beacons in 8 s%s", got, via_repeater ? " through the repeater" : "");
    cr_expect(ids[1] > ids[0], "beacon ids %u then %u", ids[0], ids[1]);
    close(u);
    finish();
}

/* SIGTERM must end the daemon cleanly while circuits are open and busy. */
Test(raw, sigterm_with_clients_connected_exits_0)
{
    start();
    int fd[3];
    for (int i = 0; i < 3; i++) {
        fd[i] = raw_client();
        struct chan ch;
        cr_assert(raw_create(fd[i], "DEMO:EXECTIME", 1, &ch));
        uint8_t b[32];
        size_t n = raw_hdr(b, CA_PROTO_EVENT_ADD, 16, DBR_TIME_DOUBLE, 1, ch.sid, 1);
        memset(b + n, 0, 16);
        ca_put16(b + n + 12, DBE_VALUE);
        cr_assert(send_all(fd[i], b, n + 16));
    }
    static struct msg m;
    cr_assert(expect_msg(fd[0], &m, CA_PROTO_EVENT_ADD, 1, 5.0));
    finish(); /* the sockets are still open here */
    for (int i = 0; i < 3; i++)
        close(fd[i]);
}

/* ---- a client that stops reading ---- */

static int counter_updates;
static long counter_last;
static int counter_disorder;

static void on_counter(struct event_handler_args a)
{
    if (a.status != ECA_NORMAL || a.dbr == NULL)
        return;
    long v = *(const dbr_long_t *)a.dbr;
    if (counter_updates > 0 && v <= counter_last)
        counter_disorder++;
    counter_last = v;
    counter_updates++;
}

Test(raw, a_client_that_stops_reading_does_not_stall_others, .timeout = 90)
{
    start();
    long rss0 = harness_rss_kb(&gd);

    /* The stalled client: tiny receive buffer, 200 subscriptions each to EXECTIME (CTRL) and
     * WAVE (1000 doubles), and it never reads again. */
    int slow = raw_client_as("slow", 4096);
    struct chan ex, wave;
    cr_assert(raw_create(slow, "DEMO:EXECTIME", 1, &ex));
    cr_assert(raw_create(slow, "DEMO:WAVE", 2, &wave));
    static uint8_t b[400 * 32];
    size_t n = 0;
    for (uint32_t i = 0; i < 400; i++) {
        bool w = i % 2;
        n += raw_hdr(b + n, CA_PROTO_EVENT_ADD, 16, w ? DBR_DOUBLE : DBR_CTRL_DOUBLE,
                 w ? 1000 : 1, w ? wave.sid : ex.sid, 100 + i);
        memset(b + n, 0, 16);
        ca_put16(b + n + 12, DBE_VALUE | DBE_ALARM);
        n += 16;
    }
    cr_assert(send_all(slow, b, n));

    /* A well-behaved libca client meanwhile. */
    cr_assert_eq(harness_ca_context(&gd), ECA_NORMAL);
    ca_up = true;
    const char *names[] = { "DEMO:COUNTER", "DEMO:WAVE", "DEMO:DOUBLE" };
    chid c[3];
    cr_assert_eq(harness_ca_connect(c, names, 3, 10.0), 3u);
    cr_assert_eq(ca_create_subscription(DBR_LONG, 1, c[0], DBE_VALUE, on_counter, NULL, NULL),
                 ECA_NORMAL);
    static double wv[1000];
    long rss_max = rss0;
    int gets_ok = 0;
    double t0 = harness_now();
    for (int round = 0; harness_now() - t0 < 5.0 && round < 200; round++) {
        for (int i = 0; i < 1000; i++)
            wv[i] = round * 1000 + i;
        ca_array_put(DBR_DOUBLE, 1000, c[1], wv); /* 200 more WAVE updates for the slow one */
        static dbr_double_t d;
        d = 0;
        ca_array_get(DBR_DOUBLE, 1, c[2], &d);
        if (ca_pend_io(2.0) == ECA_NORMAL && d == 3.14159)
            gets_ok++;
        ca_pend_event(0.1);
        long rss = harness_rss_kb(&gd);
        if (rss > rss_max)
            rss_max = rss;
    }
    double elapsed = harness_now() - t0;
    cr_expect(counter_updates >= 3.0 * elapsed, "%d COUNTER updates in %.1f s (10 Hz) while "
              "another client is stalled", counter_updates, elapsed);
    cr_expect_eq(counter_disorder, 0, "COUNTER updates out of order");
    cr_expect(gets_ok >= 10, "only %d gets answered while another client is stalled", gets_ok);
    cr_expect(rss_max - rss0 < 50 * 1024, "daemon RSS grew from %ld to %ld KiB", rss0, rss_max);
    cr_assert(harness_alive(&gd), "guardiand died");

    /* The stalled client finally reads: the circuit is either still usable or was dropped. */
    close(slow);
    harness_ca_idle(0.2);
    server_is_healthy("a stalled client");
    finish();
}

/* ---- sizes taken from the wire (hardening) ---- */

/* The four messages that each killed the daemon: a count from the extended header whose reply
 * size wraps 32 bits. Each must get ERROR ECA_TOLARGE naming the channel, and the circuit must
 * go on serving. */
Test(raw, extended_counts_whose_reply_size_wraps_get_eca_tolarge)
{
    start();
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 5, &ch));
    struct {
        const char *what;
        uint16_t cmd, dtype;
        uint32_t count;
    } cases[] = {
        { "EVENT_ADD DBR_DOUBLE count 2^31", CA_PROTO_EVENT_ADD, DBR_DOUBLE, 0x80000000u },
        { "READ_NOTIFY DBR_DOUBLE count 2^29", CA_PROTO_READ_NOTIFY, DBR_DOUBLE, 0x20000000u },
        { "READ_NOTIFY DBR_CHAR count 0xFFFFFFFF", CA_PROTO_READ_NOTIFY, DBR_CHAR, 0xFFFFFFFFu },
        { "READ DBR_CTRL_DOUBLE count 0x1FFFFFF6", CA_PROTO_READ, DBR_CTRL_DOUBLE, 0x1FFFFFF6u },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t b[40] = { 0 };
        bool add = cases[i].cmd == CA_PROTO_EVENT_ADD;
        size_t n = raw_hdr_ext(b, cases[i].cmd, add ? 16 : 0, cases[i].dtype, cases[i].count, ch.sid,
                           (uint32_t)(50 + i));
        if (add) {
            ca_put16(b + n + 12, DBE_VALUE | DBE_ALARM);
            n += 16;
        }
        cr_assert(send_all(fd, b, n), "%s: the circuit was closed", cases[i].what);
        static struct msg m;
        cr_assert(expect_msg(fd, &m, CA_PROTO_ERROR, -1, 5.0), "%s: no ERROR", cases[i].what);
        cr_expect_eq(m.p2, (uint32_t)ECA_TOLARGE, "%s: ERROR status %u", cases[i].what, m.p2);
        cr_expect_eq(m.p1, ch.cid, "%s: ERROR for cid %u", cases[i].what, m.p1);
        cr_expect_eq(ca_get16(m.payload), cases[i].cmd, "%s: the copied command", cases[i].what);
        cr_assert(harness_alive(&gd), "guardiand died on %s", cases[i].what);
        /* The same circuit still answers. */
        cr_assert_eq(raw_get_double(fd, &ch, (uint32_t)(90 + i)), 3.14159);
    }
    close(fd);
    server_is_healthy("counts whose reply size wraps");
    /* And a real client: libca reads the value. */
    cr_assert_eq(harness_ca_context(&gd), ECA_NORMAL);
    ca_up = true;
    const char *name = "DEMO:DOUBLE";
    chid c;
    cr_assert_eq(harness_ca_connect(&c, &name, 1, 10.0), 1u, "libca did not connect");
    dbr_double_t v = 0;
    cr_assert_eq(ca_array_get(DBR_DOUBLE, 1, c, &v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect_eq(v, 3.14159, "libca read %g", v);
    finish();
}

/* Whether bytes [from, postsize) of a received message are all zero. */
static bool rest_is_zero(const struct msg *m, size_t from)
{
    for (size_t i = from; i < m->postsize && i < sizeof m->payload; i++)
        if (m->payload[i])
            return false;
    return !m->tail_nonzero;
}

/* A count above the element count is legal (ca-protocol.md 4.7): the reply has that count and
 * the value, zero-filled. Large ones leave the server as counted zeros, not as memory. */
Test(raw, counts_above_the_element_count_are_zero_filled)
{
    start();
    long rss0 = harness_rss_kb(&gd);
    int fd = raw_client();
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:DOUBLE", 5, &ch));
    const uint32_t counts[] = { 3, 600, 200000 };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint8_t b[24];
        size_t n = counts[i] >= 0xFFFF
                       ? raw_hdr_ext(b, CA_PROTO_READ_NOTIFY, 0, DBR_DOUBLE, counts[i], ch.sid, 7)
                       : raw_hdr(b, CA_PROTO_READ_NOTIFY, 0, DBR_DOUBLE, (uint16_t)counts[i], ch.sid, 7);
        cr_assert(send_all(fd, b, n));
        static struct msg m;
        cr_assert(expect_msg(fd, &m, CA_PROTO_READ_NOTIFY, 7, 10.0), "count %u: no reply",
                  counts[i]);
        cr_expect_eq(m.p1, (uint32_t)ECA_NORMAL, "count %u: status %u", counts[i], m.p1);
        cr_expect_eq(m.count, counts[i], "count %u: reply count %u", counts[i], m.count);
        cr_expect_eq(m.postsize, 8 * counts[i], "count %u: payload %u", counts[i], m.postsize);
        cr_expect_eq(get_f64(m.payload), 3.14159, "count %u: first element", counts[i]);
        cr_expect(rest_is_zero(&m, 8), "count %u: not zero-filled", counts[i]);
    }
    /* The same for a subscription's first update, and a CTRL type with metadata. */
    uint8_t b[64] = { 0 };
    size_t n = raw_hdr(b, CA_PROTO_EVENT_ADD, 16, DBR_CTRL_DOUBLE, 10, ch.sid, 8);
    ca_put16(b + n + 12, DBE_VALUE);
    cr_assert(send_all(fd, b, n + 16));
    static struct msg m;
    cr_assert(expect_msg(fd, &m, CA_PROTO_EVENT_ADD, 8, 5.0), "no first update");
    size_t off = harness_dbr_value_offset(DBR_CTRL_DOUBLE);
    cr_expect_eq(m.postsize, harness_dbr_size_n(DBR_CTRL_DOUBLE, 10));
    cr_expect_eq(get_f64(m.payload + off), 3.14159);
    cr_expect(rest_is_zero(&m, off + 8), "CTRL update not zero-filled");
    cr_expect_eq(ca_get16(m.payload + 8), 'm' << 8 | 'm', "units 'mm' in the metadata");
    close(fd);
    long rss1 = harness_rss_kb(&gd);
    cr_expect(rss1 - rss0 < 20 * 1024, "RSS grew from %ld to %ld KiB", rss0, rss1);
    server_is_healthy("zero-filled replies");
    finish();
}

/* A client that subscribes to a 16 Hz channel with a count just under the reply limit and
 * never reads: each update would be 64 MiB of zeros. It must cost bounded memory, and other
 * clients must keep being served. */
Test(raw, huge_count_subscriptions_of_a_client_that_never_reads, .timeout = 60)
{
    start();
    long rss0 = harness_rss_kb(&gd);
    int fd = raw_client_as("hog", 4096);
    struct chan ch;
    cr_assert(raw_create(fd, "DEMO:EXECTIME", 1, &ch));
    uint8_t b[8 * 40] = { 0 };
    size_t n = 0;
    for (uint32_t i = 0; i < 8; i++) {
        n += raw_hdr_ext(b + n, CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE, (64u << 20) / 8 - 64, ch.sid, i);
        ca_put16(b + n + 12, DBE_VALUE);
        n += 16;
    }
    cr_assert(send_all(fd, b, n));
    long rss_max = rss0;
    for (int i = 0; i < 30; i++) {
        harness_sleep(0.1);
        long rss = harness_rss_kb(&gd);
        rss_max = rss > rss_max ? rss : rss_max;
    }
    cr_expect(rss_max - rss0 < 50 * 1024, "RSS grew from %ld to %ld KiB", rss0, rss_max);
    server_is_healthy("huge-count subscriptions");
    close(fd);
    finish();
}

/* A display that reads its monitors slowly must still have its requests answered: monitor
 * updates give way to replies (they coalesce instead). */
Test(raw, a_slow_reader_still_has_its_requests_answered, .timeout = 90)
{
    start();
    int slow = raw_client_as("slow", 8192);
    struct chan ch;
    cr_assert(raw_create(slow, "DEMO:WAVE", 1, &ch));
    static uint8_t b[200 * 32];
    size_t n = 0;
    for (uint32_t i = 0; i < 200; i++) {
        n += raw_hdr(b + n, CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE, 1000, ch.sid, 100 + i);
        memset(b + n, 0, 16);
        ca_put16(b + n + 12, DBE_VALUE);
        n += 16;
    }
    cr_assert(send_all(slow, b, n));

    /* A writer changes DEMO:WAVE as fast as it can: 200 updates of 8 KB per change. */
    int writer = raw_client();
    struct chan wch;
    cr_assert(raw_create(writer, "DEMO:WAVE", 1, &wch));

    /* The slow client reads nothing for 2 s, so its output backs up; then it asks for
     * something on the same circuit and reads slowly (4 KiB every 10 ms) until the reply. */
    bool answered = false;
    double t0 = harness_now(), asked = 0;
    /* The reply is answered at once; before the fix it waited for as long as the
     * client stayed slow. */
    uint32_t v = 0;
    while (harness_now() - t0 < 20.0 && !answered) {
        static uint8_t w[4 * (16 + 8000)];
        size_t k = 0;
        for (int i = 0; i < 4; i++) {
            k += raw_hdr(w + k, CA_PROTO_WRITE, 8000, DBR_DOUBLE, 1000, wch.sid, wch.cid);
            memset(w + k, 0, 8000);
            ca_put32(w + k, ++v);
            k += 8000;
        }
        send_all(writer, w, k);
        if (harness_now() - t0 < 2.0) {
            harness_sleep(0.005);
            continue;
        }
        if (!asked) {
            uint8_t q[16];
            raw_hdr(q, CA_PROTO_READ_NOTIFY, 0, DBR_DOUBLE, 1, ch.sid, 4242);
            cr_assert(send_all(slow, q, sizeof q));
            asked = harness_now();
        }
        /* Look for the reply's whole header in the stream, across reads. */
        static uint8_t r[15 + 4096];
        static size_t carry;
        struct pollfd pfd = { slow, POLLIN, 0 };
        if (poll(&pfd, 1, 10) > 0) {
            ssize_t got = recv(slow, r + carry, 4096, MSG_DONTWAIT);
            cr_assert(got != 0, "the slow client's circuit was closed");
            size_t len = carry + (got > 0 ? (size_t)got : 0);
            uint8_t want[16];
            raw_hdr(want, CA_PROTO_READ_NOTIFY, 8, DBR_DOUBLE, 1, ECA_NORMAL, 4242);
            for (size_t i = 0; i + 16 <= len && !answered; i++)
                answered = memcmp(r + i, want, 16) == 0;
            carry = len < 15 ? len : 15;
            memmove(r, r + len - carry, carry);
        }
    }
    double waited = harness_now() - asked;
    cr_expect(answered, "a slow reader's READ_NOTIFY was not answered in %.1f s", waited);
    cr_expect(waited < 5.0, "a slow reader's READ_NOTIFY took %.1f s", waited);
    close(writer);
    close(slow);
    server_is_healthy("a slow reader");
    finish();
}

/* Start the daemon with a configuration file holding these [guardiand] lines. */
static void start_with(const char *lines)
{
    static char dir[] = "/tmp/guardiand-raw-XXXXXX";
    strcpy(dir, "/tmp/guardiand-raw-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    static char path[300];
    snprintf(path, sizeof path, "%s/guardiand.ini", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fprintf(f, "[guardiand]\ndatabase = %s/guardiand.db\n%s", dir, lines);
    fclose(f);
    const char *args[] = { "--config", path, NULL };
    harness_opts o = { .args = args };
    cr_assert_eq(harness_start(&gd, &o), 0, "guardiand did not start");
}

/* Limits on circuits per host, channels per circuit and subscriptions per channel are refused
 * with the protocol's errors, and a circuit that never creates a channel is closed. */
Test(raw, limits_are_refused_with_protocol_errors, .timeout = 60)
{
    start_with("ca_max_circuits_per_host = 3\nca_max_channels_per_circuit = 5\n"
               "ca_max_subs_per_channel = 3\nca_handshake_timeout = 1\n");
    int fd = raw_client();
    struct chan ch[6];
    for (uint32_t i = 0; i < 5; i++)
        cr_assert(raw_create(fd, "DEMO:DOUBLE", i + 1, &ch[i]), "channel %u refused", i + 1);
    /* The sixth: an ERROR saying why, then CREATE_CH_FAIL for its cid. */
    uint8_t b[600];
    cr_assert(send_all(fd, b, raw_hdr_str(b, CA_PROTO_CREATE_CHAN, 0, 0, 6, CA_MINOR_VERSION,
                                       "DEMO:DOUBLE")));
    static struct msg m;
    cr_assert(expect_msg(fd, &m, CA_PROTO_ERROR, -1, 5.0), "no ERROR for the sixth channel");
    cr_expect_eq(m.p2, (uint32_t)ECA_ALLOCMEM);
    cr_expect_eq(ca_get16(m.payload), CA_PROTO_CREATE_CHAN);
    cr_assert(expect_msg(fd, &m, CA_PROTO_CREATE_CH_FAIL, -1, 5.0), "no CREATE_CH_FAIL");
    cr_expect_eq(m.p1, 6u);

    /* Three subscriptions on a channel; the fourth gets ERROR ECA_ALLOCMEM for its cid. */
    for (uint32_t i = 0; i < 4; i++) {
        size_t n = raw_hdr(b, CA_PROTO_EVENT_ADD, 16, DBR_DOUBLE, 1, ch[0].sid, 10 + i);
        memset(b + n, 0, 16);
        ca_put16(b + n + 12, DBE_VALUE);
        cr_assert(send_all(fd, b, n + 16));
        if (i < 3) {
            cr_assert(expect_msg(fd, &m, CA_PROTO_EVENT_ADD, 10 + i, 5.0), "sub %u: no update", i);
        } else {
            cr_assert(expect_msg(fd, &m, CA_PROTO_ERROR, -1, 5.0), "no ERROR for sub 4");
            cr_expect_eq(m.p2, (uint32_t)ECA_ALLOCMEM);
            cr_expect_eq(m.p1, ch[0].cid);
            cr_expect_eq(ca_get16(m.payload), CA_PROTO_EVENT_ADD);
        }
    }
    cr_assert_eq(raw_get_double(fd, &ch[1], 1), 3.14159, "the circuit goes on after refusals");

    /* Two more circuits from this host are served (one of them idle, without a channel)... */
    int idle = raw_client();
    int third = raw_client();
    struct chan c3;
    cr_assert(raw_create(third, "DEMO:LONG", 1, &c3));
    /* ...a fourth is refused: VERSION, ERROR ECA_ALLOCMEM, then closed. */
    int fourth = tcp_connect(0);
    cr_assert_eq(recv_msg(fourth, &m, 5.0), 1);
    cr_expect_eq(m.cmd, CA_PROTO_VERSION);
    static struct msg err;
    cr_expect(wait_closed(fourth, 5.0, &err), "a circuit over the per-host limit stays open");
    cr_expect_eq(err.cmd, CA_PROTO_ERROR, "no ERROR before the refused circuit was closed");
    cr_expect_eq(err.p2, (uint32_t)ECA_ALLOCMEM);
    close(fourth);

    /* The idle circuit is closed after the handshake timeout (1 s); the others are not. */
    cr_expect(wait_closed(idle, 5.0, NULL), "a circuit that created no channel stays open");
    close(idle);
    cr_assert_eq(raw_get_double(fd, &ch[2], 2), 3.14159, "a working circuit was closed");
    uint8_t q[16];
    raw_hdr(q, CA_PROTO_READ_NOTIFY, 0, DBR_LONG, 1, c3.sid, 3);
    cr_assert(send_all(third, q, 16));
    cr_assert(expect_msg(third, &m, CA_PROTO_READ_NOTIFY, 3, 5.0), "third circuit closed");
    close(third);
    close(fd);
    server_is_healthy("refused limits");
    finish();
}
