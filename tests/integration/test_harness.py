"""test_harness.py — the harness keeps every daemon away from the host's own (issue 12).

A daemon started by harness.py gets a control socket and a database of its own beside its log,
never /run/guardiand's socket (one per host: a test's daemon on it would refuse to start, or
take an operator's place) nor guardiand.db in the working directory; guardctl run without
--socket after client_env() reaches it through $GUARDIAND_SOCKET; and a clean stop leaves none
of its files behind. (tests/lib/harness.c follows the same rules for the C tests and benches.)
"""
import os
import subprocess

from harness import (EPICS_CLIENT_VARS, Daemon, NodeDaemon, daemon_path, guardctl_path,
                     restore_env, write_config)


def own_files(d):
    """The log and what the harness puts beside it."""
    return [d.log.name] + [d.log.name + s for s in (".db", ".db-wal", ".db-shm", ".db.lock",
                                                    ".sock")]


def option(argv, name):
    assert argv.count(name) == 1, argv
    return argv[argv.index(name) + 1]


def test_a_node_daemon_has_its_own_control_socket_and_guardctl_finds_it(tmp_path):
    config, database = write_config(tmp_path, [("B1", "bench", {})])
    d = NodeDaemon(config, database)
    saved = {k: os.environ.get(k) for k in EPICS_CLIENT_VARS}
    d.start()
    try:
        assert d.argv[0] == daemon_path()
        socket = option(d.argv, "--control-socket")
        assert socket == d.socket
        assert os.path.dirname(socket) == os.path.dirname(d.log.name)
        assert not socket.startswith("/run/")
        assert os.path.exists(socket)
        assert option(d.argv, "--database") == database
        d.client_env()
        assert os.environ["GUARDIAND_SOCKET"] == socket
        r = subprocess.run([guardctl_path(), "list"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and "B1" in r.stdout, (r.stdout, r.stderr)
    finally:
        code = d.stop()
        restore_env(saved)
    assert code == 0, d.log_text()
    assert not [f for f in own_files(d) if os.path.exists(f)]


def test_a_demo_daemon_has_its_own_database_and_control_socket():
    d = Daemon()
    d.start()
    try:
        assert option(d.argv, "--database") == d.log.name + ".db"
        assert option(d.argv, "--control-socket") == d.log.name + ".sock"
    finally:
        code = d.stop()
    assert code == 0, d.log_text()
    assert not [f for f in own_files(d) if os.path.exists(f)]
