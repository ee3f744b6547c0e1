"""test_install.py — `make install` and `make uninstall` into a DESTDIR.

Installs the build under test (the folder of $GUARDIAND: build, or build/asan) with PREFIX=/usr
into a temporary DESTDIR and checks that every file is where README and the unit say it is, that
the unit's paths were filled in, that guardian.h compiles on its own from the installed include
folder, and that an operator's configuration is never overwritten. `install` builds nothing, so
this takes about a second.
"""
import os
import shutil
import subprocess

import pytest

from harness import REPO, daemon_path


def build_dir():
    """The build folder of the daemon under test, relative to the repository."""
    return os.path.relpath(os.path.dirname(os.path.dirname(daemon_path())), REPO)


def make(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", "-C", REPO, "BUILD=" + build_dir()]
                          + list(args), env=env, capture_output=True, text=True, timeout=120)


def installed(dest, path):
    return os.path.join(str(dest), path.lstrip("/"))


def expected_files():
    build = os.path.join(REPO, build_dir())
    files = ["/usr/bin/guardiand", "/usr/include/guardiand/guardian.h",
             "/usr/share/man/man8/guardiand.8", "/usr/lib/systemd/system/guardiand.service",
             "/usr/share/guardiand/guardiand.ini.example", "/etc/guardiand/guardiand.ini"]
    files += ["/usr/lib/guardiand/systems/" + so for so in os.listdir(os.path.join(build, "systems"))
              if so.endswith(".so")]
    if os.access(os.path.join(build, "bin", "guardctl"), os.X_OK):
        files += ["/usr/bin/guardctl", "/usr/share/man/man1/guardctl.1"]
    if os.path.exists(os.path.join(REPO, "tools", "guardctl.bash-completion")):
        files.append("/usr/share/bash-completion/completions/guardctl")
    return files


def test_install_puts_every_file_in_place_and_keeps_the_config(tmp_path):
    dest = tmp_path / "root"
    r = make("install", "DESTDIR=%s" % dest, "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    for path in expected_files():
        assert os.path.isfile(installed(dest, path)), "%s not installed:\n%s" % (path, r.stdout)
    assert any(p.endswith("/bench.so") for p in expected_files())
    for path in ("/usr/bin/guardiand", "/usr/bin/guardctl"):
        if os.path.exists(installed(dest, path)):
            assert os.access(installed(dest, path), os.X_OK), path

    # The unit names the installed binary and configuration; nothing left to fill in.
    with open(installed(dest, "/usr/lib/systemd/system/guardiand.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/bin/guardiand --config /etc/guardiand/guardiand.ini\n" in unit, unit
    assert "@" not in unit.replace("$MAINPID", ""), "an unfilled @VAR@ in the unit"
    for line in ("Type=notify", "WatchdogSec=10", "Restart=on-failure"):
        assert line + "\n" in unit

    # systemd accepts it (every key known), with ExecStart pointed at the installed binary.
    if shutil.which("systemd-analyze"):
        local = tmp_path / "guardiand.service"
        local.write_text(unit.replace("/usr/bin/guardiand", installed(dest, "/usr/bin/guardiand")))
        v = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)],
                           capture_output=True, text=True, timeout=60)
        assert v.returncode == 0 and not (v.stdout + v.stderr).strip(), v.stdout + v.stderr

    # The example configuration, byte for byte.
    with open(os.path.join(REPO, "etc", "guardiand.ini")) as f:
        example = f.read()
    with open(installed(dest, "/etc/guardiand/guardiand.ini")) as f:
        assert f.read() == example

    # guardian.h is self-contained: a system compiles against the installed header alone.
    system = tmp_path / "mysys.c"
    system.write_text('#include <guardiand/guardian.h>\n'
                      'static grd_ret idle(grd_node *n) { (void)n; return GRD_DONE; }\n'
                      'GRD_SYSTEM(mysys, .request = "IDLE",\n'
                      '    .states = GRD_STATES(GRD_STATE("INIT", 0, .goto_ = true, .main = idle),\n'
                      '                         GRD_STATE("IDLE", 10, .request = true, .main = idle)),\n'
                      '    .edges = GRD_EDGES({"INIT", "IDLE"}));\n')
    cc = subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                         "-I", installed(dest, "/usr/include"), str(system)],
                        capture_output=True, text=True, timeout=60)
    assert cc.returncode == 0, cc.stderr

    # An operator's configuration survives a second install; the example is refreshed beside it.
    config = installed(dest, "/etc/guardiand/guardiand.ini")
    with open(config, "w") as f:
        f.write("; the operator's\n")
    r = make("install", "DESTDIR=%s" % dest, "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    with open(config) as f:
        assert f.read() == "; the operator's\n"
    assert "keeping" in r.stdout

    # uninstall removes what install put there except the configuration.
    r = make("uninstall", "DESTDIR=%s" % dest, "PREFIX=/usr")
    assert r.returncode == 0, r.stdout + r.stderr
    left = [p for p in expected_files() if os.path.exists(installed(dest, p))]
    assert left == ["/etc/guardiand/guardiand.ini"], left


@pytest.mark.skipif(shutil.which("man") is None, reason="no man(1)")
def test_man_pages_format_without_warnings():
    pages = [os.path.join(REPO, "docs", p) for p in ("guardiand.8", "guardctl.1")]
    for page in pages:
        if not os.path.exists(page):
            continue
        r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING=""))
        assert r.returncode == 0 and r.stdout, r.stderr
        assert not r.stderr.strip(), "%s:\n%s" % (page, r.stderr)
