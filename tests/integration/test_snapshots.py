"""test_snapshots.py — site snapshots (issue 14): `guardctl snapshot save|list|diff|restore|delete`.

Before maintenance operators record where every node is (REQUEST, MODE, OP, whether it runs and
is enabled) and put it back afterwards through the operators' own path (validated, audited,
access rules applied). Everything is driven with guardctl against a daemon of the test's own
and checked with guardctl and over CA (pyepics); the database is a real SQLite file, opened
directly only to age rows for the retention check.
"""
import json
import sqlite3

from harness import get, wait_for

IFO = "X1"


def pv(node, suffix):
    return "%s:GRD-%s_%s" % (IFO, node, suffix)


def snap(c, *args):
    return c.run("snapshot", *args)


def edit_config(c, old, new):
    """Replace old by new in the daemon's configuration file and apply it (guardctl reload)."""
    with open(c.config) as f:
        text = f.read()
    assert old in text, old
    with open(c.config, "w") as f:
        f.write(text.replace(old, new))
    c.ok("reload")


def controls(c, name):
    n = c.node(name)
    return n["request"], n["mode"], n["op"], n["running"], n["enabled"]


def test_save_diff_and_restore_put_every_node_back(ctl):
    c = ctl()  # B1, B2 (bench) and SUS_X (sus)
    before = {n: controls(c, n) for n in ("B1", "B2", "SUS_X")}
    r = c.ok("snapshot", "save", "before-vent")
    assert "snapshot before-vent saved: 3 nodes" in r.stdout
    rows = c.json("snapshot", "list")["snapshots"]
    assert [(x["name"], x["user"], x["nodes"]) for x in rows] == [("before-vent", "root", 3)]
    # Maintenance: things change.
    c.ok("request", "SUS_X", "SAFE")
    c.ok("mode", "B1", "MANUAL")
    c.ok("op", "B2", "PAUSE")
    c.ok("disable", "B2")
    c.ok("stop", "B2")
    diff = c.json("snapshot", "diff", "before-vent")
    got = {(n["node"], d["what"], d["now"], d["snapshot"])
           for n in diff["nodes"] for d in n["changes"]}
    assert got == {("SUS_X", "REQUEST", "SAFE", before["SUS_X"][0]),
                   ("B1", "MODE", "MANUAL", "AUTO"),
                   ("B2", "OP", "PAUSE", "EXEC"),
                   ("B2", "enabled", "no", "yes"),
                   ("B2", "running", "no", "yes")}, got
    text = c.ok("snapshot", "diff", "before-vent").stdout
    assert "B1                        MODE      MANUAL -> AUTO" in text, text
    # A dry run says what it would do and changes nothing.
    r = c.ok("snapshot", "restore", "before-vent", "--dry-run")
    assert "dry run, nothing changed" in r.stdout and "would be restored" in r.stdout
    assert controls(c, "SUS_X")[0] == "SAFE" and not c.node("B2")["running"]
    # The restore: only what differs, in order (enable, start, then the controls).
    r = c.ok("snapshot", "restore", "before-vent")
    assert "B2                        running   no -> yes  started" in r.stdout, r.stdout
    for n in ("B1", "B2", "SUS_X"):
        assert controls(c, n) == before[n], n
    assert get(pv("SUS_X", "REQUEST")) == before["SUS_X"][0]
    assert get(pv("B1", "MODE"), as_string=True) == "AUTO"
    assert get(pv("B2", "OP"), as_string=True) == "EXEC"
    # Through the operators' path: audited as root's writes.
    audit = c.json("audit", "SUS_X", "REQUEST")["audit"]
    assert wait_for(lambda: c.json("audit", "B1", "MODE")["audit"][0]["new"] == "AUTO", 5)
    assert audit[0]["user"] == "root" and audit[0]["accepted"]
    assert "snapshot restore before-vent (3 nodes differed, 0 refused)" in c.daemon.log_text()
    assert "no differences" in c.ok("snapshot", "diff", "before-vent").stdout


def test_names_subsets_and_mistakes(ctl):
    c = ctl()
    c.ok("snapshot", "save", "s1")
    r = snap(c, "save", "s1")
    assert r.returncode == 1 and "snapshot s1 exists; --force replaces it" in r.stderr
    c.ok("mode", "B1", "MANUAL")
    c.ok("mode", "B2", "MANUAL")
    # NODE... restores only those.
    c.ok("snapshot", "restore", "s1", "B1")
    assert c.node("B1")["mode"] == "AUTO" and c.node("B2")["mode"] == "MANUAL"
    diff = c.json("snapshot", "diff", "s1")
    assert [n["node"] for n in diff["nodes"]] == ["B2"]
    # --force replaces it: now B2 MANUAL is what it holds.
    c.ok("snapshot", "save", "s1", "--force")
    assert "no differences" in c.ok("snapshot", "diff", "s1").stdout
    assert snap(c, "restore", "s1", "NO_SUCH").returncode == 1
    r = snap(c, "diff", "nothing-saved")
    assert r.returncode == 1 and "no snapshot nothing-saved" in r.stderr
    assert snap(c, "save", "-bad").returncode == 2
    assert snap(c, "save", "a/b").returncode == 2
    assert snap(c, "frobnicate", "s1").returncode == 2
    assert snap(c, "restore", "s1", "--force").returncode == 2
    assert snap(c, "list", "x").returncode == 2
    # Only operators change.
    assert c.run("snapshot", "save", "s2", as_nobody=True).returncode == 4
    assert c.run("snapshot", "delete", "s1", as_nobody=True).returncode == 4
    c.ok("snapshot", "delete", "s1")
    assert c.json("snapshot", "list")["snapshots"] == []
    assert snap(c, "delete", "s1").returncode == 1


def test_vanished_states_and_nodes_are_refused_and_said(ctl):
    nodes = [("G1", "mod_good", {}), ("B1", "bench", {})]
    c = ctl(nodes=nodes)
    c.ok("create", "TEMP", "bench")
    c.ok("request", "G1", "MIDDLE")
    assert wait_for(lambda: c.node("G1")["state"] == "MIDDLE", 5)
    c.ok("snapshot", "save", "before")
    # Afterwards: G1's system lost MIDDLE, TEMP is gone, NEW came.
    c.ok("destroy", "TEMP")
    c.ok("create", "NEW", "bench")
    c.ok("mode", "B1", "MANUAL")
    edit_config(c, "system = mod_good\n", "system = mod_good_v2\n")
    assert wait_for(lambda: c.node("G1")["system"] == "mod_good_v2", 5)
    r = snap(c, "restore", "before")
    assert r.returncode == 1, (r.stdout, r.stderr)
    out = r.stdout
    assert "REFUSED: state MIDDLE no longer exists in system mod_good_v2; not restored" in out, out
    assert "REFUSED: TEMP no longer exists" in out, out
    assert "runs system mod_good_v2 now, mod_good then: left as it is" in out, out
    assert "not in the snapshot (left alone): NEW" in out, out
    assert "2 changes not restored" in r.stderr, r.stderr
    # The rest was restored all the same.
    assert c.node("B1")["mode"] == "AUTO"
    j = json.loads(c.run("--json", "snapshot", "restore", "before", "--dry-run").stdout)
    assert j["failed"] == 2 and j["dry_run"]


def test_restore_follows_the_access_rules(ctl):
    rules = ["[users commissioners]", "members = carol", "[access SUS_*]", "MODE = commissioners",
             "[access *]", "* = *", ""]
    c = ctl(extra=rules)
    c.ok("snapshot", "save", "s")
    c.ok("request", "SUS_X", "SAFE")
    c.ok("mode", "B1", "MANUAL")
    # root may not write SUS_X's MODE; make it differ by the database: a later rule change.
    edit_config(c, "MODE = commissioners", "MODE = *")
    c.ok("mode", "SUS_X", "MANUAL")
    edit_config(c, "MODE = *", "MODE = commissioners")
    r = snap(c, "restore", "s")
    assert r.returncode == 1
    assert "REFUSED: root from 127.0.0.1 may not write MODE of SUS_X" in r.stdout, r.stdout
    n = c.node("SUS_X")
    assert n["mode"] == "MANUAL" and n["request"] != "SAFE", "the rest is restored"
    assert c.node("B1")["mode"] == "AUTO"


def test_restore_of_stopped_nodes_follows_the_access_rules_too(ctl):
    # A node that does not run gets its saved controls, not a channel write: the same rules
    # and the same audit all the same (root may not write SUS_*'s MODE).
    rules = ["[users commissioners]", "members = carol", "[access SUS_*]", "MODE = commissioners",
             "[access *]", "* = *", ""]
    c = ctl(extra=rules)
    c.ok("stop", "SUS_X")
    c.ok("stop", "B1")
    c.ok("snapshot", "save", "s")
    edit_config(c, "MODE = commissioners", "MODE = *")
    for n in ("SUS_X", "B1"):
        c.ok("start", n)
        c.ok("mode", n, "MANUAL")
        c.ok("stop", n)
    edit_config(c, "MODE = *", "MODE = commissioners")
    refusal = "REFUSED: root from 127.0.0.1 may not write MODE of SUS_X"
    r = snap(c, "restore", "s", "--dry-run")
    assert r.returncode == 1 and refusal in r.stdout and "would not be restored" in r.stdout, \
        r.stdout
    assert "B1                        MODE      MANUAL -> AUTO  would be restored" in r.stdout
    r = snap(c, "restore", "s")
    assert r.returncode == 1 and refusal in r.stdout, r.stdout
    assert "B1                        MODE      MANUAL -> AUTO  saved for its next start" \
        in r.stdout, r.stdout
    assert c.node("SUS_X")["mode"] == "MANUAL" and c.node("B1")["mode"] == "AUTO"
    assert wait_for(lambda: c.json("audit", "SUS_X", "MODE")["audit"][0]["new"] == "AUTO", 5)
    refused = c.json("audit", "SUS_X", "MODE")["audit"][0]
    assert (refused["user"], refused["accepted"]) == ("root", False), refused
    assert wait_for(lambda: c.json("audit", "B1", "MODE")["audit"][0]["new"] == "AUTO", 5)
    saved = c.json("audit", "B1", "MODE")["audit"][0]
    assert (saved["old"], saved["user"], saved["accepted"]) == ("MANUAL", "root", True), saved
    # What they start with is what the restore left.
    c.ok("start", "SUS_X")
    c.ok("start", "B1")
    assert get(pv("SUS_X", "MODE"), as_string=True) == "MANUAL"
    assert get(pv("B1", "MODE"), as_string=True) == "AUTO"


def test_snapshots_outlive_restarts_and_are_never_pruned(ctl):
    c = ctl()
    c.ok("request", "SUS_X", "SAFE")
    c.ok("snapshot", "save", "old")
    c.ok("mode", "B1", "MANUAL")  # just before the stop: kept all the same (persist_close)
    c.stop()
    # Two years later (aged in the file): history is pruned at the next open, snapshots are not.
    db = sqlite3.connect(c.database)
    with db:
        db.execute("UPDATE snapshots SET time = time - 730 * 86400")
        db.execute("UPDATE audit SET time = time - 730 * 86400")
    db.close()
    c.start()
    assert c.json("audit", "B1")["audit"] == [], "the aged audit rows were not pruned"
    rows = c.json("snapshot", "list")["snapshots"]
    assert [x["name"] for x in rows] == ["old"]
    diff = c.json("snapshot", "diff", "old")
    assert [(n["node"], d["what"]) for n in diff["nodes"] for d in n["changes"]] == \
        [("B1", "MODE")]
    c.ok("snapshot", "restore", "old")
    assert c.node("B1")["mode"] == "AUTO" and c.node("SUS_X")["request"] == "SAFE"
