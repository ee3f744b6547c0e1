"""harness.py — a guardiand for the pyepics tests (the Python twin of tests/lib/harness.c).

The session fixture `daemon` starts one guardiand --demo on free 127.0.0.1 ports, waits
(bounded) for its "ready" line, and sets this process's client environment; the fixture `epics`
imports pyepics only after that, since libca reads the environment when its context is
created. At the end of the session libca is shut down first (its circuits close), then the
daemon gets SIGTERM and must exit 0.

Debian's pyepics (python3-pyepics, for /usr/bin/python3 only) finds Debian's libca through
ctypes.util.find_library('ca'); PYEPICS_LIBCA is not needed. The daemon binary is $GUARDIAND,
else build/bin/guardiand under the repository root. It is started before libca is loaded
(no threads yet, so preexec_fn is safe) and gets SIGKILL if this process dies.
"""
import ctypes
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_COUNT = 2500  # DEMO:N:0 .. DEMO:N:2499


def free_ports():
    """A port free for UDP and TCP on 127.0.0.1, and a second UDP port for beacons."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                b.bind(("127.0.0.1", 0))
                beacon = b.getsockname()[1]
                if beacon != port:
                    return port, beacon
    raise RuntimeError("no free port on 127.0.0.1")


def _die_with_parent():
    """In the child before exec: SIGKILL when this Python process dies, even by a crash."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def daemon_path():
    path = os.environ.get("GUARDIAND") or "build/bin/guardiand"
    return path if os.path.isabs(path) else os.path.join(REPO, path)


class Daemon:
    """One guardiand process; its stderr and stdout go to a log file."""

    def __init__(self, args=(), env=None):
        self.port, self.beacon_port = free_ports()
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="guardiand-pytest.", suffix=".log",
                                               delete=False)

    def environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
        env.update({
            "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
            "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
            "EPICS_CAS_BEACON_PORT": str(self.beacon_port),
            "EPICS_CAS_SERVER_PORT": str(self.port),
        })
        env.update(self.extra_env)
        return env

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen([daemon_path(), "--demo"] + self.args,
                                     env=self.environment(), stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, close_fds=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(r"(?<![A-Za-z])ready(?![A-Za-z])", self.log_text()):
                return
            if self.proc.poll() is not None:
                raise RuntimeError("guardiand exited with %s before it was ready:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            time.sleep(0.01)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("guardiand not ready after %.0f s:\n%s" % (timeout, self.log_text()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code (negative: a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        if code == 0:
            os.unlink(self.log.name)
        return code

    def client_env(self):
        """This process's libca environment for the daemon (before libca starts)."""
        os.environ.update({
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_ADDR_LIST": "127.0.0.1",
            "EPICS_CA_SERVER_PORT": str(self.port),
            "EPICS_CA_REPEATER_PORT": str(self.beacon_port),
            "EPICS_CA_MAX_ARRAY_BYTES": "10000000",
        })
        os.environ.pop("EPICS_CA_NAME_SERVERS", None)


@pytest.fixture(scope="session")
def daemon():
    d = Daemon(["--demo-count", str(DEMO_COUNT)])
    d.start()
    d.client_env()
    yield d
    import sys
    if "epics" in sys.modules:
        sys.modules["epics"].ca.finalize_libca()  # close the circuits before SIGTERM
    alive = d.alive()
    log = d.log_text()
    code = d.stop()
    assert alive, "guardiand died during the session (exit %s):\n%s" % (code, log)
    assert code == 0, "guardiand exited with %s after SIGTERM, expected 0:\n%s" % (code, log)


@pytest.fixture(scope="session")
def epics(daemon):
    import epics as pyepics
    return pyepics
