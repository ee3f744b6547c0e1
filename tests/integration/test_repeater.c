/* test_repeater.c — the daemon's CA repeater (ca/repeater.c) through real UDP sockets.
 *
 * Each test starts its own guardiand (harness: free 127.0.0.1 ports; the repeater binds the
 * harness's beacon port, where the daemon's own beacons go too) and talks to the repeater as
 * libca and CA servers do (../shared/docs/ca-protocol.md 1.2):
 *   - registration (a zero-length datagram, or REPEATER_REGISTER) is confirmed with
 *     REPEATER_CONFIRM carrying the client's address, and announced to the other clients
 *     with an all-zero VERSION;
 *   - a beacon with m_available 0 reaches every registered client with m_available set to its
 *     source address, one with m_available set and any other datagram verbatim, never back
 *     to its sender;
 *   - a flood on the port (from a child process, 127.0.0.1 only) is bounded: the daemon's CPU
 *     stays low, it forwards at most its budget, says so once in its log, and afterwards the
 *     repeater forwards beacons again and the daemon answers CA.
 * The daemon's own beacons also reach the clients: tests pick their datagrams out by content.
 * Every wait is bounded by poll() timeouts; every loop by a count.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca/caproto.h"
#include "ca/epics_ca.h"
#include "tests/lib/harness.h"

#define MAX_CLIENTS 64
#define FLOOD_SECONDS 3.0
#define FLOOD_MAX 20000000L /* bounds the sender's loop besides its deadline */
/* What the repeater promises (ca/repeater.c): at most this many datagrams read, and sends to
 * clients, a second. */
#define READS_PER_SECOND 5000
#define SENDS_PER_SECOND 20000

static harness_daemon gd;
static bool ca_up;
static struct sockaddr_in repeater;

static void start(void)
{
    cr_assert_eq(harness_start(&gd, NULL), 0, "guardiand did not start");
    repeater = (struct sockaddr_in){.sin_family = AF_INET,
                                    .sin_port = htons((uint16_t)gd.beacon_port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
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

TestSuite(repeater, .fini = cleanup, .timeout = 90);

/* ---- sockets ---- */

/* A UDP socket bound to 127.0.0.1:<ephemeral>, as libca binds its own. */
static int udp_client(struct sockaddr_in *bound)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (bound)
        *bound = a;
    return fd;
}

static void send_to_repeater(int fd, const void *buf, size_t len)
{
    cr_assert_eq(sendto(fd, buf, len, 0, (const struct sockaddr *)&repeater, sizeof repeater),
                 (ssize_t)len, "sendto the repeater: %s", strerror(errno));
}

/* Wait up to `seconds` for a datagram on fd that match() accepts (others are skipped).
 * Returns its length, or -1 on timeout. */
static ssize_t await(int fd, uint8_t *buf, size_t size, double seconds,
                     bool (*match)(const uint8_t *, size_t, const void *), const void *arg)
{
    double deadline = harness_now() + seconds;
    for (int i = 0; i < 1000000; i++) {
        ssize_t n = recv(fd, buf, size, MSG_DONTWAIT);
        if (n >= 0) {
            if (match(buf, (size_t)n, arg))
                return n;
            continue;
        }
        double left = deadline - harness_now();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, (int)(left * 1000) + 1);
    }
    return -1;
}

/* Empty fd (bounded). */
static void drain(int fd)
{
    uint8_t buf[2048];
    for (int i = 0; i < 100000 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) >= 0; i++) {
    }
}

static bool is_confirm(const uint8_t *b, size_t n, const void *arg)
{
    (void)arg;
    return n >= CA_HDR_SIZE && ca_get16(b) == CA_REPEATER_CONFIRM;
}

static bool is_noop(const uint8_t *b, size_t n, const void *arg)
{
    (void)arg;
    static const uint8_t zero[CA_HDR_SIZE] = {0};
    return n == CA_HDR_SIZE && memcmp(b, zero, CA_HDR_SIZE) == 0;
}

/* The datagram of a test: same length, same bytes but m_available (12..15). */
struct expected {
    const uint8_t *bytes;
    size_t len;
};

static bool is_expected(const uint8_t *b, size_t n, const void *arg)
{
    const struct expected *e = arg;
    return n == e->len && memcmp(b, e->bytes, 12) == 0 &&
           memcmp(b + 16, e->bytes + 16, n > 16 ? n - 16 : 0) == 0;
}

/* Register fd as libca does (a zero-length datagram) and require the confirmation. */
static void register_client(int fd)
{
    send_to_repeater(fd, "", 0);
    uint8_t b[64];
    ssize_t n = await(fd, b, sizeof b, 5.0, is_confirm, NULL);
    cr_assert_eq(n, CA_HDR_SIZE, "no REPEATER_CONFIRM within 5 s");
    cr_expect_eq(ca_get32(b + 12), INADDR_LOOPBACK, "REPEATER_CONFIRM for %#x", ca_get32(b + 12));
}

/* A beacon (RSRV_IS_UP): server port `port`, beacon id `id`, m_available `addr`. */
static void beacon(uint8_t *b, uint16_t port, uint32_t id, uint32_t addr)
{
    memset(b, 0, CA_HDR_SIZE);
    ca_put16(b, CA_PROTO_RSRV_IS_UP);
    ca_put16(b + 4, CA_MINOR_VERSION);
    ca_put16(b + 6, port);
    ca_put32(b + 8, id);
    ca_put32(b + 12, addr);
}

/* ---- registration and fan-out ---- */

Test(repeater, registration_is_confirmed_and_announced_to_the_others)
{
    start();
    int a = udp_client(NULL), b = udp_client(NULL);
    register_client(a);
    drain(a);
    /* The second one registers with an explicit REPEATER_REGISTER header. */
    uint8_t reg[CA_HDR_SIZE] = {0};
    ca_put16(reg, CA_REPEATER_REGISTER);
    ca_put32(reg + 12, INADDR_LOOPBACK);
    send_to_repeater(b, reg, sizeof reg);
    uint8_t buf[64];
    cr_assert_eq(await(b, buf, sizeof buf, 5.0, is_confirm, NULL), CA_HDR_SIZE,
                 "no REPEATER_CONFIRM for a REPEATER_REGISTER");
    cr_expect_eq(ca_get32(buf + 12), INADDR_LOOPBACK);
    cr_assert_eq(await(a, buf, sizeof buf, 5.0, is_noop, NULL), CA_HDR_SIZE,
                 "the first client was not sent the no-op VERSION when the second registered");
    /* Registering again is confirmed again, and does not add the client twice. */
    drain(a);
    drain(b);
    register_client(a);
    uint8_t x[CA_HDR_SIZE];
    beacon(x, 1, 0x5EED01, 0);
    int s = udp_client(NULL);
    send_to_repeater(s, x, sizeof x);
    struct expected e = {x, sizeof x};
    cr_assert_eq(await(a, buf, sizeof buf, 5.0, is_expected, &e), CA_HDR_SIZE);
    cr_expect_eq(await(a, buf, sizeof buf, 0.5, is_expected, &e), -1,
                 "a client registered twice got the beacon twice");
    close(s);
    close(a);
    close(b);
    finish();
}

Test(repeater, beacons_reach_every_client_with_the_server_address)
{
    start();
    enum { N = 5 };
    int c[N];
    struct sockaddr_in addr[N];
    for (int i = 0; i < N; i++) {
        c[i] = udp_client(&addr[i]);
        register_client(c[i]);
    }
    for (int i = 0; i < N; i++)
        drain(c[i]);
    int server = udp_client(NULL);
    uint8_t buf[256];

    /* m_available 0: the repeater fills in the source address (libca needs it). */
    uint8_t b1[CA_HDR_SIZE];
    beacon(b1, 1, 0xBEAC01, 0);
    send_to_repeater(server, b1, sizeof b1);
    struct expected e1 = {b1, sizeof b1};
    for (int i = 0; i < N; i++) {
        cr_assert_eq(await(c[i], buf, sizeof buf, 5.0, is_expected, &e1), CA_HDR_SIZE,
                     "client %d did not get the beacon", i);
        cr_expect_eq(ca_get32(buf + 12), INADDR_LOOPBACK, "client %d: m_available %#x", i,
                     ca_get32(buf + 12));
    }

    /* m_available set: forwarded as it is. */
    uint8_t b2[CA_HDR_SIZE];
    beacon(b2, 2, 0xBEAC02, 0x0A010203);
    send_to_repeater(server, b2, sizeof b2);
    struct expected e2 = {b2, sizeof b2};
    for (int i = 0; i < N; i++) {
        cr_assert_eq(await(c[i], buf, sizeof buf, 5.0, is_expected, &e2), CA_HDR_SIZE);
        cr_expect_eq(ca_get32(buf + 12), 0x0A010203u, "client %d: m_available %#x", i,
                     ca_get32(buf + 12));
    }

    /* Any other datagram, verbatim, to everyone but its sender (here client 0). */
    uint8_t other[40];
    for (size_t i = 0; i < sizeof other; i++)
        other[i] = (uint8_t)(0xA0 + i);
    send_to_repeater(c[0], other, sizeof other);
    struct expected e3 = {other, sizeof other};
    for (int i = 1; i < N; i++) {
        cr_assert_eq(await(c[i], buf, sizeof buf, 5.0, is_expected, &e3), (ssize_t)sizeof other,
                     "client %d did not get the datagram", i);
        cr_expect_eq(memcmp(buf, other, sizeof other), 0, "client %d: not verbatim", i);
    }
    cr_expect_eq(await(c[0], buf, sizeof buf, 0.5, is_expected, &e3), -1,
                 "the sender got its own datagram back");

    /* A client whose process has gone (its port can be bound again) is forgotten within
     * the repeater's check period (10 s); the others keep getting beacons. */
    close(c[N - 1]);
    harness_sleep(12.0);
    for (int i = 0; i < N - 1; i++)
        drain(c[i]);
    c[N - 1] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(c[N - 1], (struct sockaddr *)&addr[N - 1], sizeof addr[N - 1]), 0,
                 "the port of the closed client is taken");
    uint8_t b4[CA_HDR_SIZE];
    beacon(b4, 4, 0xBEAC04, 0);
    send_to_repeater(server, b4, sizeof b4);
    struct expected e4 = {b4, sizeof b4};
    for (int i = 0; i < N - 1; i++)
        cr_assert_eq(await(c[i], buf, sizeof buf, 5.0, is_expected, &e4), CA_HDR_SIZE);
    cr_expect_eq(await(c[N - 1], buf, sizeof buf, 0.5, is_expected, &e4), -1,
                 "a client that went away is still sent beacons after 12 s");
    for (int i = 0; i < N; i++)
        close(c[i]);
    close(server);
    finish();
}

/* ---- a flood ---- */

/* The sender: a child process (no libca yet, but system calls only all the same). Writes how
 * many datagrams it sent to out_fd. Only to 127.0.0.1 (the repeater's address). */
static void flood_child(int out_fd)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint8_t msg[CA_HDR_SIZE];
    beacon(msg, 9, 0xF100D, 0); /* beacons, so the m_available path is flooded too */
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg};
    struct mmsghdr v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &repeater, .msg_namelen = sizeof repeater,
                                            .msg_iov = &iov, .msg_iovlen = 1}};
    long sent = 0;
    double end = harness_now() + FLOOD_SECONDS;
    while (fd >= 0 && sent < FLOOD_MAX && harness_now() < end) {
        int n = sendmmsg(fd, v, 64, MSG_DONTWAIT);
        if (n > 0)
            sent += n;
    }
    ssize_t w = write(out_fd, &sent, sizeof sent);
    (void)w;
    _exit(0);
}

/* Lines of the daemon's log that contain `text`. */
static int log_lines_with(const char *text)
{
    FILE *f = fopen(gd.log_path, "re");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    for (int i = 0; i < 1000000 && fgets(line, sizeof line, f); i++)
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

static bool is_flood_beacon(const uint8_t *b, size_t n, const void *arg)
{
    (void)arg;
    return n == CA_HDR_SIZE && ca_get16(b) == CA_PROTO_RSRV_IS_UP && ca_get32(b + 8) == 0xF100D;
}

Test(repeater, a_flood_is_bounded_and_the_repeater_and_ca_still_work_after_it)
{
    start();
    enum { N = 50 };
    int c[N];
    for (int i = 0; i < N; i++) {
        c[i] = udp_client(NULL);
        register_client(c[i]);
    }
    /* Client 0 counts what the repeater sends it: a big buffer, read throughout, and the
     * kernel's drop count for the rest. */
    int big = 4 << 20, one = 1;
    setsockopt(c[0], SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    setsockopt(c[0], SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    for (int i = 0; i < N; i++)
        drain(c[i]);

    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    double cpu0 = harness_proc_cpu_s(gd.pid), t0 = harness_now();
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        close(p[0]);
        flood_child(p[1]);
    }
    close(p[1]);
    long got = 0;
    uint32_t drops = 0;
    while (harness_now() < t0 + FLOOD_SECONDS + 0.5) {
        uint8_t buf[64];
        char control[CMSG_SPACE(sizeof(uint32_t))];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                           .msg_controllen = sizeof control};
        if (recvmsg(c[0], &m, MSG_DONTWAIT) < 0) {
            struct pollfd pf = {.fd = c[0], .events = POLLIN};
            poll(&pf, 1, 10);
            continue;
        }
        got++;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
            if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SO_RXQ_OVFL)
                memcpy(&drops, CMSG_DATA(h), sizeof drops);
    }
    long sent = -1;
    cr_assert_eq(read(p[0], &sent, sizeof sent), (ssize_t)sizeof sent, "the sender said nothing");
    close(p[0]);
    int st;
    waitpid(child, &st, 0);
    double seconds = harness_now() - t0, cpu = harness_proc_cpu_s(gd.pid) - cpu0;
    cr_assert(harness_alive(&gd), "guardiand died in the flood");
    cr_log_info("flood: %ld datagrams in %.1f s; client 0 was sent %ld (+%u dropped by its "
                "socket); daemon CPU %.2f s", sent, seconds, got, drops, cpu);
    cr_assert_gt(sent, 20 * READS_PER_SECOND * FLOOD_SECONDS,
                 "the flood was too weak to test anything (%ld datagrams)", sent);
    /* Bounded work: the repeater sent its N clients at most its budget, not the flood. */
    cr_expect_leq(got + drops, (long)(SENDS_PER_SECOND / N * (seconds + 1)),
                  "the repeater forwarded %ld datagrams to one of %d clients in %.1f s",
                  got + drops, N, seconds);
    cr_expect_gt(got, 0, "nothing was forwarded during the flood");
    /* Before the budget the daemon spent ~90 % of a core on such a flood; now a few %. */
    cr_expect_lt(cpu / seconds, 0.4, "the daemon used %.0f %% of a core during the flood",
                 100 * cpu / seconds);
    cr_expect_eq(log_lines_with("repeater: flood"), 1, "expected one log line about the flood");

    /* Afterwards: a beacon reaches every client (sent again every half second, since the
     * repeater may still be waiting out the budget of the flood's last tenth of a second). */
    for (int i = 0; i < N; i++)
        drain(c[i]);
    int server = udp_client(NULL);
    uint8_t b[CA_HDR_SIZE];
    beacon(b, 3, 0xAF7E8, 0);
    struct expected e = {b, sizeof b};
    bool seen[N] = {false};
    int reached = 0;
    double deadline = harness_now() + 5.0;
    for (int round = 0; round < 10 && reached < N && harness_now() < deadline; round++) {
        send_to_repeater(server, b, sizeof b);
        for (int i = 0; i < N; i++) {
            uint8_t buf[64];
            if (!seen[i] && await(c[i], buf, sizeof buf, i == 0 ? 0.5 : 0.01, is_expected, &e) ==
                                CA_HDR_SIZE) {
                seen[i] = true;
                reached++;
                cr_expect_eq(ca_get32(buf + 12), INADDR_LOOPBACK);
            }
        }
    }
    cr_expect_eq(reached, N, "after the flood a beacon reached %d of %d clients", reached, N);
    /* And nothing of the flood is still being forwarded a second later. */
    harness_sleep(1.0);
    for (int i = 0; i < N; i++)
        drain(c[i]);
    uint8_t buf[64];
    cr_expect_eq(await(c[1], buf, sizeof buf, 1.0, is_flood_beacon, NULL), -1,
                 "flood datagrams still forwarded 1 s after the flood");

    /* The daemon answers CA. */
    cr_assert_eq(harness_ca_context(&gd), ECA_NORMAL);
    ca_up = true;
    chid ch;
    const char *name = "DEMO:DOUBLE";
    cr_assert_eq(harness_ca_connect(&ch, &name, 1, 10.0), 1u, "DEMO:DOUBLE did not connect");
    double v = 0;
    cr_assert_eq(ca_array_get(DBR_DOUBLE, 1, ch, &v), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(10.0), ECA_NORMAL);
    cr_expect_eq(v, 3.14159);
    ca_clear_channel(ch);
    close(server);
    for (int i = 0; i < N; i++)
        close(c[i]);
    finish();
}
