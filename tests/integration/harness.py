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
import json
import os
import re
import signal
import socket
import struct
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


def server_env(port, beacon_port):
    """The environment of a CA server under test (guardiand, guardsim): this process's, without
    its EPICS_ variables, serving on 127.0.0.1 at port, beacons to 127.0.0.1 at beacon_port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env.update({
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_PORT": str(beacon_port),
        "EPICS_CAS_SERVER_PORT": str(port),
    })
    return env


class Daemon:
    """One guardiand process; its stderr and stdout go to a log file."""

    DEMO_ARGS = ("--demo",)  # what every daemon serves besides its arguments

    def __init__(self, args=(), env=None, real_plant=False):
        self.port, self.beacon_port = free_ports()
        self.args = list(args)
        # Plant channels are simulated in-process unless a test gives a plant (guardsim, a
        # second daemon) and says where it is (EPICS_CA_ADDR_LIST in env).
        self.real_plant = real_plant
        self.extra_env = dict(env or {})
        self.proc = None
        self.log = tempfile.NamedTemporaryFile(prefix="guardiand-pytest.", suffix=".log",
                                               delete=False)

    def environment(self):
        env = server_env(self.port, self.beacon_port)
        env.update({
            # The daemon's own CA client searches only where a test says, and registers with
            # the daemon's own repeater rather than spawning a caRepeater.
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_REPEATER_PORT": str(self.beacon_port),
        })
        env.update(self.extra_env)
        return env

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def start(self, timeout=10.0):
        args = list(self.DEMO_ARGS) + self.args
        if not self.real_plant and "--simulate-plant" not in args:
            args.append("--simulate-plant")
        if not {"--database", "--config", "-c"} & set(args):
            # A database of its own beside the log, not guardiand.db in the working directory.
            args = ["--database", self.log.name + ".db"] + args
        if "--control-socket" not in args:
            # A control socket of its own too (the default is one per host).
            args = ["--control-socket", self.log.name + ".sock"] + args
        self.socket = args[args.index("--control-socket") + 1]
        self.argv = [daemon_path()] + args
        self.proc = subprocess.Popen(self.argv,
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
        # The daemon leaves its database's .lock file in place (supervisor/persist.c).
        for suffix in (".db", ".db-wal", ".db-shm", ".db.crashes", ".db.lock", ".sock"):
            try:
                os.unlink(self.log.name + suffix)
            except FileNotFoundError:
                pass
        return code

    def client_env(self):
        """This process's libca environment for the daemon (before libca starts), and guardctl's
        ($GUARDIAND_SOCKET)."""
        os.environ.update({
            "EPICS_CA_AUTO_ADDR_LIST": "NO",
            "EPICS_CA_ADDR_LIST": "127.0.0.1",
            "EPICS_CA_SERVER_PORT": str(self.port),
            "EPICS_CA_REPEATER_PORT": str(self.beacon_port),
            "EPICS_CA_MAX_ARRAY_BYTES": "10000000",
            # guardctl run without --socket reaches this daemon, never /run/guardiand's.
            "GUARDIAND_SOCKET": self.socket,
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


# ---- daemons with a configuration file of their own (test_nodes.py) ----

def guardctl_path():
    """guardctl of the same build as the daemon binary (build/bin, build/asan/bin)."""
    return os.path.join(os.path.dirname(daemon_path()), "guardctl")


def systems_dir():
    """The system modules built with the daemon binary: systems/ next to its bin/ (build/systems,
    build/asan/systems)."""
    return os.path.normpath(os.path.join(os.path.dirname(daemon_path()), "..", "systems"))


def systems_path():
    """Both the example systems and the test modules (tests/node/mod_*.so: mod_crashy,
    mod_slow, mod_plantio) of this build, as a `systems =` search path."""
    tests_node = os.path.normpath(os.path.join(systems_dir(), "..", "tests", "node"))
    return "%s:%s" % (systems_dir(), tests_node)


def guardiand_version():
    """The version the daemon binary reports (`guardiand --version` prints "guardiand X")."""
    out = subprocess.run([daemon_path(), "--version"], capture_output=True, text=True, timeout=10,
                         check=True).stdout.split()
    assert len(out) == 2 and out[0] == "guardiand", out
    return out[1]


def write_config(folder, nodes, ifo="X1", rate=16, systems=None, settings=None, extra=()):
    """A guardiand INI file in `folder` (etc/guardiand.ini's format) and a database path beside
    it. nodes: (name, system, {argument: value}) tuples, in order; settings: more keys of
    [guardiand]. Returns (config, database)."""
    database = os.path.join(str(folder), "guardiand.db")
    lines = ["[guardiand]", "ifo = %s" % ifo, "systems = %s" % (systems or systems_dir()),
             "rate = %s" % rate, "database = %s" % database]
    lines += ["%s = %s" % kv for kv in (settings or {}).items()] + list(extra) + [""]
    for name, system, args in nodes:
        lines += ["[node %s]" % name, "system = %s" % system]
        lines += ["%s = %s" % (k, v) for k, v in args.items()]
        lines.append("")
    config = os.path.join(str(folder), "guardiand.ini")
    with open(config, "w") as f:
        f.write("\n".join(lines))
    return config, database


class NodeDaemon(Daemon):
    """A guardiand that serves only what its configuration file gives (no demo PV set), with its
    own configuration file and database path."""

    DEMO_ARGS = ()

    def __init__(self, config, database, args=(), env=None, real_plant=False):
        super().__init__(["--config", config, "--database", database] + list(args), env,
                         real_plant)

    def ready_line(self):
        m = re.search(r"guardiand: ready: .*", self.log_text())
        return m.group(0) if m else None


# What Daemon.client_env() sets (or removes), for fixtures that save and restore it.
EPICS_CLIENT_VARS = ("EPICS_CA_AUTO_ADDR_LIST", "EPICS_CA_ADDR_LIST", "EPICS_CA_SERVER_PORT",
                     "EPICS_CA_REPEATER_PORT", "EPICS_CA_MAX_ARRAY_BYTES",
                     "EPICS_CA_NAME_SERVERS", "GUARDIAND_SOCKET")


def reset_pyepics():
    """End pyepics' libca context, if it has one, and forget every cached channel and PV, so that
    its next call creates a new context, which reads the client environment again: one context
    per daemon. Channels (chids) and epics.PV objects of the old context must not be used again.

    An epics.PV of an ended context is dangerous even unused: when it is garbage-collected while
    a newer context runs, its __del__ disconnects through that context's caches and crashes the
    interpreter (SIGSEGV in libca). So with libca down (PV.__del__ then does nothing) the
    unreachable ones are collected here, and those still referenced lose their __del__."""
    import gc
    import sys
    epics = sys.modules.get("epics")
    if epics is None:
        return
    epics.ca.finalize_libca()
    epics.ca._cache.clear()
    epics.ca._chid_cache.clear()
    epics.pv._PVcache_.clear()
    gc.collect()
    ended = None
    for obj in gc.get_objects():
        if type(obj) is epics.pv.PV:
            if ended is None:
                ended = type("EndedPV", (epics.pv.PV,),
                             {"__del__": lambda self: None, "disconnect": lambda self: None})
            obj.__class__ = ended


@pytest.fixture
def node_daemon(tmp_path):
    """A factory: node_daemon(nodes, **write_config options) writes a configuration into this
    test's temporary folder, starts a NodeDaemon on it, points this process's libca at it (a
    fresh pyepics context) and returns it. At the end the daemon gets SIGTERM while the test's
    channels are still connected and must exit 0; then the context ends and the client
    environment is restored, so the session daemon of test_pyepics.py is unaffected."""
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    started = []

    def start(nodes, **options):
        config, database = write_config(tmp_path, nodes, **options)
        d = NodeDaemon(config, database)
        started.append(d)
        d.start()
        d.client_env()
        reset_pyepics()
        return d

    yield start
    problems = []
    for d in started:
        if d.proc is None:
            continue
        alive = d.alive()
        log = d.log_text()
        code = d.stop()
        if not alive:
            problems.append("guardiand died during the test (exit %s):\n%s" % (code, log[-4000:]))
        elif code != 0:
            problems.append("guardiand exited with %s after SIGTERM, expected 0:\n%s"
                            % (code, log[-4000:]))
    reset_pyepics()
    restore_env(saved)
    assert not problems, "\n".join(problems)


def restore_env(saved):
    """Put back the variables saved as {name: value or None} (None: it was not set)."""
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# ---- guardsim, the plant simulator (sim/; test_guardsim.py, test_plant_ca.py) ----

def sim_path():
    path = os.environ.get("GUARDSIM") or os.path.join(os.path.dirname(daemon_path()), "guardsim")
    return os.path.abspath(path)


def wait_for(cond, timeout=10.0, step=0.02):
    """Poll cond() (pyepics callbacks run in libca's threads) until true or timeout."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(step)
    return cond()


# ECA status codes (ca/caproto.h)
ECA_NORMAL = 1
ECA_PUTFAIL = 160
ECA_NOWTACCESS = 376

# native DBF types as pyepics reports them (epics.dbr)
STRING, ENUM, CHAR, LONG, DOUBLE = 0, 3, 4, 5, 6


class CaClient:
    """Channels through pyepics' channel-level API (one chid per name). Names without a ':'
    get the prefix.

    Only epics.ca, never epics.PV or caget/caput: those cache PV objects per context, and a PV
    object of an ended context is unsafe once the next context exists. pyepics 3.4.1 ignores
    the put-callback status (test_pyepics.py), so puts go through libca's
    ca_array_put_callback with ctypes."""

    def __init__(self, epics, prefix=""):
        self.ca, self.dbr = epics.ca, epics.dbr
        self.prefix = prefix
        self.chids = {}
        self.keep = []  # ctypes callbacks, values and monitors that libca may still use

    def name(self, suffix):
        return suffix if ":" in suffix else self.prefix + suffix

    def chan(self, suffix, timeout=5.0):
        name = self.name(suffix)
        if name not in self.chids:
            chid = self.ca.create_channel(name, connect=False, auto_cb=True)
            assert self.ca.connect_channel(chid, timeout=timeout), "%s did not connect" % name
            self.chids[name] = chid
        return self.chids[name]

    def connects(self, suffix, timeout=0.5):
        """Whether a channel connects within timeout (for names that should not exist)."""
        chid = self.ca.create_channel(self.name(suffix), connect=False, auto_cb=True)
        return self.ca.connect_channel(chid, timeout=timeout)

    def get(self, suffix, **kw):
        v = self.ca.get(self.chan(suffix), timeout=5, **kw)
        assert v is not None, "get of %s timed out" % self.name(suffix)
        return v

    def ctrl(self, suffix):
        c = self.ca.get_ctrlvars(self.chan(suffix), timeout=5)
        assert c is not None, "DBR_CTRL get of %s timed out" % self.name(suffix)
        return c

    def put(self, suffix, value):
        """A put that must be accepted: put_status, which must give ECA_NORMAL."""
        assert self.put_status(suffix, value) == ECA_NORMAL, \
            "put of %r to %s refused" % (value, self.name(suffix))

    def put_status(self, suffix, value, timeout=5.0):
        """ca_array_put_callback of one value; returns the status the callback got, or
        libca's immediate status if it refused the request itself. str values go as
        DBR_STRING, ("enum", n) as DBR_ENUM, ints as DBR_LONG, floats as DBR_DOUBLE."""
        chid = self.chan(suffix)
        dbr = self.dbr
        if isinstance(value, str):
            buf, t = ctypes.create_string_buffer(value.encode(), 40), dbr.STRING
        elif isinstance(value, tuple):
            buf, t = ctypes.c_ushort(value[1]), dbr.ENUM
        elif isinstance(value, int):
            buf, t = ctypes.c_int(value), dbr.LONG
        else:
            buf, t = ctypes.c_double(value), dbr.DOUBLE
        statuses = []
        cb = dbr.make_callback(lambda args: statuses.append(args.status),
                               dbr.event_handler_args)
        self.keep += [cb, buf]
        ret = self.ca.libca.ca_array_put_callback(ctypes.c_long(t), ctypes.c_ulong(1), chid,
                                                  ctypes.byref(buf), cb, None)
        if ret != ECA_NORMAL:
            return ret
        self.ca.flush_io()
        assert wait_for(lambda: statuses, timeout), "no put callback from %s" % self.name(suffix)
        time.sleep(0.05)
        assert len(statuses) == 1, "%d put callbacks" % len(statuses)
        return statuses[0]

    def monitor(self, suffix):
        """A subscription that lives as long as the client: libca calls its ctypes callback
        until the context ends, so it must never be garbage-collected before that."""
        m = Monitor(self, self.name(suffix))
        self.keep.append(m)
        return m


class Monitor:
    """A DBR_TIME subscription (DBE_VALUE|DBE_ALARM); updates are (value, timestamp)."""

    def __init__(self, client, name):
        self.updates = []
        self.name = name
        ca, dbr = client.ca, client.dbr
        self._refs = ca.create_subscription(client.chan(name), use_time=True,
                                            mask=dbr.DBE_VALUE | dbr.DBE_ALARM,
                                            callback=self._on_update)
        assert wait_for(lambda: self.updates, 5), "%s: no first update" % name

    def _on_update(self, value=None, timestamp=None, **kw):
        self.updates.append((value, timestamp))

    def values(self):
        return [v for v, _ in list(self.updates)]

    def latest(self):
        return self.updates[-1][0]

    def wait(self, value, timeout=10):
        """Wait until the latest update is `value`."""
        return wait_for(lambda: self.updates and self.updates[-1][0] == value, timeout)


def write_site(folder, nodes, ifo="X1", name="site.ini"):
    lines = ["[guardiand]", "ifo = %s" % ifo, ""]
    for node, system, args in nodes:
        lines += ["[node %s]" % node, "system = %s" % system]
        lines += ["%s = %s" % (k, v) for k, v in args.items()]
        lines.append("")
    path = os.path.join(str(folder), name)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


class Sim:
    """One guardsim process; its stdout and stderr go to one log file."""

    def __init__(self, config, args=()):
        self.port, self.beacon_port = free_ports()
        self.config = config
        self.args = list(args)
        self.proc = None
        self.final_log = None  # the log's text once a clean stop has removed the file
        self.log = tempfile.NamedTemporaryFile(prefix="guardsim-pytest.", suffix=".log",
                                               delete=False)

    def environment(self):
        # --port must win over the variable (a port nobody listens on).
        return server_env(self.beacon_port, self.beacon_port)

    def log_text(self):
        if self.final_log is not None:
            return self.final_log
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def start(self, timeout=10.0):
        self.proc = subprocess.Popen(
            [sim_path(), "--config", self.config, "--port", str(self.port)] + self.args,
            env=self.environment(), stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            close_fds=True, preexec_fn=_die_with_parent)
        assert wait_for(lambda: "guardsim: ready:" in self.log_text()
                        or self.proc.poll() is not None, timeout), \
            "guardsim not ready after %.0f s:\n%s" % (timeout, self.log_text())
        assert self.proc.poll() is None, "guardsim exited with %s before it was ready:\n%s" \
            % (self.proc.returncode, self.log_text())
        return self

    def ready_line(self):
        m = re.search(r"guardsim: ready: .*", self.log_text())
        return m.group(0) if m else None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal it, then SIGKILL after timeout. Returns the exit code (negative: a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode == 0 and self.final_log is None:
            self.final_log = self.log_text()
            os.unlink(self.log.name)
        return self.proc.returncode


def run_sim(args, timeout=10):
    """guardsim run to its end (bad options, bad files): (exit code, stderr)."""
    p = subprocess.run([sim_path()] + list(args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stderr


# ---- channel-level pyepics with one chid cache (test_persistence.py, test_guardctl.py) ----
#
# No PV objects: they must not outlive a context. One chid per name, forgotten whenever the
# context ends.
_chids = {}


def forget_channels():
    """Forget every chid and end pyepics' context (reset_pyepics): call when a daemon goes."""
    _chids.clear()
    reset_pyepics()


def chan(name):
    """The chid of name, connected (within 5 s) the first time it is asked for."""
    import epics
    if name not in _chids:
        chid = epics.ca.create_channel(name, connect=False, auto_cb=False)
        assert epics.ca.connect_channel(chid, timeout=5.0), "%s did not connect" % name
        _chids[name] = chid
    return _chids[name]


def get(name, as_string=False):
    """The value; as_string gives enum channels' state strings too."""
    import epics
    chid = chan(name)
    value = epics.ca.get(chid, timeout=5.0)
    if as_string and epics.ca.field_type(chid) == epics.dbr.ENUM:
        strings = epics.ca.get_enum_strings(chid)
        return strings[value] if value is not None and value < len(strings) else value
    return value


def put(name, value):
    """A put with completion; enum channels take the index."""
    import epics
    epics.ca.put(chan(name), value, wait=True, timeout=5.0)


# ---- the control socket: raw frames, and guardctl against a daemon of one's own ----
#
# A frame is a 4-byte big-endian length, then a JSON object (supervisor/ctl.h).

def raw_connect(path):
    """A connection; a full listen backlog (EAGAIN) is waited out, as a blocking connect would."""
    deadline = time.monotonic() + 5
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def send_frame(s, payload):
    """One request frame: payload as bytes (sent as they are, for malformed ones) or a dict."""
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    s.sendall(struct.pack(">I", len(payload)) + payload)


def recv_exact(s, n):
    """n bytes from socket s, or None if it closes first."""
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_frame(s):
    """One reply frame, decoded, or None if the connection closes first."""
    hdr = recv_exact(s, 4)
    if hdr is None:
        return None
    (n,) = struct.unpack(">I", hdr)
    return json.loads(recv_exact(s, n))


def rpc(path, cmd, **args):
    """One request {"cmd": cmd, "args": args} on a connection of its own; the reply."""
    with raw_connect(path) as s:
        send_frame(s, {"cmd": cmd, "args": args})
        return recv_frame(s)


# Ctl's site unless a test gives its own: two bench nodes and a suspension.
CTL_NODES = [("B1", "bench", {}), ("B2", "bench", {}), ("SUS_X", "sus", {"optic": "ETMX"})]


class Ctl:
    """A daemon with its own control socket, and guardctl pointed at it."""

    def __init__(self, folder, nodes=CTL_NODES, extra=(), socket_dir=None, journal=None):
        self.folder = str(folder)
        self.socket = os.path.join(socket_dir or self.folder, "ctl.sock")
        config, database = write_config(self.folder, nodes, systems=systems_path(), extra=extra)
        self.config, self.database = config, database
        if journal:
            with open(database + ".crashes", "w") as f:
                f.write(journal)
        self.daemon = None

    def start(self):
        self.daemon = NodeDaemon(self.config, self.database,
                                 args=["--control-socket", self.socket])
        self.daemon.start()
        self.daemon.client_env()
        forget_channels()
        return self

    def run(self, *args, as_nobody=False, timeout=20, env=None):
        cmd = [guardctl_path(), "--socket", self.socket] + list(args)
        if as_nobody:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, "guardctl %s: exit %d\n%s%s" % (args, r.returncode, r.stdout,
                                                                   r.stderr)
        return r

    def json(self, *args, **kw):
        return json.loads(self.ok("--json", *args, **kw).stdout)

    def node(self, name):
        return self.json("status", name)["nodes"][0]

    def stop(self):
        forget_channels()
        d = self.daemon
        alive = d.alive()
        log = d.log_text()
        code = d.stop()
        assert alive, "guardiand died during the test:\n" + log[-4000:]
        assert code == 0, "guardiand exited with %s:\n%s" % (code, log[-4000:])


# ---- systemd's notify socket (test_notify.py, test_slow_nodes.py) ----

class Manager:
    """The manager's end of $NOTIFY_SOCKET: every datagram with its arrival time."""

    def __init__(self, folder):
        self.path = os.path.join(str(folder), "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {key: value})

    def receive(self, seconds):
        """Collect datagrams for `seconds`."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            self.messages.append((time.monotonic(), fields))

    def wait_for(self, key, value="1", timeout=10.0, after=0):
        """The first message from index `after` on with key=value, waiting up to timeout.
        Returns its index."""
        end = time.monotonic() + timeout
        while True:
            for i in range(after, len(self.messages)):
                if self.messages[i][1].get(key) == value:
                    return i
            if time.monotonic() >= end:
                raise AssertionError("no %s=%s within %.0f s; got %r"
                                     % (key, value, timeout, [m[1] for m in self.messages]))
            self.receive(min(0.1, end - time.monotonic()))

    def times(self, key, after=0):
        return [t for t, m in self.messages[after:] if m.get(key) == "1"]

    def close(self):
        self.sock.close()
