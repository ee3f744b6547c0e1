"""test_guardctl_ops.py — what operators asked for next (issue 12): guardctl states, the Path
line and who set the request in status, list filters, node patterns and `all`, is-ok and
is-active, list -w / status -w redrawn from the daemon's change frames, and colour.

Through the real guardctl against a real daemon (test_guardctl's Ctl and ctl fixture: its own
configuration, database, control socket and CA ports). Nodes whose bench period is an hour stay
in STEP_A (nothing changes unless a test changes it), so a watcher that draws without a change
is caught. Terminals are real ptys.
"""
import os
import pty
import pwd
import select
import signal
import subprocess
import time

from harness import guardctl_path, put, raw_connect, recv_frame, rpc, send_frame, wait_for

STILL = {"period": "3600"}  # a bench node that stays in STEP_A
NODES = [("B1", "bench", STILL), ("B2", "bench", STILL), ("SUS_X", "sus", {"optic": "ETMX"}),
         ("NOSYS", "no_such_system", {}), ("MON", "ifo", {})]  # MON: no nodes= -> ERROR
USER = pwd.getpwuid(os.getuid()).pw_name


def settled(c):
    """Every node in STEP_A with its main done (status RUN): nothing changes until told to."""
    return wait_for(lambda: all(n["state"] == "STEP_A" and n["status"] == "RUN"
                                for n in c.json("list")["nodes"]))


def names(c, *args):
    return [n["name"] for n in c.json("list", *args)["nodes"]]


def rows(stdout):
    """The node lines of guardctl list: {name: columns}."""
    lines = stdout.splitlines()
    return {l.split()[0]: l.split() for l in lines[1:] if l and not l.endswith("listed.")}


# ---- states ----

def test_states_shows_the_system_graph(ctl):
    c = ctl(nodes=NODES)
    r = c.json("states", "B1")
    by = {s["name"]: s for s in r["states"]}
    assert [s["name"] for s in r["states"]] == ["INIT", "IDLE", "STEP_A", "STEP_B", "STEP_C"]
    assert {k: v["index"] for k, v in by.items()} == {"INIT": 0, "IDLE": 5, "STEP_A": 10,
                                                      "STEP_B": 20, "STEP_C": 30}
    assert [k for k, v in by.items() if v["requestable"]] == ["IDLE", "STEP_A"]
    assert [k for k, v in by.items() if v["goto"]] == ["INIT", "IDLE"]
    assert {k: v["edges"] for k, v in by.items()} == {
        "INIT": [], "IDLE": ["STEP_A"], "STEP_A": ["STEP_B"], "STEP_B": ["STEP_C"],
        "STEP_C": ["STEP_A"]}
    assert wait_for(lambda: c.json("states", "B1")["state"] == "STEP_A")
    r = c.json("states", "B1")
    assert [k["name"] for k in r["states"] if k["current"]] == ["STEP_A"]
    assert [k["name"] for k in r["states"] if k["request"]] == ["STEP_A"]

    out = c.ok("states", "B1").stdout.splitlines()
    assert out[0].startswith("B1 (bench): state STEP_A, request STEP_A")
    assert out[1].split() == ["INDEX", "REQ", "GOTO", "STATE", "EDGES", "TO"]
    table = [l.split() for l in out[2:7]]
    # highest index first, as Guardian prints a system's states
    assert [t[0] for t in table] == ["30", "20", "10", "5", "0"]
    assert table[2][:4] == ["10", "*", "STEP_A", "STEP_B"] and "current" in out[4]
    assert table[3] == ["5", "*", "goto", "IDLE", "STEP_A"]
    assert table[4] == ["0", "goto", "INIT", "-"]
    assert out[-1] == "Path: STEP_A"

    assert c.ok("states", "B1", "--names").stdout == "IDLE\nSTEP_A\n"
    assert c.ok("states", "SUS_X", "--names").stdout.split() == ["SAFE", "DAMPED", "MISALIGNED", "ALIGNED"]
    r = c.run("states", "NOPE")
    assert r.returncode == 1 and "unknown node 'NOPE'" in r.stderr
    r = c.run("states", "NOSYS")
    assert r.returncode == 1 and "not running" in r.stderr
    assert rpc(c.socket, "states", node=5)["code"] == "EINVAL"
    assert rpc(c.socket, "states")["code"] == "EINVAL"


# ---- status: Path and who set the request ----

def test_status_shows_the_path_and_who_set_the_request(ctl):
    c = ctl(nodes=NODES)
    assert wait_for(lambda: c.node("B1")["state"] == "STEP_A")
    n = c.node("B1")
    assert n["path"] == ["STEP_A"] and n["request_set"] is None  # the system's own request
    out = c.ok("status", "B1").stdout
    assert "Path: STEP_A (at its request)" in out and "set by" not in out

    c.ok("request", "B1", "STEP_C")
    # the request redirects B1 to STEP_B at once, where it waits an hour on its way to STEP_C
    assert wait_for(lambda: c.node("B1")["state"] == "STEP_B")
    n = c.node("B1")
    assert n["path"] == ["STEP_B", "STEP_C"] and n["target"] == "STEP_C", n["path"]
    assert n["request_set"]["by"] == USER + "@localhost"
    assert abs(n["request_set"]["time"] - time.time()) < 30
    out = c.ok("status", "B1").stdout
    assert "Path: STEP_B -> STEP_C\n" in out, out
    assert "Request: STEP_C (set by %s@localhost " % USER in out and " s ago)" in out, out
    # a refused request does not count; the one that holds still does
    assert c.run("request", "B1", "NO_SUCH").returncode == 1
    assert c.node("B1")["request_set"]["by"] == USER + "@localhost"
    # SUS_X trips at start, and TRIPPED is not redirected: it waits at the start of its path
    assert wait_for(lambda: c.node("SUS_X")["state"] == "TRIPPED")
    assert c.node("SUS_X")["path"] == ["TRIPPED", "SAFE", "DAMPED", "ALIGNED"]
    assert "Path: TRIPPED -> SAFE -> DAMPED -> ALIGNED\n" in c.ok("status", "SUS_X").stdout
    assert c.json("states", "SUS_X")["path"] == ["TRIPPED", "SAFE", "DAMPED", "ALIGNED"]
    # written over CA (REQUEST_ENUM, the MEDM menu): the CA client's user and host
    put("X1:GRD-B1_REQUEST_ENUM", 0)  # IDLE
    assert wait_for(lambda: c.node("B1")["request"] == "IDLE")
    by = c.node("B1")["request_set"]["by"]
    assert by.startswith(USER + "@"), by
    # after a restart of the node the audit still says who set it
    c.ok("restart", "B1")
    assert wait_for(lambda: (c.node("B1")["request_set"] or {}).get("by") == by)


# ---- list filters, patterns, all ----

def test_list_filters_and_patterns(ctl):
    c = ctl(nodes=NODES)
    put("X1:SUS-ETMX_WD_STATE", 1)  # reset the watchdog: SUS_X goes to ALIGNED, OK
    assert wait_for(lambda: c.node("SUS_X")["ok"] is True, timeout=20)
    assert wait_for(lambda: c.node("MON")["error"] is True)
    assert names(c) == ["B1", "B2", "MON", "NOSYS", "SUS_X"]
    assert names(c, "--failed") == ["NOSYS"]
    assert names(c, "--not-ok") == ["B1", "B2", "MON", "NOSYS"]
    assert names(c, "--error") == ["MON"]
    assert names(c, "--failed", "--error") == ["MON", "NOSYS"]  # either
    assert names(c, "B*") == ["B1", "B2"]
    assert names(c, "b?", "S*") == ["B1", "B2", "SUS_X"]  # case ignored; any pattern
    assert names(c, "B*", "--not-ok") == ["B1", "B2"]  # a pattern and a filter
    assert names(c, "Q*") == []
    r = c.ok("list", "--failed")
    assert list(rows(r.stdout)) == ["NOSYS"] and "1 of 5 nodes listed." in r.stdout
    assert rows(r.stdout)["NOSYS"][4] == "(failed)"
    assert "0 of 5 nodes listed." in c.ok("list", "Q*").stdout


def test_patterns_and_all_for_commands_on_nodes(ctl):
    c = ctl(nodes=NODES)
    r = c.run("stop", "Q*")
    assert r.returncode == 1 and "no node matches 'Q*'" in r.stderr
    r = c.run("stop", "B1", "Q*")  # nothing is done when one pattern matches nothing
    assert r.returncode == 1 and c.node("B1")["running"]
    r = c.ok("stop", "B*")
    assert r.stdout == "B1: stopped\nB2: stopped\n", r.stdout
    assert [n["running"] for n in c.json("list")["nodes"]] == [False, False, True, False, True]
    r = c.ok("start", "B?")
    assert r.stdout == "B1: started\nB2: started\n"
    # names and patterns together: each node once, in the order given
    assert c.ok("restart", "SUS_X", "S*", "B2").stdout == "SUS_X: restarted\nB2: restarted\n"
    assert [n["name"] for n in c.json("status", "all")["nodes"]] == \
        ["B1", "B2", "MON", "NOSYS", "SUS_X"]
    assert [n["name"] for n in c.json("status", "*S*")["nodes"]] == ["NOSYS", "SUS_X"]
    c.ok("disable", "all")
    assert not any(n["enabled"] for n in c.json("list")["nodes"])
    c.ok("enable", "all")
    assert all(n["enabled"] for n in c.json("list")["nodes"])
    # a plain name is still checked by the daemon
    r = c.run("stop", "NOPE")
    assert r.returncode == 1 and "unknown node 'NOPE'" in r.stderr


# ---- is-ok, is-active ----

def test_is_ok_and_is_active_exit_codes(ctl):
    c = ctl(nodes=NODES)
    put("X1:SUS-ETMX_WD_STATE", 1)
    assert wait_for(lambda: c.node("SUS_X")["ok"] is True, timeout=20)
    r = c.run("is-ok", "SUS_X")
    assert (r.returncode, r.stdout) == (0, "ok\n")
    r = c.run("is-ok", "B1")
    assert (r.returncode, r.stdout) == (3, "not-ok\n")
    r = c.run("is-ok", "SUS_X", "B1")
    assert (r.returncode, r.stdout) == (3, "SUS_X: ok\nB1: not-ok\n")
    r = c.run("is-ok", "-q", "B1")
    assert (r.returncode, r.stdout, r.stderr) == (3, "", "")
    r = c.run("is-ok", "--quiet", "SUS_X")
    assert (r.returncode, r.stdout) == (0, "")
    r = c.run("is-active", "B*")
    assert (r.returncode, r.stdout) == (0, "B1: active\nB2: active\n")
    c.ok("stop", "B2")
    r = c.run("is-active", "B*", "NOSYS")
    assert (r.returncode, r.stdout) == (3, "B1: active\nB2: inactive\nNOSYS: failed\n")
    assert c.run("is-active", "-q", "all").returncode == 3
    r = c.run("is-ok", "NOSYS")
    assert (r.returncode, r.stdout) == (3, "not-ok\n")
    # unknown node: 1 (as any command), never 0 or 3
    r = c.run("is-ok", "NOPE")
    assert r.returncode == 1 and "unknown node 'NOPE'" in r.stderr
    r = c.run("is-active", "-q", "Q*")
    assert r.returncode == 1 and "no node matches 'Q*'" in r.stderr
    assert c.run("is-ok").returncode == 2


# ---- watching ----

class Reader:
    """A running guardctl whose output (a pipe or a pty) is read as it comes."""

    def __init__(self, c, *args, tty=False, env=None):
        cmd = [guardctl_path(), "--socket", c.socket] + list(args)
        if tty:
            self.master, slave = pty.openpty()
            self.proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE, env=env)
            os.close(slave)
        else:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         env=env)
            self.master = self.proc.stdout.fileno()
        self.text = ""

    def read(self, seconds):
        """What it writes within seconds."""
        got, end = b"", time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.master], [], [], max(0, end - time.monotonic()))
            if not r:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # pty: the other end closed
                break
            if not chunk:
                break
            got += chunk
        self.text += got.decode()
        return got.decode()

    def read_until(self, want, seconds):
        end = time.monotonic() + seconds
        out = ""
        while time.monotonic() < end and want not in out:
            out += self.read(min(0.2, end - time.monotonic()))
        return out

    def syscalls(self):
        """Its read and write calls so far (/proc/PID/io)."""
        with open("/proc/%d/io" % self.proc.pid) as f:
            io = dict(line.split(": ") for line in f.read().splitlines())
        return int(io["syscr"]), int(io["syscw"])

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(10)


def test_list_watch_redraws_on_change_only(ctl):
    c = ctl(nodes=[("B1", "bench", STILL), ("B2", "bench", STILL)])
    assert settled(c)
    w = Reader(c, "list", "-w")
    try:
        first = w.read_until("2 nodes listed.", 5)
        assert rows(first)["B1"][4:6] == ["STEP_A", "STEP_A"], first
        # nothing changes: nothing is drawn, and guardctl does not even ask (no polling: it
        # sleeps in read() until the daemon's next frame; its read calls do not grow)
        w.read(0.3)
        before = w.syscalls()
        assert w.read(2.5) == ""
        assert w.syscalls() == before, "guardctl polls"
        t = time.monotonic()
        c.ok("request", "B1", "IDLE")
        out = w.read_until("2 nodes listed.", 3)
        assert time.monotonic() - t < 2.5, "the drawing came late"
        assert not out.startswith("\033") and out.startswith("\n"), repr(out)  # piped: plain
        assert rows(out)["B1"][4:6] == ["IDLE", "IDLE"], out
        assert rows(out)["B2"][4:6] == ["STEP_A", "STEP_A"], out
        # a lifecycle change is a change too
        w.read(0.5)
        c.ok("stop", "B2")
        out = w.read_until("2 nodes listed.", 3)
        assert rows(out)["B2"][4] == "(stopped)", out
        assert w.read(1.5) == ""
    finally:
        assert w.interrupt() == 0  # Ctrl-C ends it, as done
    assert "\033" not in w.text


def test_status_watch_follows_its_nodes_only(ctl):
    c = ctl(nodes=[("B1", "bench", STILL), ("B2", "bench", STILL)])
    assert settled(c)
    w = Reader(c, "status", "-w", "B2")
    try:
        assert "Request: STEP_A" in w.read_until("Quarantine:", 5)
        w.read(0.5)
        c.ok("request", "B1", "IDLE")  # another node: no news for this watcher
        assert w.read(2) == ""
        c.ok("request", "B2", "IDLE")
        out = w.read_until("State: IDLE", 3)
        assert "Request: IDLE (set by %s@localhost" % USER in out, out
    finally:
        assert w.interrupt() == 0


def test_watch_ends_when_the_daemon_goes(ctl):
    c = ctl(nodes=[("B1", "bench", STILL)])
    w = Reader(c, "list", "-w")
    w.read_until("1 node listed.", 5)
    c.stop()
    assert w.proc.wait(10) == 1
    assert "closed the connection" in w.proc.stderr.read().decode()


def test_watch_protocol(ctl):
    c = ctl(nodes=[("B1", "bench", STILL), ("B2", "bench", STILL)],
            extra=["control_idle_timeout = 0.5"])
    assert settled(c)
    assert rpc(c.socket, "watch", nodes=["NOPE"])["code"] == "EUNKNOWN_NODE"
    assert rpc(c.socket, "watch", nodes="B1")["code"] == "EINVAL"
    assert rpc(c.socket, "watch", nodes=["B1"] * 65)["code"] == "EINVAL"
    assert rpc(c.socket, "watch", bogus=1)["code"] == "EINVAL"
    with raw_connect(c.socket) as s, raw_connect(c.socket) as quiet:
        send_frame(s, {"cmd": "watch"})
        assert recv_frame(s) == {"ok": True, "watching": True, "rate": 4}
        # a watcher that reads nothing: it is owed one frame, never a growing backlog
        send_frame(quiet, {"cmd": "watch", "args": {"nodes": ["B2"]}})
        assert recv_frame(quiet)["ok"]
        time.sleep(1.5)  # longer than the idle timeout: watchers are not idle
        s.settimeout(0.5)
        try:
            extra = s.recv(1)
        except TimeoutError:
            extra = None
        assert extra is None, "a frame without a change"
        s.settimeout(5)
        t = time.monotonic()
        for state in ("IDLE", "STEP_A", "IDLE", "STEP_A", "IDLE"):
            c.ok("request", "B1", state)
        frames = [recv_frame(s)]
        assert frames[0] == {"changed": True} and time.monotonic() - t < 2
        # coalesced: at most CTL_WATCH_RATE (4) a second
        s.settimeout(1.2)
        try:
            while True:
                frames.append(recv_frame(s))
        except TimeoutError:
            pass
        assert len(frames) <= 1 + 5, frames
        # the one that watches B2 heard nothing of B1
        quiet.settimeout(0.5)
        try:
            heard = quiet.recv(1)
        except TimeoutError:
            heard = None
        assert heard is None


# ---- colour ----

def test_colour_only_on_a_terminal(ctl):
    c = ctl(nodes=NODES)
    assert wait_for(lambda: c.node("MON")["error"] is True and c.node("SUS_X")["notification"])

    def at_terminal(*args, env=None):
        r = Reader(c, *args, tty=True, env=env)
        out = r.read_until("listed.", 5) if args[0] == "list" else r.read(3)
        r.proc.wait(10)
        return out

    out = at_terminal("list")
    line = {l.split()[0]: l for l in out.splitlines() if l.strip()}
    assert "\033[1;31mFalse\033[0m" in line["B1"], repr(out)  # OK False: red
    assert "\033[1;31m(failed)\033[0m" in line["NOSYS"], repr(out)
    assert line["MON"].count("\033[1;31m") == 2, repr(out)  # in ERROR: its STATE too
    assert "\033[33mTRIPPED\033[0m" in line["SUS_X"], repr(out)  # notifies: yellow
    assert "\033[" not in c.ok("list").stdout  # piped
    env = dict(os.environ, NO_COLOR="1")
    assert "\033[" not in at_terminal("list", env=env)
    assert "\033[" not in at_terminal("--no-color", "list")
    assert "\033[" not in at_terminal("list", "--no-color")
    assert "\033[" not in at_terminal("--json", "list")
    out = at_terminal("status", "MON")
    assert "Error: \033[1;31mTrue\033[0m" in out, repr(out)
    # list -w on a terminal: each drawing replaces the last
    w = Reader(c, "list", "-w", tty=True)
    try:
        assert w.read_until("listed.", 5).startswith("\033[H\033[2J")
    finally:
        assert w.interrupt() == 0


# ---- shell completion ----

# bash-completion's _init_completion, as far as the script needs it (the package need not be
# installed where tests run)
INIT_COMPLETION = ('_init_completion() { words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; '
                   'cur=${words[cword]}; prev=${words[cword-1]}; }')


def complete(c, line):
    """What bash completes at the end of `line` (tools/guardctl.bash-completion, with guardctl
    on PATH and the test's socket given on the line)."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "..", "..", "tools", "guardctl.bash-completion")
    words = ["guardctl", "--socket", c.socket] + line.split(" ")
    program = ('%s; source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _guardctl; '
               'printf "%%s\\n" "${COMPREPLY[@]}"'
               % (INIT_COMPLETION, script, " ".join("'%s'" % w for w in words), len(words) - 1))
    env = dict(os.environ, PATH=os.path.dirname(guardctl_path()) + ":" + os.environ["PATH"])
    r = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return sorted(x for x in r.stdout.split("\n") if x)


def test_completion_of_states_and_nodes(ctl):
    c = ctl(nodes=NODES)
    assert complete(c, "request B1 ") == ["IDLE", "STEP_A"]
    assert complete(c, "request SUS_X D") == ["DAMPED"]
    assert complete(c, "request ") == ["B1", "B2", "MON", "NOSYS", "SUS_X"]
    assert complete(c, "stop ") == ["B1", "B2", "MON", "NOSYS", "SUS_X", "all"]
    assert complete(c, "is-") == ["is-active", "is-ok"]
    assert "--not-ok" in complete(c, "list --")
