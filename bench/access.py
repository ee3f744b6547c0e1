#!/usr/bin/python3
"""bench/access.py — what access rules and site snapshots cost (issue 14), measured from outside.

For each N (nodes of the `bench` system, one daemon on its own ports, control socket and
database, as the tests run it), and once without rules (open) and once with a site-like rule set
(RULE_SECTIONS [access] sections with their own patterns, USERS user groups of USER_NAMES names,
HOSTS host groups of HOST_ITEMS networks each; the client's user and 127.0.0.1 in some):

  connect   one libca client (pyepics) connects every writable node channel (REQUEST,
            REQUEST_ENUM, MODE, OP, LOAD, MANAGER: 6 a node, what a site's MEDM screens open):
            seconds until all are connected, each with its rights (computed at connect);
  reload    with them connected, `guardctl reload` of a file whose change takes write access
            away from the client on every channel: seconds for the command, and until the client
            has been told (ACCESS_RIGHTS) on every channel; then back again;
  snapshot  `guardctl snapshot save`, then every node's MODE changed over CA, `snapshot diff`
            and `snapshot restore` (N MODE writes through the operators' path): seconds each.
            These run on the daemon's loop, so each is also the longest the loop is held.

Figures only; nothing about timings is asserted. Usage:
    /usr/bin/python3 bench/access.py [--nodes 100,1000]
The daemon is $GUARDIAND, else build/bin/guardiand (guardctl beside it).
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import Ctl, forget_channels  # noqa: E402

RULE_SECTIONS = 100
USERS, USER_NAMES = 20, 50
HOSTS, HOST_ITEMS = 10, 20
WRITABLE = ("REQUEST", "REQUEST_ENUM", "MODE", "OP", "LOAD", "MANAGER")


def node_names(n):
    return ["BN%04d" % i for i in range(n)]


def members(items):
    """members = ... lines of at most 8 items (libinih takes lines of 200 characters; a key
    given again continues the list)."""
    return ["members = " + ", ".join(items[i:i + 8]) for i in range(0, len(items), 8)]


def rules(client_user, granted):
    """A site-like rule set: the client (client_user from 127.0.0.1) may write every node
    channel when granted, none otherwise; every group and section is evaluated on the way."""
    lines = []
    for g in range(USERS):
        names = ["user%d_%d" % (g, k) for k in range(USER_NAMES)]
        if g == USERS - 1 and granted:
            names.append(client_user)
        lines += ["[users ops%d]" % g] + members(names)
    for h in range(HOSTS):
        nets = ["10.%d.%d.0/24" % (h, k) for k in range(HOST_ITEMS)]
        if h == HOSTS - 1:
            nets.append("127.0.0.1")
        lines += ["[hosts room%d]" % h] + members(nets)
    # BN00*..BN99*: each node matches one section late in the list's order on average.
    for k in range(RULE_SECTIONS):
        who = ", ".join("ops%d@room%d" % (g, g % HOSTS) for g in range(0, USERS - 1, 4))
        who += ", ops%d@room%d" % (USERS - 1, HOSTS - 1)
        lines += ["[access BN%02d*]" % (k % 100), "REQUEST = " + who, "MODE = " + who,
                  "* = " + who]
    return lines + [""]


def guardctl(c, *args):
    t = time.monotonic()
    r = c.run(*args, timeout=300)
    assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
    return time.monotonic() - t


def wait_until(cond, timeout):
    from epics import ca
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        ca.poll(0.005, 0.02)
    return True


def row(n, with_rules, user):
    folder = tempfile.mkdtemp(prefix="bench-access.")
    nodes = [(name, "bench", {}) for name in node_names(n)]
    c = Ctl(folder, nodes=nodes, extra=rules(user, True) if with_rules else ()).start()
    from epics import ca
    fig = {}
    try:
        names = ["X1:GRD-%s_%s" % (node, s) for node in node_names(n) for s in WRITABLE]
        t = time.monotonic()
        chids = [ca.create_channel(x, connect=False, auto_cb=False) for x in names]
        assert wait_until(lambda: all(ca.isConnected(ch) for ch in chids), 120), "not connected"
        fig["connect"] = time.monotonic() - t
        assert all(ca.write_access(ch) for ch in chids), "the client should write everything"
        if with_rules:
            with open(c.config) as f:
                text = f.read()
            head = text.split("[users ops0]")[0]
            tail = text[text.index("[node "):]
            for granted, key in ((False, "reload_off"), (True, "reload_on")):
                with open(c.config, "w") as f:
                    f.write(head + "\n".join(rules(user, granted)) + "\n" + tail)
                t = time.monotonic()
                fig[key + "_cmd"] = guardctl(c, "reload")
                assert wait_until(lambda: all(bool(ca.write_access(ch)) == granted
                                              for ch in chids), 120), "rights not changed"
                fig[key] = time.monotonic() - t
        fig["save"] = guardctl(c, "snapshot", "save", "bench")
        modes = [ch for ch, x in zip(chids, names) if x.endswith("_MODE")]
        for ch in modes:
            ca.put(ch, 2, wait=False)  # MANUAL
        ca.flush_io()
        assert wait_until(lambda: all(ca.get(ch, timeout=5) == 2 for ch in modes[-5:]), 30)
        time.sleep(0.5)
        fig["diff"] = guardctl(c, "snapshot", "diff", "bench")
        fig["restore"] = guardctl(c, "snapshot", "restore", "bench")
        r = c.run("snapshot", "diff", "bench")
        fig["restored"] = "no differences" in r.stdout
        fig["rss_mb"] = c.daemon.rss_kb() / 1024.0
    finally:
        forget_channels()
        c.stop()
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", default="100,1000")
    o = ap.parse_args()
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    print("access rules: %d [access] sections, %d user groups of %d names, %d host groups of %d "
          "networks; %d writable channels a node" % (RULE_SECTIONS, USERS, USER_NAMES, HOSTS,
                                                    HOST_ITEMS, len(WRITABLE)))
    print("%6s  %-6s  %9s  %14s  %14s  %8s  %8s  %8s  %7s" % (
        "nodes", "rules", "connect s", "reload off s", "reload on s", "save s", "diff s",
        "restore s", "RSS MB"))
    for n in [int(x) for x in o.nodes.split(",")]:
        for with_rules in (False, True):
            f = row(n, with_rules, user)
            off = "%.3f (%.3f)" % (f["reload_off"], f["reload_off_cmd"]) if with_rules else "-"
            on = "%.3f (%.3f)" % (f["reload_on"], f["reload_on_cmd"]) if with_rules else "-"
            print("%6d  %-6s  %9.3f  %14s  %14s  %8.3f  %8.3f  %8.3f  %7.1f%s" % (
                n, "yes" if with_rules else "open", f["connect"], off, on, f["save"], f["diff"],
                f["restore"], f["rss_mb"], "" if f["restored"] else "  (NOT all restored)"))
            sys.stdout.flush()
    print("reload: until every channel's new rights reached the client (the command alone)")


if __name__ == "__main__":
    main()
