"""test_ctl_slots.py — who holds the control socket's connections, and for how long (issue 12,
items 12 and 17), against a real daemon with its own socket, database and ports.

- operator_group counts the caller's real groups (SO_PEERGROUPS, or /proc/<pid>/status with
  GUARDIAND_TEST_NO_PEERGROUPS): a supplementary group given by setgroups (setpriv --groups),
  which /etc/group does not list for the user, makes an operator; the same uid without it reads
  only.
- Of the 64 connections, 8 are kept for root and operators, and one uid outside them holds at
  most 16: unprivileged peers (uids 65531-65534, no groups) are refused with a one-frame EBUSY
  reply that guardctl prints, while root and a supplementary-group operator still get in and
  change things. Refusals are logged at a bounded rate.
- Idle time counts from the last complete request: a client trickling a byte a second is
  closed after control_idle_timeout; one that sends requests, or follows a log, is not.

Unprivileged peers are child processes started with other uids and groups (subprocess's
user/group/extra_groups, or setpriv), so the tests need root; the socket lives in a 0755
folder with mode 0666 so that they can reach it.
"""
import grp
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest

from harness import NodeDaemon, guardctl_path
from test_guardctl import Ctl, public_dir, raw_connect, recv_frame, send_frame
from test_persistence import wait_for

MAX_CONNECTIONS, RESERVED, PER_UID = 64, 8, 16  # supervisor/ctl.h

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root and setpriv to act as other users")


def operator_group():
    """An existing group that uid 65534 is not listed in (/etc/group), for operator_group."""
    for name in ("users", "staff"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if "nobody" not in g.gr_mem and g.gr_gid != 65534:
            return g
    pytest.skip("no group 'users' or 'staff' without nobody in it")


class SlotCtl(Ctl):
    """Ctl with an environment for the daemon."""

    def __init__(self, folder, env=None, **kw):
        super().__init__(folder, **kw)
        self.env = env or {}

    def start(self):
        self.daemon = NodeDaemon(self.config, self.database, env=self.env,
                                 args=["--control-socket", self.socket])
        self.daemon.start()
        self.daemon.client_env()
        return self

    def run_as(self, uid, gid, groups, *args):
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid]
        cmd += ["--groups=" + ",".join(map(str, groups))] if groups else ["--clear-groups"]
        cmd += [guardctl_path(), "--socket", self.socket] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


@pytest.fixture
def daemon(tmp_path):
    started, dirs = [], []

    def start(extra=(), env=None):
        d = public_dir()
        dirs.append(d)
        c = SlotCtl(tmp_path, env=env, extra=["control_mode = 0666"] + list(extra),
                    socket_dir=d).start()
        started.append(c)
        return c

    yield start
    for c in started:
        if c.daemon.proc is not None and c.daemon.proc.returncode is None:
            c.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


# A process of another user that opens connections one after the other and keeps them: each
# sends one request (list, or a log -f) and prints the first frame it gets back (its reply, or
# the refusal), one JSON line each; it holds them until its stdin closes.
HOLDER = r"""
import json, socket, struct, sys
path, n, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
held = []
def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    req = {"cmd": "list"} if cmd == "list" else \
          {"cmd": "log", "args": {"node": "B1", "n": 0, "follow": True}}
    body = json.dumps(req).encode()
    try:
        s.sendall(struct.pack(">I", len(body)) + body)
    except OSError:
        pass  # refused and closed before the request went: its reply is still there
    hdr = recv_exact(s, 4)
    reply = json.loads(recv_exact(s, struct.unpack(">I", hdr)[0])) if hdr else None
    print(json.dumps(reply), flush=True)
    held.append(s)
sys.stdin.read()
"""


class Holder:
    def __init__(self, c, uid, n, cmd="list", gid=65534, groups=()):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, c.socket, str(n), cmd],
                                     user=uid, group=gid, extra_groups=list(groups),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.replies = []
        for _ in range(n):
            line = self.proc.stdout.readline()
            assert line, "the holder (uid %d) ended early" % uid
            self.replies.append(json.loads(line))

    def accepted(self):
        return [r for r in self.replies if r and r.get("ok")]

    def refused(self):
        return [r for r in self.replies if not (r and r.get("ok"))]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


@needs_root
def test_unprivileged_peers_leave_the_reserved_slots(daemon):
    og = operator_group()
    c = daemon(extra=["operator_group = %s" % og.gr_name, "control_idle_timeout = 120"])
    holders = []
    t0 = time.monotonic()
    try:
        # One uid outside root and the operators: at most 16 connections.
        a = Holder(c, 65534, PER_UID + 4)
        holders.append(a)
        assert len(a.accepted()) == PER_UID
        assert [r["code"] for r in a.refused()] == ["EBUSY"] * 4
        assert "uid 65534 already has 16 control connections" in a.refused()[0]["error"]
        # Other such uids take the rest of the unreserved slots (the last as log followers,
        # which use unreserved slots like any other); then no more for any of them.
        holders.append(Holder(c, 65533, PER_UID))
        holders.append(Holder(c, 65532, PER_UID))
        d = Holder(c, 65531, PER_UID, cmd="follow")
        holders.append(d)
        unreserved = MAX_CONNECTIONS - RESERVED
        assert len(d.accepted()) == unreserved - 3 * PER_UID
        assert all(r["following"] for r in d.accepted())
        msg = ("all control connections for unprivileged users are in use (%d); root and the "
               "operator group have %d reserved" % (unreserved, RESERVED))
        assert [r["code"] for r in d.refused()] == ["EBUSY"] * (PER_UID - len(d.accepted()))
        assert d.refused()[0]["error"] == msg
        assert sum(len(h.accepted()) for h in holders) == unreserved

        # guardctl says why and fails
        r = c.run_as(65530, 65534, [], "list")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert r.stderr.strip() == "guardctl: " + msg

        # root still gets in and changes things
        c.ok("stop", "B2")
        assert not c.node("B2")["running"]
        # so does an operator by a supplementary group, even with a uid that is at its limit
        r = c.run_as(65534, 65534, [og.gr_gid], "request", "B1", "IDLE")
        assert r.returncode == 0, r.stderr
        assert wait_for(lambda: c.node("B1")["request"] == "IDLE")
        # the same uid without the group is refused a slot
        r = c.run_as(65534, 65534, [], "list")
        assert r.returncode == 1 and r.stderr.strip() == "guardctl: " + msg, r.stderr

        # Refusals are logged at most once per 10 s, the others counted in a line of their
        # own: every refusal is in the log once, as a line or in a count.
        refusals = len(a.refused()) + len(d.refused()) + 2
        elapsed = time.monotonic() - t0
        assert wait_for(lambda: "more refusals" in c.daemon.log_text(), timeout=15)
        log = c.daemon.log_text()
        lines = re.findall(r"control: refused a connection from uid \d+", log)
        counted = [int(n) for n in re.findall(r"control: (\d+) more refusals in the last", log)]
        assert len(lines) + sum(counted) == refusals, log[-3000:]
        assert 1 <= len(lines) <= 1 + elapsed // 10, log[-3000:]

        # the slots come back when the holders go
        for h in holders:
            h.close()
        holders = []
        assert wait_for(lambda: c.run_as(65530, 65534, [], "list").returncode == 0)
    finally:
        for h in holders:
            h.close()


@needs_root
@pytest.mark.parametrize("way", ["SO_PEERGROUPS", "proc"])
def test_operator_group_counts_real_groups(daemon, way):
    og = operator_group()
    env = {"GUARDIAND_TEST_NO_PEERGROUPS": "1"} if way == "proc" else {}
    c = daemon(extra=["operator_group = %s" % og.gr_name], env=env)
    # uid 65534 without the group reads only
    r = c.run_as(65534, 65534, [], "request", "B1", "IDLE")
    assert r.returncode == 4 and "permission denied" in r.stderr, r.stderr
    assert c.run_as(65534, 65534, [], "list").returncode == 0
    # another group than the operators' does not help
    other = next(grp.getgrnam(n).gr_gid for n in ("staff", "users", "daemon")
                 if n != og.gr_name)
    r = c.run_as(65534, 65534, [other], "stop", "B2")
    assert r.returncode == 4, r.stderr
    # the same uid with the operator group as a supplementary group (not in /etc/group) changes
    r = c.run_as(65534, 65534, [other, og.gr_gid], "request", "B1", "IDLE")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: any(a["user"] == "nobody" and a["new"] == "IDLE"
                                for a in c.json("audit", "B1")["audit"]))
    c.ok("request", "B1", "STEP_A")
    # ... and as its effective group
    r = c.run_as(65534, og.gr_gid, [], "stop", "B2")
    assert r.returncode == 0, r.stderr
    assert not c.node("B2")["running"]
    log = c.daemon.log_text()
    assert "permission denied: uid 65534 may not request" in log
    assert "cannot read the supplementary groups" not in log


def test_trickling_client_is_closed(daemon):
    c = daemon(extra=["control_idle_timeout = 2"])
    s = raw_connect(c.socket)
    s.sendall(struct.pack(">I", 200) + b'{"cmd":')  # a request that never completes
    start = time.monotonic()
    sent = 0
    closed = None
    while time.monotonic() - start < 15:
        try:
            s.sendall(b" ")  # one byte a second: never silent
            sent += 1
        except OSError:
            closed = time.monotonic() - start
            break
        s.settimeout(1.0)
        try:
            if s.recv(1) == b"":
                closed = time.monotonic() - start
                break
        except socket.timeout:
            pass
        except OSError:  # reset: the daemon closed with our last byte unread
            closed = time.monotonic() - start
            break
    s.close()
    assert closed is not None, "a client trickling bytes kept its connection"
    assert sent >= 2 and 1.9 < closed < 5, (sent, closed)

    # A client that completes a request a second is busy, not idle.
    with raw_connect(c.socket) as busy:
        for _ in range(5):
            send_frame(busy, {"cmd": "list"})
            assert recv_frame(busy)["ok"] is True
            time.sleep(1)
        send_frame(busy, {"cmd": "list"})
        assert recv_frame(busy)["ok"] is True
    assert c.daemon.alive()


def test_follower_is_not_idle(daemon):
    c = daemon(extra=["control_idle_timeout = 1"])
    f = raw_connect(c.socket)
    send_frame(f, {"cmd": "log", "args": {"node": "B2", "n": 0, "follow": True}})
    assert recv_frame(f)["following"] is True
    silent = raw_connect(c.socket)
    time.sleep(4)  # four timeouts without a byte from either
    silent.settimeout(2)
    assert silent.recv(1) == b"", "the silent one was closed"
    silent.close()
    c.ok("request", "B2", "IDLE")  # new log lines, which only an open connection gets
    f.settimeout(10)
    while True:
        m = recv_frame(f)
        assert m is not None, "the follower was closed"
        if "IDLE" in m.get("line", ""):
            break
    f.close()
