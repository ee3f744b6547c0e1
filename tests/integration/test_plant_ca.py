"""test_plant_ca.py — nodes driving a real plant over Channel Access (issue 9).

guardsim (sim/) serves the plant on free 127.0.0.1 ports; a guardiand with a real plant
(no --simulate-plant) reaches it through libca, searching only there (EPICS_CA_ADDR_LIST).
The daemon is watched through guardctl --json and its node channels over CA; the plant is
read and moved with pyepics, as an operator's tools would. A second guardiand serves as the
plant of a third in the last tests. Every wait is bounded and polls.
"""
import json
import os
import subprocess
import time

import pytest

from harness import (EPICS_CLIENT_VARS, NodeDaemon, Sim, guardctl_path, reset_pyepics,
                     restore_env, wait_for, write_config)
from harness import systems_path as modules_path

IFO = "X1"


def guardctl(d, *args, check=True):
    r = subprocess.run([guardctl_path(), "--socket", d.socket, "--json"] + list(args),
                       capture_output=True, text=True, timeout=10)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else None


def node(d, name):
    return guardctl(d, "status", name)["nodes"][0]


class Plant:
    """A guardsim on its own ports, and this process's libca pointed at it (and at the
    daemon's CA server, so that one pyepics context reaches both)."""

    def __init__(self, tmp_path, nodes):
        self.config, _ = write_config(tmp_path, nodes, ifo=IFO, systems=modules_path())
        self.sim = Sim(self.config).start()

    def restart(self, port):
        self.sim = Sim(self.config)
        self.sim.port = port
        self.sim.start()


@pytest.fixture
def site(tmp_path):
    """A factory: site(nodes, more_servers=()) starts guardsim and a real-plant guardiand on
    the same site file, searching guardsim and the more_servers' UDP ports on 127.0.0.1;
    returns (plant, daemon, epics). Both are stopped at the end; the daemon must exit 0."""
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    made = []

    def start(nodes, more_servers=()):
        plant = Plant(tmp_path, nodes)
        env = {"EPICS_CA_ADDR_LIST": " ".join("127.0.0.1:%d" % port for port in
                                              [plant.sim.port] + list(more_servers))}
        config, database = write_config(tmp_path, nodes, ifo=IFO, systems=modules_path())
        d = NodeDaemon(config, database, env=env, real_plant=True)
        made.append((plant, d))
        d.start()
        os.environ.update({"EPICS_CA_AUTO_ADDR_LIST": "NO",
                           "EPICS_CA_ADDR_LIST": "127.0.0.1:%d 127.0.0.1:%d"
                           % (plant.sim.port, d.port)})
        for k in ("EPICS_CA_SERVER_PORT", "EPICS_CA_NAME_SERVERS"):
            os.environ.pop(k, None)
        reset_pyepics()
        import epics
        return plant, d, epics

    yield start
    reset_pyepics()
    problems = []
    for plant, d in made:
        alive, log = d.alive(), d.log_text()
        code = d.stop()
        if not alive or code != 0:
            problems.append("guardiand exit %s:\n%s" % (code, log[-4000:]))
        plant.sim.stop()
    restore_env(saved)
    assert not problems, "\n".join(problems)


SUS = [("SUS_A", "sus", {"optic": "A"})]


def caget(epics, name, **kw):
    return epics.caget(name, timeout=5, **kw)


def ca_becomes(epics, name, value, timeout=5, **kw):
    """Whether the channel shows value within timeout: node channels are published at the
    node's next cycle, after what guardctl already reports."""
    return wait_for(lambda: caget(epics, name, **kw) == value, timeout)


def test_a_suspension_is_driven_over_ca_and_its_set_points_watched(site):
    plant, d, epics = site(SUS)
    assert wait_for(lambda: node(d, "SUS_A")["ok"], 20), node(d, "SUS_A")
    n = node(d, "SUS_A")
    assert n["connected"] and n["ok"] and not n["error"], n
    for axis in "PYL":
        assert caget(epics, "X1:SUS-A_M0_DAMP_%s_GAIN" % axis) == 1.0
    assert ca_becomes(epics, "X1:GRD-SUS_A_CONNECT", "OK", as_string=True)
    plant_stats = guardctl(d, "status")["supervisor"]["plant"]
    assert plant_stats["ca"] >= 6 and plant_stats["ca_connected"] == plant_stats["ca"], plant_stats
    assert plant_stats["simulated"] == 0
    assert "SIMULATED" not in d.log_text()

    # Someone else zeroes a gain: the set-point monitor sees it and the node notifies.
    spm = guardctl(d, "spm", "SUS_A")
    assert spm["total"] == 5 and spm["changed"] == 0, spm
    assert epics.caput("X1:SUS-A_M0_DAMP_P_GAIN", 0, wait=True, timeout=5) == 1
    assert wait_for(lambda: node(d, "SUS_A")["spm_changed"] == 1, 5), node(d, "SUS_A")
    # The notification shows from the node's next cycle on.
    assert wait_for(lambda: node(d, "SUS_A")["usermsg"].startswith(
        "SPM: X1:SUS-A_M0_DAMP_P_GAIN"), 5), node(d, "SUS_A")
    assert node(d, "SUS_A")["notification"]
    assert ca_becomes(epics, "X1:GRD-SUS_A_SPM_CHANGED", 1)
    assert ca_becomes(epics, "X1:GRD-SUS_A_SPM_TOTAL", 5)
    row = [r for r in guardctl(d, "spm", "SUS_A")["channels"]
           if r["channel"] == "X1:SUS-A_M0_DAMP_P_GAIN"][0]
    assert row["differs"] and row["set"] == "1" and row["now"] == "0", row
    assert abs(row["since"] - time.time()) < 30, row
    assert "SPM: X1:SUS-A_M0_DAMP_P_GAIN is 0, set 1" in d.log_text()

    # An operator accepts the new value: no difference any more, and the audit says who.
    r = guardctl(d, "spm", "SUS_A", "--accept", "X1:SUS-A_M0_DAMP_P_GAIN")
    assert r["accepted"] == ["X1:SUS-A_M0_DAMP_P_GAIN"]
    assert wait_for(lambda: node(d, "SUS_A")["spm_changed"] == 0, 5)
    def audit_of(chan):  # the store commits in batches: poll
        rows = []
        wait_for(lambda: rows.extend(guardctl(d, "audit", "SUS_A", chan)["audit"]) or rows, 5)
        return rows

    audit = audit_of("X1:SUS-A_M0_DAMP_P_GAIN")
    assert audit and audit[0]["old"] == "1" and audit[0]["new"] == "0", audit
    r = subprocess.run([guardctl_path(), "--socket", d.socket, "spm", "SUS_A", "--accept",
                        "X1:NOT_WATCHED"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "does not watch X1:NOT_WATCHED" in r.stderr, r


def test_the_plant_going_away_shows_and_the_nodes_carry_on_when_it_is_back(site):
    plant, d, epics = site(SUS + [("B1", "bench", {"period": "0.2"})])
    assert wait_for(lambda: node(d, "SUS_A")["ok"], 20), node(d, "SUS_A")
    port = plant.sim.port
    plant.sim.stop()
    assert wait_for(lambda: not node(d, "SUS_A")["connected"], 10), node(d, "SUS_A")
    assert ca_becomes(epics, "X1:GRD-SUS_A_CONNECT", "ERROR", as_string=True)
    assert ca_becomes(epics, "X1:GRD-SUS_A_ERROR", "Connect", as_string=True), \
        d.log_text()[-3000:]
    assert "CONNECT: X1:SUS-A_" in d.log_text() and "disconnected" in d.log_text()
    # The daemon goes on: another node keeps stepping, guardctl answers.
    before = node(d, "B1")["state"]
    assert wait_for(lambda: node(d, "B1")["state"] != before, 5)
    plant.restart(port)
    assert wait_for(lambda: node(d, "SUS_A")["connected"], 20), node(d, "SUS_A")
    assert wait_for(lambda: node(d, "SUS_A")["ok"], 20), node(d, "SUS_A")
    assert "CONNECT: OK" in d.log_text()


def test_enums_by_name_and_char_arrays_and_in_process_channels(site):
    plant, d, epics = site(SUS + [
        ("IO", "mod_plantio", {"read": "SIM-TEST_ENUM", "write": "SIM-TEST_ENUM", "value": "TWO"}),
        ("TEXT", "mod_plantio", {"read": "SIM-TEST_CHARS"}),
        ("PEER", "mod_plantio", {"read": "GRD-SUS_A_STATE", "write": "GRD-SUS_A_REQUEST",
                                 "value": "DAMPED"}),
    ])
    assert wait_for(lambda: node(d, "IO")["usermsg"] == "read ZERO", 10), node(d, "IO")
    guardctl(d, "request", "IO", "WRITE")
    assert wait_for(lambda: node(d, "IO")["usermsg"] == "read TWO", 10), node(d, "IO")
    assert caget(epics, "X1:SIM-TEST_ENUM") == 2
    assert "[WRITE.main] ezca: X1:SIM-TEST_ENUM => TWO" in d.log_text()
    assert wait_for(lambda: node(d, "TEXT")["usermsg"] == "read char array text", 10), \
        node(d, "TEXT")

    # Another node's channels are ours: read and written in-process, as a CA client would,
    # with the writing node as the user in the audit; never over CA.
    assert wait_for(lambda: node(d, "PEER")["usermsg"] == "read ALIGNED", 20), node(d, "PEER")
    guardctl(d, "request", "PEER", "WRITE")
    assert wait_for(lambda: node(d, "SUS_A")["request"] == "DAMPED", 10), node(d, "SUS_A")
    audit = []
    wait_for(lambda: audit.extend(guardctl(d, "audit", "SUS_A", "REQUEST")["audit"]) or audit, 5)
    assert audit and audit[0]["user"] == "PEER" and audit[0]["new"] == "DAMPED", audit
    plant_stats = guardctl(d, "status")["supervisor"]["plant"]
    assert plant_stats["local"] == 2, plant_stats  # GRD-SUS_A_STATE and _REQUEST


def test_a_refused_write_is_a_node_error_naming_the_channel(site):
    plant, d, epics = site([("RO", "mod_plantio", {"write": "SIM-TEST_RO", "value": "3"})])
    assert wait_for(lambda: node(d, "RO")["connected"] and node(d, "RO")["state"] == "IDLE", 10)
    guardctl(d, "request", "RO", "WRITE")
    assert wait_for(lambda: node(d, "RO")["error"], 10), node(d, "RO")
    msg = node(d, "RO")["error_message"]
    assert "X1:SIM-TEST_RO" in msg and "Write access denied" in msg, msg
    assert caget(epics, "X1:SIM-TEST_RO") == 1.5
    assert ca_becomes(epics, "X1:GRD-RO_ERROR", "True", as_string=True)


def test_a_bad_channel_name_is_a_node_error_and_nothing_else(site):
    plant, d, epics = site(SUS + [("BAD", "mod_plantio", {"read": "SIM TEST"})])
    assert wait_for(lambda: node(d, "BAD")["error"], 10), node(d, "BAD")
    assert "not a valid channel name" in node(d, "BAD")["error_message"]
    assert wait_for(lambda: node(d, "SUS_A")["state"] == "ALIGNED", 20)


def test_a_write_to_a_channel_nobody_serves_fails_after_the_connect_timeout(site):
    """A connection problem, not a refusal: ERROR=Connect, which ends by itself when the
    channel connects (here: never), naming the channel."""
    plant, d, epics = site([("NOBODY", "mod_plantio", {"write": "SIM-NO_SUCH", "value": "1"})])
    guardctl(d, "request", "NOBODY", "WRITE")
    assert wait_for(lambda: "not connected after 5 s" in node(d, "NOBODY")["error_message"], 15), \
        node(d, "NOBODY")
    assert "X1:SIM-NO_SUCH" in node(d, "NOBODY")["error_message"]
    assert ca_becomes(epics, "X1:GRD-NOBODY_ERROR", "Connect", as_string=True)
    assert not node(d, "NOBODY")["connected"] and not node(d, "NOBODY")["ok"]


def test_another_guardiand_is_a_plant_too(tmp_path):
    """B's node reads a node of A over CA (another host's guardiand, as a manager would)."""
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    (tmp_path / "a").mkdir()
    a_conf, a_db = write_config(tmp_path / "a", [("REMOTE", "bench", {"period": "0.5"})], ifo=IFO)
    a = NodeDaemon(a_conf, a_db)
    a.start()
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b_conf, b_db = write_config(b_dir, [("LOCAL", "mod_plantio", {"read": "GRD-REMOTE_STATE"})],
                                ifo=IFO, systems=modules_path())
    b = NodeDaemon(b_conf, b_db, env={"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % a.port},
                   real_plant=True)
    try:
        b.start()
        seen = set()

        def states():
            seen.add(node(b, "LOCAL")["usermsg"])
            return {"read STEP_A", "read STEP_B"} <= seen

        assert wait_for(states, 15), seen
        assert node(b, "LOCAL")["connected"]
        assert guardctl(b, "status")["supervisor"]["plant"]["ca"] == 1
        a.stop()
        assert wait_for(lambda: not node(b, "LOCAL")["connected"], 10)
    finally:
        for x in (b, a):
            if x.proc is not None and x.alive():
                assert x.stop() == 0, x.log_text()[-3000:]
        restore_env(saved)


class SlowServer:
    """A CA server that answers searches for X1:SLOW-* with a TCP port whose listener never
    accepts nor answers: libca connects (the kernel completes the handshake) and then waits
    for ever. A thread of this test process answers the searches."""

    def __init__(self):
        import socket
        import struct
        import threading
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.port = self.udp.getsockname()[1]
        self.searches = 0
        self.running = True

        def serve():
            tcp_port = self.tcp.getsockname()[1]
            while self.running:
                try:
                    data, peer = self.udp.recvfrom(2048)
                except OSError:
                    continue
                off, replies = 0, b""
                while off + 16 <= len(data):
                    cmd, size, _, _, _, p2 = struct.unpack_from(">HHHHII", data, off)
                    name = data[off + 16:off + 16 + size].split(b"\0")[0]
                    if cmd == 6 and name.startswith(b"X1:SLOW-"):
                        self.searches += 1
                        replies += struct.pack(">HHHHII", 6, 8, tcp_port, 0, 0xFFFFFFFF, p2)
                        replies += struct.pack(">H6x", 13)
                    off += 16 + size
                if replies:
                    self.udp.sendto(struct.pack(">HHHHII", 0, 0, 0, 13, 0, 0) + replies, peer)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self):
        self.running = False
        self.thread.join(2)
        self.udp.close()
        self.tcp.close()


def test_a_plant_server_that_never_answers_delays_nobody(site):
    slow = SlowServer()
    try:
        nodes = [("SLOW", "mod_plantio", {"read": "SLOW-X", "write": "SLOW-Y", "value": "1"}),
                 ("B1", "bench", {"period": "0.2"})] + SUS
        plant, d, epics = site(nodes, more_servers=[slow.port])
    except Exception:
        slow.close()
        raise
    try:
        assert wait_for(lambda: slow.searches > 0, 10), "libca never searched the slow server"
        assert wait_for(lambda: node(d, "SUS_A")["ok"], 20), node(d, "SUS_A")
        guardctl(d, "request", "SLOW", "WRITE")
        states = set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            t = time.monotonic()
            states.add(node(d, "B1")["state"])  # guardctl answers at once, every time
            assert time.monotonic() - t < 2
            time.sleep(0.1)
        assert {"STEP_A", "STEP_B", "STEP_C"} <= states, states
        n = node(d, "SLOW")
        assert not n["connected"] and n["usermsg"] == "read: not connected", n
        assert node(d, "SUS_A")["ok"]
        # The write waits for a connection that never comes: ERROR=Connect, naming it.
        assert wait_for(lambda: "X1:SLOW-Y" in node(d, "SLOW")["error_message"], 10), \
            node(d, "SLOW")
    finally:
        slow.close()


def test_a_watchdog_tripped_in_guardsim_is_seen_at_the_top_of_a_manager_tree(site):
    """The demo's shape (etc/demo.ini): TOP over two lock managers over suspensions driven
    over CA by guardsim; an operator trips a watchdog in guardsim."""
    nodes = [("SUS_A", "sus", {"optic": "A", "settle": "0.2"}),
             ("SUS_B", "sus", {"optic": "B", "settle": "0.2"}),
             ("SUS_C", "sus", {"optic": "C", "settle": "0.2"}),
             ("IMC", "lock", {"nodes": "SUS_A,SUS_B"}), ("ARM", "lock", {"nodes": "SUS_C"}),
             ("TOP", "lock", {"nodes": "IMC,ARM", "down": "DOWN", "up": "LOCKED"})]
    plant, d, epics = site(nodes)
    assert wait_for(lambda: node(d, "TOP")["ok"], 30), (node(d, "TOP"), node(d, "IMC"))
    assert ca_becomes(epics, "X1:GRD-TOP_SUBNODES_TOTAL", 2)
    assert ca_becomes(epics, "X1:GRD-IMC_MANAGER", "TOP")
    assert ca_becomes(epics, "X1:GRD-SUS_A_MANAGER", "IMC")
    tree = subprocess.run([guardctl_path(), "--socket", d.socket, "tree"], capture_output=True,
                          text=True, timeout=10).stdout.splitlines()
    assert [line.lstrip("│├└─ ").split()[0] for line in tree] == \
        ["TOP", "IMC", "SUS_A", "SUS_B", "ARM", "SUS_C"], tree

    assert epics.caput("X1:SUS-B_WD_STATE", 0, wait=True, timeout=5) == 1
    assert wait_for(lambda: not node(d, "TOP")["ok"], 5), node(d, "TOP")
    assert ca_becomes(epics, "X1:GRD-TOP_OK", "False", as_string=True)
    assert ca_becomes(epics, "X1:GRD-TOP_SUBNODES_NOT_OK", 1)
    assert node(d, "IMC")["subnodes_not_ok"] >= 1
    assert node(d, "SUS_B")["state"] == "TRIPPED"
    assert wait_for(lambda: "SUS_B: revive (ALIGNED)" in d.log_text(), 5)
    assert wait_for(lambda: "IMC: revive (LOCKED)" in d.log_text(), 5)

    assert epics.caput("X1:SUS-B_WD_STATE", 1, wait=True, timeout=5) == 1
    assert wait_for(lambda: node(d, "TOP")["ok"], 30), (node(d, "TOP"), node(d, "IMC"))
    assert ca_becomes(epics, "X1:GRD-TOP_SUBNODES_NOT_OK", 0)


def test_ramps_switch_bits_and_optional_channels_over_ca(site):
    """Issue 13, item 3, against a CA plant (tests/node/mod_ramp.c): the ramp's steps reach
    guardsim, the switch bits go to a LONG channel, and a channel nobody serves, read with a
    default, leaves the node connected."""
    plant, d, epics = site([("RAMPER", "mod_ramp", {
        "chan": "SIM-TEST_DOUBLE", "target": "2", "seconds": "1", "switch": "SIM-TEST_LONG",
        "mask": "16", "optional": "SIM-NO_SUCH"})])
    assert wait_for(lambda: node(d, "RAMPER")["usermsg"] == "read -1", 10), node(d, "RAMPER")
    assert ca_becomes(epics, "X1:GRD-RAMPER_CONNECT", "OK", as_string=True)
    assert node(d, "RAMPER")["connected"] and not node(d, "RAMPER")["error"]
    assert "SIM-NO_SUCH" not in d.log_text(), "an optional channel is not news"

    guardctl(d, "request", "RAMPER", "RAMPED")
    seen = []
    assert wait_for(lambda: seen.append(caget(epics, "X1:SIM-TEST_DOUBLE")) or seen[-1] == 2.0,
                    10), seen
    assert any(0 < v < 2 for v in seen), seen
    assert wait_for(lambda: node(d, "RAMPER")["status"] == "DONE", 10), node(d, "RAMPER")
    assert caget(epics, "X1:SIM-TEST_LONG") == 16
    log = d.log_text()
    assert "[RAMPED.main] ezca: X1:SIM-TEST_DOUBLE => 2 (ramp 1 s from 0)" in log, log[-3000:]
    assert "[RAMPED] ezca: X1:SIM-TEST_DOUBLE => 2 (ramp done)" in log, log[-3000:]
    assert "[RAMPED.main] ezca: X1:SIM-TEST_LONG => ON: 0x0010" in log, log[-3000:]
