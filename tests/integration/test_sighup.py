"""test_sighup.py — nodes added, removed and restarted at run time, through SIGHUP.

SIGHUP makes guardiand read its configuration file again: nodes new to the file start, nodes gone
from it stop and their channels disconnect from clients, nodes whose system or arguments changed
restart, and a file that does not parse changes nothing. Driven through pyepics' channel-level API
against a daemon of its own (the node_daemon fixture of harness.py).
"""
import signal

from harness import node_daemon, wait_for, write_config  # noqa: F401  (node_daemon is a fixture)


def caget(epics, name, timeout=2.0, **kw):
    return epics.caget(name, timeout=timeout, **kw)


def test_sighup_adds_removes_and_restarts_nodes(node_daemon, tmp_path):
    import epics
    nodes = [("BENCH_A", "bench", {}), ("BENCH_B", "bench", {}),
             ("SUS_X", "sus", {"optic": "ETMX"})]
    d = node_daemon(nodes)
    assert caget(epics, "X1:GUARDIAND-NODES") == 3 or wait_for(
        lambda: caget(epics, "X1:GUARDIAND-NODES") == 3)

    # A monitored channel of BENCH_B must see the disconnect when the node goes.
    events = []

    def on_connect(pvname=None, chid=None, conn=None, **kw):
        events.append(conn)

    chid = epics.ca.create_channel("X1:GRD-BENCH_B_STATE", callback=on_connect)
    assert wait_for(lambda: events and events[-1] is True), "BENCH_B_STATE never connected"
    assert caget(epics, "X1:GRD-SUS_X_STATE") is not None

    # New file: BENCH_B gone, BENCH_C new, SUS_X with another optic (a restart).
    write_config(tmp_path, [("BENCH_A", "bench", {}), ("BENCH_C", "bench", {}),
                            ("SUS_X", "sus", {"optic": "ITMX"})])
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: events[-1] is False), "BENCH_B's channel did not disconnect"
    assert wait_for(lambda: caget(epics, "X1:GRD-BENCH_C_STATE", timeout=0.5) is not None)
    assert caget(epics, "X1:GRD-BENCH_B_STATE", timeout=0.5) is None
    # The restarted sus node now drives the ITMX plant channels.
    assert wait_for(lambda: "SUS_X: restarting (by SIGHUP)" in d.log_text())
    assert wait_for(lambda: "X1:SUS-ITMX_M0_DAMP_P_GAIN" in d.log_text())
    assert wait_for(lambda: caget(epics, "X1:GUARDIAND-NODES") == 3)
    assert wait_for(lambda: "applied: 3 nodes (1 started, 1 stopped, 1 restarted, "
                            "0 failed)" in d.log_text()), d.log_text()[-2000:]

    # A node that comes back reconnects the same channel name.
    write_config(tmp_path, [("BENCH_A", "bench", {}), ("BENCH_B", "bench", {}),
                            ("BENCH_C", "bench", {}), ("SUS_X", "sus", {"optic": "ITMX"})])
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: events[-1] is True), "BENCH_B's channel did not reconnect"
    assert wait_for(lambda: caget(epics, "X1:GUARDIAND-NODES") == 4)
    epics.ca.clear_channel(chid)


def test_sighup_with_a_broken_file_changes_nothing(node_daemon, tmp_path):
    import epics
    d = node_daemon([("BENCH_A", "bench", {}), ("BENCH_B", "bench", {})])
    assert wait_for(lambda: caget(epics, "X1:GUARDIAND-NODES") == 2)
    config = tmp_path / "guardiand.ini"
    config.write_text(config.read_text() + "\nthis is not ini\n")
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration not applied; nothing changed" in d.log_text())
    assert caget(epics, "X1:GRD-BENCH_B_STATE") is not None
    assert caget(epics, "X1:GUARDIAND-NODES") == 2


def test_sighup_retries_a_node_that_failed(node_daemon, tmp_path):
    import epics
    d = node_daemon([("BENCH_A", "bench", {}), ("LATER", "no_such_system", {})])
    assert "1 failed" in d.ready_line()
    assert caget(epics, "X1:GRD-LATER_STATE", timeout=0.5) is None
    # The module is "installed" (the file now names a system that exists) and the daemon told.
    write_config(tmp_path, [("BENCH_A", "bench", {}), ("LATER", "bench", {})])
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: caget(epics, "X1:GRD-LATER_STATE", timeout=0.5) is not None)
    assert d.alive()
