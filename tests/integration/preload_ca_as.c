/* preload_ca_as.c — LD_PRELOAD into a CA client (pyepics, libca) to be someone else.
 *
 * The access rules' tests need clients with other CA user names and from other source
 * addresses than the test's own, without other Unix accounts or network interfaces:
 *
 *   GUARD_CA_USER=alice     libca's CLIENT_NAME: libca asks getpwuid(getuid()) for it
 *   GUARD_CA_SOURCE=127.0.0.2   every IPv4 TCP connection (CA circuits) is bound to this
 *                           address first: 127.0.0.0/8 is all local on Linux, so the server
 *                           sees the circuit come from it
 *
 * Built without sanitizers (it is loaded into an uninstrumented python3).
 */
#include <dlfcn.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct passwd *getpwuid(uid_t uid)
{
    static struct passwd pw;
    static char name[64], none[] = "", dir[] = "/", shell[] = "/bin/sh";
    const char *user = getenv("GUARD_CA_USER");
    if (!user) {
        struct passwd *(*real)(uid_t) = (struct passwd *(*)(uid_t))dlsym(RTLD_NEXT, "getpwuid");
        return real ? real(uid) : NULL;
    }
    strncpy(name, user, sizeof(name) - 1);
    pw = (struct passwd){.pw_name = name, .pw_passwd = none, .pw_uid = uid, .pw_gid = getgid(),
                         .pw_gecos = none, .pw_dir = dir, .pw_shell = shell};
    return &pw;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int (*real)(int, const struct sockaddr *, socklen_t) =
        (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    const char *source = getenv("GUARD_CA_SOURCE");
    int type = 0;
    socklen_t tl = sizeof(type);
    if (source && addr && addr->sa_family == AF_INET &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM) {
        struct sockaddr_in me = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, source, &me.sin_addr) == 1)
            bind(fd, (struct sockaddr *)&me, sizeof(me)); /* a failure shows as the peer address */
    }
    return real(fd, addr, len);
}
