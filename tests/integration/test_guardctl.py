"""test_guardctl.py — the control socket and guardctl (issue 5), through the real guardctl binary
against a real daemon.

Each test starts a guardiand on a configuration, database and control socket of its own (in its
temporary folder, CA on free 127.0.0.1 ports via the harness) and runs guardctl (the one built
next to the daemon binary) with --socket. Raw-socket tests speak the framing directly: a 4-byte
big-endian length and a JSON object. Channel checks use pyepics' channel-level API with a fresh
context per daemon (harness.py's chan, get, put), never epics.PV objects.
"""
import grp
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from harness import (CTL_NODES, Ctl, NodeDaemon, chan, daemon_path, get, guardctl_path,
                     raw_connect, recv_frame, rpc, send_frame, systems_path,
                     wait_for, write_config)

NODES = CTL_NODES
BENCH_STATES = ["INIT", "IDLE", "STEP_A", "STEP_B", "STEP_C"]


# ---- raw frames ----

# ---- reads ----

def test_list_and_status(ctl):
    c = ctl()
    r = c.ok("list")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NODE", "SYSTEM", "OP", "MODE", "STATE", "REQUEST", "OK", "SINCE"]
    assert [l.split()[0] for l in lines[1:4]] == ["B1", "B2", "SUS_X"]
    nodes = c.json("list")["nodes"]
    assert [n["name"] for n in nodes] == ["B1", "B2", "SUS_X"]
    b1 = nodes[0]
    assert b1["system"] == "bench" and b1["running"] and b1["enabled"]
    assert b1["op"] == "EXEC" and b1["mode"] == "AUTO" and b1["request"] == "STEP_A"
    assert b1["state"] in BENCH_STATES and isinstance(b1["ok"], bool)
    assert abs(b1["since"] - time.time()) < 60

    sup = c.json("status")["supervisor"]
    for key in ("version", "uptime", "nodes_running", "loop_util", "jitter_ms", "overruns",
                "database", "prev_boot", "ca", "control_socket"):
        assert key in sup, key
    assert sup["nodes_running"] == 3 and sup["nodes_registered"] == 3
    assert sup["database"]["path"] == c.database and sup["database"]["status"] == "OK"
    assert sup["prev_boot"] == "clean" and sup["control_socket"] == c.socket
    assert set(sup["jitter_ms"]) == {"p50", "p99", "max"}
    human = c.ok("status").stdout
    assert "guardiand" in human and "Database:" in human and "Last boot:" in human

    assert wait_for(lambda: len(c.node("B1")["log"]) >= 10)
    n = c.node("B1")
    for key in ("state", "request", "target", "nominal", "mode", "op", "error", "notification",
                "usermsg", "since", "crashes", "quarantined", "system", "enabled", "log"):
        assert key in n, key
    assert len(n["log"]) == 10 and all("B1" in line for line in n["log"])
    assert n["crashes"] == 0 and n["quarantined"] is False
    two = c.json("status", "B1", "SUS_X")["nodes"]
    assert [x["name"] for x in two] == ["B1", "SUS_X"] and two[1]["args"] == ["optic=ETMX"]
    human = c.ok("status", "SUS_X").stdout
    assert "SUS_X - sus (running, enabled)" in human and "Request: ALIGNED" in human


def test_unknown_node_state_and_usage_errors(ctl):
    c = ctl()
    for args in (["status", "NOPE"], ["request", "NOPE", "IDLE"], ["log", "NOPE"],
                 ["stop", "B1", "NOPE"], ["history", "NOPE"], ["release", "NOPE"]):
        r = c.run(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert "unknown node 'NOPE'" in r.stderr, (args, r.stderr)
    assert c.node("B1")["running"], "stop B1 NOPE must change nothing"

    r = c.run("request", "B1", "NO_SUCH_STATE")
    assert r.returncode == 1
    assert "unknown state 'NO_SUCH_STATE'" in r.stderr
    assert "valid states: " + " ".join(BENCH_STATES) in r.stderr
    r = c.run("--json", "request", "B1", "NO_SUCH_STATE")
    assert r.returncode == 1
    reply = json.loads(r.stdout)
    assert reply["ok"] is False and reply["code"] == "EUNKNOWN_STATE"
    assert reply["valid"] == BENCH_STATES

    assert c.run("mode", "B1", "SOMETIMES").returncode == 2
    assert c.run("op", "B1", "GO").returncode == 2
    assert c.run("request", "B1").returncode == 2
    assert c.run("frobnicate").returncode == 2
    r = c.run("list", "--bogus")  # issue 12, item 19: one message, ours, naming the option
    assert r.returncode == 2 and r.stderr.count("--bogus") == 1, r.stderr
    assert "unknown option or missing value: '--bogus'" in r.stderr, r.stderr
    r = c.run("--bogus", "list")  # the same before the command
    assert r.returncode == 2 and r.stderr.count("--bogus") == 1 and r.stderr.count("\n") == 1, r
    # --no-pager, as systemctl takes it, anywhere (guardctl never pages).
    assert "B1" in c.ok("--no-pager", "list").stdout and "B1" in c.ok("list", "--no-pager").stdout
    assert c.run().returncode == 2
    assert c.run("log", "B1", "-n", "x").returncode == 2


def test_every_command_has_help(ctl):
    c = ctl()
    for cmd in ("list", "status", "start", "stop", "restart", "enable", "disable", "create",
                "destroy", "request", "mode", "op", "log", "crashes", "history", "audit",
                "release"):
        r = c.run(cmd, "--help")
        assert r.returncode == 0 and r.stdout.startswith("usage: guardctl"), (cmd, r.stderr)
    r = c.run("--help")
    assert r.returncode == 0 and "exit status" in r.stdout


def test_daemon_not_running(tmp_path):
    path = str(tmp_path / "none.sock")
    r = subprocess.run([guardctl_path(), "--socket", path, "list"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 3
    assert "not running" in r.stderr and "systemctl start guardiand" in r.stderr
    assert "guardiand --config FILE" in r.stderr
    # A socket file nobody listens on (a daemon that died), found through $GUARDIAND_SOCKET.
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()
    r = subprocess.run([guardctl_path(), "status"], capture_output=True, text=True, timeout=10,
                       env=dict(os.environ, GUARDIAND_SOCKET=stale))
    assert r.returncode == 3 and "nobody answers" in r.stderr


# ---- controls ----

def test_request_mode_op_are_validated_and_audited(ctl):
    c = ctl()
    # Item 7 of issue 12: old -> new as caput prints them, and the change visible at once in
    # status, list and the audit (no waiting for the node's next cycle or the store's flush).
    r = c.ok("request", "B1", "STEP_C")
    assert r.stdout == "B1: X1:GRD-B1_REQUEST STEP_A -> STEP_C\n", r.stdout
    assert c.node("B1")["request"] == "STEP_C"
    assert [n for n in c.json("list")["nodes"] if n["name"] == "B1"][0]["request"] == "STEP_C"
    assert c.json("audit", "B1")["audit"][0]["new"] == "STEP_C"
    assert c.ok("mode", "B1", "manual").stdout == "B1: X1:GRD-B1_MODE AUTO -> MANUAL\n"
    assert c.node("B1")["mode"] == "MANUAL"
    c.ok("op", "B2", "PAUSE")
    assert get("X1:GRD-B1_REQUEST") == "STEP_C"
    assert get("X1:GRD-B1_MODE", as_string=True) == "MANUAL"
    assert get("X1:GRD-B2_OP", as_string=True) == "PAUSE"
    assert c.node("B2")["op"] == "PAUSE"
    c.run("request", "B1", "BOGUS")

    def audit_rows():
        return c.json("audit", "B1")["audit"]
    assert wait_for(lambda: len(audit_rows()) >= 3), audit_rows()
    rows = audit_rows()
    assert all(r["user"] == "root" and r["host"] == "localhost" for r in rows)
    by_new = {(r["channel"], r["new"]): r for r in rows}
    assert by_new[("REQUEST", "STEP_C")]["accepted"] is True
    assert by_new[("MODE", "MANUAL")]["accepted"] is True
    assert by_new[("REQUEST", "BOGUS")]["accepted"] is False
    only = c.json("audit", "B1", "MODE")["audit"]
    assert [r["channel"] for r in only] == ["MODE"]
    assert c.json("audit", "B1", "mode")["audit"] == only, "channel names in any case"
    # Issue 12, item 13: an unknown channel is an error, not an empty table.
    r = c.run("audit", "B1", "BOGUS")
    assert r.returncode == 1 and "unknown channel 'BOGUS'" in r.stderr, (r.stdout, r.stderr)
    assert "OP, MODE, REQUEST, REQUEST_ENUM, LOAD, MANAGER" in r.stderr, r.stderr
    human = c.ok("audit", "B1").stdout
    assert "root@localhost" in human and "REFUSED" in human
    assert "guardiand: control: root (uid 0): B1: REQUEST STEP_A -> STEP_C\n" in c.daemon.log_text()


# ---- running and registered ----

def test_stop_start_restart_disable_enable(ctl):
    c = ctl()
    sus_state = chan("X1:GRD-SUS_X_STATE")
    import epics
    assert epics.ca.isConnected(sus_state)
    r = c.ok("stop", "SUS_X")
    assert "SUS_X: stopped" in r.stdout
    assert wait_for(lambda: not epics.ca.isConnected(sus_state)), "channels must disconnect"
    row = [n for n in c.json("list")["nodes"] if n["name"] == "SUS_X"][0]
    assert row["running"] is False and row["enabled"] is True
    assert "(stopped)" in c.ok("list").stdout
    assert "not running" in c.ok("stop", "SUS_X").stdout
    # Its log outlives the run: its last lines (the ring holds fewer than 20, so they come from
    # the database), and who stopped it.
    r = c.ok("log", "SUS_X")
    assert "SUS_X is not running: its log from the database" in r.stdout
    assert "SUS_X stopped by root (uid 0)" in r.stdout
    assert c.run("log", "-f", "SUS_X").returncode == 1
    # A stopped node stays stopped when the daemon re-reads its file.
    c.daemon.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP:" in c.daemon.log_text() and "applied" in c.daemon.log_text())
    assert c.node("SUS_X")["running"] is False

    c.ok("start", "SUS_X")
    assert c.node("SUS_X")["running"]
    log = c.ok("log", "-n", "128", "SUS_X").stdout
    assert log.index("stopped by root (uid 0)") < log.index("SUS_X started by root (uid 0)"), log
    assert wait_for(lambda: epics.ca.isConnected(sus_state)), "the channels come back"
    assert "already running" in c.ok("start", "SUS_X").stdout

    # restart: INIT again, with the request and mode it had (even if just written)
    c.ok("request", "B1", "STEP_C")
    c.ok("mode", "B1", "MANUAL")
    assert "B1: restarted" in c.ok("restart", "B1").stdout
    # (controls take effect at the node's next cycle)
    assert wait_for(lambda: c.node("B1")["request"] == "STEP_C")
    n = c.node("B1")
    assert n["mode"] == "MANUAL" and n["running"]
    assert any("INIT" in line for line in n["log"])

    # disable: not started with the daemon; enable: started again
    c.ok("disable", "B2")
    assert c.node("B2")["enabled"] is False and c.node("B2")["running"] is True
    c.stop()
    c.start()
    assert c.node("B2")["running"] is False and c.node("B2")["enabled"] is False
    assert "(disabled)" in c.ok("list").stdout
    assert wait_for(lambda: c.node("B1")["request"] == "STEP_C")
    assert c.node("B1")["mode"] == "MANUAL"
    c.ok("enable", "B2")
    c.ok("start", "B2")
    assert c.node("B2")["running"] and c.node("B2")["enabled"]


def test_create_and_destroy(ctl):
    c = ctl()
    r = c.ok("create", "NEW1", "sus", "optic=ITMY")
    assert "NEW1" in r.stdout
    n = c.node("NEW1")
    assert n["running"] and n["system"] == "sus" and n["args"] == ["optic=ITMY"]
    assert n["origin"] == "runtime"
    state = chan("X1:GRD-NEW1_STATE")
    import epics
    assert epics.ca.isConnected(state)

    assert "did not read" not in r.stderr
    # Issue 12, item 19: an argument the system never reads is warned about (a mistyped key?).
    r = c.ok("create", "TYPO", "sus", "optic=ITMY", "optik=ITMX")
    assert "warning: system sus did not read optik (a mistyped key?)" in r.stderr, r.stderr
    assert "TYPO: WARNING: system sus did not read argument optik" in c.daemon.log_text()
    assert c.node("TYPO")["unread_args"] == "optik"
    assert c.node("NEW1")["unread_args"] == ""
    c.ok("destroy", "TYPO")
    r = c.run("create", "NEW1", "bench")
    assert r.returncode == 1 and "exists" in r.stderr
    r = c.run("create", "bad-name", "bench")
    assert r.returncode == 2 and "bad node name" in r.stderr
    r = c.run("create", "NEW2", "no_such_system")
    assert r.returncode == 1 and "no_such_system" in r.stderr
    r = c.run("create", "NEW2", "../x")
    assert r.returncode == 2 and "bad system name" in r.stderr
    # One rule for names (issue 12): a system name the file takes, the socket takes too.
    r = c.run("create", "NEW2", "sus.v2")
    assert r.returncode == 1 and "no sus.v2.so" in r.stderr, r.stderr
    r = c.run("create", "new2", "bench")
    assert r.returncode == 2 and "bad node name" in r.stderr
    r = c.run("create", "NEW2", "bench", "a=1", "a=2")
    assert r.returncode == 2 and "twice" in r.stderr
    assert "NEW2" not in [x["name"] for x in c.json("list")["nodes"]]

    # survives a restart of the daemon
    c.stop()
    c.start()
    assert c.node("NEW1")["running"]
    state = chan("X1:GRD-NEW1_STATE")
    c.ok("request", "NEW1", "SAFE")
    c.ok("destroy", "NEW1")
    assert wait_for(lambda: not epics.ca.isConnected(state)), "destroy disconnects the channels"
    assert c.run("status", "NEW1").returncode == 1
    # Issue 12, item 13: a destroyed node's audit reads like its history.
    assert c.json("history", "NEW1")["history"], "history of a destroyed node"
    assert c.json("audit", "NEW1")["audit"][0]["new"] == "SAFE"
    assert c.json("audit", "NEW1", "request")["audit"][0]["new"] == "SAFE"
    assert "destroyed by root (uid 0)" in c.daemon.log_text()
    c.ok("destroy", "B2")  # a node of the file: kept destroyed, so the file does not bring it back
    c.stop()
    c.start()
    names = [x["name"] for x in c.json("list")["nodes"]]
    assert names == ["B1", "SUS_X"]


# ---- logs ----

def test_log_and_follow(ctl):
    c = ctl()
    assert wait_for(lambda: len(c.node("B1")["log"]) >= 5)
    r = c.ok("log", "B1", "-n", "3")
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and all(" B1 " in l for l in lines)
    assert len(c.json("log", "B1", "-n", "4")["lines"]) == 4

    p = subprocess.Popen([guardctl_path(), "--socket", c.socket, "log", "B2", "-n", "0", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        c.ok("request", "B2", "IDLE")  # new log lines: a path to IDLE
        deadline = time.monotonic() + 10
        data = b""
        fd = p.stdout.fileno()
        while time.monotonic() < deadline and b"IDLE" not in data:
            if select.select([fd], [], [], 0.1)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
        got = data.decode().splitlines()
        assert any("IDLE" in l for l in got), got
        assert all(" B2 " in l for l in got), "only the followed node's lines"
    finally:
        p.send_signal(signal.SIGINT)
        code = p.wait(10)
    assert code == 0
    # the follower is gone; the daemon goes on answering
    c.ok("list")

    # Issue 12, item 8: a follow survives a restart, and ends (saying so, exit 1) when the node
    # stops; a stopped node cannot be followed.
    p = subprocess.Popen([guardctl_path(), "--socket", c.socket, "log", "B2", "-n", "0", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        c.ok("restart", "B2")
        time.sleep(0.5)
        assert p.poll() is None, "a restart does not end the follow"
        c.ok("stop", "B2")
        code = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out, err = p.communicate()
    assert code == 1, (code, err)
    assert "guardctl: node B2 is not running any more" in err, err
    assert "executing state: INIT" in out, "the restart's lines were followed"
    r = c.run("log", "B2", "-f")
    assert r.returncode == 1 and "node B2 is not running" in r.stderr, r.stderr


# ---- history, crashes, quarantine ----

def journal(node, times):
    recs = []
    for i, t in enumerate(times):
        recs.append("CRASH v1 boot=%d seq=1 time=%.1f signal=11 code=1 addr=0xdead uptime=%d "
                    "node=%s state=STEP_A phase=run\nbt frame one\nEND\n" % (90 + i, t, 10 + i, node))
    return "".join(recs)


def test_crashes_history_and_release(ctl):
    now = time.time()
    c = ctl(journal=journal("B1", [now - 300, now - 200, now - 50]))
    crashes = c.json("crashes")["crashes"]
    assert len(crashes) == 3
    assert [x["node"] for x in crashes] == ["B1"] * 3
    assert crashes[0]["since_prev"] == pytest.approx(150, abs=1)
    assert crashes[1]["since_prev"] == pytest.approx(100, abs=1)
    assert crashes[2]["since_prev"] is None
    human = c.ok("crashes", "B1").stdout
    assert "SIGSEGV" in human and "2min 30s" in human and "(first)" in human
    assert len(c.json("crashes", "--since", "4m")["crashes"]) == 2
    assert len(c.json("crashes", "--since", "%d" % (now - 100))["crashes"]) == 1
    assert c.json("crashes", "B2")["crashes"] == []
    assert c.run("crashes", "--since", "yesterday-ish").returncode == 2

    n = c.node("B1")
    assert n["quarantined"] is True and n["crashes"] == 3
    assert "QUAR" in [l for l in c.ok("list").stdout.splitlines() if l.startswith("B1")][0]
    r = c.ok("release", "B1")
    assert "released from quarantine" in r.stdout
    assert c.node("B1")["quarantined"] is False

    def transitions():
        return c.json("history", "B1")["history"]
    assert wait_for(lambda: any(t["to"] == "STEP_A" for t in transitions()))
    h = transitions()
    assert h[-1]["how"] == "init" and h[-1]["from"] is None
    assert all(set(t) == {"node", "time", "from", "to", "request", "how"} for t in h)
    later = c.json("history", "B1", "--since", "%f" % (time.time() + 60))["history"]
    assert later == []
    assert "TIME" in c.ok("history", "B1").stdout
    # Issue 12, item 10: a limit that leaves rows out says so.
    assert wait_for(lambda: len(transitions()) >= 4)
    total = len(c.json("history", "B1", "--all")["history"])
    out = c.ok("history", "B1", "-n", "2").stdout.splitlines()
    assert len(out) == 4, out
    assert out[-1] == "(2 of %d shown, newest first: -n N or --all for more)" % total or \
        out[-1].startswith("(2 of %d shown" % (total + 1)), out  # (one more may have come)
    reply = c.json("history", "B1", "-n", "2")
    assert len(reply["history"]) == 2 and reply["more"] is True and reply["total"] >= total
    assert reply["total_exact"] is True
    assert c.json("history", "B1", "--all")["more"] is False
    assert "for more" not in c.ok("history", "B1", "--all").stdout
    # Across nodes: history and audit without NODE, with a NODE column; --since on audit too.
    every = c.json("history")["history"]
    assert {"B1", "B2"} <= {t["node"] for t in every}
    assert c.ok("history", "-n", "1").stdout.splitlines()[0].split()[0] == "NODE"
    c.ok("request", "B2", "STEP_B")
    c.ok("request", "B1", "STEP_C")
    rows = c.json("audit")["audit"]
    assert [(r["node"], r["new"]) for r in rows[:2]] == [("B1", "STEP_C"), ("B2", "STEP_B")]
    assert c.json("audit", "--since", "%f" % (time.time() + 60))["audit"] == []
    assert c.json("audit", "B1", "--since", "%f" % (time.time() - 3600))["audit"][0]["new"] == "STEP_C"


# ---- the protocol ----

def test_bad_frames_change_nothing(ctl):
    c = ctl()
    before = c.json("list")
    with raw_connect(c.socket) as s:
        send_frame(s, b"this is not json")
        r = recv_frame(s)
        assert r["ok"] is False and r["code"] == "EPROTO"
        send_frame(s, b"[1, 2, 3]")
        assert recv_frame(s)["code"] == "EPROTO"
        send_frame(s, b"\xff\xfe{")
        assert recv_frame(s)["code"] == "EPROTO"
        send_frame(s, {"cmd": "frobnicate"})
        assert recv_frame(s)["code"] == "EUNKNOWN_CMD"
        send_frame(s, {"cmd": "stop", "args": {"nodes": "B1"}})
        assert recv_frame(s)["code"] == "EINVAL"
        send_frame(s, {"cmd": "stop", "args": {"nodes": ["B1"], "force": True}})
        assert recv_frame(s)["code"] == "EINVAL"
        send_frame(s, {"cmd": "request", "args": {"node": "B1", "state": 7}})
        assert recv_frame(s)["code"] == "EINVAL"
        send_frame(s, {"cmd": "list", "args": [], "x": 1})
        assert recv_frame(s)["code"] == "EPROTO"
        send_frame(s, b"")
        assert recv_frame(s)["code"] == "EPROTO"
        # the same connection still works
        send_frame(s, {"cmd": "list"})
        assert recv_frame(s)["ok"] is True

    # oversize: an error reply, then the connection closes
    with raw_connect(c.socket) as s:
        s.sendall(struct.pack(">I", 64 * 1024 + 1))
        r = recv_frame(s)
        assert r["ok"] is False and r["code"] == "EPROTO" and "65536" in r["error"]
        assert s.recv(1) == b""

    # truncated: the header promises more than comes before the peer closes
    with raw_connect(c.socket) as s:
        s.sendall(struct.pack(">I", 100) + b'{"cmd": "stop", "args": {"nodes": ["B1"]')
        s.shutdown(socket.SHUT_WR)
        r = recv_frame(s)
        assert r["ok"] is False and "cut short" in r["error"]
    with raw_connect(c.socket) as s:
        s.sendall(b"\x00\x00")  # half a header, then gone
    with raw_connect(c.socket) as s:
        s.sendall(struct.pack(">I", 1000) + b"x" * 10)  # closed without shutdown

    # at most 64 KiB is accepted
    big = {"cmd": "status", "args": {"nodes": ["B1"] * 8000}}
    assert len(json.dumps(big)) < 64 * 1024
    assert rpc(c.socket, "status", nodes=["B1"] * 8000)["ok"] is True

    assert c.daemon.alive()
    after = c.json("list")
    assert [n["running"] for n in after["nodes"]] == [n["running"] for n in before["nodes"]]
    assert c.node("B1")["running"]


def test_idle_connections_are_closed(ctl):
    c = ctl(extra=["control_idle_timeout = 1"])
    silent = [raw_connect(c.socket) for _ in range(64)]  # every slot
    follower = raw_connect(c.socket)  # refused now: all slots are taken
    assert recv_frame(follower)["code"] == "EBUSY"
    # the silent ones are closed after about a second; the slots come back
    assert wait_for(lambda: c.run("list").returncode == 0, timeout=10)
    for s in silent:
        s.settimeout(5)
        assert s.recv(1) == b"", "an idle connection was left open"
        s.close()


def test_silent_connections_do_not_block_others(ctl):
    c = ctl()
    silent = [raw_connect(c.socket) for _ in range(10)]
    partial = raw_connect(c.socket)
    partial.sendall(struct.pack(">I", 50) + b'{"cmd":')
    t = time.monotonic()
    c.ok("list")
    c.ok("status", "B1")
    assert time.monotonic() - t < 5
    # past the connection cap (64) a client is refused politely, and the rest still work
    more = [raw_connect(c.socket) for _ in range(64 - 11)]
    extra = raw_connect(c.socket)
    r = recv_frame(extra)
    assert r["ok"] is False and r["code"] == "EBUSY"
    extra.close()
    for s in silent + more + [partial]:
        s.close()
    assert wait_for(lambda: c.run("list").returncode == 0)
    # a rapid sequence of clients
    for _ in range(20):
        assert rpc(c.socket, "list")["ok"]


def test_follower_that_falls_behind_loses_lines_and_is_told(ctl):
    """mod_chatty logs 200 lines a cycle in CHATTY (~300 KiB/s): a follower that does not read
    has its backlog bounded, the rest dropped and counted, and the daemon serves others."""
    c = ctl(nodes=[("CH", "mod_chatty", {}), ("B1", "bench", {})])
    s = raw_connect(c.socket)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    send_frame(s, {"cmd": "log", "args": {"node": "CH", "n": 0, "follow": True}})
    assert recv_frame(s)["following"] is True
    c.ok("request", "CH", "CHATTY")
    time.sleep(3)  # ~1 MiB of lines, unread
    c.ok("list")
    rss = c.daemon.rss_kb()
    c.ok("request", "CH", "QUIET")
    lines = dropped = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not dropped:
        m = recv_frame(s)
        assert m is not None
        if "line" in m:
            lines += 1
            assert " CH " in m["line"]
        else:
            dropped = m["dropped"]
    s.close()
    assert dropped > 1000, (lines, dropped)
    assert 100 < lines < 6000, "about 256 KiB of lines were kept for it (%d)" % lines
    assert rss < 200 * 1024, rss
    assert c.daemon.alive()


def test_second_daemon_on_the_socket_is_refused(ctl, tmp_path):
    c = ctl()
    boots = c.json("status")["supervisor"]
    other = NodeDaemon(c.config, str(tmp_path / "other.db"), args=["--control-socket", c.socket])
    with pytest.raises(RuntimeError) as e:
        other.start()
    assert "another guardiand answers" in str(e.value)
    assert not os.path.exists(str(tmp_path / "other.db")), "it stops before opening a database"
    other.stop()
    assert c.json("status")["supervisor"]["pid"] == boots["pid"]
    c.ok("list")


def test_stale_socket_file_is_replaced(tmp_path):
    c = Ctl(tmp_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(c.socket)
    s.close()
    c.start()
    try:
        assert "removed the stale socket" in c.daemon.log_text()
        c.ok("list")
        assert oct(os.stat(c.socket).st_mode & 0o777) == "0o660"
    finally:
        c.stop()
    assert not os.path.exists(c.socket), "removed at a clean exit"


# ---- permissions ----

def public_dir():
    d = tempfile.mkdtemp(prefix="guardctl-test.")
    os.chmod(d, 0o755)
    return d


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to act as another user")
def test_permissions_for_other_users(tmp_path):
    d = public_dir()
    c = Ctl(tmp_path, extra=["control_mode = 0666"], socket_dir=d).start()
    try:
        r = c.run("list", as_nobody=True)
        assert r.returncode == 0, r.stderr
        assert json.loads(c.run("--json", "status", "B1", as_nobody=True).stdout)["ok"]
        assert c.run("log", "B1", as_nobody=True).returncode == 0
        for args in (["stop", "B1"], ["request", "B1", "IDLE"], ["mode", "B1", "MANUAL"],
                     ["create", "N9", "bench"], ["destroy", "B2"], ["release", "B1"],
                     ["disable", "B1"]):
            r = c.run(*args, as_nobody=True)
            assert r.returncode == 4, (args, r.stdout, r.stderr)
            assert "permission denied" in r.stderr
        assert "permission denied: uid 65534" in c.daemon.log_text()
        n = c.node("B1")
        assert n["running"] and n["request"] == "STEP_A" and n["mode"] == "AUTO"
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to act as another user")
def test_operator_group_may_change_things(tmp_path):
    group = grp.getgrgid(65534).gr_name
    d = public_dir()
    c = Ctl(tmp_path, extra=["control_mode = 0660", "control_group = %s" % group,
                             "operator_group = %s" % group], socket_dir=d).start()
    try:
        st = os.stat(c.socket)
        assert st.st_gid == 65534 and st.st_mode & 0o777 == 0o660
        c.ok("request", "B1", "IDLE", as_nobody=True)
        assert wait_for(lambda: any(r["user"] == "nobody" and r["new"] == "IDLE"
                                    for r in c.json("audit", "B1")["audit"]))
        c.ok("stop", "B2", as_nobody=True)
        assert not c.node("B2")["running"]
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to act as another user")
def test_socket_mode_keeps_others_out(tmp_path):
    d = public_dir()
    c = Ctl(tmp_path, socket_dir=d).start()  # 0660, root's group
    try:
        r = c.run("list", as_nobody=True)
        assert r.returncode == 4 and "permission denied" in r.stderr
    finally:
        c.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_without_a_database(ctl, tmp_path):
    c = Ctl(tmp_path)
    with open(c.database, "wb") as f:
        f.write(b"not a database at all" * 100)
    c.start()
    try:
        sup = c.json("status")["supervisor"]
        assert sup["database"]["status"] == "NONE"
        for args in (["disable", "B1"], ["create", "N1", "bench"], ["destroy", "B1"],
                     ["history", "B1"], ["crashes"]):
            r = c.run(*args)
            assert r.returncode == 1 and "without a database" in r.stderr, (args, r.stderr)
        # running nodes are still controlled
        c.ok("stop", "B1")
        assert "(stopped)" in c.ok("list").stdout
        c.ok("start", "B1")
        c.ok("request", "B1", "IDLE")
    finally:
        c.stop()


def test_disable_and_sighup_keep_a_running_node_and_its_request(ctl):
    """Item 1 of issue 12: a REQUEST accepted just before a disable and a SIGHUP is never lost,
    and a disabled node that runs keeps running (guardctl disable --help)."""
    c = ctl()
    c.ok("request", "SUS_X", "SAFE")
    c.ok("request", "SUS_X", "DAMPED")
    c.ok("disable", "SUS_X")
    c.daemon.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP: " in c.daemon.log_text() and "applied" in c.daemon.log_text())
    n = c.node("SUS_X")
    assert n["running"] and not n["enabled"]
    assert wait_for(lambda: c.node("SUS_X")["request"] == "DAMPED")
    # A restart of the daemon does not start it (disabled), and keeps DAMPED for its next start.
    c.stop()
    c.start()
    n = c.node("SUS_X")
    assert not n["running"] and n["request"] == "DAMPED"
    c.ok("enable", "SUS_X")
    c.ok("start", "SUS_X")
    assert wait_for(lambda: c.node("SUS_X")["request"] == "DAMPED")


def test_stop_right_after_a_request_keeps_it(ctl):
    c = ctl()
    c.ok("request", "SUS_X", "DAMPED")
    c.ok("stop", "SUS_X")  # at once: before the node's next cycle applies the write
    assert c.node("SUS_X")["request"] == "DAMPED"
    c.ok("start", "SUS_X")
    assert wait_for(lambda: c.node("SUS_X")["request"] == "DAMPED")


def test_a_node_starts_with_its_saved_controls_in_force(ctl):
    """Saved controls are the node's, and its channels', from its start rather than from its
    first cycle: a stop before that cycle keeps them (it used to save the defaults the channels
    showed until then), and a client reading at once reads them."""
    c = ctl()
    c.ok("request", "SUS_X", "DAMPED")
    c.ok("mode", "SUS_X", "MANUAL")
    c.ok("op", "SUS_X", "PAUSE")
    c.ok("stop", "SUS_X")
    for _ in range(5):  # each start and stop well inside the node's first cycle
        c.ok("start", "SUS_X")
        n = c.node("SUS_X")
        assert (n["request"], n["mode"], n["op"]) == ("DAMPED", "MANUAL", "PAUSE"), n
        c.ok("stop", "SUS_X")
    c.ok("start", "SUS_X")
    assert get("X1:GRD-SUS_X_MODE", as_string=True) == "MANUAL"
    assert get("X1:GRD-SUS_X_OP", as_string=True) == "PAUSE"
    assert get("X1:GRD-SUS_X_REQUEST") == "DAMPED"
    assert "starts with REQUEST DAMPED, MODE MANUAL, OP PAUSE" in c.ok("log", "SUS_X").stdout


def test_reload_applies_the_file_and_says_what_changed(ctl):
    """Item 2: guardctl reload prints what started, stopped, restarted or failed; a file that
    does not parse is refused with file:line (exit 1), changes nothing, and shows in status."""
    c = ctl()
    write_config(c.folder, [("B1", "bench", {}), ("B2", "bench", {}), ("SUS_X", "sus", {"optic": "ITMX"}),
                            ("NEW", "bench", {}), ("BAD", "no_such_system", {})],
                 systems=systems_path())
    r = c.run("reload")
    assert r.returncode == 1, r  # one node failed to start
    assert "SUS_X: restarted: its system or arguments changed" in r.stdout
    assert "NEW: started" in r.stdout
    assert "BAD: failed" in r.stdout and "no_such_system" in r.stdout
    assert "applied: 4 nodes (1 started, 0 stopped, 1 restarted, 1 failed)" in r.stdout, r.stdout
    status = c.ok("status").stdout
    assert "Last reload:" in status and "by root (uid 0): applied" in status, status

    config = c.config
    with open(config) as f:
        good = f.read()
    with open(config, "w") as f:
        f.write(good + "\n[node BROKEN\nsystem = bench\n")
    r = c.run("reload")
    assert r.returncode == 1
    lines = good.count("\n") + 2
    assert "%s:%d:" % (config, lines) in r.stderr, r.stderr
    status = c.ok("status").stdout
    assert "NOT applied" in status and "%s:%d" % (config, lines) in status, status
    assert c.node("NEW")["running"]
    # The check is also a command of its own, that runs nothing.
    chk = subprocess.run([daemon_path(), "--check-config", config], capture_output=True,
                         text=True, timeout=20)
    assert chk.returncode == 2 and "%s:%d:" % (config, lines) in chk.stderr, chk
    with open(config, "w") as f:
        f.write(good)
    chk = subprocess.run([daemon_path(), "--check-config", config], capture_output=True,
                         text=True, timeout=20)
    assert chk.returncode == 2 and "BAD" in chk.stderr and "no_such_system" in chk.stderr, chk


def test_a_file_that_drops_every_node_is_refused_without_force(ctl):
    """Item 9: a configuration that suddenly names none (or few) of the nodes is refused, at
    reload and at start-up; removed nodes keep their saved controls and come back with them."""
    nodes = [("A%d" % i, "bench", {}) for i in range(6)]
    c = ctl(nodes=nodes)
    c.ok("request", "A0", "STEP_C")
    c.ok("mode", "A1", "MANUAL")
    config = c.config
    with open(config) as f:
        good = f.read()
    write_config(c.folder, [], systems=systems_path())
    r = c.run("reload")
    assert r.returncode == 1 and "drops 6 of the 6" in r.stderr and "--force" in r.stderr, r
    assert len([n for n in c.json("list")["nodes"] if n["running"]]) == 6
    # Four of six gone: refused too; two of six: applied.
    write_config(c.folder, nodes[:2], systems=systems_path())
    assert c.run("reload").returncode == 1
    write_config(c.folder, nodes[2:], systems=systems_path())
    r = c.ok("reload")
    assert "A0: stopped" in r.stdout and "A1: stopped" in r.stdout
    assert "A0" not in [n["name"] for n in c.json("list")["nodes"]]
    # A restart with an empty file: refused, the registry's nodes run as they were.
    write_config(c.folder, [], systems=systems_path())
    c.stop()
    c.start()
    assert "not applied, in case it is the wrong file" in c.daemon.log_text()
    assert len([n for n in c.json("list")["nodes"] if n["running"]]) == 4
    assert "NOT applied" in c.ok("status").stdout
    # The mistaken edit undone: A0 and A1 come back with what operators had set.
    with open(config, "w") as f:
        f.write(good)
    r = c.ok("reload")
    assert "A0: started" in r.stdout
    assert wait_for(lambda: c.node("A0")["request"] == "STEP_C")
    assert c.node("A1")["mode"] == "MANUAL"
    # --force applies what would be refused.
    write_config(c.folder, [], systems=systems_path())
    r = c.ok("reload", "--force")
    assert "(0 started, 6 stopped" in r.stdout, r.stdout
