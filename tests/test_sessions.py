"""Per-build sessions end to end: ``butlerd serve`` with a control socket,
``butlerd session open|close|list`` as a build runner calls them, clients that
only know the printed environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.daemon import Butlerd, handshake

BUTLERD = [sys.executable, "-m", "butlerd"]


class Daemon(Butlerd):
    """``serve`` with a control socket; sessions write under ``tmp/sessions/<id>``."""

    def __init__(self, tmp: Path, *flags: str) -> None:
        self.control = str(tmp / "control.sock")
        self.sessions_out = tmp / "sessions-out"
        # Socket paths must stay under 104 bytes; pytest's tmp paths are long.
        self.session_dir = tempfile.mkdtemp(prefix="bds-", dir="/tmp")
        super().__init__(tmp, *flags, serve_flags=(
            "-control-socket", self.control, "-session-dir", self.session_dir,
            "-session-output", f"directory,path={self.sessions_out}/{{id}}"))
        deadline = time.monotonic() + 20
        while not os.path.exists(self.control):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no control socket: {self.stderr()}")
            time.sleep(0.02)

    def session(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*BUTLERD, "session", "-control-socket", self.control, *args],
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"session {args} exited {proc.returncode}: {proc.stderr}")
        return proc

    def open(self, *args: str) -> dict:
        return json.loads(self.session("open", "--json", *args).stdout)


@pytest.fixture
def daemon(tmp_path: Path):
    started: list[Daemon] = []

    def start(*flags: str) -> Daemon:
        d = Daemon(tmp_path, *flags)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()
        shutil.rmtree(d.session_dir, ignore_errors=True)


def _write(env: dict, name: str, body: bytes, type_: str = "text") -> None:
    path = env["LOGDOG_STREAM_SERVER_PATH"].removeprefix("unix:")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(handshake(name, type_) + body)


def test_runner_flow_open_export_write_close(daemon, tmp_path):
    """The documented shell flow: eval the exports, a client bootstraps from them,
    close exits 0 and the session's output holds the data."""
    d = daemon()
    client = (
        "from clients import Bootstrap\n"
        "bs = Bootstrap.from_env()\n"
        "assert bs.project == 'chromium' and bs.prefix == 'buildbucket/cr/8712', bs\n"
        "with bs.client.text('u/stdout') as w:\n"
        "    w.write('step 1\\nstep 2\\n')\n"
        "with bs.client.binary('u/blob') as w:\n"
        "    w.write(bytes(range(256)))\n"
    )
    script = f"""
set -e
eval "$({sys.executable} -m butlerd session -control-socket {d.control} open \\
    --project chromium --prefix buildbucket/cr/8712 --tag builder=linux)"
echo "id=$BUTLERD_SESSION_ID"
{sys.executable} -c "{client}"
{sys.executable} -m butlerd session -control-socket {d.control} close "$BUTLERD_SESSION_ID" \\
    --drain-timeout 10s
"""
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr
    sid = proc.stdout.split("id=")[1].split()[0]
    assert "everything delivered" in proc.stdout
    out = d.sessions_out / sid
    assert (out / "u" / "stdout").read_bytes() == b"step 1\nstep 2\n"
    assert (out / "u" / "blob").read_bytes() == bytes(range(256))
    meta = json.loads((out / "u" / ".meta.stdout").read_text())
    assert meta["tags"] == {"builder": "linux"}
    assert not os.path.exists(os.path.join(d.session_dir, f"{sid}.sock")), "removed at close"
    assert d.stop() == 0


def test_open_prints_the_environment(daemon):
    d = daemon()
    text = d.session("open", "--project", "p", "--prefix", "a/b").stdout
    lines = dict(line.removeprefix("export ").split("=", 1) for line in text.splitlines())
    sid = lines["BUTLERD_SESSION_ID"]
    assert lines["LOGDOG_STREAM_PROJECT"] == "p"
    assert lines["LOGDOG_STREAM_PREFIX"] == "a/b"
    assert lines["LOGDOG_STREAM_SERVER_PATH"].startswith("unix:")
    assert sid in lines["LOGDOG_STREAM_SERVER_PATH"]
    assert lines["LOGDOG_COORDINATOR_HOST"] == f"file://{d.sessions_out / sid}"
    info = d.open("--project", "p", "--prefix", "a/c")
    assert info["LOGDOG_STREAM_SERVER_PATH"] == "unix:" + info["socket"]
    assert os.stat(info["socket"]).st_mode & 0o777 == 0o600


def test_two_sessions_same_stream_names_do_not_collide(daemon):
    d = daemon()
    a = d.open("--project", "p", "--prefix", "build/1")
    b = d.open("--project", "p", "--prefix", "build/2")
    _write(a, "u/stdout", b"from a\n")
    _write(b, "u/stdout", b"from b\n")
    for s in (a, b):
        d.session("close", s["id"])
    assert (d.sessions_out / a["id"] / "u" / "stdout").read_bytes() == b"from a\n"
    assert (d.sessions_out / b["id"] / "u" / "stdout").read_bytes() == b"from b\n"


def test_duplicate_name_refused_within_a_session_only(daemon):
    d = daemon()
    a = d.open("--prefix", "build/1")
    b = d.open("--prefix", "build/2")
    _write(a, "log", b"first\n")
    time.sleep(0.2)
    _write(a, "log", b"second\n")  # same session: refused
    _write(b, "log", b"other\n")  # other session: fine
    closed_a = d.session("close", a["id"], "--json", check=False)
    result = json.loads(closed_a.stdout)
    assert closed_a.returncode == 1, "a refused stream means the build's log is incomplete"
    assert result["streams"] == 1 and result["streams_refused"] == 1
    assert "1 stream(s) refused" in closed_a.stderr
    assert (d.sessions_out / a["id"] / "log").read_bytes() == b"first\n"
    assert d.session("close", b["id"]).returncode == 0
    assert (d.sessions_out / b["id"] / "log").read_bytes() == b"other\n"


def test_same_project_and_prefix_cannot_be_open_twice(daemon):
    d = daemon()
    d.open("--project", "p", "--prefix", "build/1")
    proc = d.session("open", "--project", "p", "--prefix", "build/1", check=False)
    assert proc.returncode == 250
    assert "unique per prefix" in proc.stderr


def test_close_cuts_a_stream_left_open_and_says_so(daemon):
    d = daemon()
    a = d.open("--prefix", "build/1")
    path = a["LOGDOG_STREAM_SERVER_PATH"].removeprefix("unix:")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(handshake("hung") + b"partial line\nmore")
        time.sleep(0.2)
        started = time.monotonic()
        proc = d.session("close", a["id"], "--drain-timeout", "300ms", check=False)
        assert time.monotonic() - started < 10
    assert proc.returncode == 1
    assert "1 stream(s) cut at the drain timeout" in proc.stderr
    # What was received is still delivered.
    assert (d.sessions_out / a["id"] / "hung").read_bytes() == b"partial line\nmore\n"


def test_close_waits_for_a_stream_that_finishes(daemon):
    d = daemon()
    a = d.open("--prefix", "build/1")
    path = a["LOGDOG_STREAM_SERVER_PATH"].removeprefix("unix:")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(handshake("slow") + b"one\n")
    closer = subprocess.Popen([*BUTLERD, "session", "-control-socket", d.control, "close",
                               a["id"], "--drain-timeout", "20s"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert closer.poll() is None, "close waits for the open stream"
    # New streams are refused while closing.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as late:
        try:
            late.connect(path)
            late.sendall(handshake("late") + b"x\n")
        except OSError:
            pass
    s.sendall(b"two\n")
    s.close()
    out, err = closer.communicate(timeout=30)
    assert (d.sessions_out / a["id"] / "slow").read_bytes() == b"one\ntwo\n"
    assert not (d.sessions_out / a["id"] / "late").exists()
    # The late stream was refused: close reports it rather than claiming completeness.
    assert closer.returncode == 1
    assert "1 stream(s) refused" in err and "cut" not in err


def test_an_open_stream_in_one_session_does_not_hold_up_another(daemon):
    d = daemon()
    a = d.open("--prefix", "build/1")
    b = d.open("--prefix", "build/2")
    path_a = a["LOGDOG_STREAM_SERVER_PATH"].removeprefix("unix:")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
        s.connect(path_a)
        s.sendall(handshake("forever") + b"x")
        bad.connect(path_a)
        bad.sendall(b"BTLR1")  # a handshake that never completes
        _write(b, "log", b"ok\n")
        started = time.monotonic()
        assert d.session("close", b["id"], "--drain-timeout", "20s").returncode == 0
        assert time.monotonic() - started < 10
    assert (d.sessions_out / b["id"] / "log").read_bytes() == b"ok\n"


def test_list_shows_counts(daemon):
    d = daemon()
    a = d.open("--project", "p", "--prefix", "build/1")
    _write(a, "one", b"12345\n")
    _write(a, "two", b"6789\n")
    time.sleep(0.3)
    sessions = json.loads(d.session("list", "--json").stdout)
    (s,) = sessions
    assert (s["id"], s["project"], s["prefix"]) == (a["id"], "p", "build/1")
    assert s["streams"] == 2 and s["bytes"] == 11 and s["open_streams"] == 0
    table = d.session("list").stdout
    assert a["id"] in table and "p/build/1" in table
    d.session("close", a["id"])
    assert json.loads(d.session("list", "--json").stdout) == []


def test_repeated_close_returns_the_same_result_and_unknown_id_fails(daemon):
    d = daemon()
    a = d.open("--prefix", "build/1")
    _write(a, "log", b"x\n")
    first = json.loads(d.session("close", a["id"], "--json").stdout)
    again = json.loads(d.session("close", a["id"], "--json").stdout)
    assert first == again and first["complete"]
    proc = d.session("close", "nosuchsession", check=False)
    assert proc.returncode == 250 and "no session" in proc.stderr


def test_sigterm_flushes_open_sessions(daemon):
    d = daemon()
    a = d.open("--prefix", "build/1")
    _write(a, "log", b"before shutdown\n")
    time.sleep(0.1)
    assert d.stop(signal.SIGTERM) == 0
    assert (d.sessions_out / a["id"] / "log").read_bytes() == b"before shutdown\n"
    assert not os.path.exists(d.control)
    assert not os.path.exists(a["socket"])


def test_bad_requests_get_errors(daemon):
    d = daemon()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(d.control)
        f = s.makefile("rwb")
        for line, expect in ((b"not json\n", "bad JSON"), (b'{"op": "fly"}\n', "unknown op"),
                             (b'{"op": "open", "prefix": "bad//name"}\n', "invalid prefix"),
                             (b'{"op": "open", "prefix": "x", "output": "nope"}\n',
                              "failed to create output"),
                             (b'{"op": "open", "prefix": "y", "output": "log,bundle-size=0"}\n',
                              "bundle size must be positive")):
            f.write(line)
            f.flush()
            response = json.loads(f.readline())
            assert response["ok"] is False and expect in response["error"], response
        f.write(b'{"op": "list"}\n')
        f.flush()
        assert json.loads(f.readline()) == {"ok": True, "sessions": []}
    assert not [p for p in os.listdir(d.session_dir) if p.endswith(".sock")]  # nothing leaked


def test_session_cli_without_a_daemon_fails_cleanly(tmp_path):
    proc = subprocess.run([*BUTLERD, "session", "-control-socket", str(tmp_path / "none.sock"),
                           "list"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 250 and "cannot talk to butlerd" in proc.stderr
    proc = subprocess.run([*BUTLERD, "session", "frobnicate"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
