"""test_log_store.py — node log lines in the database (issue 12, item 6): `guardctl log` reads past
the in-memory ring (its last 128 lines) and across restarts of the daemon, with --since, also for
stopped and destroyed nodes; without a database it says that older lines need one.

A `bench` node with period=0 steps every cycle (16 Hz) and logs a line or two a step, so it passes
the ring's 128 lines within seconds. Lines are compared as text: each starts with its UTC stamp
(node/log.c), which also gives its time for the --since checks.
"""
import calendar
import time

from harness import Ctl, wait_for

RING = 128
NODES = [("FAST", "bench", {"period": "0"}), ("B2", "bench", {})]


def stamp(line):
    """The time of a log line, from its stamp: 2026-11-26_12:00:00.123456Z."""
    text = line.split(" ", 1)[0]
    assert text.endswith("Z") and "_" in text, line
    whole, frac = text[:-1].split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%d_%H:%M:%S")) + float("0." + frac)


def lines(c, node, *args):
    reply = c.json("log", node, *args)
    assert all(" %s " % node in l for l in reply["lines"]), "only the node's own lines"
    return reply


def test_log_reads_the_database_past_the_ring_and_across_restarts(ctl):
    c = ctl(nodes=NODES)
    assert wait_for(lambda: len(lines(c, "FAST", "-n", "1000")["lines"]) >= 300, timeout=30)
    first = lines(c, "FAST", "-n", "1000")
    assert first["stored"] is True and first["more"] is False
    before = first["lines"]
    assert len(before) > RING
    assert before == sorted(before, key=stamp), "oldest first"
    assert len(set(before)) == len(before), "no line twice (ring and database)"
    # Within the ring: from memory, as before.
    small = lines(c, "FAST", "-n", "5")
    assert small["stored"] is False and len(small["lines"]) == 5
    # -n beyond what exists says nothing more; a smaller -n says older lines exist.
    some = lines(c, "FAST", "-n", "200")
    assert len(some["lines"]) == 200 and some["more"] is True and some["stored"] is True
    human = c.ok("log", "FAST", "-n", "200")
    assert "the last 200 lines; older lines exist" in human.stderr, human.stderr
    assert len(human.stdout.splitlines()) == 200

    # The daemon restarts: the lines from before are still there, and the new ones follow.
    c.stop()
    restarted = time.time()
    c = ctl(nodes=NODES)
    assert wait_for(lambda: any(stamp(l) > restarted
                                for l in lines(c, "FAST", "-n", "20")["lines"][-1:]))
    after = lines(c, "FAST", "-n", "100000")["lines"]
    assert set(before) <= set(after), "lines from before the restart are kept"
    assert len(after) > len(before) and after == sorted(after, key=stamp)
    assert len(set(after)) == len(after)
    # The default 20 just after a restart reach back before it (the ring holds less).
    assert wait_for(lambda: len(lines(c, "B2", "-n", "20")["lines"]) == 20)

    # --since: exactly the lines later than the time, all of them unless -n.
    since = lines(c, "FAST", "--since", "%.6f" % restarted)["lines"]
    assert since and all(stamp(l) > restarted for l in since)
    assert not set(since) & set(before)
    assert len(lines(c, "FAST", "--since", "1h")["lines"]) >= len(after)
    newest = lines(c, "FAST", "--since", "1h", "-n", "3")["lines"]
    assert len(newest) == 3 and stamp(newest[0]) > restarted
    assert lines(c, "FAST", "--since", "%.0f" % (time.time() + 3600))["lines"] == []
    assert c.run("log", "FAST", "--since", "yesterday-ish").returncode == 2
    assert c.run("log", "FAST", "-n", "100001").returncode == 2

    # Stopped: its stored lines, the stop included, past the ring.
    c.ok("stop", "FAST")
    stopped = lines(c, "FAST", "-n", "1000")
    assert stopped["running"] is False and stopped["stored"] is True
    assert len(stopped["lines"]) > len(after) > RING
    assert "FAST stopped by root (uid 0)" in stopped["lines"][-1]
    assert "is not running: its log from the database" in c.ok("log", "FAST", "-n", "300").stdout

    # Destroyed: no longer a node, its log still readable; an unknown node is still refused.
    c.ok("destroy", "FAST")
    assert "FAST" not in [n["name"] for n in c.json("list")["nodes"]]
    gone = lines(c, "FAST", "-n", "100000")["lines"]
    assert set(after) <= set(gone)
    assert any(stamp(l) < restarted for l in gone)
    assert len(lines(c, "FAST", "--since", "%.6f" % restarted)["lines"]) == len(gone) - len(
        [l for l in gone if stamp(l) <= restarted])
    r = c.run("log", "NOPE", "-n", "500")
    assert r.returncode == 1 and "unknown node 'NOPE'" in r.stderr, r.stderr
    status = c.json("status")["supervisor"]
    assert status["database"]["log_dropped"] == 0
    c.stop()


def test_log_without_a_database_says_older_lines_need_one(ctl, tmp_path):
    c = Ctl(tmp_path, nodes=NODES)
    c.database = str(tmp_path)  # a folder: the daemon runs without persistence
    c.start()
    try:
        assert wait_for(lambda: len(c.json("log", "FAST", "-n", "200")["lines"]) == RING,
                        timeout=30)
        r = c.ok("log", "FAST", "-n", "500")
        assert len(r.stdout.splitlines()) == RING
        assert "only the last 128 lines of each node are kept" in r.stderr, r.stderr
        assert "older lines need the database" in r.stderr, r.stderr
        r = c.run("log", "FAST", "--since", "1h")
        assert r.returncode == 1 and "--since and older lines need the database" in r.stderr, \
            r.stderr
        assert len(c.json("log", "FAST", "-n", "7")["lines"]) == 7
    finally:
        c.stop()
