"""test_pyepics.py — guardiand served to pyepics (Debian's python3-pyepics over Debian's libca).

Run with /usr/bin/python3 -m pytest (pyepics is installed for the system python only). One
daemon serves the whole session (harness.py), so a test that writes restores what it changed.
Expected values come from docs/demo-pvs.md. Every wait is bounded.

Monitored PVs are never disconnect()ed: with pyepics 3.4.1, PV.disconnect() while libca's
receive thread is delivering an update can crash the interpreter (SIGSEGV in
PyObject_GetItem under oldSubscription::current, seen with DEMO:EXECTIME at 16 Hz). The
tests only remove their callbacks; pyepics clears every channel at the end of the session.
"""
import ctypes
import struct
import time

import pytest

from harness import DEMO_COUNT, daemon, epics, wait_for  # noqa: F401  (pytest fixtures)


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


# name: (initial value, text pyepics shows with as_string=True or None)
SCALARS = {
    "DEMO:STRING": ("hello", "hello"),
    "DEMO:SHORT": (7, "7"),
    "DEMO:FLOAT": (1.5, "1.500"),
    "DEMO:ENUM": (0, "OFF"),
    "DEMO:CHAR": (65, None),
    "DEMO:LONG": (42, "42"),
    "DEMO:DOUBLE": (3.14159, "3.1416"),
    "DEMO:RO": (1.0, None),
    "DEMO:REJECT": (0, "0"),
    "DEMO:GROUP": (1, "PRESENT"),
    "DEMO:G:A": (0.0, None),
    "DEMO:G:B": (1, "1"),
}


@pytest.mark.parametrize("name", sorted(SCALARS))
def test_caget_scalar(epics, name):
    value, text = SCALARS[name]
    got = epics.caget(name, timeout=5)
    if isinstance(value, float):
        assert got == pytest.approx(value, rel=1e-6)
    else:
        assert got == value
    if text is not None:
        assert epics.caget(name, as_string=True, timeout=5) == text


def as_kind(kind, v):
    """A numeric value read as DBR value type `kind` (0..6), as a server converts it."""
    if kind in (1, 3, 4, 5):
        return int(v)
    if kind == 2:
        return f32(v)
    return v


@pytest.mark.parametrize("name", ["DEMO:SHORT", "DEMO:FLOAT", "DEMO:ENUM", "DEMO:CHAR",
                                  "DEMO:LONG", "DEMO:DOUBLE", "DEMO:G:B"])
def test_get_every_dbr_type(epics, name):
    """Plain, TIME and CTRL reads of every value type. (pyepics 3.4.1 cannot unpack the STS
    and GR families through ca.get(ftype=...): its _onGetEvent raises a TypeError in
    dbr.native_type; test_ca_libca.c covers all 39 types.)"""
    value, text = SCALARS[name]
    chid = epics.ca.create_channel(name, connect=True, auto_cb=False)
    assert epics.ca.connect_channel(chid, timeout=5)
    for ftype in list(range(0, 7)) + list(range(14, 21)) + list(range(28, 35)):
        kind = ftype % 7
        got = epics.ca.get(chid, ftype=ftype, timeout=5)
        if kind == 0:
            if text is not None:
                assert got == text, "type %d" % ftype
            else:
                assert float(got) == pytest.approx(value), "type %d" % ftype
        else:
            assert got == as_kind(kind, value), "type %d of %s" % (ftype, name)


def test_ctrl_metadata(epics):
    ex = epics.PV("DEMO:EXECTIME", form="ctrl", auto_monitor=False)
    assert ex.wait_for_connection(5)
    ctrl = ex.get_ctrlvars(timeout=5)
    assert ctrl["units"] == "seconds"
    assert ctrl["precision"] == 3
    assert ex.write_access is False and ex.read_access is True

    en = epics.PV("DEMO:ENUM", form="ctrl")
    assert en.wait_for_connection(5)
    assert list(en.get_ctrlvars(timeout=5)["enum_strs"]) == ["OFF", "ON", "STANDBY"]

    d = epics.PV("DEMO:DOUBLE", form="ctrl")
    assert d.wait_for_connection(5)
    c = d.get_ctrlvars(timeout=5)
    assert c["units"] == "mm" and c["precision"] == 4
    assert (c["lower_disp_limit"], c["upper_disp_limit"]) == (-100, 100)
    assert (c["lower_ctrl_limit"], c["upper_ctrl_limit"]) == (-100, 100)
    assert (c["upper_alarm_limit"], c["upper_warning_limit"],
            c["lower_warning_limit"], c["lower_alarm_limit"]) == (90, 80, -80, -90)

    s = epics.PV("DEMO:SHORT", form="ctrl")
    assert s.wait_for_connection(5)
    c = s.get_ctrlvars(timeout=5)
    assert c["units"] == "counts"
    assert (c["lower_disp_limit"], c["upper_disp_limit"]) == (-1000, 1000)


# name: values to write (the first is written, the last restores the initial value)
PUTS = {
    "DEMO:STRING": ["pyepics", "a string of exactly 39 characters......", "hello"],
    "DEMO:SHORT": [-123, 999, 7],
    "DEMO:FLOAT": [-2.25, 9.5, 1.5],
    "DEMO:ENUM": [2, 1, 0],
    "DEMO:CHAR": [200, 0, 65],
    "DEMO:LONG": [-99999, 123456, 42],
    "DEMO:DOUBLE": [-12.5, 1e-300, 3.14159],
    "DEMO:N:7": [-7, 2 ** 31 - 1, 7],
}


@pytest.mark.parametrize("name", sorted(PUTS))
@pytest.mark.parametrize("wait", [False, True])
def test_caput_and_read_back(epics, name, wait):
    for v in PUTS[name]:
        ret = epics.caput(name, v, wait=wait, timeout=5)
        assert ret == 1, "caput(%r, %r, wait=%s) returned %r" % (name, v, wait, ret)
        got = epics.caget(name, timeout=5, use_monitor=False)
        want = f32(v) if name == "DEMO:FLOAT" else v
        assert got == want, "%s: wrote %r, read %r" % (name, v, got)


def test_caput_strings_to_numeric_and_enum(epics):
    assert epics.caput("DEMO:DOUBLE", "2.5", wait=True, timeout=5) == 1
    assert epics.caget("DEMO:DOUBLE", use_monitor=False) == 2.5
    assert epics.caput("DEMO:DOUBLE", 3.14159, wait=True, timeout=5) == 1
    pv = epics.PV("DEMO:ENUM")
    assert pv.wait_for_connection(5)
    assert pv.put("STANDBY", wait=True, timeout=5) == 1
    assert epics.caget("DEMO:ENUM", use_monitor=False) == 2
    assert epics.caget("DEMO:ENUM", as_string=True, use_monitor=False) == "STANDBY"
    assert pv.put("OFF", wait=True, timeout=5) == 1
    assert epics.caget("DEMO:ENUM", use_monitor=False) == 0


def test_monitor_exectime_time_and_ctrl(epics):
    updates = {"time": [], "ctrl": []}

    def on_time(value=None, timestamp=None, **kw):
        updates["time"].append((value, timestamp))

    def on_ctrl(value=None, units=None, precision=None, **kw):
        updates["ctrl"].append((value, units, precision))

    t = epics.PV("DEMO:EXECTIME", form="time", callback=on_time)
    c = epics.PV("DEMO:EXECTIME", form="ctrl", callback=on_ctrl)
    assert t.wait_for_connection(5) and c.wait_for_connection(5)
    assert wait_for(lambda: len(updates["time"]) >= 16 and len(updates["ctrl"]) >= 16, 6), \
        "updates in 6 s from a 16 Hz PV: %d time, %d ctrl" % (len(updates["time"]),
                                                               len(updates["ctrl"]))
    stamps = [s for _, s in updates["time"]]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time()) < 10
    assert len({v for v, _ in updates["time"]}) >= len(updates["time"]) // 2
    assert all(u == "seconds" and p == 3 for _, u, p in updates["ctrl"][1:])
    t.clear_callbacks()
    c.clear_callbacks()


def test_monitor_counter_increments(epics):
    values = []
    pv = epics.PV("DEMO:COUNTER", callback=lambda value=None, **kw: values.append(value))
    assert pv.wait_for_connection(5)
    assert wait_for(lambda: len(values) >= 15, 4), "%d updates in 4 s at 10 Hz" % len(values)
    snapshot = list(values)
    assert all(b > a for a, b in zip(snapshot, snapshot[1:]))
    ones = sum(1 for a, b in zip(snapshot, snapshot[1:]) if b == a + 1)
    assert ones >= (len(snapshot) - 1) * 3 // 4
    pv.clear_callbacks()


def test_monitor_sees_a_put(epics):
    values = []
    pv = epics.PV("DEMO:LONG", callback=lambda value=None, **kw: values.append(value))
    assert pv.wait_for_connection(5)
    assert wait_for(lambda: len(values) >= 1, 5)
    assert values[0] == 42
    assert epics.caput("DEMO:LONG", 4242, wait=True, timeout=5) == 1
    assert wait_for(lambda: len(values) >= 2, 5)
    assert values[-1] == 4242
    assert epics.caput("DEMO:LONG", 42, wait=True, timeout=5) == 1
    assert wait_for(lambda: len(values) >= 3, 5)
    time.sleep(0.3)
    assert values == [42, 4242, 42]
    pv.clear_callbacks()


def test_arrays(epics):
    wave = epics.caget("DEMO:WAVE", timeout=5)
    assert list(wave) == [i * 0.5 for i in range(1000)]
    assert list(epics.caget("DEMO:SHORTS", timeout=5)) == list(range(16))
    assert list(epics.caget("DEMO:STRINGS", timeout=5)) == ["a", "b", "c", "d"]
    assert epics.caget("DEMO:LONGSTR", as_string=True, timeout=5) == "guardiand long string"

    new = [(-1) ** i * i / 7.0 for i in range(1000)]
    assert epics.caput("DEMO:WAVE", new, wait=True, timeout=5) == 1
    assert list(epics.caget("DEMO:WAVE", timeout=5, use_monitor=False)) == new
    assert epics.caput("DEMO:WAVE", [i * 0.5 for i in range(1000)], wait=True, timeout=5) == 1

    assert epics.caput("DEMO:STRINGS", ["w", "x", "y", "z"], wait=True, timeout=5) == 1
    assert list(epics.caget("DEMO:STRINGS", use_monitor=False)) == ["w", "x", "y", "z"]
    assert epics.caput("DEMO:STRINGS", ["a", "b", "c", "d"], wait=True, timeout=5) == 1

    assert epics.caput("DEMO:LONGSTR", "set by pyepics", wait=True, timeout=5) == 1
    assert epics.caget("DEMO:LONGSTR", as_string=True, use_monitor=False) == "set by pyepics"
    assert epics.caput("DEMO:LONGSTR", "guardiand long string", wait=True, timeout=5) == 1


def test_bigwave(epics):
    pv = epics.PV("DEMO:BIGWAVE", auto_monitor=False)
    assert pv.wait_for_connection(5)
    assert pv.count == 100000
    assert set(pv.get(timeout=10)) == {0.0}
    values = [i * 0.25 for i in range(100000)]
    assert pv.put(values, wait=True, timeout=10) == 1
    assert list(pv.get(timeout=10)) == values
    assert pv.put([0.0] * 100000, wait=True, timeout=10) == 1


def test_many_channels(epics):
    names = ["DEMO:N:%d" % i for i in range(DEMO_COUNT)]
    values = epics.caget_many(names, timeout=10)
    wrong = [(n, v) for i, (n, v) in enumerate(zip(names, values)) if v != i]
    assert not wrong, "%d wrong values, first %r" % (len(wrong), wrong[:3])


def test_refused_writes(epics):
    ro = epics.PV("DEMO:RO")
    assert ro.wait_for_connection(5)
    assert ro.read_access and not ro.write_access
    with pytest.raises(epics.ca.CASeverityException):
        epics.caput("DEMO:RO", 2.0)
    with pytest.raises(epics.ca.CASeverityException):
        epics.caput("DEMO:RO", 2.0, wait=True, timeout=5)
    assert epics.caget("DEMO:RO", use_monitor=False) == 1.0


def test_rejected_put_with_wait(epics):
    """pyepics 3.4.1's put(wait=True) ignores the put-callback status (ca._onPutEvent), so it
    returns 1 for a refused write; the value must stay, and the status libca hands to a
    put-callback must be ECA_PUTFAIL."""
    assert epics.caput("DEMO:REJECT", -1, wait=True, timeout=5) == 1
    assert epics.caget("DEMO:REJECT", use_monitor=False) == 0

    ca, dbr = epics.ca, epics.dbr
    statuses = []
    callback = dbr.make_callback(lambda args: statuses.append(args.status),
                                 dbr.event_handler_args)
    chid = ca.create_channel("DEMO:REJECT", connect=True, auto_cb=False)
    assert ca.connect_channel(chid, timeout=5)
    for v in (-5, 3):
        value = ctypes.c_int(v)
        n = len(statuses)  # before the put: the callback may come before flush_io returns
        ret = ca.libca.ca_array_put_callback(dbr.LONG, 1, chid, ctypes.byref(value), callback,
                                             None)
        assert ret == dbr.ECA_NORMAL
        ca.flush_io()
        assert wait_for(lambda: len(statuses) > n, 5)
    assert statuses == [160, 1], "put-callback statuses %r, expected ECA_PUTFAIL then normal" \
        % statuses
    assert epics.caget("DEMO:REJECT", use_monitor=False) == 3
    assert epics.caput("DEMO:REJECT", 0, wait=True, timeout=5) == 1


def test_group_removal_disconnects_and_reconnects(epics):
    events = []
    a = epics.PV("DEMO:G:A", connection_callback=lambda conn=None, **kw: events.append(conn))
    assert a.wait_for_connection(5)
    assert epics.caput("DEMO:GROUP", "ABSENT", wait=True, timeout=5) == 1
    assert wait_for(lambda: False in events, 5), "DEMO:G:A did not disconnect: %r" % events
    assert not a.connected
    time.sleep(0.5)
    assert epics.caput("DEMO:GROUP", "PRESENT", wait=True, timeout=5) == 1
    # libca waits up to 10 s after a disconnect before it searches again.
    assert wait_for(lambda: events[-1] is True and a.connected, 20), \
        "DEMO:G:A did not reconnect in 20 s: %r" % events
    assert epics.caput("DEMO:G:A", 1.25, wait=True, timeout=5) == 1
    assert a.get(use_monitor=False, timeout=5) == 1.25
    assert epics.caget("DEMO:GROUP", as_string=True, use_monitor=False) == "PRESENT"
    a.clear_callbacks()


def test_daemon_memory_stays_small(daemon, epics):
    assert daemon.alive()
    assert daemon.rss_kb() < 200 * 1024
