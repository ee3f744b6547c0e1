"""test_guardsim.py — guardsim, the plant simulator (sim/), seen through pyepics (issue 9).

Two guardsims serve the module over free 127.0.0.1 ports, each with the same site file layout
but its own IFO, so one pyepics context reaches both (EPICS_CA_ADDR_LIST names both ports):
  X1  the steady plant: no random trips, --tau 0.5, --change 0.5 (channels, writes, filters)
  X2  a tripping plant: --trip-rate 3600 (one a second per optic), --trip-reset 0.4
Other tests start guardsims of their own without CA clients (seeds, options, site files,
signals). The binary is guardsim beside $GUARDIAND (build/bin, build/asan/bin), or $GUARDSIM.

Only pyepics' channel-level API (epics.ca) is used (see test_nodes.py for why), and the
pyepics context is reset before and after the module, so the other modules' daemons are
unaffected. Every wait is bounded and polls.
"""
import math
import os
import re
import signal
import subprocess
import time

import pytest

import harness
from harness import (CHAR, DOUBLE, ECA_NOWTACCESS, ECA_PUTFAIL,  # noqa: F401
                     ENUM, EPICS_CLIENT_VARS, LONG, STRING, free_ports, reset_pyepics, run_sim, sim_path, wait_for, write_site)
from harness import CaClient as Client

TAU = 0.5
CHANGE = 0.5
RATE = 16
TRIP_RESET = 0.4

# The site file of both module plants: two optics (one twice), two bench nodes, one chan=,
# and a node of a system guardsim has nothing to serve for.
NODES = [
    ("SUS_ETMX", "sus", {"optic": "ETMX"}),
    ("SUS_ITMY", "sus", {"optic": "ITMY", "gain": "2"}),
    ("SUS_ETMX_SPARE", "sus", {"optic": "ETMX"}),
    ("B1", "bench", {"reads": "3", "writes": "2", "chan": "PEM-EX_TEMP"}),
    ("B2", "bench", {"reads": "2", "writes": "1", "period": "0.5"}),
    ("IFO", "ifo", {"nodes": "SUS_ETMX,SUS_ITMY"}),
]
SUS_SUFFIXES = {  # suffix: (type, writable, units)
    "WD_STATE": (ENUM, True, None),
    "M0_DAMP_P_GAIN": (DOUBLE, True, None),
    "M0_DAMP_Y_GAIN": (DOUBLE, True, None),
    "M0_DAMP_L_GAIN": (DOUBLE, True, None),
    "M0_OPTICALIGN_P_OFFSET": (DOUBLE, True, "urad"),
    "M0_OPTICALIGN_Y_OFFSET": (DOUBLE, True, "urad"),
    "M0_OPTICALIGN_P_OUTPUT": (DOUBLE, False, "urad"),
    "M0_OPTICALIGN_Y_OUTPUT": (DOUBLE, False, "urad"),
}
GAINS = ["M0_DAMP_P_GAIN", "M0_DAMP_Y_GAIN", "M0_DAMP_L_GAIN"]
# name: (type, count, writable, value)
TEST_CHANNELS = {
    "SIM-TEST_DOUBLE": (DOUBLE, 1, True, 0.0),
    "SIM-TEST_RO": (DOUBLE, 1, False, 1.5),
    "SIM-TEST_STRING": (STRING, 1, True, "hello"),
    "SIM-TEST_CHARS": (CHAR, 40, True, "char array text"),
    "SIM-TEST_ARRAY": (DOUBLE, 8, True, [1, 2, 3, 4, 5, 6, 7, 8]),
    "SIM-TEST_ENUM": (ENUM, 1, True, 0),
    "SIM-TEST_LONG": (LONG, 1, True, 0),
}
IN_CHANNELS = ["BENCH-B1_IN0", "BENCH-B1_IN1", "BENCH-B1_IN2", "BENCH-B2_IN0", "BENCH-B2_IN1"]
OUT_CHANNELS = ["BENCH-B1_OUT0", "BENCH-B1_OUT1", "BENCH-B2_OUT0"]
# 7 test channels, 2 optics x 8, 5 IN, 3 OUT, 1 chan=
N_CHANNELS = len(TEST_CHANNELS) + 2 * len(SUS_SUFFIXES) + len(IN_CHANNELS) + len(OUT_CHANNELS) + 1

TRIP_LINE = re.compile(r"guardsim: t=([0-9.]+) (trip|reset) (\S+): (.*)")


class Sim(harness.Sim):
    """A guardsim whose trip and reset lines can be read back."""

    def events(self):
        """The trip and reset lines: (t, kind, channel, rest), in the order of t."""
        return sorted((float(m.group(1)), m.group(2), m.group(3), m.group(4))
                      for m in TRIP_LINE.finditer(self.log_text()))


# ---- the module's two plants and their client ----

@pytest.fixture(scope="module")
def plants(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guardsim")
    steady = Sim(write_site(folder, NODES, "X1", "x1.ini"),
                 ["--tau", str(TAU), "--change", str(CHANGE), "--rate", str(RATE)])
    tripping = Sim(write_site(folder, NODES, "X2", "x2.ini"),
                   ["--trip-rate", "3600", "--trip-reset", str(TRIP_RESET), "--rate", "50",
                    "--seed", "7", "--change", "0"])
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    started = []
    try:
        for s in (steady, tripping):
            s.start()
            started.append(s)
        os.environ.update({
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_ADDR_LIST": "127.0.0.1:%d 127.0.0.1:%d" % (steady.port, tripping.port),
            "EPICS_CA_REPEATER_PORT": str(steady.beacon_port),
        })
        for k in ("EPICS_CA_SERVER_PORT", "EPICS_CA_NAME_SERVERS"):
            os.environ.pop(k, None)
        reset_pyepics()
        yield {"X1": steady, "X2": tripping}
    finally:
        reset_pyepics()  # our circuits close before the plants go
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        problems = []
        for s in started:
            alive = s.proc.poll() is None
            log = s.log_text()
            code = s.stop()
            if not alive or code != 0:
                problems.append("guardsim %s (exit %s after SIGTERM, expected 0):\n%s"
                                % ("died" if not alive else "stopped badly", code, log[-4000:]))
        assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def client(plants):
    import epics
    return Client(epics)


# ---- the channel set ----

def test_ready_line_counts_the_channels_on_the_given_port(plants):
    for s in plants.values():
        assert s.ready_line() == "guardsim: ready: %d channels on port %d" % (N_CHANNELS, s.port)


def test_suspension_channels(client):
    for optic in ("ETMX", "ITMY"):
        for suffix, (ftype, writable, units) in SUS_SUFFIXES.items():
            name = "X1:SUS-%s_%s" % (optic, suffix)
            chid = client.chan(name)
            assert client.ca.field_type(chid) == ftype, name
            assert client.ca.element_count(chid) == 1, name
            assert client.ca.read_access(chid), name
            assert bool(client.ca.write_access(chid)) == writable, "%s: write access" % name
            ctrl = client.ctrl(name)
            if ftype == ENUM:
                assert list(ctrl["enum_strs"]) == ["TRIPPED", "OK"], name
                assert client.get(name) == 1, "%s starts OK" % name
            else:
                assert client.get(name) == 0.0, name
                assert ctrl["precision"] == 3, name
            if units:
                assert ctrl["units"] == units, name
    assert not client.connects("X1:SUS-IFO_WD_STATE"), "an ifo node got a suspension"


def test_bench_channels(client):
    for name in IN_CHANNELS + OUT_CHANNELS + ["PEM-EX_TEMP"]:
        chid = client.chan("X1:" + name)
        assert client.ca.field_type(chid) == DOUBLE, name
        assert client.ca.element_count(chid) == 1, name
        assert bool(client.ca.write_access(chid)) == ("_IN" not in name), name
    for name in ("BENCH-B1_IN3", "BENCH-B2_OUT1"):
        assert not client.connects("X1:" + name), name


def test_test_channels(client):
    for name, (ftype, count, writable, value) in TEST_CHANNELS.items():
        full = "X1:" + name
        chid = client.chan(full)
        assert client.ca.field_type(chid) == ftype, name
        assert client.ca.element_count(chid) == count, name
        assert bool(client.ca.write_access(chid)) == writable, name
        if ftype == CHAR:
            # The text and its NUL (a read of all 40 gets zeros after them).
            raw = bytes(int(x) for x in client.get(full))
            assert raw == value.encode() + b"\0", raw
            raw = bytes(int(x) for x in client.get(full, count=40))
            assert raw == value.encode() + bytes(40 - len(value)), raw
        elif count > 1:
            assert list(client.get(full)) == value, name
        else:
            assert client.get(full) == value, name
    assert list(client.ctrl("X1:SIM-TEST_ENUM")["enum_strs"]) == ["ZERO", "ONE", "TWO", "THREE"]


def test_writes_are_stored(client):
    writes = [("SIM-TEST_DOUBLE", 2.25, 2.25), ("SIM-TEST_STRING", "bye", "bye"),
              ("SIM-TEST_ENUM", "TWO", 2), ("SIM-TEST_ENUM", 3, 3), ("SIM-TEST_LONG", -7, -7),
              ("BENCH-B1_OUT1", 4.5, 4.5), ("PEM-EX_TEMP", 21.0, 21.0),
              ("SUS-ETMX_M0_DAMP_Y_GAIN", 0.75, 0.75)]
    for name, value, want in writes:
        client.put("X1:" + name, value)
        assert client.get("X1:" + name) == want, name
    client.ca.put(client.chan("X1:SIM-TEST_ARRAY"), [8.0, 7.0, 6.0], wait=True, timeout=5)
    assert list(client.get("X1:SIM-TEST_ARRAY", count=3)) == [8.0, 7.0, 6.0]
    client.ca.put(client.chan("X1:SIM-TEST_CHARS"), "new text", wait=True, timeout=5)
    assert client.get("X1:SIM-TEST_CHARS", as_string=True) == "new text"
    client.put("X1:SUS-ETMX_M0_DAMP_Y_GAIN", 0.0)


def test_refused_writes_change_nothing(client):
    for name in ["X1:SIM-TEST_RO", "X1:SUS-ETMX_M0_OPTICALIGN_P_OUTPUT",
                 "X1:SUS-ITMY_M0_OPTICALIGN_Y_OUTPUT"] + ["X1:" + n for n in IN_CHANNELS[:2]]:
        before = client.get(name)
        assert not client.ca.write_access(client.chan(name)), name
        assert client.put_status(name, 3.0) == ECA_NOWTACCESS, name
        if "_IN" not in name:  # IN channels move by themselves
            assert client.get(name) == before, name
    # Values the channels refuse: out of the enum, non-finite or huge set points.
    for name, value in [("SUS-ITMY_WD_STATE", 2), ("SUS-ITMY_WD_STATE", "BROKEN"),
                        ("SIM-TEST_ENUM", 4),
                        ("SUS-ITMY_M0_OPTICALIGN_P_OFFSET", float("nan")),
                        ("SUS-ITMY_M0_OPTICALIGN_Y_OFFSET", float("inf")),
                        ("SUS-ITMY_M0_OPTICALIGN_Y_OFFSET", 1e7)]:
        assert client.put_status("X1:" + name, value) == ECA_PUTFAIL, (name, value)
    assert client.get("X1:SUS-ITMY_WD_STATE") == 1
    assert client.get("X1:SUS-ITMY_M0_OPTICALIGN_P_OFFSET") == 0.0
    assert client.get("X1:SUS-ITMY_M0_OPTICALIGN_Y_OFFSET") == 0.0


# ---- the plant moving ----

def test_output_follows_offset_with_the_time_constant(client):
    out = client.monitor("X1:SUS-ETMX_M0_OPTICALIGN_P_OUTPUT")
    other = client.monitor("X1:SUS-ETMX_M0_OPTICALIGN_Y_OUTPUT")
    target = 10.0
    put_at = time.time()
    client.put("X1:SUS-ETMX_M0_OPTICALIGN_P_OFFSET", target)
    assert wait_for(lambda: out.latest() > 0.95 * target, 10 * TAU), out.updates[-5:]
    moving = [(v, ts) for v, ts in list(out.updates) if 0 < v < target]
    assert moving, out.updates
    assert moving[0][1] - put_at < 3.0 / RATE + 0.5, "the output started late"
    assert all(b[0] > a[0] for a, b in zip(moving, moving[1:])), "not monotonic"
    # About one update a tick.
    span = moving[-1][1] - moving[0][1]
    assert len(moving) >= 0.5 * span * RATE, (len(moving), span)
    # A first-order lag: ln(target - v) falls with slope -1/tau. Two points well apart.
    lo = min(moving, key=lambda u: abs(u[0] - 0.3 * target))
    hi = min(moving, key=lambda u: abs(u[0] - 0.9 * target))
    tau = (hi[1] - lo[1]) / math.log((target - lo[0]) / (target - hi[0]))
    assert tau == pytest.approx(TAU, rel=0.15), "time constant %.3f s, expected %.3f" % (tau, TAU)
    assert other.values() == [0.0], "the Y output moved"
    # Back to 0, so that the plant ends as it started.
    client.put("X1:SUS-ETMX_M0_OPTICALIGN_P_OFFSET", 0.0)
    assert wait_for(lambda: abs(out.latest()) < 0.01, 10 * TAU), out.updates[-5:]


def test_operator_trips_and_resets_the_watchdog(plants, client):
    wd = "X1:SUS-ITMY_WD_STATE"
    for g in GAINS:
        client.put("X1:SUS-ITMY_" + g, 1.5)
    client.put(wd, 0)
    assert client.get(wd) == 0
    assert [client.get("X1:SUS-ITMY_" + g) for g in GAINS] == [0, 0, 0]
    client.put(wd, "OK")
    assert client.get(wd) == 1
    assert [client.get("X1:SUS-ITMY_" + g) for g in GAINS] == [0, 0, 0], "a reset sets gains"
    assert wait_for(lambda: len([e for e in plants["X1"].events() if "ITMY" in e[2]]) == 2, 5)
    (_, k1, c1, r1), (_, k2, c2, r2) = [e for e in plants["X1"].events() if "ITMY" in e[2]]
    assert (k1, c1, k2, c2) == ("trip", wd, "reset", wd)
    assert r1.startswith("TRIPPED by ") and r2.startswith("OK by "), (r1, r2)
    # No random trips on this plant.
    assert all("ITMY" in e[2] for e in plants["X1"].events())


def test_random_trips_zero_the_gains_and_reset_by_themselves(client):
    """On X2 each optic trips about once a second and resets 0.4 s later. Gains set while the
    watchdog is OK must be 0 after the next trip (a write that raced the trip is retried)."""
    wd = client.monitor("X2:SUS-ETMX_WD_STATE")
    gains = {g: client.monitor("X2:SUS-ETMX_" + g) for g in GAINS}
    checked = 0
    deadline = time.monotonic() + 30
    while checked < 2 and time.monotonic() < deadline:
        assert wait_for(lambda: wd.latest() == 1, 5), "the watchdog did not reset itself"
        seen = len(wd.updates)  # before the writes: a trip during them must be seen
        for g in GAINS:
            client.put("X2:SUS-ETMX_" + g, 2.0)
        written = time.time()
        assert wait_for(lambda: any(v == 0 for v, _ in wd.updates[seen:]), 15), "no trip"
        trip_ts = next(ts for v, ts in wd.updates[seen:] if v == 0)
        if trip_ts <= written:
            continue  # it tripped while we were writing: try again
        assert wait_for(lambda: all(m.latest() == 0 for m in gains.values()), 1), \
            "a trip left the gains %r" % {g: m.latest() for g, m in gains.items()}
        # The same tick zeroed them.
        for g, m in gains.items():
            zero_ts = next(ts for v, ts in reversed(m.updates) if v == 0)
            assert abs(zero_ts - trip_ts) < 0.05, (g, zero_ts - trip_ts)
        checked += 1
    assert checked == 2, "no clean trip within 30 s"
    # Every trip was followed by its reset, TRIP_RESET later, and the gains stayed 0.
    ups = list(wd.updates)
    pairs = [(a[1], b[1]) for a, b in zip(ups, ups[1:]) if a[0] == 0 and b[0] == 1]
    assert pairs
    for t_trip, t_reset in pairs:
        assert t_reset - t_trip == pytest.approx(TRIP_RESET, abs=0.2), (t_trip, t_reset)


def test_in_channels_change_at_the_requested_share(client):
    mons = [client.monitor("X1:" + n) for n in IN_CHANNELS]
    outs = [client.monitor("X1:" + n) for n in OUT_CHANNELS[:2]]
    start = [len(m.updates) for m in mons]
    seconds = 3.0
    time.sleep(seconds)
    changes = sum(len(m.updates) - s for m, s in zip(mons, start))
    expected = CHANGE * len(IN_CHANNELS) * RATE * seconds
    assert 0.5 * expected <= changes <= 1.3 * expected, (changes, expected)
    assert all(len(m.updates) - s > 0 for m, s in zip(mons, start)), "an IN channel never moved"
    values = [v for m in mons for v in m.values()[1:]]
    assert len(set(values)) > 0.9 * len(values), "new values repeat"
    assert all(len(m.updates) == 1 for m in outs), "OUT channels moved by themselves"


# ---- runs of their own ----

def test_same_seed_same_trips(tmp_path):
    """Two runs with one seed trip the same optics at the same sim times; another seed does
    not. (No clients: the trips and resets are all on stdout.)"""
    site = write_site(tmp_path, NODES, "X3")
    args = ["--trip-rate", "36000", "--trip-reset", "0.2", "--rate", "40"]
    sims = [Sim(site, args + ["--seed", seed]).start() for seed in ("42", "42", "43")]
    try:
        assert wait_for(lambda: all(len(s.events()) >= 40 for s in sims), 20), \
            [len(s.events()) for s in sims]
    finally:
        codes = [s.stop() for s in sims]
    assert codes == [0, 0, 0], codes
    runs = [s.events() for s in sims]
    horizon = min(r[-1][0] for r in runs) - 0.1  # every run has logged everything before this
    a, b, c = ([e for e in r if e[0] < horizon] for r in runs)
    assert len(a) >= 20
    assert a == b, "the same seed gave different trips"
    assert a != c, "another seed gave the same trips"
    assert {e[2] for e in a} == {"X3:SUS-ETMX_WD_STATE", "X3:SUS-ITMY_WD_STATE"}
    assert any(e[1] == "reset" and e[3] == "OK (automatic)" for e in a)


def test_bad_options_exit_2_with_a_message(tmp_path):
    site = write_site(tmp_path, NODES)
    cases = [
        ([], "--config"),
        (["--config", site, "--rate", "0"], "--rate"),
        (["--config", site, "--tau", "-1"], "--tau"),
        (["--config", site, "--trip-rate", "x"], "--trip-rate"),
        (["--config", site, "--trip-reset", "-5"], "--trip-reset"),
        (["--config", site, "--seed", "-1"], "--seed"),
        (["--config", site, "--change", "1.5"], "--change"),
        (["--config", site, "--port", "70000"], "--port"),
        (["--config", site, "--bogus"], "bogus"),
        (["--config", site, "extra"], "extra"),
    ]
    for args, word in cases:
        code, err = run_sim(args)
        assert code == 2, (args, code, err)
        assert word in err and "guardsim" in err, (args, err)


def test_help_lists_the_channels():
    p = subprocess.run([sim_path(), "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    for word in ("--trip-rate", "WD_STATE", "OPTICALIGN", "BENCH-X_IN0", "SIM-TEST_DOUBLE", "_CHARS"):
        assert word in p.stdout, word


@pytest.mark.parametrize("args, words", [
    ({"reads": "abc"}, ["reads", "'abc'"]),
    ({"reads": "1001"}, ["reads", "1001"]),
    ({"writes": "-1"}, ["writes", "'-1'"]),
    ({"reads": "2", "writes": "1 2"}, ["writes"]),
    ({"chan": "BAD NAME"}, ["chan"]),
])
def test_bad_bench_arguments_exit_1(tmp_path, args, words):
    site = write_site(tmp_path, [("SUS_A", "sus", {"optic": "A"}), ("BX", "bench", args)])
    code, err = run_sim(["--config", site, "--port", str(free_ports()[0])])
    assert code == 1, (code, err)
    assert "node BX" in err and "site.ini:" in err, err
    for w in words:
        assert w in err, err


def test_bad_site_files_exit_1(tmp_path):
    port = str(free_ports()[0])  # never the default port, should one of them start
    code, err = run_sim(["--config", str(tmp_path / "missing.ini"), "--port", port])
    assert code == 1 and "missing.ini" in err, err
    site = write_site(tmp_path, [("SUS_A", "sus", {"gain": "1"})])
    code, err = run_sim(["--config", site, "--port", port])
    assert code == 1 and "node SUS_A" in err and "optic" in err, err
    site = write_site(tmp_path, [("SUS_A", "sus", {"optic": "A/B"})])
    code, err = run_sim(["--config", site, "--port", port])
    assert code == 1 and "optic" in err, err
    with open(site, "w") as f:
        f.write("[guardiand]\nifo = x1\n")
    code, err = run_sim(["--config", site, "--port", port])
    assert code == 1 and "ifo" in err, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_it_cleanly(tmp_path, sig):
    s = Sim(write_site(tmp_path, NODES), ["--quiet"]).start()
    log = s.log_text()
    code = s.stop(sig)
    assert code == 0, "exit %s after signal %d:\n%s" % (code, sig, log)
