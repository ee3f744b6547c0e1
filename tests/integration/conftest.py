"""conftest.py — fixtures every test module here may use without importing them.

`ctl`: a factory of daemons with their own control socket, database and ports (harness.Ctl),
guardctl pointed at each; every daemon it started is stopped (and must have exited 0) when
the test ends. `ctl()` runs harness.CTL_NODES; `ctl(nodes=[...], extra=[...])` others.
"""
import pytest

from harness import Ctl, forget_channels


@pytest.fixture
def ctl(tmp_path):
    started = []

    def start(**kw):
        c = Ctl(tmp_path, **kw).start()
        started.append(c)
        return c

    yield start
    for c in started:
        if c.daemon.proc is not None and c.daemon.proc.returncode is None:
            c.stop()
    forget_channels()
