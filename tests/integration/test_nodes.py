"""test_nodes.py — the node runtime over Channel Access, driven by pyepics (issue 3).

Every test starts its own guardiand on free 127.0.0.1 ports with its own INI file and database
path (harness.node_daemon), and a fresh pyepics context pointed at it; at the end the daemon
gets SIGTERM with the test's channels still connected and must exit 0.

Only pyepics' channel-level API (epics.ca) is used, never epics.PV or caget/caput: those cache
PV objects per context, and a PV object of an ended context is unsafe once the next context
exists. pyepics 3.4.1 ignores the put-callback status (test_pyepics.py), so refused writes are
checked with libca's ca_array_put_callback through ctypes.

The node under test is mostly a `sus` node (systems/sus.c): its watchdog X1:SUS-<OPTIC>_WD_STATE
is a channel of the simulated plant (supervisor/nodes.c), created at 0 (tripped), so the node
starts in TRIPPED and the tests reset the watchdog with a put of 1. Expected behaviour is that
of ../shared/docs/guardian.md Part A and docs/systems.md. Every wait is bounded.
"""
import calendar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import (DOUBLE, ECA_NORMAL, ECA_NOWTACCESS, ECA_PUTFAIL, ENUM, LONG,  # noqa: F401
                     STRING, CaClient, daemon_path, free_ports, guardiand_version, node_daemon,
                     systems_dir, wait_for)

OP = ["STOP", "PAUSE", "EXEC"]
MODE = ["AUTO", "MANAGED", "MANUAL"]
STATUS = ["ENTER", "MAIN", "RUN", "DONE", "JUMP", "REDIRECT", "EDGE", "INIT"]
ERROR = ["False", "True", "", "Connect"]
BOOL = ["False", "True"]
LOAD_STATUS = ["DONE", "REQUEST", "SET", "INPROGRESS", "ERROR"]

# guardian.md Part A: suffix -> (native type, enum strings, writable by clients)
PART_A = {
    "OP": (ENUM, OP, True),
    "MODE": (ENUM, MODE, True),
    "REQUEST": (STRING, None, True),
    "REQUEST_S": (STRING, None, False),
    "REQUEST_N": (LONG, None, False),
    "REQUEST_ENUM": (ENUM, "menu", True),
    "STATE": (STRING, None, False),
    "STATE_S": (STRING, None, False),
    "STATE_N": (LONG, None, False),
    "TARGET": (STRING, None, False),
    "TARGET_S": (STRING, None, False),
    "TARGET_N": (LONG, None, False),
    "NOMINAL": (STRING, None, False),
    "NOMINAL_S": (STRING, None, False),
    "NOMINAL_N": (LONG, None, False),
    "STATUS": (ENUM, STATUS, False),
    "ERROR": (ENUM, ERROR, False),
    "CONNECT": (ENUM, ["OK", "ERROR"], False),
    "OK": (ENUM, BOOL, False),
    "ACTIVE": (ENUM, BOOL, False),
    "NOTIFICATION": (ENUM, BOOL, False),
    "USERMSG": (STRING, None, False),
    "LOAD": (ENUM, BOOL, True),
    "LOAD_STATUS": (ENUM, LOAD_STATUS, False),
    "LOAD_TIME": (STRING, None, False),
    "EXECTIME": (DOUBLE, None, False),
    "EXECTIME_LAST": (DOUBLE, None, False),
    "VERSION": (STRING, None, False),
    "MANAGER": (STRING, None, True),  # a manager's claim (issue 10)
    "SUBNODES_TOTAL": (LONG, None, False),
    "SUBNODES_NOT_OK": (LONG, None, False),
    "SPM_TOTAL": (LONG, None, False),
    "SPM_CHANGED": (LONG, None, False),
    "CRASHES": (LONG, None, False),
    "QUARANTINED": (ENUM, BOOL, False),
    "STALLED": (ENUM, BOOL, False),  # additions of issue 10 (README, "Node channels")
    "CHANGED_BY": (STRING, None, False),
    "SPM_MONITOR": (ENUM, BOOL, False),  # issue 11: KAGRA's screens read it
    "LOAD_PENDING": (ENUM, BOOL, False),  # issue 13: the module file is not the code that runs
}

SUS_MENU = ["SAFE", "DAMPED", "MISALIGNED", "ALIGNED"]  # requestable, by index
SUS = ("SUS_ETMX", "sus", {"optic": "ETMX", "settle": "0.5", "pitch": "12.5", "yaw": "-3"})
PLANT = "X1:SUS-ETMX_"


@pytest.fixture
def epics():
    """pyepics itself (its context is made per daemon by node_daemon, not the session's)."""
    import epics as pyepics
    return pyepics


def distinct(values):
    """values without consecutive repeats."""
    out = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def tail_from(seq, first):
    """The part of seq from the last occurrence of `first` on ([] if absent)."""
    idx = [i for i, v in enumerate(seq) if v == first]
    return seq[idx[-1]:] if idx else []


class Client(CaClient):
    """Channels of one node of the daemon (suffixes), or any channel by its full name."""

    def __init__(self, epics, node="SUS_ETMX", ifo="X1"):
        super().__init__(epics, "%s:GRD-%s_" % (ifo, node))


def start_sus(node_daemon, epics, nodes=(SUS,), aligned=True):
    """A daemon running `nodes` (the sus node SUS_ETMX and its client by default): SUS_ETMX
    starts in TRIPPED; with `aligned`, its watchdog is reset and it is at ALIGNED and OK."""
    d = node_daemon(list(nodes))
    c = Client(epics)
    assert wait_for(lambda: c.get("STATE") == "TRIPPED", 5), \
        "a fresh sus node (watchdog 0) is not in TRIPPED: %r" % c.get("STATE")
    if aligned:
        c.put(PLANT + "WD_STATE", 1.0)
        assert wait_for(lambda: c.get("OK") == 1, 10), \
            "not OK 10 s after the watchdog reset: STATE %r" % c.get("STATE")
        assert c.get("STATE") == "ALIGNED"
    return d, c


# ---- following paths ----

def test_sus_goes_to_aligned_through_safe_and_damped(node_daemon, epics):
    d, c = start_sus(node_daemon, epics, aligned=False)
    assert wait_for(lambda: c.get("NOTIFICATION") == 1, 2)  # from TRIPPED's run
    assert c.get("USERMSG") == "ETMX watchdog tripped: reset it"
    assert c.get("REQUEST") == "ALIGNED" and c.get("NOMINAL") == "ALIGNED"
    assert c.get("NOMINAL_N") == 1000 and c.get("STATE_N") == 1
    assert c.get("OK") == 0
    assert c.get(PLANT + "M0_DAMP_P_GAIN") == 0.0
    mons = {s: c.monitor(s) for s in ("STATE", "TARGET", "STATUS", "OK", "EXECTIME")}

    c.put(PLANT + "WD_STATE", 1.0)
    assert mons["OK"].wait(1, 10), "OK not True 10 s after the watchdog reset: STATE %r" \
        % mons["STATE"].values()
    time.sleep(0.3)

    states = distinct(mons["STATE"].values())
    assert tail_from(states, "TRIPPED") == ["TRIPPED", "SAFE", "DAMPED", "ALIGNED"], states
    targets = distinct(mons["TARGET"].values())
    assert tail_from(targets, "SAFE") == ["SAFE", "DAMPED", "ALIGNED"], targets
    statuses = mons["STATUS"].values()
    assert STATUS.index("EDGE") in statuses and STATUS.index("RUN") in statuses, statuses
    assert statuses[-1] == STATUS.index("DONE")
    # OK turned True only at the nominal state: the STATE published at OK's timestamp.
    ok_since = next(t for v, t in mons["OK"].updates if v == 1)
    state_then = [v for v, t in mons["STATE"].updates if t <= ok_since][-1]
    assert state_then == "ALIGNED"
    assert all(v == 0 for v, t in mons["OK"].updates if t < ok_since)

    assert c.get("STATE_N") == 1000 and c.get("TARGET") == "ALIGNED"
    assert c.get("ERROR") == 0 and c.get("CONNECT") == 0 and c.get("ACTIVE") == 1
    # TRIPPED's notification stays 1 s at least after it appeared (issue 13).
    assert wait_for(lambda: c.get("NOTIFICATION") == 0, 2) and c.get("USERMSG") == ""
    assert c.get("EXECTIME_LAST") >= 0.45, "DAMPED waits settle=0.5 s"
    for axis in "PYL":
        assert c.get(PLANT + "M0_DAMP_%s_GAIN" % axis) == 1.0
    assert c.get(PLANT + "M0_OPTICALIGN_P_OFFSET") == 12.5
    assert c.get(PLANT + "M0_OPTICALIGN_Y_OFFSET") == -3.0
    ex = [v for v, t in mons["EXECTIME"].updates if t >= ok_since]  # all in ALIGNED
    assert len(ex) >= 3 and ex == sorted(ex) and ex[-1] > ex[0], \
        "EXECTIME does not count up in ALIGNED: %r" % ex


def test_request_by_name_and_by_enum_follow_the_path(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    assert list(c.ctrl("REQUEST_ENUM")["enum_strs"]) == SUS_MENU
    assert c.get("REQUEST_ENUM") == SUS_MENU.index("ALIGNED")
    state = c.monitor("STATE")

    c.put("REQUEST", "SAFE")
    assert state.wait("SAFE", 10)
    # SAFE is a goto state (an edge from every state): one step.
    assert tail_from(distinct(state.values()), "ALIGNED") == ["ALIGNED", "SAFE"]
    assert "SUS_ETMX EDGE: ALIGNED->SAFE" in d.log_text()
    assert c.get("REQUEST_S") == "SAFE" and c.get("REQUEST_N") == 10
    assert c.get("REQUEST_ENUM") == SUS_MENU.index("SAFE")
    assert wait_for(lambda: c.get("STATUS") == STATUS.index("DONE"), 5)
    assert c.get("OK") == 0, "OK with REQUEST != NOMINAL"
    assert c.get(PLANT + "M0_DAMP_P_GAIN") == 0.0

    c.put("REQUEST_ENUM", ("enum", SUS_MENU.index("MISALIGNED")))
    assert state.wait("MISALIGNED", 10)
    assert tail_from(distinct(state.values()), "SAFE") == ["SAFE", "DAMPED", "MISALIGNED"]
    assert c.get("REQUEST") == "MISALIGNED" and c.get("REQUEST_N") == 500
    # STATE shows a state from the move; its main runs on the next cycle.
    assert wait_for(lambda: c.get(PLANT + "M0_OPTICALIGN_P_OFFSET") == 112.5, 2), \
        "MISALIGNED writes pitch + misalign (100)"

    c.put("REQUEST_ENUM", "ALIGNED")  # an enum written by its string
    assert state.wait("ALIGNED", 10)
    assert tail_from(distinct(state.values()), "MISALIGNED") == ["MISALIGNED", "DAMPED",
                                                                 "ALIGNED"]
    assert wait_for(lambda: c.get("OK") == 1, 5)
    log = d.log_text()
    assert "SUS_ETMX REQUEST: SAFE" in log and "SUS_ETMX REQUEST: MISALIGNED" in log


def test_watchdog_trip_jumps_to_tripped_and_auto_recovers(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    state, ok = c.monitor("STATE"), c.monitor("OK")
    c.put(PLANT + "WD_STATE", 0.0)
    assert state.wait("TRIPPED", 5)
    assert distinct(state.values()) == ["ALIGNED", "TRIPPED"], "a jump, not a path"
    assert ok.wait(0, 2)
    assert wait_for(lambda: c.get("NOTIFICATION") == 1, 2)
    assert c.get("USERMSG") == "ETMX watchdog tripped: reset it"
    assert c.get("REQUEST") == "ALIGNED"
    for axis in "PYL":
        assert c.get(PLANT + "M0_DAMP_%s_GAIN" % axis) == 0.0
    assert "JUMP: ALIGNED->TRIPPED" in d.log_text()

    c.put(PLANT + "WD_STATE", 1.0)
    assert ok.wait(1, 10), "AUTO did not recover: %r" % state.values()
    assert tail_from(distinct(state.values()), "TRIPPED") == ["TRIPPED", "SAFE", "DAMPED",
                                                              "ALIGNED"]
    assert wait_for(lambda: c.get("NOTIFICATION") == 0, 2)  # 1 s at least after it appeared


# ---- MODE and OP ----

def test_managed_stalls_after_a_trip_until_requested_again(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    c.put("MODE", "MANAGED")
    assert wait_for(lambda: "SUS_ETMX MODE: MANAGED" in d.log_text(), 2)
    assert c.get("MODE") == MODE.index("MANAGED")
    assert c.get("OK") == 1, "MANAGED nodes can be OK"
    state = c.monitor("STATE")
    c.put(PLANT + "WD_STATE", 0.0)
    assert state.wait("TRIPPED", 5)
    c.put(PLANT + "WD_STATE", 1.0)
    assert wait_for(lambda: c.get("STATUS") == STATUS.index("DONE"), 5), \
        "TRIPPED did not complete after the reset"
    time.sleep(1.0)
    assert distinct(state.values()) == ["ALIGNED", "TRIPPED"], "MANAGED must stall"
    assert c.get("TARGET") == "TRIPPED" and c.get("OK") == 0
    assert "STALLED" in d.log_text()
    # The hold says so (issue 13): TRIPPED's own notification is over, the stall is shown.
    assert wait_for(lambda: c.get("USERMSG") == "STALLED in TRIPPED: waits for a request", 3), \
        c.get("USERMSG")
    assert "SUS_ETMX USERMSG: STALLED in TRIPPED: waits for a request" in d.log_text()

    c.put("REQUEST", "ALIGNED")  # a manager's revive: the same request again
    assert state.wait("ALIGNED", 10)
    assert tail_from(distinct(state.values()), "TRIPPED") == ["TRIPPED", "SAFE", "DAMPED",
                                                              "ALIGNED"]
    assert wait_for(lambda: c.get("OK") == 1, 5)


def severity(c, suffix):
    """The channel's alarm severity (DBR_TIME), as an alarm-coloured MEDM widget sees it."""
    chid = c.chan(suffix)
    ftype = c.ca.promote_type(chid, use_time=True)
    meta = c.ca.get_with_metadata(chid, ftype=ftype, timeout=5)
    assert meta is not None, suffix
    return meta["severity"]


NO_ALARM, MINOR, MAJOR = 0, 1, 2


def test_channels_that_mean_trouble_carry_an_alarm_severity(node_daemon, epics):
    """README "Node channels": OK=False, ERROR, CONNECT=ERROR, QUARANTINED=True MAJOR;
    NOTIFICATION=True and STALLED=True MINOR, as a bi record's ZSV/OSV would give them."""
    nodes = (SUS, ("SUS_BAD", "sus", {}),  # no optic: ERROR in INIT
             ("BENCH1", "bench", {"chan": "GRD-NOBODY_VALUE"}))  # never connects
    d, c = start_sus(node_daemon, epics, nodes=nodes, aligned=False)  # TRIPPED, notifying
    bad, bench = Client(epics, "SUS_BAD"), Client(epics, "BENCH1")
    assert wait_for(lambda: bad.get("ERROR") == 1 and bench.get("CONNECT") == 1, 5)
    assert severity(bad, "ERROR") == MAJOR and severity(bench, "CONNECT") == MAJOR
    assert severity(bench, "ERROR") == MAJOR, "ERROR=Connect is trouble too"
    assert wait_for(lambda: c.get("NOTIFICATION") == 1, 5)
    assert severity(c, "OK") == MAJOR and severity(c, "NOTIFICATION") == MINOR
    assert severity(c, "ERROR") == NO_ALARM and severity(c, "CONNECT") == NO_ALARM
    assert severity(c, "QUARANTINED") == NO_ALARM and severity(c, "STALLED") == NO_ALARM
    assert c.get("SPM_MONITOR") == 1, "sus wrote its gains: the set-point monitor watches them"
    c.put(PLANT + "WD_STATE", 1.0)
    assert wait_for(lambda: c.get("OK") == 1, 10)
    assert wait_for(lambda: severity(c, "OK") == NO_ALARM, 2)
    # The trip's notification stays 1 s at least after it appeared (issue 13).
    assert wait_for(lambda: severity(c, "NOTIFICATION") == NO_ALARM, 2)
    c.put("MODE", "MANAGED")
    c.put(PLANT + "WD_STATE", 0.0)
    assert wait_for(lambda: c.get("STALLED") == 1, 5)
    assert severity(c, "STALLED") == MINOR and severity(c, "OK") == MAJOR
    c.put(PLANT + "WD_STATE", 1.0)
    c.put("REQUEST", "ALIGNED")
    assert wait_for(lambda: c.get("OK") == 1, 10)
    assert severity(c, "STALLED") == NO_ALARM and severity(c, "OK") == NO_ALARM


def test_manual_goes_straight_to_the_requested_state(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    c.put("MODE", ("enum", MODE.index("MANUAL")))
    assert wait_for(lambda: c.get("OK") == 0, 2), "OK in MANUAL"
    assert c.get("ACTIVE") == 0
    state, status = c.monitor("STATE"), c.monitor("STATUS")

    c.put("REQUEST", "SAFE")
    assert state.wait("SAFE", 5)
    assert distinct(state.values()) == ["ALIGNED", "SAFE"], "MANUAL must not follow the path"
    assert STATUS.index("JUMP") in status.values()
    assert "MANUAL: ALIGNED->SAFE" in d.log_text()
    assert wait_for(lambda: c.get(PLANT + "M0_DAMP_P_GAIN") == 0.0, 2)

    c.put("REQUEST", "MISALIGNED")
    assert state.wait("MISALIGNED", 5)
    assert distinct(state.values()) == ["ALIGNED", "SAFE", "MISALIGNED"]
    assert c.get("TARGET") == "MISALIGNED"

    c.put("MODE", "AUTO")
    c.put("REQUEST", "ALIGNED")
    assert state.wait("ALIGNED", 10)
    assert tail_from(distinct(state.values()), "MISALIGNED") == ["MISALIGNED", "DAMPED",
                                                                 "ALIGNED"]
    assert wait_for(lambda: c.get("OK") == 1, 5)


def test_pause_freezes_execution_and_exec_resumes(node_daemon, epics):
    sus = (SUS[0], SUS[1], dict(SUS[2], settle="2.0"))
    d, c = start_sus(node_daemon, epics, nodes=(sus,), aligned=False)
    state = c.monitor("STATE")
    c.put(PLANT + "WD_STATE", 1.0)
    assert state.wait("DAMPED", 5)
    c.put("OP", "PAUSE")
    # OP shows the write at once; ACTIVE turns False in the cycle that applies it.
    assert wait_for(lambda: c.get("ACTIVE") == 0, 2)
    assert c.get("OP") == OP.index("PAUSE")
    time.sleep(0.2)  # updates of that cycle still on their way
    status, target = c.monitor("STATUS"), c.monitor("TARGET")
    n_state, n_status, n_target = len(state.updates), len(status.updates), len(target.updates)
    ex0 = c.get("EXECTIME")
    time.sleep(2.5)  # past the 2 s settle time that DAMPED waits for
    assert c.get("STATE") == "DAMPED"
    assert (len(state.updates), len(status.updates), len(target.updates)) == \
        (n_state, n_status, n_target), "PAUSE must freeze STATE, STATUS and TARGET"
    assert c.get("OK") == 0 and c.get("ACTIVE") == 0
    # docs/systems.md 4.5: EXECTIME (time since the state was entered) keeps counting.
    assert c.get("EXECTIME") >= ex0 + 2.0

    c.put("OP", "EXEC")
    assert state.wait("ALIGNED", 5)
    assert tail_from(distinct(state.values()), "DAMPED") == ["DAMPED", "ALIGNED"]
    assert wait_for(lambda: c.get("OK") == 1, 5)

    # A request made while paused is shown at once and acted on at resume.
    c.put("OP", "PAUSE")
    assert wait_for(lambda: c.get("OK") == 0, 2)
    c.put("REQUEST", "SAFE")
    assert wait_for(lambda: c.get("REQUEST_N") == 10, 2) and c.get("REQUEST") == "SAFE"
    time.sleep(0.5)
    assert c.get("STATE") == "ALIGNED"
    c.put("OP", "EXEC")
    assert state.wait("SAFE", 5)


def test_stop_halts_and_exec_starts_again_from_init(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    state, status = c.monitor("STATE"), c.monitor("STATUS")
    c.put("OP", ("enum", OP.index("STOP")))
    assert wait_for(lambda: c.get("OP") == OP.index("STOP"), 2)
    assert wait_for(lambda: c.get("OK") == 0, 2) and c.get("ACTIVE") == 0
    c.put(PLANT + "WD_STATE", 0.0)  # nothing runs to notice
    time.sleep(1.0)
    assert distinct(state.values()) == ["ALIGNED"], "STOP must halt"
    assert c.get(PLANT + "M0_DAMP_P_GAIN") == 1.0

    c.put("OP", "EXEC")  # starts again from INIT, which finds the tripped watchdog
    assert state.wait("TRIPPED", 5)
    assert tail_from(distinct(state.values()), "ALIGNED") == ["ALIGNED", "INIT", "TRIPPED"]
    assert STATUS.index("INIT") in status.values()
    c.put(PLANT + "WD_STATE", 1.0)
    assert state.wait("ALIGNED", 10)
    assert tail_from(distinct(state.values()), "INIT") == ["INIT", "TRIPPED", "SAFE", "DAMPED",
                                                           "ALIGNED"]
    assert wait_for(lambda: c.get("OK") == 1, 5)
    log = d.log_text()
    assert "SUS_ETMX OP: STOP" in log and "SUS_ETMX OP: EXEC" in log


def test_load_reloads_without_interrupting_and_reads_false_again(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    load, state = c.monitor("LOAD"), c.monitor("STATE")
    loaded = c.get("LOAD_TIME")
    time.sleep(1.1)  # LOAD_TIME has a resolution of a second
    assert c.put_status("LOAD", ("enum", 1)) == ECA_NORMAL
    assert c.get("LOAD") == 0, "LOAD is momentary: it reads False again at once"
    assert wait_for(lambda: "SUS_ETMX LOAD: sus from " in d.log_text(), 5)
    assert wait_for(lambda: c.get("LOAD_TIME") > loaded, 5), "LOAD_TIME not renewed"
    assert c.get("LOAD_STATUS") == LOAD_STATUS.index("DONE")
    time.sleep(0.3)
    assert all(v == 0 for v in load.values()), "LOAD showed True: %r" % load.values()
    assert distinct(state.values()) == ["ALIGNED"], "a reload must not interrupt the state"
    assert c.get("OK") == 1
    assert c.put_status("LOAD", "True") == ECA_NORMAL  # by its string, a second time
    assert c.get("LOAD") == 0


def test_a_failed_load_holds_until_a_good_load(node_daemon, epics, tmp_path):
    """Issue 13, item 1: a LOAD whose module does not load leaves the old code running and
    says so until a LOAD succeeds: LOAD_STATUS=ERROR across state changes, ACTIVE=False,
    USERMSG and the node's log saying why."""
    folder = tmp_path / "systems"
    folder.mkdir()
    module = folder / "sus.so"
    shutil.copyfile(os.path.join(systems_dir(), "sus.so"), str(module))
    d = node_daemon([SUS], systems=str(folder))  # the copy, which the test replaces
    c = Client(epics)
    assert wait_for(lambda: c.get("STATE") == "TRIPPED", 5), c.get("STATE")
    c.put(PLANT + "WD_STATE", 1.0)
    assert wait_for(lambda: c.get("STATE") == "ALIGNED" and c.get("ACTIVE") == 1, 10)
    # A module file replaced (never rewritten in place) by one that is not a module.
    broken = folder / "sus.so.new"
    broken.write_bytes(b"not an ELF object\n")
    os.rename(str(broken), str(module))
    assert c.put_status("LOAD", "True") == ECA_NORMAL
    assert wait_for(lambda: c.get("LOAD_STATUS") == LOAD_STATUS.index("ERROR"), 5)
    assert wait_for(lambda: "SUS_ETMX LOAD ERROR: " in d.log_text(), 5), d.log_text()
    assert c.get("ACTIVE") == 0
    assert c.get("USERMSG").startswith("LOAD ERROR: "), c.get("USERMSG")
    assert c.get("NOTIFICATION") == 1
    # The old code runs on, and a state change does not make the failure go away.
    assert c.put_status("REQUEST", "DAMPED") == ECA_NORMAL
    assert wait_for(lambda: c.get("STATE") == "DAMPED", 10), c.get("STATE")
    time.sleep(0.3)
    assert c.get("LOAD_STATUS") == LOAD_STATUS.index("ERROR"), "reset by a state change"
    assert c.get("ACTIVE") == 0
    assert c.get("USERMSG").startswith("LOAD ERROR: "), c.get("USERMSG")
    # A good module again, and a LOAD: the failure is over.
    good = folder / "sus.so.good"
    shutil.copyfile(os.path.join(systems_dir(), "sus.so"), str(good))
    os.rename(str(good), str(module))
    assert c.put_status("LOAD", "True") == ECA_NORMAL
    assert wait_for(lambda: c.get("LOAD_STATUS") == LOAD_STATUS.index("DONE"), 5)
    assert wait_for(lambda: c.get("ACTIVE") == 1, 5)
    assert "LOAD ERROR" not in c.get("USERMSG")
    assert c.get("STATE") == "DAMPED"


def good_node_from_a_copy(node_daemon, epics, tmp_path):
    """A daemon running GOOD (mod_good) from a copy of the module in a folder of its own, and
    install(version) replacing that copy (never rewriting it in place, docs/systems.md)."""
    modules = os.path.normpath(os.path.join(systems_dir(), "..", "tests", "node"))
    folder = tmp_path / "systems"
    folder.mkdir()
    module = str(folder / "mod_good.so")

    def install(version):
        shutil.copyfile(os.path.join(modules, version + ".so"), module + ".new")
        os.rename(module + ".new", module)

    install("mod_good")
    d = node_daemon([("GOOD", "mod_good", {})], systems=str(folder))
    c = Client(epics, "GOOD")
    assert wait_for(lambda: c.get("STATE") == "UP", 5), c.get("STATE")
    guardctl = os.path.join(os.path.dirname(daemon_path()), "guardctl")
    ctl = lambda *a: subprocess.run([guardctl, "--socket", d.socket] + list(a),  # noqa: E731
                                    capture_output=True, text=True, timeout=10)
    return d, c, ctl, module, install


def test_reload_node_compares_and_refuses_what_would_strand_it(node_daemon, epics, tmp_path):
    """Issue 13, item 2: guardctl reload NODE loads the module beside the old one and prints
    the difference; --dry-run changes nothing; a module without the node's state is refused
    (also over CA, which never forces) until --force."""
    d, c, ctl, module, install = good_node_from_a_copy(node_daemon, epics, tmp_path)
    install("mod_good_v2")  # MIDDLE gone, DOWN->UP new: UP, the request and nominal, stay
    r = ctl("reload", "GOOD", "--dry-run")
    assert r.returncode == 0, r
    assert "states removed (1): MIDDLE\n" in r.stdout, r.stdout
    assert "edges added (1): DOWN->UP\n" in r.stdout, r.stdout
    assert "edges removed (3): INIT->MIDDLE DOWN->MIDDLE MIDDLE->UP\n" in r.stdout, r.stdout
    assert "states added" not in r.stdout and "index changes" not in r.stdout, r.stdout
    assert "would load (dry run)" in r.stdout, r.stdout
    time.sleep(0.3)
    assert "good v2" not in d.log_text(), "a dry run loaded the module"
    assert "GOOD LOAD:" not in d.log_text()
    install("mod_good_v3")  # UP gone: the node would be stranded
    r = ctl("reload", "GOOD")
    assert r.returncode == 1, r
    assert "states removed (2): MIDDLE UP\n" in r.stdout, r.stdout
    assert "index changes (1): DOWN 5->6\n" in r.stdout, r.stdout
    assert "LOAD refused: current state UP is not in the new code (--force loads it)" \
        in r.stdout, r.stdout
    assert wait_for(lambda: c.get("LOAD_STATUS") == LOAD_STATUS.index("ERROR"), 5)
    assert c.get("USERMSG").startswith("LOAD ERROR: refused: "), c.get("USERMSG")
    assert c.get("STATE") == "UP" and c.get("ACTIVE") == 0
    assert c.put_status("LOAD", "True") == ECA_NORMAL  # over CA: never forced
    assert wait_for(lambda: d.log_text().count("GOOD LOAD ERROR: refused: current state UP") == 2,
                    5), d.log_text()
    assert c.get("STATE") == "UP"
    r = ctl("reload", "GOOD", "--force")
    assert r.returncode == 0, r
    assert r.stdout.rstrip().endswith("loaded"), r.stdout
    assert wait_for(lambda: c.get("STATE") == "DOWN", 5), c.get("STATE")
    assert c.get("LOAD_STATUS") == LOAD_STATUS.index("DONE") and c.get("ACTIVE") == 1
    assert "good v3" in d.log_text()
    r = ctl("reload", "NOPE")
    assert r.returncode != 0 and "unknown node 'NOPE'" in r.stderr, r
    r = ctl("reload", "--dry-run")
    assert r.returncode != 0 and "--dry-run is for nodes" in r.stderr, r


def test_weighted_edges_take_the_cheapest_path(node_daemon, epics):
    """Issue 13, item 6: mod_weighted's SAFE->TOP weighs 10, so a request of TOP from SAFE goes
    SAFE -> A -> B -> TOP (weights 1, 0.5, 1), not straight to TOP; A and B each hold 0.3 s.
    guardctl states shows the weights that are not 1."""
    test_modules = os.path.normpath(os.path.join(systems_dir(), "..", "tests", "node"))
    d = node_daemon([("W", "mod_weighted", {})], systems=systems_dir() + ":" + test_modules)
    c = Client(epics, "W")
    assert wait_for(lambda: c.get("STATE") == "SAFE" and c.get("STATUS") == STATUS.index("DONE"),
                    5), c.get("STATE")
    target, state = c.monitor("TARGET"), c.monitor("STATE")
    c.put("REQUEST", "TOP")
    assert wait_for(lambda: c.get("STATE") == "TOP", 10), c.get("STATE")
    assert target.wait("TOP", 5)
    assert [v for v in state.values() if v != "SAFE"][:3] == ["A", "B", "TOP"], state.values()
    # TARGET is A only within the cycle that moves to A (SAFE is done): it shows B, then TOP
    seen = [v for v in target.values() if v != "SAFE"]
    assert "B" in seen and seen.index("B") < seen.index("TOP"), seen
    log = d.log_text()
    at = log.index("W calculating path: SAFE->TOP")
    assert log.index("W new target: A", at) < log.index("W EDGE: SAFE->A", at) \
        < log.index("W EDGE: A->B", at) < log.index("W EDGE: B->TOP", at), log[at:]
    assert "W EDGE: SAFE->TOP" not in log
    ctl = lambda *a: subprocess.run(  # noqa: E731
        [os.path.join(os.path.dirname(daemon_path()), "guardctl"), "--socket", d.socket] +
        list(a), capture_output=True, text=True, timeout=10)
    r = ctl("states", "W")
    assert r.returncode == 0, r
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[2:7]}
    assert "  TOP (weight 10) A" in lines["10"], lines
    assert "  B (weight 0.5)" in lines["20"], lines
    assert "  INIT (weight 3)" in lines["100"], lines
    r = ctl("--json", "states", "W")
    assert r.returncode == 0, r
    by = {s["name"]: s for s in json.loads(r.stdout)["states"]}
    assert by["SAFE"]["edges"] == ["TOP", "A"] and by["SAFE"]["weights"] == {"TOP": 10}
    assert by["TOP"]["edges"] == [] and by["TOP"]["weights"] == {"INIT": 3}
    assert by["INIT"]["weights"] == {}


def fnv1a64(path):
    h = 0xcbf29ce484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def list_line(ctl, node):
    r = ctl("list")
    assert r.returncode == 0, r
    return [line for line in r.stdout.splitlines() if line.startswith(node + " ")][0]


def test_a_module_changed_on_disk_shows_load_pending_until_a_load(node_daemon, epics, tmp_path):
    """Issue 13, modified not loaded: a module file whose content changed since the node loaded
    it shows LOAD_PENDING=True (MINOR), `modified` in guardctl list, the file, its hash and
    the change in guardctl status, and a line in the node's log; a touch alone does not; a
    LOAD clears it; a module file that is gone is pending too."""
    d, c, ctl, module, install = good_node_from_a_copy(node_daemon, epics, tmp_path)
    loaded_hash = fnv1a64(module)
    assert c.get("LOAD_PENDING") == 0 and severity(c, "LOAD_PENDING") == NO_ALARM
    r = ctl("status", "GOOD")
    assert "       Module: %s\n" % module in r.stdout, r.stdout
    assert "hash %s" % loaded_hash in r.stdout, r.stdout
    assert "modified on disk" not in r.stdout
    # A touch: the content is the same, so nothing is pending (checked every 2 s).
    later = time.time() + 100
    os.utime(module, (later, later))
    time.sleep(5)
    assert c.get("LOAD_PENDING") == 0, "a touch alone made it pending"
    assert "modified" not in list_line(ctl, "GOOD")
    install("mod_good_v2")
    assert wait_for(lambda: c.get("LOAD_PENDING") == 1, 10), "a changed module not noticed"
    assert severity(c, "LOAD_PENDING") == MINOR
    assert wait_for(lambda: "GOOD LOAD_PENDING: module changed on disk since it was loaded: %s"
                    % module in d.log_text(), 5), d.log_text()
    assert list_line(ctl, "GOOD").rstrip().endswith("modified"), list_line(ctl, "GOOD")
    r = ctl("status", "GOOD")
    assert "modified on disk since load (LOAD to run it)" in r.stdout, r.stdout
    assert "hash %s" % loaded_hash in r.stdout, "the hash of the code that runs: " + r.stdout
    assert c.get("STATE") == "UP", "the old code runs on"
    assert c.put_status("LOAD", "True") == ECA_NORMAL
    assert wait_for(lambda: c.get("LOAD_PENDING") == 0, 5), "a LOAD did not clear it"
    assert severity(c, "LOAD_PENDING") == NO_ALARM
    assert "modified" not in list_line(ctl, "GOOD")
    assert "hash %s" % fnv1a64(module) in ctl("status", "GOOD").stdout
    os.unlink(module)
    assert wait_for(lambda: c.get("LOAD_PENDING") == 1, 10), "a missing module not noticed"
    assert "GOOD LOAD_PENDING: module missing: %s" % module in d.log_text(), d.log_text()
    assert "module missing on disk" in ctl("status", "GOOD").stdout
    install("mod_good_v2")  # what runs, back: nothing pending, without a LOAD
    assert wait_for(lambda: c.get("LOAD_PENDING") == 0, 10)
    assert "GOOD LOAD_PENDING: cleared: %s holds the running code" % module in d.log_text()


def test_a_load_shows_request_set_inprogress_then_its_outcome(node_daemon, epics, tmp_path):
    """Issue 13: LOAD_STATUS goes REQUEST -> SET -> INPROGRESS -> DONE or ERROR, each value seen
    by a monitor, for a LOAD over CA and for guardctl reload NODE (which answers the outcome)."""
    d, c, ctl, module, install = good_node_from_a_copy(node_daemon, epics, tmp_path)
    status = c.monitor("LOAD_STATUS")
    assert wait_for(lambda: status.values() == [LOAD_STATUS.index("DONE")], 5), status.values()
    sequence = [LOAD_STATUS.index(v) for v in ("REQUEST", "SET", "INPROGRESS")]

    def load_seen(put, outcome):
        before = len(status.values())
        put()
        want = sequence + [LOAD_STATUS.index(outcome)]
        assert wait_for(lambda: len(status.values()) >= before + 4, 5), status.values()
        time.sleep(0.3)
        assert status.values()[before:] == want, status.values()[before:]

    install("mod_good_v2")
    load_seen(lambda: c.put_status("LOAD", "True") == ECA_NORMAL or pytest.fail("put"), "DONE")
    assert wait_for(lambda: c.get("STATE") == "UP", 5) and c.get("ACTIVE") == 1
    broken = module + ".broken"
    with open(broken, "wb") as f:
        f.write(b"not an ELF object\n")
    os.rename(broken, module)
    load_seen(lambda: c.put_status("LOAD", "True"), "ERROR")
    assert c.get("ACTIVE") == 0 and c.get("USERMSG").startswith("LOAD ERROR: ")
    install("mod_good")
    replies = []
    load_seen(lambda: replies.append(ctl("reload", "GOOD")), "DONE")
    assert replies[0].returncode == 0 and replies[0].stdout.rstrip().endswith("loaded"), replies
    assert c.get("ACTIVE") == 1 and "LOAD ERROR" not in c.get("USERMSG")
    install("mod_good_v3")  # the node's state UP is gone: refused (over CA never forced)
    load_seen(lambda: replies.append(ctl("reload", "GOOD")), "ERROR")
    assert replies[1].returncode == 1 and "LOAD refused" in replies[1].stdout, replies[1]
    r = ctl("reload", "GOOD", "--dry-run")
    time.sleep(0.3)
    assert r.returncode == 1 and status.values()[-1] == LOAD_STATUS.index("ERROR"), \
        "a dry run shows no phases: %r" % status.values()


# ---- refused writes ----

def test_refused_writes_fail_and_change_nothing(node_daemon, epics):
    d, c = start_sus(node_daemon, epics)
    watched = ["STATE", "REQUEST", "REQUEST_ENUM", "MODE", "OP", "LOAD", "STATUS"]
    mons = {s: c.monitor(s) for s in watched}
    refused = [
        ("REQUEST", "NOSUCH"), ("REQUEST", "aligned"), ("REQUEST", ""),
        ("REQUEST_ENUM", ("enum", len(SUS_MENU))), ("REQUEST_ENUM", ("enum", 65535)),
        ("REQUEST_ENUM", "TRIPPED"),  # a state, but not in the menu
        ("MODE", ("enum", 3)), ("MODE", "BOGUS"), ("MODE", 7),
        ("OP", ("enum", 3)), ("OP", "RUN"),
        ("LOAD", ("enum", 2)),
    ]
    for suffix, value in refused:
        st = c.put_status(suffix, value)
        assert st == ECA_PUTFAIL, "put of %r to %s: status %d, expected ECA_PUTFAIL" \
            % (value, suffix, st)
    for suffix in ("STATE", "STATE_N", "OK", "EXECTIME", "STATUS", "NOMINAL"):
        assert not c.ca.write_access(c.chan(suffix)), "%s is writable" % suffix
        value = "SAFE" if PART_A[suffix][0] == STRING else 1
        assert c.put_status(suffix, value) == ECA_NOWTACCESS, suffix
    time.sleep(0.5)
    changed = {s: m.values() for s, m in mons.items() if len(m.updates) != 1}
    assert not changed, "refused writes changed channels: %r" % changed
    assert c.get("REQUEST") == "ALIGNED" and c.get("REQUEST_N") == 1000
    assert c.get("STATE") == "ALIGNED" and c.get("OK") == 1
    assert (c.get("MODE"), c.get("OP")) == (MODE.index("AUTO"), OP.index("EXEC"))
    log = d.log_text()
    for word in ("REQUEST:", "MODE:", "OP:", "LOAD"):
        assert "SUS_ETMX " + word not in log, "a refused write reached the node: %s" % word

    # The same channels accept good values (so the checks above can fail).
    assert c.put_status("REQUEST", "SAFE") == ECA_NORMAL
    assert mons["STATE"].wait("SAFE", 10)
    assert "SUS_ETMX REQUEST: SAFE" in d.log_text()


# ---- the channel set ----

def test_channels_have_part_a_types_enums_units_and_access(node_daemon, epics):
    nodes = [SUS, ("BENCH1", "bench", {"period": "0.2"}), ("IFO", "ifo", {"nodes": "SUS_ETMX"})]
    node_daemon(nodes)
    version = guardiand_version()
    menus = {"SUS_ETMX": SUS_MENU, "BENCH1": ["IDLE", "STEP_A"], "IFO": ["ALL_OK"]}
    for node in menus:
        c = Client(epics, node)
        for suffix, (ftype, enums, writable) in PART_A.items():
            chid = c.chan(suffix)
            name = c.name(suffix)
            assert c.ca.field_type(chid) == ftype, "%s: native type %d" % (name,
                                                                           c.ca.field_type(chid))
            assert c.ca.element_count(chid) == 1, name
            assert c.ca.read_access(chid), name
            assert bool(c.ca.write_access(chid)) == writable, "%s: write access" % name
            if ftype == ENUM:
                want = menus[node] if enums == "menu" else enums
                got = list(c.ctrl(suffix)["enum_strs"])
                assert got == want, "%s: enum strings %r" % (name, got)
                assert 0 <= c.get(suffix) < len(want)
        for suffix in ("EXECTIME", "EXECTIME_LAST"):
            ctrl = c.ctrl(suffix)
            assert ctrl["units"] == "seconds" and ctrl["precision"] == 3, (suffix, ctrl)
            assert c.get(suffix) >= 0
        assert c.get("VERSION") == version
        assert c.get("MANAGER") == "" and c.get("CRASHES") == 0 and c.get("QUARANTINED") == 0
        assert c.get("LOAD") == 0 and c.get("LOAD_STATUS") == 0
        loaded = calendar.timegm(time.strptime(c.get("LOAD_TIME"), "%Y-%m-%d %H:%M:%SZ"))
        assert abs(loaded - time.time()) < 60, c.get("LOAD_TIME")
        for trio in ("REQUEST", "STATE", "TARGET", "NOMINAL"):
            assert c.get(trio) == c.get(trio + "_S"), trio
    bench = Client(epics, "BENCH1")
    assert bench.get("NOMINAL") == "" and bench.get("NOMINAL_N") == -1, "bench has no nominal"
    assert bench.get("OK") == 0
    sus = Client(epics, "SUS_ETMX")
    assert sus.get("NOMINAL_N") == 1000 and sus.get("REQUEST_N") == 1000


def test_supervisor_channels(node_daemon, epics):
    nodes = [SUS] + [("BENCH%d" % i, "bench", {"period": "0.1"}) for i in range(3)]
    started = time.monotonic()
    d = node_daemon(nodes)
    c = Client(epics, ifo="X1")
    sup = "X1:GUARDIAND-"
    want = {"NODES": (LONG, None, None), "LOOP_UTIL": (DOUBLE, "%", 1),
            "JITTER_P50": (DOUBLE, "ms", 3), "JITTER_P99": (DOUBLE, "ms", 3),
            "JITTER_MAX": (DOUBLE, "ms", 3), "OVERRUNS": (LONG, None, None),
            "SKIPPED_CYCLES": (LONG, None, None), "UPTIME": (DOUBLE, "s", 0),
            "VERSION": (STRING, None, None), "RATE": (DOUBLE, "Hz", 2),
            "CA_CLIENTS": (LONG, None, None), "CA_CHANNELS": (LONG, None, None)}
    for suffix, (ftype, units, prec) in want.items():
        chid = c.chan(sup + suffix)
        assert c.ca.field_type(chid) == ftype, suffix
        assert not c.ca.write_access(chid), suffix
        if units is not None:
            ctrl = c.ctrl(sup + suffix)
            assert (ctrl["units"], ctrl["precision"]) == (units, prec), (suffix, ctrl)
    uptime = c.monitor(sup + "UPTIME")
    assert c.get(sup + "NODES") == 4
    assert c.get(sup + "VERSION") == guardiand_version()
    assert c.get(sup + "RATE") == 16.0
    # The figures are refreshed once a second.
    assert wait_for(lambda: len(uptime.updates) >= 3, 5), "UPTIME refreshed %d times in 5 s" \
        % len(uptime.updates)
    ups = uptime.values()
    assert ups == sorted(ups) and ups[-1] - ups[0] >= 1.5
    assert ups[-1] <= time.monotonic() - started
    assert 0.0 <= c.get(sup + "LOOP_UTIL") <= 100.0
    p50, p99, pmax = (c.get(sup + s) for s in ("JITTER_P50", "JITTER_P99", "JITTER_MAX"))
    assert 0.0 <= p50 <= p99 <= pmax < 5000.0, (p50, p99, pmax)
    assert c.get(sup + "OVERRUNS") >= 0 and c.get(sup + "SKIPPED_CYCLES") >= 0
    assert wait_for(lambda: c.get(sup + "CA_CLIENTS") >= 1, 3)
    assert wait_for(lambda: c.get(sup + "CA_CHANNELS") >= len(want), 3)
    assert d.alive()


# ---- start-up and single runs ----

def test_a_missing_system_module_leaves_the_other_nodes_running(node_daemon, epics):
    test_modules = os.path.normpath(os.path.join(systems_dir(), "..", "tests", "node"))
    nodes = [SUS, ("GHOST", "no_such_system", {}), ("BENCH1", "bench", {}),
             ("BROKEN", "mod_noinit", {})]  # a module without INIT (or absent): refused
    d = node_daemon(nodes, systems=systems_dir() + ":" + test_modules)
    ready = d.ready_line()
    assert ready and re.search(r"\b2 nodes \(2 failed\)", ready), ready
    log = d.log_text()
    assert re.search(r"node GHOST: system no_such_system: no no_such_system\.so", log), log
    assert re.search(r"node BROKEN: .*the other nodes run", log), log
    c = Client(epics)
    assert c.get("STATE") in ("INIT", "TRIPPED")
    assert Client(epics, "BENCH1").get("REQUEST") == "STEP_A"
    assert Client(epics, "X1").get("X1:GUARDIAND-NODES") == 2
    assert not c.connects("X1:GRD-GHOST_STATE", 1.5), "a node that failed has channels"
    assert not c.connects("X1:GRD-BROKEN_STATE", 0.5)
    # Issue 12, item 4: failed, not "stopped", with the reason, and counted.
    ctl = lambda *a: subprocess.run(  # noqa: E731
        [os.path.join(os.path.dirname(daemon_path()), "guardctl"), "--socket", d.socket] +
        list(a), capture_output=True, text=True, timeout=10).stdout
    listed = {line.split()[0]: line for line in ctl("list").splitlines()[1:] if line.strip()}
    assert "(failed)" in listed["GHOST"] and "(failed)" in listed["BROKEN"], listed
    status = ctl("status", "GHOST")
    assert "GHOST - no_such_system (FAILED to start, enabled)" in status, status
    assert "Failed: node GHOST: system no_such_system: no no_such_system.so" in status, status
    assert "2 running, 4 registered, 2 failed to start, 0 quarantined" in ctl("status")
    assert "stopped (it had failed to start)" in ctl("stop", "GHOST")
    assert "(stopped)" in ctl("list"), "an operator's stop: not tried again, not failed"


def run_env(port, beacon):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env.update({"EPICS_CAS_SERVER_PORT": str(port), "EPICS_CAS_BEACON_PORT": str(beacon),
                "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1"})
    return env


def test_run_a_single_state_without_channels():
    port, beacon = free_ports()
    run = [daemon_path(), "--run", "--simulate-plant", "--systems", systems_dir()]
    r = subprocess.run(run + ["sus", "SAFE", "optic=ETMX"], env=run_env(port, beacon),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert "SUS executing state: SAFE (10)" in r.stdout
    assert "[SAFE.main] ezca: X1:SUS-ETMX_M0_DAMP_P_GAIN => 0" in r.stdout
    assert "ready" not in r.stderr and "executing state: DAMPED" not in r.stdout

    # Without its optic the state cannot do its work: an error, not success.
    r = subprocess.run(run + ["sus", "SAFE"], env=run_env(port, beacon), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r
    assert "ERROR in [SAFE.check]: argument optic=<NAME> missing" in r.stdout

    for args, why in ((["sus", "NOSUCH", "optic=ETMX"], "no state NOSUCH"),
                      (["no_such_system", "SAFE"], "no no_such_system.so"),
                      (["sus"], "needs SYSTEM and STATE")):
        r = subprocess.run(run + args, env=run_env(port, beacon), capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and why in r.stderr, (args, r)


def sockets_of(pid):
    fds = "/proc/%d/fd" % pid
    out = []
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)).startswith("socket:"):
                out.append(fd)
        except OSError:
            pass
    return out


def test_run_of_a_path_serves_no_channels_and_ends_on_sigterm(tmp_path):
    """A bench path takes seconds (a one-second timer per state): while it runs there is no
    socket at all; SIGTERM ends it with 128 + 15, like a shell would report."""
    port, beacon = free_ports()
    log = tmp_path / "run.log"
    with open(log, "w") as f:
        p = subprocess.Popen([daemon_path(), "--run", "--systems", systems_dir(), "bench",
                              "INIT", "STEP_C"], env=run_env(port, beacon),
                             stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    try:
        assert wait_for(lambda: "executing state: STEP_A" in log.read_text(), 10), \
            log.read_text()
        assert p.poll() is None
        assert sockets_of(p.pid) == [], "a --run opened sockets"
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))  # nobody serves the CA port
        p.send_signal(signal.SIGTERM)
        code = p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert code == 128 + signal.SIGTERM, log.read_text()
    assert "ready" not in log.read_text()


def test_run_of_a_path_ends_at_a_jump():
    """INIT finds the simulated watchdog tripped (0) and jumps to TRIPPED: the path asked for
    is left, so the run ends with status 1 (Guardian's rule), without waiting."""
    port, beacon = free_ports()
    r = subprocess.run([daemon_path(), "--run", "--simulate-plant", "--systems", systems_dir(),
                        "sus", "INIT", "SAFE", "optic=ETMX"], env=run_env(port, beacon), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r
    assert "JUMP: INIT->TRIPPED" in r.stdout and "jumped INIT->TRIPPED" in r.stderr, r


def test_run_names_only_the_state_that_is_not_there():
    """Issue 12, item 19: `--run sus INIT ALIGND` blamed INIT too."""
    port, beacon = free_ports()
    base = [daemon_path(), "--run", "--simulate-plant", "--systems", systems_dir(), "sus"]
    for states, said in ((["INIT", "ALIGND"], "no state ALIGND in system sus"),
                         (["INTI", "ALIGNED"], "no state INTI in system sus"),
                         (["INTI", "ALIGND"], "no state INTI or ALIGND in system sus")):
        r = subprocess.run(base + states + ["optic=ETMX"], env=run_env(port, beacon),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and said in r.stderr, (states, r.stderr)


def test_run_without_a_path_to_the_request_fails_at_once():
    """Issue 13, item 2: TRIPPED has no edge in (only jumps reach it). The run used to log a path
    from INIT and start; it fails at once naming both states, without starting a node."""
    port, beacon = free_ports()
    r = subprocess.run([daemon_path(), "--run", "--simulate-plant", "--systems", systems_dir(),
                        "sus", "SAFE", "TRIPPED", "optic=ETMX"], env=run_env(port, beacon),
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r
    assert "SUS: no path from SAFE to TRIPPED in system sus" in r.stderr, r
    assert "calculating path: INIT" not in r.stdout + r.stderr, r
    assert "executing state" not in r.stdout, r
    # The other way round there is a path (TRIPPED->SAFE): the check does not refuse it.
    r = subprocess.run([daemon_path(), "--run", "--simulate-plant", "--systems", systems_dir(),
                        "sus", "SAFE", "SAFE", "optic=ETMX"], env=run_env(port, beacon),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "no path" not in r.stderr, r
