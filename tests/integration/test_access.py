"""test_access.py — who may write what (issue 14): the access rules of the configuration file.

The rules are applied to CA clients by their CA user name and by the address they connect from
(never the host name they give), to the control socket (the caller's Unix user, from this host)
and to nodes writing node channels in-process (the node's name as the user). Refused writes are
audited with who tried; a reload changes connected clients' rights at once (ACCESS_RIGHTS);
`guardctl access` explains.

The CA clients are real: pyepics (libca) in processes of their own (ca_as.py) with
preload_ca_as.so, which gives libca another user name and binds its circuits to another source
address (127.0.0.0/8 is all local on Linux); and a hand-made client for what libca will not do
(write without write access, claim another host name).
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys

from harness import daemon_path, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
PRELOAD = os.path.normpath(os.path.join(os.path.dirname(daemon_path()), "..", "tests",
                                        "integration", "preload_ca_as.so"))
IFO = "X1"
NODES = [("SUS_ETMX", "sus", {"optic": "ETMX"}), ("B1", "bench", {})]
ECA_NORMAL, ECA_NOWTACCESS = 1, 376


def rules(control_room="127.0.0.2, 127.0.0.16/28"):
    return ["[users operators]", "members = alice, root",
            "[users commissioners]", "members = carol",
            "[hosts control_room]", "members = " + control_room,
            "[hosts local]", "members = 127.0.0.1",
            "[access SUS_*]",
            "REQUEST = operators@control_room, operators@local, commissioners",
            "MODE = commissioners",
            "* = commissioners@control_room",
            "[access *]",
            "* = *", ""]


def pv(node, suffix):
    return "%s:GRD-%s_%s" % (IFO, node, suffix)


class Client:
    """A pyepics client in its own process, as `user` connecting from `source`."""

    def __init__(self, user, source):
        assert os.path.exists(PRELOAD), PRELOAD + " not built (make check-python builds it)"
        env = dict(os.environ, LD_PRELOAD=PRELOAD, GUARD_CA_USER=user, GUARD_CA_SOURCE=source)
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "ca_as.py")], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the client died"
        r = json.loads(line)
        assert "error" not in r or cmd["op"] == "put", r
        return r

    def write_access(self, name):
        r = self.ask(op="access", name=name)
        assert r["read"], "reads are never restricted: %s" % name
        return r["write"]

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait(10) == 0


# ---- a hand-made CA client: what libca will not do ----

def msg(cmd, payload=b"", dtype=0, count=0, p1=0, p2=0):
    payload += b"\0" * (-len(payload) % 8)
    return struct.pack(">HHHHII", cmd, len(payload), dtype, count, p1, p2) + payload


def read_msg(s):
    hdr = b""
    while len(hdr) < 16:
        chunk = s.recv(16 - len(hdr))
        assert chunk, "server closed the circuit"
        hdr += chunk
    cmd, size, dtype, count, p1, p2 = struct.unpack(">HHHHII", hdr)
    body = b""
    while len(body) < size:
        body += s.recv(size - len(body))
    return cmd, dtype, count, p1, p2


class RawClient:
    """One circuit from `source`, saying CLIENT_NAME `user` and HOST_NAME `host`."""

    def __init__(self, port, user, host, source):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.bind((source, 0))
        self.s.connect(("127.0.0.1", port))
        self.s.sendall(msg(0, count=13) + msg(20, user.encode() + b"\0") +
                       msg(21, host.encode() + b"\0"))
        self.cid = 0

    def until(self, cmd):
        while True:
            m = read_msg(self.s)
            if m[0] == cmd:
                return m

    def create(self, name):
        """(rights, sid) of a new channel."""
        self.cid += 1
        self.s.sendall(msg(18, name.encode() + b"\0", p1=self.cid, p2=13))
        rights = self.until(22)[4]
        return rights, self.until(18)[4]

    def write_string(self, sid, text):
        """WRITE_NOTIFY of a DBR_STRING: the status the server answers."""
        self.s.sendall(msg(19, text.encode().ljust(40, b"\0"), dtype=0, count=1, p1=sid, p2=7))
        return self.until(19)[3]

    def close(self):
        self.s.close()


def audit(c, node, channel, want):
    rows = lambda: c.json("audit", node, channel)["audit"]  # noqa: E731
    assert wait_for(lambda: want(rows()), 5), rows()
    return rows()


# ---- the tests ----

def test_ca_clients_write_by_user_name_and_source_address(ctl):
    c = ctl(nodes=NODES, extra=rules())
    assert "access is OPEN" not in c.daemon.log_text()
    want = {  # (user, source): {channel: may write}
        ("alice", "127.0.0.2"): {"REQUEST": True, "REQUEST_ENUM": True, "MODE": False,
                                 "OP": False, "LOAD": False, "MANAGER": False},
        ("alice", "127.0.0.3"): {"REQUEST": False, "REQUEST_ENUM": False, "MODE": False},
        ("carol", "127.0.0.3"): {"REQUEST": True, "MODE": True, "OP": False, "LOAD": False},
        ("carol", "127.0.0.17"): {"OP": True, "LOAD": True, "MANAGER": True},
        ("mallory", "127.0.0.2"): {"REQUEST": False, "MODE": False, "OP": False},
    }
    for (user, source), chans in want.items():
        cl = Client(user, source)
        try:
            for chan, may in chans.items():
                assert cl.write_access(pv("SUS_ETMX", chan)) is may, (user, source, chan)
            # other nodes: [access *] * = *; read-only channels stay read-only
            assert cl.write_access(pv("B1", "OP"))
            assert not cl.write_access(pv("SUS_ETMX", "STATE"))
        finally:
            cl.close()
    # A permitted write is done and audited with the address it came from.
    cl = Client("alice", "127.0.0.2")
    try:
        assert cl.ask(op="put", name=pv("SUS_ETMX", "REQUEST"), value="SAFE")["ok"]
    finally:
        cl.close()
    assert c.node("SUS_ETMX")["request"] == "SAFE"
    row = audit(c, "SUS_ETMX", "REQUEST", lambda rows: rows)[0]
    assert row["user"] == "alice" and row["host"].endswith("(127.0.0.2)") and row["accepted"]


def test_a_refused_ca_write_is_audited_and_the_host_name_a_client_gives_does_not_count(ctl):
    c = ctl(nodes=NODES, extra=rules())
    port = c.daemon.port
    # mallory claims to be on 127.0.0.2, but connects from 127.0.0.3.
    raw = RawClient(port, "mallory", "127.0.0.2", "127.0.0.3")
    try:
        rights, sid = raw.create(pv("SUS_ETMX", "REQUEST"))
        assert rights == 1, "read only"
        assert raw.write_string(sid, "DAMPED") == ECA_NOWTACCESS
        # alice is an operator, but only from the control room: the address decides.
        alice = RawClient(port, "alice", "127.0.0.2", "127.0.0.3")
        assert alice.create(pv("SUS_ETMX", "REQUEST"))[0] == 1
        alice.close()
        # a writable channel of another node still takes the write
        rights, b1 = raw.create(pv("B1", "MODE"))
        assert rights == 3 and raw.write_string(b1, "MANUAL") == ECA_NORMAL
    finally:
        raw.close()
    assert c.node("SUS_ETMX")["request"] != "DAMPED"
    row = audit(c, "SUS_ETMX", "REQUEST", lambda rows: any(not r["accepted"] for r in rows))[0]
    assert (row["user"], row["host"], row["new"], row["accepted"]) == \
        ("mallory", "127.0.0.2 (127.0.0.3)", "DAMPED", False), row
    log = c.daemon.log_text()
    assert "access: refused (host name 127.0.0.2): mallory from 127.0.0.3 may not write " \
           "REQUEST of SUS_ETMX: %s:" % c.config in log, log[-2000:]


def test_a_reload_changes_connected_clients_rights_at_once(ctl):
    c = ctl(nodes=NODES, extra=rules())
    cl = Client("carol", "127.0.0.3")
    try:
        op = pv("SUS_ETMX", "OP")
        assert not cl.write_access(op)
        with open(c.config) as f:
            text = f.read()
        with open(c.config, "w") as f:
            f.write(text.replace("members = 127.0.0.2, 127.0.0.16/28",
                                 "members = 127.0.0.2, 127.0.0.3, 127.0.0.16/28"))
        c.ok("reload")
        assert cl.ask(op="wait_write", name=op, want=True)["write"], "no ACCESS_RIGHTS"
        assert cl.ask(op="put", name=op, value=1)["ok"]  # PAUSE
        # SIGHUP does the same, back again, on the same circuit.
        with open(c.config, "w") as f:
            f.write(text)
        c.daemon.proc.send_signal(signal.SIGHUP)
        assert not cl.ask(op="wait_write", name=op, want=False)["write"]
        assert not cl.ask(op="put", name=op, value=2)["ok"]
    finally:
        cl.close()
    assert c.node("SUS_ETMX")["op"] == "PAUSE"
    log = c.daemon.log_text()
    assert log.count("access: 4 rules from %s applied by " % c.config) == 2, log[-2000:]


def test_the_control_socket_follows_the_same_rules(ctl):
    c = ctl(nodes=NODES, extra=rules())
    # root is an operator here (from this host: 127.0.0.1), not a commissioner.
    c.ok("request", "SUS_ETMX", "SAFE")
    r = c.run("mode", "SUS_ETMX", "MANUAL")
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "root from 127.0.0.1 may not write MODE of SUS_ETMX: %s:" % c.config in r.stderr
    assert "[access SUS_*] MODE = commissioners" in r.stderr, r.stderr
    assert c.node("SUS_ETMX")["mode"] == "AUTO"
    r = c.run("reload", "SUS_ETMX")  # the node's LOAD
    assert r.returncode == 4 and "may not write LOAD of SUS_ETMX" in r.stderr, r.stderr
    c.ok("mode", "B1", "MANUAL")  # [access *] * = *
    row = audit(c, "SUS_ETMX", "MODE", lambda rows: rows)[0]
    assert (row["user"], row["new"], row["accepted"]) == ("root", "MANUAL", False), row
    assert any(r["channel"] == "LOAD" and not r["accepted"]
               for r in c.json("audit", "SUS_ETMX")["audit"])


def test_guardctl_access_explains_the_rights_and_the_rule(ctl):
    c = ctl(nodes=NODES, extra=rules())
    j = c.json("access", "SUS_ETMX", "carol@127.0.0.17")
    by = {x["channel"]: x for x in j["channels"]}
    assert set(by) == {"REQUEST", "MODE", "OP", "LOAD", "MANAGER"}
    assert by["OP"]["write"] and by["MODE"]["write"] and by["REQUEST"]["write"]
    with open(c.config) as f:
        line = f.read().splitlines().index("* = commissioners@control_room") + 1
    assert (by["OP"]["file"], by["OP"]["line"], by["OP"]["section"], by["OP"]["key"]) == \
        (c.config, line, "SUS_*", "*")
    j = c.json("access", "SUS_ETMX", "carol@127.0.0.3")
    assert [x["write"] for x in j["channels"]] == [True, True, False, False, False]
    text = c.ok("access", "SUS_ETMX").stdout
    assert "operators (alice, root) from control_room (127.0.0.2, 127.0.0.16/28)" in text, text
    assert "rule %s:%d: [access SUS_*] * = commissioners@control_room" % (c.config, line) in text
    # USER alone: from this host, as guardctl's own writes
    text = c.ok("access", "SUS_ETMX", "root").stdout
    assert "root from 127.0.0.1:" in text and "REQUEST   yes" in text and "MODE      NO" in text
    assert c.run("access", "NO_SUCH_NODE").returncode == 1
    assert c.run("access", "SUS_ETMX", "alice@").returncode == 2


def test_without_rules_access_is_open_and_said_so(ctl):
    c = ctl(nodes=NODES)
    assert "access is OPEN" in c.daemon.log_text()
    j = c.json("access", "SUS_ETMX", "anyone@127.0.0.9")
    assert j["open"] and all(x["write"] for x in j["channels"])
    cl = Client("anyone", "127.0.0.9")
    try:
        assert cl.write_access(pv("SUS_ETMX", "MODE"))
    finally:
        cl.close()


def test_nodes_writing_in_process_follow_the_rules(ctl):
    """A manager claims its subordinates by writing their MANAGER (and REQUEST, MODE) as its own
    name: with no rule for it, nothing happens and it is audited once; allowed, it takes them."""
    nodes = [("SUS_A", "sus", {"optic": "A", "settle": "0.2"}),
             ("MGR", "lock", {"nodes": "SUS_A"})]
    extra = ["[users managers]", "members = SOMEONE_ELSE", "[access SUS_*]", "* = managers",
             "[access *]", "* = *", ""]
    c = ctl(nodes=nodes, extra=extra)
    assert wait_for(lambda: "access: refused (host name localhost): MGR from 127.0.0.1 may not "
                            "write MANAGER of SUS_A" in c.daemon.log_text(), 5)
    rows = audit(c, "SUS_A", "MANAGER", lambda rows: rows)
    assert [(r["user"], r["new"], r["accepted"]) for r in rows] == [("MGR", "MGR", False)], rows
    assert c.node("SUS_A")["manager"] in ("", None)
    with open(c.config) as f:
        text = f.read()
    with open(c.config, "w") as f:
        f.write(text.replace("members = SOMEONE_ELSE", "members = MGR"))
    c.ok("reload")
    assert wait_for(lambda: c.node("SUS_A")["manager"] == "MGR", 5), c.node("SUS_A")
    assert len(c.json("audit", "SUS_A", "MANAGER")["audit"]) == 2, "retries audited once"


def test_mistakes_in_the_rules_are_refused_with_their_line(ctl, tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[guardiand]\nifo = X1\n[access SUS_*]\nREQUEST = operators\n")
    r = subprocess.run([daemon_path(), "--check-config", str(bad)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2
    assert "%s:4: [access SUS_*] REQUEST: no [users operators] section" % bad in r.stderr, r.stderr
    # A reload that names a host the daemon never looked up is refused: the rules in force stay.
    c = ctl(nodes=NODES, extra=rules())
    with open(c.config) as f:
        text = f.read()
    with open(c.config, "w") as f:
        f.write(text.replace("members = 127.0.0.1", "members = 127.0.0.1, localhost"))
    r = c.run("reload")
    assert r.returncode != 0 and "host name localhost is new" in r.stderr, (r.stdout, r.stderr)
    assert not c.json("access", "SUS_ETMX", "alice@127.0.0.3")["channels"][0]["write"]
    assert c.json("access", "SUS_ETMX", "alice@127.0.0.2")["channels"][0]["write"]
