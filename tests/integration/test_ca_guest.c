/* test_ca_guest.c — a libca client whose user name is "guest" gets read-only access.
 *
 * libca cannot be told a user name: ca_modify_user_name() has been a no-op since EPICS 3.14,
 * and every context sends the login name of getpwuid(getuid()) as CLIENT_NAME. So this test
 * binary (only this one: each test_*.c is its own program) defines getpwuid() itself. The
 * definition in the executable takes precedence over libc's for libCom's call, and libca then
 * sends "guest". (test_raw_socket.c checks the same rule with a hand-made CLIENT_NAME.)
 */
#include <criterion/criterion.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/epics_ca.h"
#include "tests/lib/harness.h"

struct passwd *getpwuid(uid_t uid)
{
    static char name[] = "guest", passwd[] = "x", gecos[] = "", dir[] = "/", shell[] = "/bin/sh";
    static struct passwd pw;
    pw = (struct passwd){ .pw_name = name, .pw_passwd = passwd, .pw_uid = uid,
                          .pw_gid = getgid(), .pw_gecos = gecos, .pw_dir = dir,
                          .pw_shell = shell };
    return &pw;
}

static harness_daemon gd;
static bool ca_up;

static void cleanup(void)
{
    if (ca_up)
        ca_context_destroy();
    ca_up = false;
    harness_stop(&gd, 5);
}

TestSuite(guest, .fini = cleanup, .timeout = 60);

Test(guest, guest_user_gets_read_only_access_to_everything)
{
    cr_assert_eq(harness_start(&gd, NULL), 0, "guardiand did not start");
    cr_assert_eq(harness_ca_context(&gd), ECA_NORMAL);
    ca_up = true;

    static const char *const writable[] = { "DEMO:STRING", "DEMO:SHORT", "DEMO:FLOAT",
                                            "DEMO:ENUM",   "DEMO:CHAR",  "DEMO:LONG",
                                            "DEMO:DOUBLE", "DEMO:REJECT", "DEMO:WAVE",
                                            "DEMO:GROUP",  "DEMO:G:A",   "DEMO:N:3" };
    enum { N = sizeof writable / sizeof writable[0] };
    chid c[N];
    cr_assert_eq(harness_ca_connect(c, (const char *const *)writable, N, 10.0), (size_t)N);
    for (size_t i = 0; i < N; i++) {
        cr_expect_eq(ca_read_access(c[i]), 1u, "guest cannot read %s", writable[i]);
        cr_expect_eq(ca_write_access(c[i]), 0u, "guest may write %s", writable[i]);
        char s[MAX_STRING_SIZE] = "1";
        cr_expect_eq(ca_array_put(DBR_STRING, 1, c[i], s), ECA_NOWTACCESS, "%s", writable[i]);
    }

    /* Reads still work, and nothing changed. */
    dbr_double_t d = 0;
    cr_assert_eq(ca_array_get(DBR_DOUBLE, 1, c[6], &d), ECA_NORMAL);
    cr_assert_eq(ca_pend_io(5.0), ECA_NORMAL);
    cr_expect_eq(d, 3.14159);

    ca_context_destroy();
    ca_up = false;
    bool alive = harness_alive(&gd);
    int code = harness_stop(&gd, 0);
    gd.log_path[0] = '\0';
    cr_assert(alive, "guardiand died during the test (status %d)", code);
    cr_assert_eq(code, 0, "guardiand exited with status %d after SIGTERM, expected 0", code);
}
