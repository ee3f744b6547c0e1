"""test_slow_client.py — a pyepics client whose monitor callbacks are slower than its updates.

The scenario operators hit: a display (pyepics, preemptive callbacks) whose callback takes
1 ms, subscribed 100 times to a 16 Hz channel, falls behind its updates; then the same process
does a caput of another channel (a new CREATE_CHAN and a WRITE_NOTIFY on the same circuit).
The server must keep answering its requests while its updates coalesce: the caput completes.
Before the fix, reading stopped at 1 MiB of unsent output and the monitor queues refilled it
before requests were read again, so the caput could not even connect.

The client is a child process (its own libca context), so the session's pyepics client is
not slowed down. Every wait is bounded.
"""
import os
import subprocess
import sys
import textwrap

from harness import Daemon

CHILD = textwrap.dedent("""
    import os, sys, time
    import epics
    seen = [0]
    def slow(**kw):
        time.sleep(0.001)
        seen[0] += 1
    pvs = [epics.PV("DEMO:EXECTIME", auto_monitor=True, callback=slow) for _ in range(100)]
    deadline = time.monotonic() + 10
    while seen[0] < 500 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # fall behind: 1600 updates/s arrive, under 1000/s are taken
    t0 = time.monotonic()
    status = epics.caput("DEMO:N:5", 12345, wait=True, timeout=60)
    took = time.monotonic() - t0
    print("updates %d caput %s in %.2f s" % (seen[0], status, took), flush=True)
    # No orderly libca shutdown: it would wait for the receive thread to work through the
    # updates still buffered, at 1 ms each.
    os._exit(0 if status == 1 else 1)
""")


def test_a_slow_pyepics_client_can_still_caput():
    d = Daemon()
    d.start()
    try:
        env = dict(os.environ)
        env.update({
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_ADDR_LIST": "127.0.0.1",
            "EPICS_CA_SERVER_PORT": str(d.port),
            "EPICS_CA_REPEATER_PORT": str(d.beacon_port),
        })
        child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                               text=True, timeout=120)
        print(child.stdout, child.stderr)
        assert child.returncode == 0, "caput did not complete:\n%s%s" % (child.stdout,
                                                                          child.stderr)
        assert d.alive()
    finally:
        code = d.stop()
    assert code == 0
