"""test_state_code.py — what operators see of state code, over Channel Access (issue 13).

A daemon runs one node of tests/node/mod_notes.c and pyepics watches its channels: STATUS takes
every documented value in order (ENTER on each entry, MAIN, RUN, DONE, and EDGE between states),
the log has Guardian's [STATE.enter] / [STATE.exit] lines, a notification from main() stays
until the state is left, one from run() is seen for at least a second, and a node that holds
short of its request says why in USERMSG and the log (no path; MANUAL mid-path). The stall of a
MANAGED node is in test_nodes.py (test_managed_stalls_after_a_trip_until_requested_again).
"""
import os

import pytest

from harness import CaClient, node_daemon, systems_dir, wait_for  # noqa: F401

STATUS = ["ENTER", "MAIN", "RUN", "DONE", "JUMP", "REDIRECT", "EDGE", "INIT"]
NOTES = ("NOTES", "mod_notes", {})


@pytest.fixture
def notes(node_daemon):
    """A daemon running NOTES, at IDLE; returns (daemon, client)."""
    import epics
    test_modules = os.path.normpath(os.path.join(systems_dir(), "..", "tests", "node"))
    d = node_daemon([NOTES], systems=test_modules)
    c = CaClient(epics, "X1:GRD-NOTES_")
    assert wait_for(lambda: c.get("STATE") == "IDLE" and c.get("STATUS") == STATUS.index("DONE"),
                    5), c.get("STATE")
    return d, c


def log_lines(d):
    return [line.split(" ", 2)[-1] for line in d.log_text().splitlines() if " NOTES " in line]


def in_order(lines, wanted):
    """Whether `wanted` occur in `lines` in that order (others may come between)."""
    it = iter(lines)
    return all(any(w == line for line in it) for w in wanted)


def test_status_passes_every_phase_in_order(notes):
    d, c = notes
    status = c.monitor("STATUS")
    c.put("REQUEST", "SLOW")
    assert wait_for(lambda: c.get("STATE") == "SLOW" and c.get("STATUS") == STATUS.index("DONE"),
                    5)
    c.put("REQUEST", "IDLE")
    assert wait_for(lambda: c.get("STATE") == "IDLE" and c.get("STATUS") == STATUS.index("DONE"),
                    5)
    assert wait_for(lambda: len(status.values()) >= 10, 2)
    seen = [STATUS[v] for v in status.values()]
    # Every value is posted, even those that begin and end within one cycle (ENTER, and
    # IDLE's MAIN: its main() is done at once).
    assert seen == ["DONE", "EDGE", "ENTER", "MAIN", "RUN", "DONE",
                    "EDGE", "ENTER", "MAIN", "DONE"], seen
    lines = log_lines(d)
    assert in_order(lines, ["REQUEST: SLOW", "[IDLE.exit]", "EDGE: IDLE->SLOW",
                            "executing state: SLOW (40)", "[SLOW.enter]",
                            "[SLOW.main] timer['slow'] = 1",
                            "REQUEST: IDLE", "[SLOW.exit]", "EDGE: SLOW->IDLE",
                            "executing state: IDLE (10)", "[IDLE.enter]"]), lines[-20:]


def test_a_notification_from_main_stays_until_the_state_is_left(notes):
    d, c = notes
    c.put("REQUEST", "LOADED")
    assert wait_for(lambda: c.get("USERMSG") == "Waiting to load coefficients!", 5)
    assert wait_for(lambda: c.get("STATUS") == STATUS.index("DONE"), 2)
    for _ in range(4):  # 2 s of run() that does not notify
        assert c.get("NOTIFICATION") == 1
        assert c.get("USERMSG") == "Waiting to load coefficients!"
        wait_for(lambda: False, 0.5)
    assert log_lines(d).count("USERMSG: Waiting to load coefficients!") == 1
    c.put("REQUEST", "IDLE")
    assert wait_for(lambda: c.get("STATE") == "IDLE" and c.get("NOTIFICATION") == 0, 2)
    assert c.get("USERMSG") == ""


def test_a_notification_from_run_is_seen_for_a_second(notes):
    d, c = notes
    usermsg = c.monitor("USERMSG")
    c.put("REQUEST", "PULSE")  # its run() notifies on its first call only
    assert wait_for(lambda: "pulse seen" in usermsg.values(), 5)
    assert usermsg.wait("", 5)
    shown = [t for v, t in usermsg.updates if v == "pulse seen"][0]
    gone = [t for v, t in usermsg.updates if v == "" and t > shown][0]
    assert 0.95 <= gone - shown <= 1.5, gone - shown  # the server's timestamps


def test_a_node_that_holds_short_of_its_request_says_why(notes):
    d, c = notes
    c.put("REQUEST", "ISLAND")
    assert wait_for(lambda: c.get("USERMSG") == "no path from IDLE to ISLAND", 5)
    assert c.get("STATE") == "IDLE" and c.get("TARGET") == "IDLE"
    assert "USERMSG: no path from IDLE to ISLAND" in log_lines(d)
    # MANUAL on the way: the node finishes SLOW and holds there, short of FAR.
    c.put("REQUEST", "FAR")
    assert wait_for(lambda: c.get("STATE") == "SLOW", 5)
    c.put("MODE", "MANUAL")
    assert wait_for(lambda: c.get("USERMSG") == "MANUAL: holding in SLOW, request FAR", 5), \
        c.get("USERMSG")
    assert c.get("STATE") == "SLOW" and c.get("TARGET") == "SLOW" and c.get("REQUEST") == "FAR"
    assert "USERMSG: MANUAL: holding in SLOW, request FAR" in log_lines(d)
    c.put("MODE", "AUTO")
    assert wait_for(lambda: c.get("STATE") == "FAR", 5)
    assert wait_for(lambda: c.get("NOTIFICATION") == 0, 3)
