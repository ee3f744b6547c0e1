"""test_managers.py — managers directing other nodes, in one daemon and across two (issue 10).

The manager is a `lock` node (systems/lock.c) over `sus` nodes (systems/sus.c) whose watchdogs
are channels of the simulated plant (0 = tripped at start; the tests reset them with a put of
1). In one daemon the manager reaches its subordinates in-process; across two daemons (two
"hosts": two ports on 127.0.0.1) the manager's daemon has a real plant and reaches the other's
node channels over CA. Everything is observed from outside: node channels over CA (pyepics),
guardctl --json, the daemons' logs. Every wait is bounded.
"""
import json
import os
import subprocess
import time

import pytest

from harness import (ECA_NORMAL, ECA_PUTFAIL, EPICS_CLIENT_VARS, CaClient, NodeDaemon,
                     guardctl_path, node_daemon, reset_pyepics, restore_env, wait_for,  # noqa: F401
                     write_config)

IFO = "X1"
MODE = ["AUTO", "MANAGED", "MANUAL"]


@pytest.fixture
def epics():
    import epics as pyepics
    return pyepics


def sus(name):
    return (name, "sus", {"optic": name[4:], "settle": "0.2"})


def guardctl(d, *args, check=True):
    r = subprocess.run([guardctl_path(), "--socket", d.socket] + list(args),
                       capture_output=True, text=True, timeout=10)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def gjson(d, *args):
    return json.loads(guardctl(d, "--json", *args).stdout)


def audit(d, node, channel, want=lambda rows: rows):
    """The node's audit rows for channel, newest first, once want(rows) holds (the store
    commits a few times a second)."""
    rows = lambda: gjson(d, "audit", node, channel)["audit"]  # noqa: E731
    wait_for(lambda: want(rows()), 5)
    return rows()


def reset_watchdogs(c, *names):
    for name in names:
        c.put("%s:SUS-%s_WD_STATE" % (IFO, name[4:]), 1.0)


def locked(c, node):
    return c.get("%s:GRD-%s_STATE" % (IFO, node)) == "LOCKED" and \
        c.get("%s:GRD-%s_OK" % (IFO, node)) == 1


def g(c, node, suffix):
    return c.get("%s:GRD-%s_%s" % (IFO, node, suffix))


# ---- one daemon: subordinates in-process ----

def start_tree(node_daemon, epics, extra=()):
    """MGR (lock) over SUS_A and SUS_B, all in one daemon, brought to LOCKED."""
    d = node_daemon([sus("SUS_A"), sus("SUS_B"),
                     ("MGR", "lock", {"nodes": "SUS_A, SUS_B"})] + list(extra))
    c = CaClient(epics)
    reset_watchdogs(c, "SUS_A", "SUS_B")
    assert wait_for(lambda: locked(c, "MGR"), 20), \
        "MGR not LOCKED: %r\n%s" % (g(c, "MGR", "STATE"), d.log_text()[-3000:])
    return d, c


def test_a_manager_claims_requests_and_counts_its_subordinates(node_daemon, epics):
    d, c = start_tree(node_daemon, epics)
    for sub in ("SUS_A", "SUS_B"):
        assert g(c, sub, "MANAGER") == "MGR"
        assert g(c, sub, "MODE") == MODE.index("MANAGED")
        assert g(c, sub, "STATE") == "ALIGNED" and g(c, sub, "REQUEST") == "ALIGNED"
        assert g(c, sub, "CHANGED_BY") == "MGR@localhost", "the manager's own writes"
    assert g(c, "MGR", "SUBNODES_TOTAL") == 2
    # The subordinates' trip notifications (they start tripped) stay 1 s at least (issue 13):
    # they count as faults until then.
    assert wait_for(lambda: g(c, "MGR", "SUBNODES_NOT_OK") == 0, 3)
    assert g(c, "SUS_A", "SUBNODES_TOTAL") == 0
    log = d.log_text()
    assert "MGR SUS_A: REQUEST => SAFE" in log and "MGR SUS_A: REQUEST => ALIGNED" in log
    # Renewals are not audited: one claim row per subordinate however long it runs.
    time.sleep(2.5)
    rows = audit(d, "SUS_A", "MANAGER")
    assert len(rows) == 1 and rows[0]["new"] == "MGR" and rows[0]["user"] == "MGR", rows
    status = gjson(d, "status", "MGR")["nodes"][0]
    assert status["subnodes_total"] == 2 and status["subnodes_not_ok"] == 0
    # A subordinate restarted by an operator comes back without a claim: claimed again.
    guardctl(d, "restart", "SUS_B")
    assert wait_for(lambda: d.log_text().count("SUS_B MANAGER: MGR") == 2, 5), \
        "\n".join(line for line in d.log_text().splitlines() if "SUS_B" in line)[-3000:]
    assert wait_for(lambda: g(c, "SUS_B", "MANAGER") == "MGR", 5)
    assert "released by an operator" not in d.log_text()


def test_a_trip_below_is_seen_by_the_manager_which_revives_and_recovers(node_daemon, epics):
    d, c = start_tree(node_daemon, epics)
    mgr_state = c.monitor("%s:GRD-MGR_STATE" % IFO)
    c.put("%s:SUS-A_WD_STATE" % IFO, 0.0)
    assert wait_for(lambda: g(c, "SUS_A", "STATE") == "TRIPPED", 5)
    assert wait_for(lambda: g(c, "MGR", "SUBNODES_NOT_OK") >= 1, 5)
    assert mgr_state.wait("ACQUIRE", 5), mgr_state.values()
    assert g(c, "MGR", "OK") == 0
    # The trip made the MANAGED node stall; the manager revived it (its request again).
    assert wait_for(lambda: "SUS_A: revive (ALIGNED)" in d.log_text(), 5), d.log_text()[-2000:]
    assert "SUS_A STALLED" in d.log_text()
    reset_watchdogs(c, "SUS_A")
    assert wait_for(lambda: locked(c, "MGR"), 20), g(c, "MGR", "STATE")
    assert g(c, "SUS_A", "STATE") == "ALIGNED"
    # SUS_A's trip notification stays 1 s at least after its last repetition (issue 13); it
    # counts as a fault until then.
    assert wait_for(lambda: g(c, "MGR", "SUBNODES_NOT_OK") == 0, 3)


def test_a_second_manager_is_refused_and_says_who_holds_the_node(node_daemon, epics):
    d, c = start_tree(node_daemon, epics, extra=[("MGR2", "lock", {"nodes": "SUS_B"})])
    # Whichever claimed SUS_B first holds it; the other is refused and says so.
    assert wait_for(lambda: g(c, "MGR2", "NOTIFICATION") == 1 or
                    g(c, "MGR", "NOTIFICATION") == 1, 5)
    holder = g(c, "SUS_B", "MANAGER")
    other = "MGR2" if holder == "MGR" else "MGR"
    assert holder in ("MGR", "MGR2")
    assert wait_for(lambda: g(c, other, "USERMSG") == "SUS_B is managed by %s" % holder, 5), \
        g(c, other, "USERMSG")
    assert g(c, other, "SUBNODES_NOT_OK") >= 1 and g(c, other, "OK") == 0
    # A client's claim is refused too, with ECA_PUTFAIL, and changes nothing.
    assert c.put_status("%s:GRD-SUS_B_MANAGER" % IFO, "SOMEONE") == ECA_PUTFAIL
    assert c.put_status("%s:GRD-SUS_B_MANAGER" % IFO, "not a name!") == ECA_PUTFAIL
    time.sleep(1.5)
    assert g(c, "SUS_B", "MANAGER") == holder
    refused = [r for r in audit(d, "SUS_B", "MANAGER", lambda rows: len(rows) >= 4)
               if not r["accepted"]]
    assert any(r["new"] == other for r in refused), refused
    assert sum(1 for r in refused if r["new"] == other) == 1, "a retried claim is audited once"


def test_someone_elses_request_is_allowed_audited_and_notified(node_daemon, epics):
    d, c = start_tree(node_daemon, epics)
    assert c.put_status("%s:GRD-SUS_B_REQUEST" % IFO, "DAMPED") == ECA_NORMAL
    assert wait_for(lambda: g(c, "SUS_B", "STATE") == "DAMPED", 10), "an operator can take over"
    who = g(c, "SUS_B", "CHANGED_BY")
    assert "@" in who and who != "MGR@localhost", who  # this client: its user@host
    assert wait_for(lambda: g(c, "MGR", "USERMSG").startswith("SUS_B request changed by"), 5), \
        g(c, "MGR", "USERMSG")
    assert "SUS_B: REQUEST changed to DAMPED by %s (this manager requested ALIGNED)" % who \
        in d.log_text()
    rows = audit(d, "SUS_B", "REQUEST", lambda rows: rows and rows[0]["new"] == "DAMPED")
    assert rows[0]["new"] == "DAMPED" and rows[0]["accepted"] and rows[0]["user"] != "MGR"
    # MODE too.
    c.put("%s:GRD-SUS_A_MODE" % IFO, ("enum", MODE.index("AUTO")))
    assert wait_for(lambda: "SUS_A: MODE changed to AUTO by" in d.log_text(), 5)


def test_release_by_an_operator_and_a_stopped_manager_free_the_claims(node_daemon, epics):
    d, c = start_tree(node_daemon, epics)
    out = guardctl(d, "release-manager", "SUS_A").stdout
    assert "SUS_A: released from its manager MGR" in out
    assert g(c, "SUS_A", "MANAGER") == ""
    time.sleep(2.5)  # the manager's renewals are refused: it does not take the node again
    assert g(c, "SUS_A", "MANAGER") == ""
    assert wait_for(lambda: g(c, "MGR", "USERMSG") == "SUS_A released by an operator", 5), \
        g(c, "MGR", "USERMSG")
    rows = audit(d, "SUS_A", "MANAGER", lambda rows: len(rows) >= 2)
    assert [(r["old"], r["new"], r["accepted"]) for r in rows] == \
        [("MGR", "", True), ("", "MGR", True)], "the claim and the release, and no claim since"
    assert rows[0]["user"] != "MGR" and rows[1]["user"] == "MGR"
    assert "MGR SUS_A: released by an operator: not claimed again until set_managed" \
        in d.log_text()
    assert g(c, "SUS_B", "MANAGER") == "MGR"
    guardctl(d, "op", "MGR", "STOP")
    assert wait_for(lambda: g(c, "SUS_B", "MANAGER") == "", 2), "STOP releases at once"
    assert g(c, "SUS_B", "MODE") == MODE.index("MANAGED"), "a release leaves MODE"
    guardctl(d, "op", "MGR", "EXEC")  # INIT claims again
    assert wait_for(lambda: g(c, "SUS_B", "MANAGER") == "MGR", 5)
    assert wait_for(lambda: g(c, "SUS_A", "MANAGER") == "MGR", 10), "set_managed claims again"


def test_guardctl_tree_shows_the_hierarchy(node_daemon, epics):
    d, c = start_tree(node_daemon, epics, extra=[
        ("TOP", "lock", {"nodes": "MGR", "down": "DOWN", "up": "LOCKED"})])
    assert wait_for(lambda: locked(c, "TOP"), 20), g(c, "TOP", "STATE")
    tree = gjson(d, "tree")["tree"]
    assert [t["name"] for t in tree] == ["TOP"]
    mgr = tree[0]["subnodes"][0]
    assert mgr["name"] == "MGR" and mgr["manager"] == "TOP" and mgr["local"]
    assert [s["name"] for s in mgr["subnodes"]] == ["SUS_A", "SUS_B"]
    assert all(s["state"] == "ALIGNED" and s["ok"] and s["manager"] == "MGR"
               for s in mgr["subnodes"])
    text = guardctl(d, "tree").stdout.splitlines()
    assert text[0].startswith("TOP  LOCKED  AUTO  OK"), text
    assert text[1].startswith("└─MGR  LOCKED  MANAGED  OK  managed by TOP"), text
    assert text[2].startswith("  ├─SUS_A  ALIGNED  MANAGED  OK  managed by MGR"), text
    assert text[3].startswith("  └─SUS_B  ALIGNED  MANAGED  OK  managed by MGR"), text
    sub = guardctl(d, "tree", "MGR").stdout.splitlines()
    assert sub[0].startswith("MGR  LOCKED") and len(sub) == 3
    assert guardctl(d, "tree", "NOSUCH", check=False).returncode == 1
    # A trip two levels down reaches the top.
    c.put("%s:SUS-B_WD_STATE" % IFO, 0.0)
    assert wait_for(lambda: g(c, "TOP", "OK") == 0 and g(c, "TOP", "SUBNODES_NOT_OK") == 1, 5)
    reset_watchdogs(c, "SUS_B")
    assert wait_for(lambda: locked(c, "TOP"), 20), g(c, "TOP", "STATE")


# ---- two daemons: a manager on one host, its subordinates on another ----

@pytest.fixture
def two_hosts(tmp_path):
    """A factory: two_hosts(manager_nodes, device_nodes) starts a "device host" daemon with
    a simulated plant and a "manager host" daemon with a real plant that searches the device
    host's port; this process's libca reaches both. Returns (mgr_daemon, dev_daemon, client,
    restart_dev)."""
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    made = []

    def start(manager_nodes, device_nodes):
        dev_dir, mgr_dir = tmp_path / "dev", tmp_path / "mgr"
        dev_dir.mkdir()
        mgr_dir.mkdir()
        dev = NodeDaemon(*write_config(dev_dir, device_nodes, ifo=IFO))
        made.append(dev)
        dev.start()
        env = {"EPICS_CA_ADDR_LIST": "127.0.0.1:%d" % dev.port}
        mgr = NodeDaemon(*write_config(mgr_dir, manager_nodes, ifo=IFO), env=env,
                         real_plant=True)
        made.append(mgr)
        mgr.start()
        os.environ.update({"EPICS_CA_AUTO_ADDR_LIST": "NO",
                           "EPICS_CA_ADDR_LIST": "127.0.0.1:%d 127.0.0.1:%d"
                           % (dev.port, mgr.port)})
        for k in ("EPICS_CA_SERVER_PORT", "EPICS_CA_NAME_SERVERS"):
            os.environ.pop(k, None)
        reset_pyepics()
        import epics
        return mgr, dev, CaClient(epics)

    yield start, made
    reset_pyepics()
    problems = []
    for d in made:
        if d.proc is None:
            continue
        alive, log, code = d.alive(), d.log_text(), d.stop()
        if not alive or code != 0:
            problems.append("guardiand (alive %s) exited with %s:\n%s" % (alive, code, log[-4000:]))
    restore_env(saved)
    assert not problems, "\n".join(problems)


def test_across_two_daemons_claims_requests_trip_refusal_and_restart(two_hosts):
    start, made = two_hosts
    mgr, dev, c = start([("MGR", "lock", {"nodes": "SUS_A,SUS_B"}),
                         ("MGR3", "lock", {"nodes": "SUS_B"})],
                        [sus("SUS_A"), sus("SUS_B")])
    reset_watchdogs(c, "SUS_A", "SUS_B")
    # Claims and requests over CA. MGR3 (same host) wants SUS_B too: one of them holds it.
    assert wait_for(lambda: g(c, "SUS_A", "MANAGER") == "MGR", 10), mgr.log_text()[-3000:]
    assert wait_for(lambda: g(c, "SUS_A", "MODE") == MODE.index("MANAGED"), 5)
    holder = g(c, "SUS_B", "MANAGER")
    assert holder in ("MGR", "MGR3")
    other = "MGR3" if holder == "MGR" else "MGR"
    assert wait_for(lambda: g(c, other, "USERMSG") == "SUS_B is managed by %s" % holder, 10), \
        (g(c, other, "USERMSG"), mgr.log_text()[-3000:])
    if holder == "MGR":
        assert wait_for(lambda: locked(c, "MGR"), 20), (g(c, "MGR", "STATE"), mgr.log_text())
    # The refused claim is audited once on the device host, as a refused CA put.
    time.sleep(2.5)
    refused = [r for r in audit(dev, "SUS_B", "MANAGER") if not r["accepted"]]
    assert len(refused) == 1 and refused[0]["new"] == other, refused
    assert g(c, "SUS_B", "MANAGER") == holder

    # The holder goes: MGR3 is stopped or MGR released, and the other takes SUS_B.
    guardctl(mgr, "op", holder, "STOP")
    assert wait_for(lambda: g(c, "SUS_B", "MANAGER") == other, 5)
    guardctl(mgr, "op", holder, "EXEC")
    assert wait_for(lambda: locked(c, "MGR"), 20) if other == "MGR" else True
    if other != "MGR":
        guardctl(mgr, "op", "MGR3", "STOP")
        assert wait_for(lambda: g(c, "SUS_B", "MANAGER") == "MGR", 8), \
            "\n".join(l for l in (mgr.log_text() + dev.log_text()).splitlines()
                      if "USERMSG" not in l and ("MGR" in l or "MANAGER" in l))[-6000:]
        assert wait_for(lambda: locked(c, "MGR"), 20), g(c, "MGR", "STATE")
    guardctl(mgr, "op", "MGR3", "STOP")

    # A trip on the device host: the remote manager sees the stall and revives it.
    c.put("%s:SUS-A_WD_STATE" % IFO, 0.0)
    assert wait_for(lambda: g(c, "MGR", "STATE") == "ACQUIRE", 5)
    assert wait_for(lambda: "SUS_A: revive (ALIGNED)" in mgr.log_text(), 5)
    reset_watchdogs(c, "SUS_A")
    assert wait_for(lambda: locked(c, "MGR"), 20), g(c, "MGR", "STATE")

    # Tree of the manager host: the subordinates as seen over CA.
    tree = gjson(mgr, "tree", "MGR")["tree"][0]
    assert [(s["name"], s["local"], s["state"]) for s in tree["subnodes"]] == \
        [("SUS_A", False, "ALIGNED"), ("SUS_B", False, "ALIGNED")]

    # The device host restarts (same port, same database): the manager sees the disconnect,
    # then the claims are renewed and it locks again.
    made.remove(dev)
    assert dev.stop() == 0
    assert wait_for(lambda: "SUS_A: disconnected" in mgr.log_text(), 10)
    assert wait_for(lambda: g(c, "MGR", "SUBNODES_NOT_OK") == 2, 5)
    port, beacon = dev.port, dev.beacon_port
    dev2 = NodeDaemon(dev.args[1], dev.args[3])  # --config C --database D
    dev2.port, dev2.beacon_port = port, beacon
    made.append(dev2)
    dev2.start()
    reset_pyepics()
    import epics
    c = CaClient(epics)
    assert wait_for(lambda: "SUS_A: connected" in mgr.log_text(), 15), mgr.log_text()[-2000:]
    assert wait_for(lambda: g(c, "SUS_A", "MANAGER") == "MGR" and
                    g(c, "SUS_B", "MANAGER") == "MGR", 10)
    assert g(c, "SUS_A", "MODE") == MODE.index("MANAGED"), "MODE saved across the restart"
    reset_watchdogs(c, "SUS_A", "SUS_B")
    assert wait_for(lambda: locked(c, "MGR"), 20), g(c, "MGR", "STATE")


def test_across_two_daemons_a_frozen_manager_lapses(two_hosts):
    start, made = two_hosts
    mgr, dev, c = start([("MGR", "lock", {"nodes": "SUS_A"})], [sus("SUS_A")])
    reset_watchdogs(c, "SUS_A")
    assert wait_for(lambda: g(c, "SUS_A", "MANAGER") == "MGR", 10)
    import signal
    mgr.proc.send_signal(signal.SIGSTOP)  # unreachable: no renewals
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: g(c, "SUS_A", "MANAGER") == "", 10)
        lapsed = time.monotonic() - t0
        assert 3.0 < lapsed < 7.5, lapsed
        assert "the claim of MGR lapsed (not renewed for 5 s)" in dev.log_text()
        assert g(c, "SUS_A", "MODE") == MODE.index("MANAGED"), "a lapse leaves MODE"
    finally:
        mgr.proc.send_signal(signal.SIGCONT)
    assert wait_for(lambda: g(c, "SUS_A", "MANAGER") == "MGR", 5), "renewed when it is back"
