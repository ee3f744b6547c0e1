/* ctl.c — fuzz target: the control socket's framing and commands
 * (ctl/ctl.c, ctl/commands.c).
 *
 * Each input is one client connection to a real daemon context: the
 * supervisor with three nodes (B1 and B2 running `bench`, SUS_X running
 * `sus`, as tests/integration/test_guardctl.py), its SQLite store holding a
 * registry, history, audit records and crashes (B1 quarantined), and the
 * real control socket, on the real loop. The client connects to the socket
 * (so accept, SO_PEERCRED and the permission rules run as in guardiand),
 * writes the input in chunks while the loop runs, reads and discards the
 * replies, and closes.
 *
 * Commands change things (stop, create, destroy, disable, request...), and
 * no input may see what an earlier one did. So after an input that changed
 * anything, the daemon is started afresh: the database is copied back from
 * the template made at start-up, and the store and the nodes start again as
 * in guardiand. Starting costs milliseconds (SQLite opens and checks the
 * file and prepares its statements), so it is done only when needed: "changed"
 * is a node started, stopped or replaced, an operator stop, something queued
 * for the database (every audited write is), or a commit to it (SQLite's
 * data_version, read on a connection of our own). The loop, the pvdb and the
 * control socket itself live across inputs. After each input every
 * descriptor it opened must be closed again (a connection the daemon forgets
 * is a finding).
 *
 * Input: a schedule byte, then what the client sends (fuzz_io.h). The
 * schedule byte also says who connects (SO_PEERCRED takes the effective uid
 * and gid at connect()): bits 0-1 = 1 uid and gid 1 (`daemon`: reads only),
 * 2 uid and gid 65534 (`nobody` in operator_group `nogroup`: reads and
 * changes), otherwise root. Other uids need the harness to run as root; otherwise
 * everyone is the harness's own user.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "ctl/ctl.h"
#include "supervisor/sup.h"
#include "tests/fuzz/fuzz_io.h"

static sup s;
static char dir[64], db_path[128];
static uint8_t *template;       /* the database every input starts from */
static size_t template_len;
static node_system *held_systems[2]; /* held, so that restarts do not load them again */

/* The daemon as it was started, to tell whether an input changed it. */
static struct {
    sup_node *nodes[3];
    bool quarantined[3];
    sqlite3 *db;                /* ours, read-only: PRAGMA data_version */
    sqlite3_stmt *version;
    int64_t data_version;
} fresh;
static const char *const node_names[3] = {"B1", "B2", "SUS_X"};

static void die(const char *what, const char *why)
{
    fprintf(stderr, "ctl fuzz: %s: %s\n", what, why);
    exit(1);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0)
        die(path, strerror(errno));
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* On failure: say what is open. */
static void list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[300], target[256];
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = 0;
        fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
    }
    if (d)
        closedir(d);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[256];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* ---- the daemon, started and stopped as guardiand does ---- */

/* One node of the registry: started if enabled (main.c's apply_spec). */
static void start_node(sup *sp, const struct sup_node_spec *spec, void *arg)
{
    (void)arg;
    char err[512];
    if (!spec->enabled)
        return;
    if (sup_node_add(sp, spec->name, spec->system, spec->args, spec->n_args, err, sizeof(err)) < 0)
        die("node", err);
    persist_node_started(sp, sup_node_find(sp, spec->name), spec);
}

static void daemon_up(void)
{
    char err[512];
    if (persist_open(&s, err, sizeof(err)) < 0 || !s.store)
        die("database", s.store_problem[0] ? s.store_problem : err);
    persist_node_list(&s, true, start_node, NULL); /* seeded from the file, as guardiand starts */
}

static void daemon_down(void)
{
    persist_close(&s, true);
    sup_nodes_free(&s);
}

static int64_t data_version(void)
{
    if (sqlite3_step(fresh.version) != SQLITE_ROW)
        die("PRAGMA data_version", sqlite3_errmsg(fresh.db));
    int64_t v = sqlite3_column_int64(fresh.version, 0);
    sqlite3_reset(fresh.version);
    return v;
}

/* A daemon as guardiand starts it on the template database. */
static void daemon_fresh(void)
{
    if (fresh.db) {
        sqlite3_finalize(fresh.version);
        sqlite3_close(fresh.db);
        daemon_down();
    }
    char path[160];
    snprintf(path, sizeof(path), "%s-wal", db_path);
    unlink(path);
    snprintf(path, sizeof(path), "%s-shm", db_path);
    unlink(path);
    write_file(db_path, template, template_len);
    daemon_up();
    for (int i = 0; i < 3; i++) {
        fresh.nodes[i] = sup_node_find(&s, node_names[i]);
        fresh.quarantined[i] = fresh.nodes[i] && fresh.nodes[i]->quarantined;
    }
    if (sqlite3_open_v2(db_path, &fresh.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(fresh.db, "PRAGMA data_version", -1, &fresh.version, NULL) != SQLITE_OK)
        die(db_path, sqlite3_errmsg(fresh.db));
    fresh.data_version = data_version();
}

static bool changed(void)
{
    if (s.stopped || s.n_nodes != 3)
        return true;
    for (int i = 0; i < 3; i++) {
        sup_node *sn = sup_node_find(&s, node_names[i]);
        if (sn != fresh.nodes[i] || (sn && sn->quarantined != fresh.quarantined[i]))
            return true;
    }
    struct store_status st;
    store_status(s.store, &st);
    return st.queued || !st.ok || data_version() != fresh.data_version;
}

/* The first database: the registry from the file, a few cycles of history,
 * audited writes, and crashes imported from a journal (three of B1 within
 * quarantine_window, so it starts quarantined). */
static void make_template(void)
{
    char journal[160], text[1024];
    snprintf(journal, sizeof(journal), "%s.crashes", db_path);
    double now = (double)time(NULL);
    size_t len = 0;
    for (int i = 0; i < 4; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "CRASH v1 boot=%d seq=1 time=%.1f signal=11 code=1 addr=0xdead "
                                "uptime=%d node=%s state=STEP_A phase=run\nbt frame one\nEND\n",
                                90 + i, now - 300 + 60 * i, 10 + i, i < 3 ? "B1" : "SUS_X");
    write_file(journal, text, len);
    daemon_up();
    pv_client who = {.host = "localhost", .user = "fuzz"};
    for (int cycle = 0; cycle < 20; cycle++) {
        for (sup_node *sn = s.nodes; sn; sn = sn->hh.next) {
            if (sn->quarantined)
                continue;
            node_step(sn->node);
            persist_after_step(&s, sn);
            nodepv_publish(sn->pv);
        }
        if (cycle == 5)
            pv_write_string(pvdb_find(s.db, "X1:GRD-B2_REQUEST"), "STEP_B", &who);
        if (cycle == 6)
            pv_write_string(pvdb_find(s.db, "X1:GRD-B2_REQUEST"), "NO_SUCH_STATE", &who);
    }
    daemon_down();
    sup_log_flush();
    FILE *f = fopen(db_path, "rb");
    struct stat st;
    char wal[160];
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    if (!f || fstat(fileno(f), &st) < 0 || !(template = malloc((size_t)st.st_size)) ||
        fread(template, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        die(db_path, "cannot read the template database");
    fclose(f);
    if (access(wal, F_OK) == 0)
        die(wal, "left after the store closed: the template would be incomplete");
    template_len = (size_t)st.st_size;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    /* The systems are built beside the binary: FUZZ_BUILD/{bin,systems}. */
    char exe[4096], systems[4200], config[128], text[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        die("/proc/self/exe", strerror(errno));
    exe[n] = 0;
    snprintf(systems, sizeof(systems), "%s/systems", dirname(dirname(exe)));

    snprintf(dir, sizeof(dir), "%s/guardiand-fuzz-ctl-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir) || chmod(dir, 0711) < 0) /* others reach the socket, nothing else */
        die(dir, strerror(errno));
    atexit(remove_dir);
    snprintf(db_path, sizeof(db_path), "%s/ctl.db", dir);
    snprintf(config, sizeof(config), "%s/guardiand.ini", dir);
    /* Mode 0666: uids other than root may connect; the rules decide per
     * request. A year's quarantine window keeps B1 quarantined however long
     * the fuzzer runs. */
    int len = snprintf(text, sizeof(text),
                       "[guardiand]\nifo = X1\nsystems = %s\ndatabase = %s\n"
                       "control_socket = %s/ctl.sock\ncontrol_mode = 0666\n"
                       "operator_group = nogroup\nquarantine_window = 31536000\nsimulate_plant = yes\n"
                       "[node B1]\nsystem = bench\n[node B2]\nsystem = bench\n"
                       "[node SUS_X]\nsystem = sus\noptic = ETMX\n",
                       systems, db_path, dir);
    write_file(config, text, (size_t)len);

    char err[512];
    if (config_load(&s.cfg, config, err, sizeof(err)) < 0)
        die("configuration", err);
    s.started = sup_now();
    if (!(s.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK)) || !(s.db = pvdb_new()))
        die("set-up", "out of memory");
    sup_host_init(&s);
    if (sup_plant_init(&s, err, sizeof(err)) < 0)
        die("plant", err);
    if (!(s.ctl = ctl_new(&s, err, sizeof(err))))
        die("control socket", err);
    ctl_start(s.ctl);
    make_template();
    for (int i = 0; i < 2; i++)
        if (!(held_systems[i] = node_system_load(i ? "sus" : "bench", s.cfg.systems, err, sizeof(err))))
            die("system", err);
    daemon_fresh();
    return 0;
}

/* Connect to the control socket as uid, with gid = uid as its effective
 * group (as ourselves if we cannot). The daemon takes the process's real
 * groups, not the group file's: `nobody` is an operator because its
 * effective group is then nogroup. */
static int connect_as(uid_t uid)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl_path(s.ctl));
    gid_t egid = getegid();
    bool switched = uid != geteuid() && geteuid() == 0 && setegid((gid_t)uid) == 0;
    if (switched && seteuid(uid) < 0)
        die("seteuid", strerror(errno));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect", strerror(errno));
    if (switched && (seteuid(0) < 0 || setegid(egid) < 0))
        die("seteuid", strerror(errno));
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t x = fz_seed(data[0]);
    uid_t uid = (data[0] & 3) == 1 ? 1 : (data[0] & 3) == 2 ? 65534 : 0;
    data++, size--;

    int start_fds = count_fds(); /* here, not at start-up: LSan's checks may keep a few */
    int fd = connect_as(uid);
    fz_pump(s.loop, fd);
    for (size_t off = 0; off < size;) {
        size_t n = fz_chunk_len(&x, size - off);
        fz_feed(s.loop, fd, data + off, n);
        off += n;
        fz_pump(s.loop, fd);
    }
    close(fd);

    /* The daemon sees the end of the stream and closes its side. */
    int open_fds = count_fds();
    for (int round = 0; round < 16 && open_fds > start_fds; round++) {
        ev_run(s.loop, EVRUN_NOWAIT);
        open_fds = count_fds();
    }
    if (changed())
        daemon_fresh();
    sup_log_flush();
    if (open_fds != start_fds || count_fds() != start_fds) {
        fprintf(stderr, "ctl fuzz: descriptors left open: %d after the input, %d before\n",
                count_fds(), start_fds);
        list_fds();
        abort();
    }
    return 0;
}
