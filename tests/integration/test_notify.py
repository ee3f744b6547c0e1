"""test_notify.py — the systemd notify protocol (supervisor/notify.c), captured on a test socket.

Each test binds an AF_UNIX datagram socket in its temporary folder, as systemd's manager socket,
and starts a daemon of its own with NOTIFY_SOCKET naming it and WATCHDOG_USEC=400000 (pings
every 0.2 s). READY=1 comes after the "ready" line with a STATUS=; SIGHUP gives RELOADING=1 (with
MONOTONIC_USEC) then READY=1; SIGTERM gives STOPPING=1 and exit 0. The watchdog test blocks the
loop with tests/node/mod_crashy.c's HANG state (hang_limit = 0: the hang check stays out of it)
and expects the pings to stop.
"""
import os
import signal
import time

import pytest

from harness import (EPICS_CLIENT_VARS, Manager, NodeDaemon, reset_pyepics, systems_path,
                     write_config)

WATCHDOG_USEC = 400000


@pytest.fixture
def notified(tmp_path):
    """A factory: notified(nodes, extra=...) starts a daemon under a Manager; returns both. At
    the end a daemon still running gets SIGKILL, and the client environment is restored."""
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    started = []

    def start(nodes, extra=()):
        manager = Manager(tmp_path)
        config, database = write_config(tmp_path, nodes, systems=systems_path(), extra=extra)
        d = NodeDaemon(config, database, env={"NOTIFY_SOCKET": manager.path,
                                              "WATCHDOG_USEC": str(WATCHDOG_USEC)})
        started.append((d, manager))
        d.start()
        return d, manager

    yield start
    reset_pyepics()
    for d, manager in started:
        if d.alive():
            d.proc.kill()
            d.proc.wait()
        d.stop()  # removes its files
        manager.close()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_ready_watchdog_reload_and_stopping(notified):
    d, m = notified([("B1", "bench", {}), ("B2", "bench", {}), ("NOPE", "no_such_system", {})])
    first = m.wait_for("READY")
    assert d.ready_line(), "READY=1 came before the ready line"
    assert m.messages[first][1].get("STATUS") == "2 nodes, 1 failed", m.messages[first]

    # WATCHDOG=1 every half interval (0.2 s) while the nodes step.
    m.receive(1.5)
    pings = m.times("WATCHDOG", after=first)
    assert len(pings) >= 5, [x[1] for x in m.messages]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.35, gaps
    assert "withheld" not in d.log_text()

    # SIGHUP: RELOADING=1 with the time it began, then READY=1.
    mark = len(m.messages)
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    d.proc.send_signal(signal.SIGHUP)
    reloading = m.wait_for("RELOADING", after=mark)
    ready = m.wait_for("READY", after=reloading)
    usec = int(m.messages[reloading][1]["MONOTONIC_USEC"])
    assert before - 0.01 <= usec / 1e6 <= time.clock_gettime(time.CLOCK_MONOTONIC), usec
    assert m.messages[ready][1].get("STATUS", "").startswith("2 nodes")
    assert not any(msg.get("READY") for _, msg in m.messages[mark:reloading])

    # Pings go on after the reload.
    mark = len(m.messages)
    m.receive(0.6)
    assert len(m.times("WATCHDOG", after=mark)) >= 2

    # SIGTERM: STOPPING=1, then a clean exit.
    mark = len(m.messages)
    d.proc.send_signal(signal.SIGTERM)
    m.wait_for("STOPPING", after=mark)
    assert d.proc.wait(10) == 0, d.log_text()[-2000:]


def test_watchdog_is_withheld_while_the_loop_is_blocked(notified):
    import epics
    d, m = notified([("B1", "bench", {}), ("BOOM", "mod_crashy", {})], extra=("hang_limit = 0",))
    m.wait_for("READY")
    m.receive(0.6)
    assert len(m.times("WATCHDOG")) >= 2, "no pings before the hang"

    d.client_env()
    reset_pyepics()
    chid = epics.ca.create_channel("X1:GRD-BOOM_REQUEST", connect=False, auto_cb=False)
    assert epics.ca.connect_channel(chid, timeout=5.0)
    epics.ca.put(chid, "HANG", wait=True, timeout=5.0)
    # HANG waits half a second, then its run() spins on the loop: the pings must stop.
    requested = time.monotonic()
    m.receive(3.0)
    pings = m.times("WATCHDOG")
    last = max(pings)
    assert last < requested + 1.0, "pings went on %.2f s after the request" % (last - requested)
    assert time.monotonic() - last > 1.0, "a ping within the last second of a hang"
    assert d.alive(), "the daemon died instead of hanging (hang_limit = 0)"
    with open("/proc/%d/stat" % d.proc.pid) as f:
        assert f.read().split(") ", 1)[1][0] == "R", "the hung daemon should be spinning"
    d.proc.kill()  # systemd would do this (SIGABRT) when WatchdogSec passes
    d.proc.wait(10)


def test_messages_carry_their_priority_when_stderr_is_the_journal(tmp_path):
    """sup_log: with $JOURNAL_STREAM naming stderr (as systemd sets it), every daemon message
    starts with its syslog priority, which journald takes and strips; elsewhere lines are plain."""
    import re
    config, database = write_config(tmp_path, [("B1", "bench", {}), ("BAD", "no_such_system", {})])
    d = NodeDaemon(config, database)
    st = os.stat(d.log.name)
    d.extra_env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    d.start()
    try:
        log = d.log_text()
        assert re.search(r"^<5>guardiand: ready: ", log, re.M), log
        assert re.search(r"^<3>guardiand: BAD: FAILED to start", log, re.M), log
        # (plant/ and ca/ are modules of their own that write plain lines)
        daemon_lines = [l for l in log.splitlines() if "guardiand: " in l and
                        "guardiand: plant: " not in l and ": ca: " not in l]
        assert all(re.match(r"<[3-6]>guardiand: ", l) for l in daemon_lines), daemon_lines
    finally:
        d.stop()
    # Another stream in JOURNAL_STREAM (stderr is not the journal): plain lines.
    d = NodeDaemon(config, database)
    d.extra_env["JOURNAL_STREAM"] = "1:1"
    d.start()
    try:
        assert re.search(r"^guardiand: ready: ", d.log_text(), re.M)
    finally:
        d.stop()
