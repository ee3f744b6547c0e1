#!/usr/bin/python3
"""gen-fuzz-corpus.py — record the seed corpora of the fuzz targets from real traffic.

    /usr/bin/python3 tools/gen-fuzz-corpus.py [--build BUILD] [--out tests/fuzz/corpus]

Starts BUILD/bin/guardiand (default build/) under strace, on private 127.0.0.1 ports, with the
demo PV set and the nodes of the ctl fuzz target (B1 and B2 running `bench`, SUS_X running
`sus`, a database and a crash journal), then drives it with real clients: pyepics over libca
(reads, writes, monitors, the removable group, a missing PV, node channels; each scenario in a
process of its own, so each is one circuit) and guardctl (one connection per command). What the
daemon received is taken from strace (recvfrom on CA circuits and the search socket, read on
control connections) and written as seeds:

    ca_circuit/libca-<scenario>   a schedule byte (0: the FZ_TIGHT server; 0x80 in the -site copies
                                  of SITE_SCENARIOS: FZ_SITE), then what the client sent
    ca_udp/libca-search-<n>       distinct search datagrams (the first UDP_SEEDS)
    ctl/guardctl-<command>        a schedule byte (0: root; 1: uid 1 for a few reads and changes
                                  that are refused), then the frames guardctl sent
    config/                       etc/*.ini and the configuration used here

Existing files of those names are replaced; nothing else in the corpus folders is touched.
Needs strace, python3-pyepics and a built guardiand, guardctl and systems in BUILD.
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each scenario runs in a fresh python3 with pyepics, so it is one CA circuit.
CA_SCENARIOS = {
    "get-scalars": """
for name in ("STRING", "SHORT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE", "RO", "COUNTER"):
    epics.caget("DEMO:" + name)
    epics.caget("DEMO:" + name, as_string=True)
    epics.PV("DEMO:" + name, form="ctrl").get(timeout=2)
    epics.PV("DEMO:" + name, form="time").get(timeout=2)
""",
    "get-arrays": """
epics.caget("DEMO:WAVE")
epics.caget("DEMO:WAVE", count=10)
epics.PV("DEMO:SHORTS", form="ctrl").get(timeout=2)
epics.caget("DEMO:STRINGS")
epics.caget("DEMO:LONGSTR", as_string=True)
epics.caget("DEMO:BIGWAVE")
epics.PV("DEMO:BIGWAVE", form="time").get(count=70000, timeout=2)
""",
    "put": """
for name, value in (("DEMO:DOUBLE", 1.25), ("DEMO:STRING", "fuzz"), ("DEMO:ENUM", "ON"),
                    ("DEMO:ENUM", 2), ("DEMO:CHAR", 66), ("DEMO:SHORT", -3), ("DEMO:FLOAT", 2.5),
                    ("DEMO:WAVE", [0.5 * i for i in range(12)]), ("DEMO:SHORTS", list(range(16))),
                    ("DEMO:STRINGS", ["w", "x", "y"]),
                    ("DEMO:LONGSTR", "a longer string, written as chars"), ("DEMO:REJECT", -5),
                    ("DEMO:N:1", 11)):
    try:
        epics.caput(name, value, wait=True, timeout=2)
    except Exception:
        pass
epics.caput("DEMO:LONG", 7)
time.sleep(0.1)
""",
    "monitor": """
def cb(**kw):
    pass
for name in ("DEMO:DOUBLE", "DEMO:EXECTIME", "DEMO:COUNTER", "DEMO:BIGWAVE"):
    epics.camonitor(name, callback=cb)
pv = epics.PV("DEMO:FLOAT", form="ctrl", callback=cb)
pv.wait_for_connection()
epics.caput("DEMO:DOUBLE", 4.5, wait=True)
time.sleep(0.4)
for name in ("DEMO:DOUBLE", "DEMO:EXECTIME", "DEMO:COUNTER", "DEMO:BIGWAVE"):
    epics.camonitor_clear(name)
pv.disconnect()
time.sleep(0.1)
""",
    "group": """
a = epics.PV("DEMO:G:A", callback=lambda **kw: None)
a.wait_for_connection()
epics.caput("DEMO:G:A", 3.5, wait=True)
epics.caput("DEMO:GROUP", "ABSENT", wait=True)
time.sleep(0.2)
epics.caput("DEMO:GROUP", "PRESENT", wait=True)
time.sleep(0.5)
a.get()
""",
    "missing": """
epics.caget("DEMO:N:0")
epics.caget("NO:SUCH:PV", timeout=0.5)
""",
    "nodes": """
epics.caget("X1:GRD-B1_STATE")
epics.caget("X1:GRD-B2_REQUEST", as_string=True)
epics.PV("X1:GRD-SUS_X_MODE", form="ctrl").get(timeout=2)
for value in ("STEP_A", "NO_SUCH_STATE"):
    try:
        epics.caput("X1:GRD-B2_REQUEST", value, wait=True, timeout=2)
    except Exception:
        pass
epics.caget("X1:GUARDIAND-NODES")
""",
}

# Also recorded for the ca_circuit target's FZ_SITE server (schedule byte 0x80).
SITE_SCENARIOS = ("get-arrays", "monitor", "put")
UDP_SEEDS = 12  # distinct search datagrams kept (libca sends much the same one per name)

# guardctl commands, one connection each; (name, uid byte, arguments).
CTL_COMMANDS = [
    ("list", 0, ["list"]),
    ("list-json", 0, ["--json", "list"]),
    ("status", 0, ["status"]),
    ("status-nodes", 0, ["status", "B1", "SUS_X"]),
    ("log", 0, ["log", "B2", "-n", "5"]),
    ("log-follow", 0, ["log", "B2", "-f"]),
    ("request", 0, ["request", "B2", "STEP_A"]),
    ("request-unknown", 0, ["request", "B2", "NO_SUCH_STATE"]),
    ("mode", 0, ["mode", "B2", "MANUAL"]),
    ("op", 0, ["op", "SUS_X", "PAUSE"]),
    ("stop", 0, ["stop", "B2"]),
    ("start", 0, ["start", "B2"]),
    ("restart", 0, ["restart", "SUS_X", "B2"]),
    ("disable", 0, ["disable", "B1"]),
    ("enable", 0, ["enable", "B1"]),
    ("create", 0, ["create", "N1", "bench", "chan=X1:FUZZ"]),
    ("destroy", 0, ["destroy", "N1"]),
    ("crashes", 0, ["crashes"]),
    ("crashes-since", 0, ["crashes", "B1", "--since", "2h"]),
    ("history", 0, ["history", "B2"]),
    ("audit", 0, ["audit", "B2"]),
    ("audit-channel", 0, ["audit", "B2", "REQUEST"]),
    ("release", 0, ["release", "B1"]),
    ("uid1-list", 1, ["list"]),
    ("uid1-stop", 1, ["stop", "B1"]),
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


def write_config(folder, build):
    path = os.path.join(folder, "guardiand.ini")
    with open(path, "w") as f:
        f.write("[guardiand]\nifo = X1\nsystems = %s\ndatabase = %s\n"
                "control_socket = %s\ncontrol_mode = 0666\n"
                "[node B1]\nsystem = bench\n[node B2]\nsystem = bench\n"
                "[node SUS_X]\nsystem = sus\noptic = ETMX\n"
                % (os.path.join(build, "systems"), os.path.join(folder, "g.db"),
                   os.path.join(folder, "ctl.sock")))
    now = time.time()
    with open(os.path.join(folder, "g.db.crashes"), "w") as f:
        for i in range(3):
            f.write("CRASH v1 boot=%d seq=1 time=%.1f signal=11 code=1 addr=0xdead uptime=%d "
                    "node=B1 state=STEP_A phase=run\nbt frame one\nEND\n" % (90 + i, now - 300 + 60 * i,
                                                                               10 + i))
    return path


# ---- strace output ----

CALL = re.compile(r'^(?:\d+ +)?(\w+)\((.*)\) += (-?\d+)')
DATA = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')


def parse_trace(path):
    """Streams of accepted connections (CA circuits, control connections) and UDP datagrams."""
    circuits, controls, datagrams = [], [], []
    open_streams = {}  # fd -> (kind, bytearray)
    with open(path, errors="replace") as f:
        for line in f:
            m = CALL.match(line)
            if not m:
                continue
            call, args, ret = m.group(1), m.group(2), int(m.group(3))
            if call == "accept4" and ret >= 0:
                kind = "ca" if "AF_INET" in args else "ctl"
                open_streams[ret] = (kind, bytearray())
                (circuits if kind == "ca" else controls).append(open_streams[ret][1])
            elif call == "close":
                open_streams.pop(int(args), None)
            elif call in ("recvfrom", "read") and ret > 0:
                fd = int(args.split(",", 1)[0])
                d = DATA.search(args)
                if not d:
                    continue
                data = bytes.fromhex(d.group(1).replace("\\x", ""))
                if fd in open_streams:
                    open_streams[fd][1].extend(data)
                elif call == "recvfrom" and "AF_INET" in args:
                    datagrams.append(data)
    return circuits, controls, datagrams


def search_key(data):
    """A datagram without its sequence numbers and channel ids: what makes searches differ."""
    out, off = bytearray(), 0
    while off + 16 <= len(data):
        size = int.from_bytes(data[off + 2:off + 4], "big")
        out += data[off:off + 8] + data[off + 16:off + 16 + size]
        off += 16 + size
    return bytes(out)


def save(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fuzz", "corpus"))
    opt = ap.parse_args()
    build = os.path.abspath(opt.build)
    for tool in ("bin/guardiand", "bin/guardctl", "systems/bench.so", "systems/sus.so"):
        if not os.path.exists(os.path.join(build, tool)):
            sys.exit("gen-fuzz-corpus: %s/%s missing: build it first" % (build, tool))
    if not shutil.which("strace"):
        sys.exit("gen-fuzz-corpus: strace is needed (apt-get install strace)")

    folder = tempfile.mkdtemp(prefix="guardiand-corpus-")
    os.chmod(folder, 0o711)  # uid 1 reaches the control socket
    config = write_config(folder, build)
    port, beacon = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}
    env.update({"EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_CAS_SERVER_PORT": str(port),
                "EPICS_CAS_BEACON_PORT": str(beacon), "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
                "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1"})
    trace = os.path.join(folder, "trace")
    log = open(os.path.join(folder, "log"), "w+")
    proc = subprocess.Popen(["strace", "-f", "-xx", "-s", "1048576", "-o", trace,
                             "-e", "trace=accept4,recvfrom,read,close",
                             os.path.join(build, "bin", "guardiand"), "--config", config,
                             "--demo", "--demo-count", "4", "--no-repeater"],
                            env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while "ready" not in open(log.name).read():
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("gen-fuzz-corpus: guardiand did not start:\n" + open(log.name).read())
            time.sleep(0.05)

        client = dict(env)
        client.update({"EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CA_ADDR_LIST": "127.0.0.1",
                       "EPICS_CA_SERVER_PORT": str(port), "EPICS_CA_REPEATER_PORT": str(beacon),
                       "EPICS_CA_MAX_ARRAY_BYTES": "10000000"})
        for name, code in CA_SCENARIOS.items():
            script = "import time, epics\n" + code + "epics.ca.finalize_libca()\n"
            r = subprocess.run(["/usr/bin/python3", "-c", script], env=client,
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                print("gen-fuzz-corpus: scenario %s: exit %d\n%s" % (name, r.returncode, r.stderr))
        sock = os.path.join(folder, "ctl.sock")
        for name, uid, args in CTL_COMMANDS:
            cmd = [os.path.join(build, "bin", "guardctl"), "--socket", sock] + args
            if uid:
                cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + cmd
            try:
                subprocess.run(cmd, capture_output=True, timeout=1.5)
            except subprocess.TimeoutExpired:
                pass  # log -f follows until it is killed
            time.sleep(0.05)
    finally:
        # strace's child is guardiand; SIGTERM it for a clean end of every stream.
        children = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
        for pid in children:
            os.kill(int(pid), signal.SIGTERM)
        proc.wait(timeout=20)

    circuits, controls, datagrams = parse_trace(trace)
    circuits = [c for c in circuits if c]
    controls = [c for c in controls if c]
    if len(circuits) != len(CA_SCENARIOS) or len(controls) != len(CTL_COMMANDS):
        print("gen-fuzz-corpus: warning: %d circuits for %d scenarios, %d control connections "
              "for %d commands" % (len(circuits), len(CA_SCENARIOS), len(controls),
                                   len(CTL_COMMANDS)))
    for name, stream in zip(CA_SCENARIOS, circuits):
        save(os.path.join(opt.out, "ca_circuit"), "libca-" + name, b"\x00" + bytes(stream))
        if name in SITE_SCENARIOS:
            save(os.path.join(opt.out, "ca_circuit"), "libca-%s-site" % name,
                 b"\x80" + bytes(stream))
    seen = set()
    for data in datagrams:
        if search_key(data) not in seen and len(seen) < UDP_SEEDS:
            seen.add(search_key(data))
            save(os.path.join(opt.out, "ca_udp"), "libca-search-%d" % len(seen), data)
    for (name, uid, _), stream in zip(CTL_COMMANDS, controls):
        save(os.path.join(opt.out, "ctl"), "guardctl-" + name, bytes([uid]) + bytes(stream))
    for ini in ("guardiand.ini", "demo.ini"):
        shutil.copy(os.path.join(REPO, "etc", ini), os.path.join(opt.out, "config", ini))
    with open(config) as f:
        text = f.read().replace(folder, "/var/lib/guardiand").replace(build, "/usr/lib/guardiand")
    save(os.path.join(opt.out, "config"), "ctl-nodes.ini", text.encode())
    print("gen-fuzz-corpus: %d circuits, %d search datagrams, %d control connections -> %s"
          % (len(circuits), len(seen), len(controls), opt.out))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
