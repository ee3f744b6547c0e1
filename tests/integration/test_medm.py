"""test_medm.py — the generated MEDM screens (issue 11).

No MEDM here: every file is read with the strict parser of adl.py (written from
../shared/docs/adl.md), and every channel a screen names (after its macros are expanded as the
overview's buttons expand them) must exist on the live daemon and connect over CA, with the
type its widget needs. The site is a small copy of the demo's shape: suspensions, a tree of
managers, a monitor and bench nodes.
"""
import os
import re
import signal
import subprocess
import time

import pytest

import adl
from harness import (CaClient, ENUM, guardctl_path, node_daemon,  # noqa: F401
                     wait_for, write_config)

IFO = "X1"
SITE = [("SUS_A", "sus", {"optic": "A"}), ("SUS_B", "sus", {"optic": "B"}),
        ("SUS_C", "sus", {"optic": "C"}),
        ("IMC", "lock", {"nodes": "SUS_A,SUS_B"}), ("TOP", "lock", {"nodes": "IMC",
                                                                     "down": "DOWN",
                                                                     "up": "LOCKED"}),
        ("WATCH", "ifo", {"nodes": "SUS_A,SUS_B,SUS_C"}),
        ("BENCH1", "bench", {}), ("BENCH2", "bench", {})]
SYSTEM = {name: system for name, system, _ in SITE}


@pytest.fixture
def epics():
    import epics as pyepics
    return pyepics


def write_screens(d, out):
    r = subprocess.run([guardctl_path(), "--socket", d.socket, "medm", "--out", str(out)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return {f: open(os.path.join(str(out), f)).read() for f in os.listdir(str(out))
            if f.endswith(".adl")}


# ---- the parser itself catches what it must (adl.md section 13) ----

GOOD = []  # the node screen of a one-node daemon, made once


def good_file(node_daemon, tmp_path):
    if not GOOD:
        d = node_daemon([("SUS_A", "sus", {"optic": "A"})])
        GOOD.append(write_screens(d, tmp_path)["GUARDIAN_NODE.adl"])
    return GOOD[0]


@pytest.mark.parametrize("bad, why", [
    (lambda t: t.replace("version=030122", "version=3.1.22"), "version"),
    (lambda t: t.replace("version=030122\n", ""), "lacks version"),
    (lambda t: t.replace("\t\t1a7309,\n", "\t\t1a7309\n"), "expected ,"),
    (lambda t: t.replace("clr=14\n", "clr=70\n", 1), "out of 0-64"),
    (lambda t: t.replace("clr=14\n\t}", "clr=14}", 1), "unquoted word '14}'"),
    (lambda t: t.replace("\"text update\" {", "\"text updte\" {", 1), "unknown object"),
    (lambda t: t.replace("format=\"string\"", "format=\"eng. notation\"", 1), "not one of"),
    (lambda t: t.replace("textix=\"", "textix=\"caf\xe9 ", 1), "ASCII"),
    (lambda t: t.replace("\tclrmod=", "\twidget {\n\t}\n\tclrmod=", 1), "unknown block"),
    (lambda t: t.replace("format=\"string\"", "format=\"string\"\n\t\tformat=\"string\"", 1),
     "twice"),
    (lambda t: t[:t.rindex("}")], "end of file"),  # a block not closed
    (lambda t: t.replace("menu {", "menu {\n\tmenu {\n\t}", 1), "unknown block menu"),
])
def test_the_parser_refuses_what_medm_would_misread(node_daemon, tmp_path, bad, why):
    text = good_file(node_daemon, tmp_path)
    adl.parse(text)  # the good file parses
    changed = bad(text)
    assert changed != text
    with pytest.raises(adl.AdlError, match=why):
        adl.parse(changed)


# ---- the screens of a site ----

def expand_all(doc, macros):
    return adl.channels(doc, macros), adl.links(doc, macros)


def test_every_screen_parses_fits_and_names_live_channels(node_daemon, epics, tmp_path):
    d = node_daemon(SITE)
    files = write_screens(d, tmp_path)
    systems = sorted(set(SYSTEM.values()))
    assert sorted(files) == sorted(["X1_GUARDIAN_OVERVIEW.adl", "X1_GUARDIAND_SUPERVISOR.adl",
                                    "GUARDIAN_NODE.adl"] +
                                   ["GUARDIAN_STATES_%s.adl" % s for s in systems])
    docs = {}
    for name, text in files.items():
        doc = docs[name] = adl.parse(text)
        assert doc["file"].fields["name"] == name
        problems = adl.check_geometry(doc)
        assert not problems, "%s: %s" % (name, problems[:5])

    c = CaClient(epics)
    # Which screens are opened with which macros: the overview's buttons say.
    todo = [("X1_GUARDIAN_OVERVIEW.adl", {})]
    seen_links = set()
    checked = set()
    while todo:
        name, macros = todo.pop()
        key = (name, tuple(sorted(macros.items())))
        if key in checked:
            continue
        checked.add(key)
        doc = docs[name]
        chans, lks = expand_all(doc, macros)
        for chan, obj, role in chans:
            assert "$(" not in chan, "%s: %s: a macro left unexpanded" % (name, chan)
            chid = c.chan(chan)  # connects, or the test fails naming it
            if obj.name in ("menu", "choice button"):
                assert c.ca.field_type(chid) == ENUM, "%s on %s, not an ENUM" % (obj.name, chan)
            if obj.name == "text entry":
                assert c.ca.write_access(chid), chan
            if obj.name == "message button":
                assert c.ca.write_access(chid), chan
        for target, args in lks:
            assert target in files, "%s links to %s, which was not generated" % (name, target)
            seen_links.add(target)
            todo.append((target, args))
    assert seen_links >= set(files) - {"X1_GUARDIAN_OVERVIEW.adl"}, \
        "every screen is reachable from the overview: %s" % (set(files) - seen_links)

    # The overview holds every node exactly once, with the macros its screens need.
    overview = docs["X1_GUARDIAN_OVERVIEW.adl"]
    nodes = [args.get("NODE") for target, args in adl.links(overview, {})
             if target == "GUARDIAN_NODE.adl"]
    assert sorted(nodes) == sorted(SYSTEM), nodes
    for target, args in adl.links(overview, {}):
        if target == "GUARDIAN_NODE.adl":
            assert args == {"IFO": IFO, "NODE": args["NODE"], "SYSTEM": SYSTEM[args["NODE"]]}
    # Trees first: TOP, IMC under it, then its suspensions; then the rest by system.
    texts = [b.fields["textix"] for b in overview["objects"] if b.name == "text"]
    order = [t for t in texts if t in SYSTEM]
    assert order[:4] == ["TOP", "IMC", "SUS_A", "SUS_B"], order
    indent = {b.fields["textix"]: b.box()[0] for b in overview["objects"]
              if b.name == "text" and b.fields["textix"] in SYSTEM}
    assert indent["TOP"] < indent["IMC"] < indent["SUS_A"] == indent["SUS_B"]

    # The states screens: a button writing REQUEST for each requestable state; every state.
    for system in systems:
        doc = docs["GUARDIAN_STATES_%s.adl" % system]
        node = [n for n, s in SYSTEM.items() if s == system][0]
        menu = list(c.ctrl("%s:GRD-%s_REQUEST_ENUM" % (IFO, node))["enum_strs"])
        buttons = [b for b in doc["objects"] if b.name == "message button"]
        assert [b.fields["press_msg"] for b in buttons] == menu or \
            sorted(b.fields["press_msg"] for b in buttons) == sorted(menu), (system, menu)
        for b in buttons:
            assert b.block("control").fields["chan"] == "$(IFO):GRD-$(NODE)_REQUEST"
        highlighted = {b.block("dynamic attribute").fields["chan"] for b in doc["objects"]
                       if b.name == "rectangle" and b.block("dynamic attribute")}
        assert highlighted == {"$(IFO):GRD-$(NODE)_STATE_N", "$(IFO):GRD-$(NODE)_TARGET_N"}


def test_a_button_press_writes_what_the_screen_says(node_daemon, epics, tmp_path):
    """What MEDM would do with the states screen's buttons and the node screen's controls,
    done over CA with the values the files hold."""
    d = node_daemon([("BENCH1", "bench", {})])
    files = write_screens(d, tmp_path)
    doc = adl.parse(files["GUARDIAN_STATES_bench.adl"])
    c = CaClient(epics)
    macros = {"IFO": IFO, "NODE": "BENCH1", "SYSTEM": "bench"}
    button = [b for b in doc["objects"] if b.name == "message button"][0]
    chan = adl.expand(button.block("control").fields["chan"], macros)
    c.put(chan, button.fields["press_msg"])
    assert wait_for(lambda: c.get("%s:GRD-BENCH1_REQUEST" % IFO) == button.fields["press_msg"])
    node = adl.parse(files["GUARDIAN_NODE.adl"])
    load = [b for b in node["objects"] if b.name == "message button"][0]
    assert load.fields["press_msg"] == "True"
    chan = adl.expand(load.block("control").fields["chan"], macros)
    states = list(c.ctrl(chan)["enum_strs"])  # MEDM writes an ENUM's index
    c.put(chan, ("enum", states.index(load.fields["press_msg"])))
    assert wait_for(lambda: "BENCH1 LOAD: bench" in d.log_text(), 5)


def test_the_daemon_keeps_the_screens_of_medm_dir_current(tmp_path, epics):
    """medm_dir: written at start; after a SIGHUP that adds and removes nodes the overview
    follows, and files whose content did not change are not rewritten."""
    from harness import EPICS_CLIENT_VARS, NodeDaemon, reset_pyepics, restore_env
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    medm = tmp_path / "medm"
    medm.mkdir()
    nodes = [("SUS_A", "sus", {"optic": "A"}), ("BENCH1", "bench", {})]
    config, database = write_config(tmp_path, nodes, settings={"medm_dir": str(medm)})
    d = NodeDaemon(config, database)
    try:
        d.start()
        overview = medm / "X1_GUARDIAN_OVERVIEW.adl"
        assert wait_for(lambda: overview.exists(), 5), d.log_text()
        node_file = medm / "GUARDIAN_NODE.adl"
        assert wait_for(lambda: node_file.exists(), 5)
        mtime = node_file.stat().st_mtime_ns
        text = overview.read_text()
        assert "NODE=SUS_A," in text and "NODE=BENCH1," in text
        time.sleep(0.05)
        write_config(tmp_path, [("SUS_A", "sus", {"optic": "A"}),
                                ("BENCH2", "bench", {})], settings={"medm_dir": str(medm)})
        d.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "NODE=BENCH2," in overview.read_text(), 10), d.log_text()
        text = overview.read_text()
        assert "NODE=BENCH1," not in text and "NODE=SUS_A," in text
        adl.parse(text)
        assert node_file.stat().st_mtime_ns == mtime, "an unchanged screen is not rewritten"
        assert not [f for f in os.listdir(str(medm)) if ".tmp." in f], "no temporary left"
        assert re.search(r"guardiand: medm: \d+ of \d+ screens written to", d.log_text())
    finally:
        alive = d.alive()
        code = d.stop()
        reset_pyepics()
        restore_env(saved)
    assert alive and code == 0


def test_the_geometry_checks_catch_overlaps_and_objects_outside(node_daemon, tmp_path):
    text = good_file(node_daemon, tmp_path)
    doc = adl.parse(text)
    assert adl.check_geometry(doc) == []
    updates = [b for b in doc["objects"] if b.name == "text update"]
    first, second = updates[0].block("object"), updates[1].block("object")
    second.fields["x"], second.fields["y"] = first.fields["x"], first.fields["y"]
    assert any("overlaps" in p for p in adl.check_geometry(doc))
    second.fields["x"] = "100000"
    assert any("outside" in p for p in adl.check_geometry(doc))
    first.fields["height"] = "22"
    assert any("picks no recommended font" in p for p in adl.check_geometry(doc))


def demo_site(tmp_path):
    """etc/demo.ini (what `make run` serves), with this test's paths."""
    from harness import REPO, systems_dir
    lines = []
    for line in open(os.path.join(REPO, "etc", "demo.ini")):
        key = line.split("=")[0].strip()
        if key in ("systems", "database", "control_socket", "medm_dir"):
            continue
        lines.append(line.rstrip("\n"))
        if line.strip() == "[guardiand]":
            lines += ["systems = %s" % systems_dir(), "database = %s/demo.db" % tmp_path,
                      "medm_dir = %s" % tmp_path]
    path = os.path.join(str(tmp_path), "demo.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_the_demo_sites_screens_name_only_live_channels(tmp_path, epics):
    """The demo site of `make run` (etc/demo.ini, 204 nodes, plant simulated here): every
    file the daemon keeps in medm_dir parses and fits; every channel of the overview, of the
    supervisor screen, of the node screen opened for every node and of the states screen
    opened for one node of each system (as the overview's buttons open them) connects."""
    from harness import EPICS_CLIENT_VARS, NodeDaemon, reset_pyepics, restore_env
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    config = demo_site(tmp_path)
    d = NodeDaemon(config, str(tmp_path / "demo.db"))
    try:
        d.start()
        d.client_env()
        reset_pyepics()
        overview = tmp_path / "X1_GUARDIAN_OVERVIEW.adl"
        assert wait_for(lambda: overview.exists(), 10), d.log_text()[-2000:]
        assert wait_for(lambda: (tmp_path / "GUARDIAN_STATES_lock.adl").exists(), 5)
        docs = {f: adl.parse(open(os.path.join(str(tmp_path), f)).read())
                for f in os.listdir(str(tmp_path)) if f.endswith(".adl")}
        for name, doc in docs.items():
            assert adl.check_geometry(doc) == [], name
        c = CaClient(epics)
        over = docs["X1_GUARDIAN_OVERVIEW.adl"]
        opened = [args for target, args in adl.links(over, {}) if target == "GUARDIAN_NODE.adl"]
        assert len(opened) == 204 and len({a["NODE"] for a in opened}) == 204
        one_per_system = {}
        for args in opened:
            one_per_system.setdefault(args["SYSTEM"], args)
        screens = [(over, {}), (docs["X1_GUARDIAND_SUPERVISOR.adl"], {})]
        screens += [(docs["GUARDIAN_NODE.adl"], args) for args in opened]
        screens += [(docs["GUARDIAN_STATES_%s.adl" % args["SYSTEM"]], args)
                    for args in one_per_system.values()]
        for target in {t for doc, macros in screens for t, _ in adl.links(doc, macros)}:
            assert target in docs, "a button opens %s, which was not written" % target
        names = sorted({chan for doc, macros in screens
                        for chan, _, _ in adl.channels(doc, macros)})
        assert len(names) > 6000  # about 30 a node
        chids = [c.ca.create_channel(n, connect=False, auto_cb=False) for n in names]
        deadline = time.monotonic() + 60
        missing = names
        while missing and time.monotonic() < deadline:
            time.sleep(0.2)
            missing = [n for n, ch in zip(names, chids) if not c.ca.isConnected(ch)]
        assert not missing, "%d channels never connected, e.g. %s" % (len(missing),
                                                                        missing[:5])
    finally:
        reset_pyepics()
        alive = d.alive()
        code = d.stop()
        restore_env(saved)
    assert alive and code == 0
