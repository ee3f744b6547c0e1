/* ca_udp.c — fuzz target: one UDP datagram to the CA name service.
 *
 * Each input is a datagram as recvfrom() would deliver it to udp_cb(), given
 * to the server's real handler (cas_udp_handle in ca/udp.c) of the server and
 * PV set of fuzz_ca.c, from a loopback address whose socket we own: replies
 * (search hits) are really sent there, and read and discarded. Inputs longer
 * than the server's receive buffer cannot arrive and are skipped.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_ca.h"
#include "tests/fuzz/fuzz_io.h"

static cas *srv;
static int requester = -1;        /* where the replies go */
static struct sockaddr_in from;   /* its address */
static int sender = -1;           /* the socket replies leave from */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    struct ev_loop *loop;
    srv = fz_ca_server(&loop, FZ_SITE);
    socklen_t len = sizeof(from);
    from = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    requester = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sender = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (requester < 0 || sender < 0 || bind(requester, (struct sockaddr *)&from, sizeof(from)) < 0 ||
        getsockname(requester, (struct sockaddr *)&from, &len) < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CA_MAX_UDP_RECV)
        return 0;
    cas_udp_handle(srv, sender, data, size, &from);
    fz_drain(requester);
    return 0;
}
