"""test_persistence.py — node state and crash history across restarts (issue 4).

Each test runs one or more guardiand processes, one after the other, on the same configuration
file and SQLite database in its own temporary folder, and looks at the result through CA
(pyepics, a fresh libca context per daemon) and through the database file itself (Python's
sqlite3, read-only). The crash tests use tests/node/mod_crashy.c, whose SEGV state dereferences
a null pointer and whose HANG state spins forever.
"""
import os
import signal
import sqlite3
import time

import pytest

from harness import (NodeDaemon, chan, daemon_path, forget_channels, get, put, systems_path,
                     wait_for, write_config)

NODES = [("B1", "bench", {}), ("SUS_X", "sus", {"optic": "ETMX"}), ("BOOM", "mod_crashy", {})]


class Runs:
    """Daemons started one after another on one folder's configuration and database."""

    def __init__(self, folder):
        self.folder = folder
        self.current = None
        self.problems = []

    def config(self, nodes=NODES, extra=()):
        return write_config(self.folder, nodes, systems=systems_path(), extra=extra)

    def start(self, nodes=NODES, extra=(), env=None, expect_ready=True):
        config, database = self.config(nodes, extra)
        self.database = database
        d = NodeDaemon(config, database, env=env)
        self.current = d
        if not expect_ready:
            return d
        d.start()
        d.client_env()
        forget_channels()
        return d

    def stop(self, sig=signal.SIGTERM):
        d = self.current
        if sig == signal.SIGTERM:
            forget_channels()
            assert d.stop() == 0, d.log_text()[-3000:]
        else:
            d.proc.send_signal(sig)
            d.proc.wait(10)
        forget_channels()

    def wait_dead(self, timeout=15.0):
        d = self.current
        try:
            d.proc.wait(timeout)
        except Exception:
            d.proc.kill()
            d.proc.wait()
            raise AssertionError("the daemon did not die:\n" + d.log_text()[-3000:])
        forget_channels()
        return d.proc.returncode

    def query(self, sql, *args):
        con = sqlite3.connect("file:%s?mode=ro" % self.database, uri=True)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


@pytest.fixture
def runs(tmp_path):
    r = Runs(tmp_path)
    yield r
    if r.current and r.current.alive():
        forget_channels()
        code = r.current.stop()
        assert code == 0, "guardiand exited with %s after SIGTERM" % code


def test_restart_restores_request_mode_and_op(runs):
    runs.start()
    put("X1:GRD-B1_REQUEST", "STEP_B")
    put("X1:GRD-B1_MODE", 2)  # MANUAL
    put("X1:GRD-SUS_X_OP", 1)  # PAUSE
    assert wait_for(lambda: get("X1:GRD-B1_STATE", as_string=True) == "STEP_B")
    time.sleep(0.6)  # past a flush (0.25 s)
    runs.stop()
    assert runs.query("select clean from boots order by id") == [(1,)]

    runs.start()
    assert get("X1:GRD-B1_REQUEST", as_string=True) == "STEP_B"
    assert get("X1:GRD-B1_MODE", as_string=True) == "MANUAL"
    assert get("X1:GRD-SUS_X_OP", as_string=True) == "PAUSE"
    assert get("X1:GUARDIAND-PREV_BOOT", as_string=True) == "CLEAN"
    # Guardian's rule: it starts in INIT and heads for the restored request.
    assert wait_for(lambda: get("X1:GRD-B1_STATE", as_string=True) == "STEP_B")
    hist = runs.query("select from_state, to_state, how from transitions where node = 'B1' "
                      "order by id")
    assert ("INIT", "IDLE", "edge") in hist or any(h[0] == "INIT" for h in hist), hist


def test_sigkill_mid_run_then_restored(runs):
    runs.start()
    put("X1:GRD-B1_REQUEST", "STEP_A")
    put("X1:GRD-B1_OP", 1)  # PAUSE
    time.sleep(0.8)
    runs.stop(signal.SIGKILL)
    runs.start()
    assert get("X1:GRD-B1_REQUEST", as_string=True) == "STEP_A"
    assert get("X1:GRD-B1_OP", as_string=True) == "PAUSE"
    assert get("X1:GUARDIAND-PREV_BOOT", as_string=True) == "UNCLEAN"
    assert runs.query("select clean from boots order by id") == [(0,), (None,)]


def test_writes_are_audited_with_host_and_user(runs):
    import epics
    runs.start()
    put("X1:GRD-B1_REQUEST", "STEP_B")
    epics.caput("X1:GRD-B1_REQUEST", "NO_SUCH_STATE", wait=True, timeout=3.0)
    time.sleep(0.6)
    rows = runs.query("select channel, old_value, new_value, host, user, accepted from audit "
                      "where node = 'B1' order by id")
    assert len(rows) == 2, rows
    assert rows[0][:3] == ("REQUEST", "STEP_A", "STEP_B") and rows[0][5] == 1, rows
    assert rows[1][2] == "NO_SUCH_STATE" and rows[1][5] == 0, rows
    assert rows[0][3] and rows[0][4], "the client's host and user are recorded"


def crash_once(runs, state, extra=()):
    """Start, request `state` of BOOM (which kills the process), wait for the death."""
    d = runs.start(extra=extra)
    import epics
    epics.ca.put(chan("X1:GRD-BOOM_REQUEST"), state, wait=False)
    code = runs.wait_dead()
    return d, code


def test_segfault_is_recorded_and_a_crash_loop_ends_in_quarantine(runs):
    # SEGV crashes half a second after it is entered: the request is saved first, so every
    # restart heads back into the crash, as a real crash loop would.
    d, code = crash_once(runs, "SEGV")
    assert code == -signal.SIGSEGV, d.log_text()[-2000:]
    journal = runs.database + ".crashes"
    assert os.path.getsize(journal) > 0

    runs.start()  # imports the journal, restores REQUEST=SEGV, and crashes again
    assert get("X1:GRD-BOOM_CRASHES") == 1
    assert get("X1:GRD-BOOM_QUARANTINED", as_string=True) == "False"
    assert runs.wait_dead() == -signal.SIGSEGV
    rows = runs.query("select node, state, phase, signal, backtrace from crashes")
    assert len(rows) == 1, rows
    node, state, phase, sig, bt = rows[0]
    assert (node, state, phase, sig) == ("BOOM", "SEGV", "run", signal.SIGSEGV)
    assert "mod_crashy" in bt, bt
    assert runs.query("select clean from boots order by id")[0] == (0,)

    runs.start()  # the third crash
    assert runs.wait_dead() == -signal.SIGSEGV
    runs.start()  # three crashes within the hour: quarantined, and the others run
    assert runs.query("select count(*) from crashes where node = 'BOOM'") == [(3,)]
    assert os.path.getsize(journal) == 0, "the journal is emptied once imported"
    gaps = [g[0] for g in runs.query("select since_prev_crash from crashes order by time")]
    assert (gaps[0] is None or gaps[0] < 0) and all(g > 0 for g in gaps[1:]), gaps
    assert get("X1:GRD-BOOM_QUARANTINED", as_string=True) == "True"
    assert get("X1:GRD-BOOM_CRASHES") == 3
    assert "QUARANTINED" in get("X1:GRD-BOOM_USERMSG", as_string=True)
    assert get("X1:GUARDIAND-QUARANTINED") == 1
    put("X1:GRD-B1_REQUEST", "STEP_B")
    assert wait_for(lambda: get("X1:GRD-B1_STATE", as_string=True) == "STEP_B")
    time.sleep(1.0)  # a quarantined node is not stepped: it never reaches SEGV
    assert get("X1:GRD-BOOM_STATE", as_string=True) == "INIT"
    assert runs.current.alive()

    # Issue 12, item 5: controls that would do nothing are refused, saying why, until release.
    import subprocess
    from harness import guardctl_path

    def ctl(*args):
        return subprocess.run([guardctl_path(), "--socket", runs.current.socket] + list(args),
                              capture_output=True, text=True, timeout=10)
    for args in (("request", "BOOM", "IDLE"), ("mode", "BOOM", "MANUAL"), ("op", "BOOM", "PAUSE"),
                 ("restart", "BOOM"), ("start", "BOOM")):
        r = ctl(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "quarantined" in r.stderr + r.stdout and "guardctl release BOOM" in r.stderr, \
            (args, r.stderr)
    import epics
    before = get("X1:GRD-BOOM_REQUEST", as_string=True)
    epics.ca.put(chan("X1:GRD-BOOM_REQUEST"), "ABORT", wait=True)
    time.sleep(0.3)
    assert get("X1:GRD-BOOM_REQUEST", as_string=True) == before != "ABORT", \
        "a CA write is refused too"
    refused = "select accepted from audit where node = 'BOOM' and new_value = 'ABORT'"
    assert wait_for(lambda: runs.query(refused) == [(0,)], 5), "audited as refused"
    assert "QUARANTINED" in ctl("status", "BOOM").stdout.splitlines()[0]
    assert ctl("request", "B1", "STEP_C").returncode == 0, "the other nodes take controls"
    r = ctl("release", "BOOM")
    assert r.returncode == 0, r.stderr
    assert ctl("request", "BOOM", "IDLE").returncode == 0, "released: controls again"
    assert wait_for(lambda: get("X1:GRD-BOOM_STATE", as_string=True) == "IDLE", 5)


def test_hang_is_caught_and_recorded(runs):
    d, code = crash_once(runs, "HANG", extra=("hang_limit = 1",))
    assert code == -signal.SIGABRT, d.log_text()[-2000:]
    runs.start(nodes=NODES[:2], extra=("hang_limit = 1",))  # imports; BOOM left out
    rows = runs.query("select node, state, phase, signal from crashes")
    assert rows == [("BOOM", "HANG", "run", signal.SIGALRM)], rows


def test_journal_is_imported_exactly_once(runs):
    crash_once(runs, "ABORT")
    runs.start(nodes=NODES[:2])  # BOOM left out, so it does not crash again
    runs.stop()
    runs.start(nodes=NODES[:2])
    runs.stop()
    assert runs.query("select count(*), min(signal) from crashes") == [(1, signal.SIGABRT)]


def test_database_write_failures_degrade_and_recover(runs):
    runs.start(env={"GUARDIAND_TEST_FAIL_FLUSHES": "4"})
    # The first flushes fail: the daemon says so and keeps running.
    assert wait_for(lambda: get("X1:GUARDIAND-DB_STATUS", as_string=True) == "DEGRADED")
    put("X1:GRD-B1_REQUEST", "STEP_B")
    assert wait_for(lambda: get("X1:GRD-B1_STATE", as_string=True) == "STEP_B")
    assert wait_for(lambda: get("X1:GUARDIAND-DB_STATUS", as_string=True) == "OK", timeout=30)
    time.sleep(0.6)
    log = runs.current.log_text()
    assert "database" in log and ("fail" in log or "error" in log.lower()), log[-2000:]
    runs.stop()
    runs.start()
    assert get("X1:GRD-B1_REQUEST", as_string=True) == "STEP_B", log


def test_corrupt_database_is_reported_and_left_alone(runs):
    config, database = runs.config()
    with open(database, "wb") as f:
        f.write(b"this is not an SQLite database at all" * 100)
    before = open(database, "rb").read()
    runs.start()
    assert get("X1:GUARDIAND-DB_STATUS", as_string=True) == "NONE"
    # Issue 12, item 19: DB_MESSAGE is a long string (CHAR array): the whole reason, with the
    # path, not 39 characters of it.
    import epics
    message = epics.caget("X1:GUARDIAND-DB_MESSAGE", as_string=True, timeout=5)
    assert database in message and "not an SQLite database" in message, message
    assert get("X1:GRD-B1_STATE", as_string=True) is not None, "nodes run without a database"
    assert "running WITHOUT persistence" in runs.current.log_text()
    runs.stop()
    assert open(database, "rb").read() == before
    assert not os.path.exists(database + "-wal")


def test_newer_schema_is_refused(runs):
    config, database = runs.config()
    runs.start()  # creates and migrates the real schema
    runs.stop()
    con = sqlite3.connect(database)
    con.execute("pragma user_version = 999")
    con.commit()
    con.close()
    import subprocess
    r = subprocess.run([daemon_path(), "--config", config, "--database", database, "--port",
                        "1", "--control-socket", database + ".sock"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "999" in r.stderr and "newer" in r.stderr, r.stderr


def test_a_second_daemon_on_the_same_database_is_refused(runs):
    """Issue 12, 3: a second guardiand (its own control socket and ports) on a database another
    holds stops at once, naming the holder's PID, and the holder's history is untouched."""
    import subprocess
    first = runs.start()
    boots = runs.query("select count(*) from boots")
    config, database = runs.config()
    r = subprocess.run([daemon_path(), "--config", config, "--database", database, "--port",
                        "1", "--control-socket", database + ".second.sock"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert "is in use by another guardiand (pid %d" % first.proc.pid in r.stderr, r.stderr
    assert runs.query("select count(*) from boots") == boots, "no boot of its own"
    assert runs.query("select count(*) from boots where ended is null") == [(1,)]
    assert first.alive()
    assert get("X1:GUARDIAND-DB_STATUS", as_string=True) == "OK"
    runs.stop()
    # Once the holder is gone (even killed: the kernel drops the lock), a daemon starts.
    runs.start()
    runs.stop(signal.SIGKILL)
    runs.start()
    assert get("X1:GUARDIAND-DB_STATUS", as_string=True) == "OK"


def test_a_crash_journal_that_is_not_a_file_neither_hangs_nor_stops_the_start(runs):
    """Issue 12, item 18: /dev/full as the crash journal was read for ever at start-up (and
    SIGTERM could not stop it). It is refused with a message; the daemon runs and stops."""
    config, database = runs.config()
    # --database (as every test daemon gets) puts the journal beside it: make that /dev/full.
    os.symlink("/dev/full", database + ".crashes")
    runs.start()
    log = runs.current.log_text()
    assert "crash journal %s.crashes: not a regular file" % database in log, log[-2000:]
    assert "crashes will not be recorded" in log
    assert get("X1:GRD-B1_STATE", as_string=True) is not None
    runs.stop()


def test_exit_from_node_code_is_that_nodes_crash(runs):
    """Issue 12, item 16: a system calling exit(0) used to stop the daemon with status 0 and no
    record, so Restart=on-failure left the site down. It is the node's crash: a non-zero exit
    status, a crash row naming node and state, quarantine as for a segfault."""
    d, code = crash_once(runs, "EXIT")
    assert code == 70, (code, d.log_text()[-2000:])
    assert "about to call exit(0)" in d.log_text()
    runs.start()  # imports the record, heads for EXIT again
    assert runs.wait_dead() == 70
    rows = runs.query("select node, state, phase, signal, code from crashes")
    assert rows == [("BOOM", "EXIT", "run", 0, 0)], rows
    runs.start()
    assert runs.wait_dead() == 70
    runs.start()  # three crashes within the hour: quarantined
    assert get("X1:GRD-BOOM_QUARANTINED", as_string=True) == "True"
    assert runs.current.alive()


def test_a_database_that_cannot_be_opened_says_why_and_the_last_boot_is_unknown(runs, tmp_path):
    """Issue 12, item 11: the system's reason with the path, and no claim about the last boot
    that only a database could back."""
    import subprocess
    from harness import guardctl_path
    config, _ = runs.config()
    bad = str(tmp_path / "no" / "such" / "dir" / "guardiand.db")
    d = NodeDaemon(config, bad)
    runs.current = d
    d.start()
    log = d.log_text()
    assert "%s: cannot create: unable to open database file (No such file or directory)" % bad \
        in log, log[-2000:]
    assert "running WITHOUT persistence" in log
    r = subprocess.run([guardctl_path(), "--socket", d.socket, "status"], capture_output=True,
                       text=True, timeout=10)
    assert "Last boot: unknown (no database)" in r.stdout, r.stdout
