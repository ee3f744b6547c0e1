"""test_ramps.py — ramps and switch bits (issue 13, item 3) seen from outside: a node
(tests/node/mod_ramp.c) on a daemon with a simulated plant ramps a plant channel over 1 s and
switches bits of another; a CA client watches the plant channel, the node's STATUS and
USERMSG, and reads the node's log. Every wait is bounded and polls; nothing is timed.
"""
import pytest

from harness import CaClient, node_daemon, systems_path, wait_for  # noqa: F401

ARGS = {"chan": "RMP-TEST_GAIN", "target": "2", "seconds": "1", "switch": "RMP-TEST_SW",
        "mask": "16"}


@pytest.fixture
def epics():
    import epics as pyepics
    return pyepics


def test_a_node_ramps_a_plant_channel_and_waits_and_switches_bits(node_daemon, epics):
    d = node_daemon([("RAMPER", "mod_ramp", ARGS)], systems=systems_path())
    node = CaClient(epics, "X1:GRD-RAMPER_")
    plant = CaClient(epics)
    assert wait_for(lambda: node.get("STATE", as_string=True) == "IDLE", 10)
    plant.put("X1:RMP-TEST_SW", 4.0)  # a bit set before: kept
    statuses = [s.decode() if isinstance(s, bytes) else s
                for s in node.ctrl("STATUS")["enum_strs"]]
    status, usermsg = node.monitor("STATUS"), node.monitor("USERMSG")
    gain = plant.monitor("X1:RMP-TEST_GAIN")
    assert gain.latest() == 0

    node.put("REQUEST", "RAMPED")
    assert wait_for(lambda: node.get("STATE", as_string=True) == "RAMPED"
                    and statuses[node.get("STATUS")] == "DONE", 10), d.log_text()[-3000:]
    assert gain.wait(2.0, 5), gain.values()
    values = gain.values()
    between = [v for v in values if 0 < v < 2]
    assert len(between) >= 3, values  # steps, not a jump
    assert values == sorted(values), values
    assert plant.get("X1:RMP-TEST_SW") == 20  # 4 | 16

    # The state waited for the ramp: RUN (notifying) before DONE, once the ramp had begun.
    seen = [statuses[v] for v in status.values()]
    assert "RUN" in seen and seen.index("RUN") < len(seen) - 1 - seen[::-1].index("DONE"), seen
    assert any(m == "ramping" for m in usermsg.values()), usermsg.values()

    log = d.log_text()
    assert "[RAMPED.main] ezca: X1:RMP-TEST_GAIN => 2 (ramp 1 s from 0)" in log, log[-3000:]
    assert "] ezca: X1:RMP-TEST_GAIN => 2 (ramp done)" in log, log[-3000:]
    assert log.count("ezca: X1:RMP-TEST_GAIN =>") == 2, "no line per step"
    assert "[RAMPED.main] ezca: X1:RMP-TEST_SW => ON: 0x0010" in log, log[-3000:]

    node.put("REQUEST", "IDLE")
    assert wait_for(lambda: plant.get("X1:RMP-TEST_SW") == 4, 10)
    assert "[IDLE.main] ezca: X1:RMP-TEST_SW => OFF: 0x0010" in d.log_text()
    assert gain.latest() == 2.0, "a ramp that ended stays where it ended"
