"""butlerd under systemd: the shipped units verify, socket activation hands the
daemon its sockets, sd_notify readiness/watchdog/stopping arrive, and logs are
journald-friendly."""

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

from tests.daemon import handshake

BUTLERD_BIN = str(Path(sys.executable).parent / "butlerd")

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")
needs_activate = pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                                    reason="systemd-socket-activate is not installed")


def _units(directory: Path) -> dict[str, str]:
    proc = subprocess.run([BUTLERD_BIN, "systemd-units", str(directory)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(Path(p).name for p in proc.stdout.split()) == [
        "butlerd.service", "butlerd.socket", "butlerd.sysusers"]
    return {p.name: p.read_text() for p in directory.iterdir()}


def _settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    text = unit.replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(" ".join(value.split()))
    return out


@needs_analyze
def test_generated_units_pass_systemd_analyze_verify(tmp_path):
    units = _units(tmp_path)
    service = _settings(units["butlerd.service"])
    assert service["ExecStart"][0].startswith(BUTLERD_BIN + " ")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "butlerd.socket"),
         str(tmp_path / "butlerd.service")],
        capture_output=True, text=True, timeout=120)
    # verify exits 0 on unknown keys and bad values; they show up as warnings.
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


@needs_analyze
def test_verify_catches_a_broken_unit(tmp_path):
    """The check above is meaningful: a bad value or a missing binary is reported."""
    _units(tmp_path)
    service = tmp_path / "butlerd.service"
    service.write_text(service.read_text().replace("ProtectHome=yes", "ProtectHome=sometimes")
                       .replace(BUTLERD_BIN, "/nonexistent/butlerd"))
    proc = subprocess.run(["systemd-analyze", "verify", str(service)],
                          capture_output=True, text=True, timeout=120)
    assert "sometimes" in proc.stderr and "/nonexistent/butlerd" in proc.stderr


def test_units_are_the_hardened_notify_service_the_issue_asks_for(tmp_path):
    units = _units(tmp_path)
    service = _settings(units["butlerd.service"])
    sock = _settings(units["butlerd.socket"])
    assert sock["ListenStream"] == ["/run/butlerd/butler.sock", "/run/butlerd/control.sock"]
    assert sock["SocketMode"] == ["0660"] and sock["SocketGroup"] == ["butlerd"]
    expect = {"Type": "notify", "Restart": "on-failure", "NoNewPrivileges": "yes",
              "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
              "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6"}
    for key, value in expect.items():
        assert service[key] == [value], key
    assert "@system-service" in service["SystemCallFilter"]
    assert int(service["WatchdogSec"][0]) > 0
    # The paths the daemon writes are ones the sandbox makes writable.
    exec_start = service["ExecStart"][0]
    assert "/var/lib/butlerd/sessions/{id}" in exec_start  # StateDirectory=butlerd
    assert service["StateDirectory"] == ["butlerd"]
    assert "/run/butlerd/sessions" in exec_start and service["RuntimeDirectory"] == [
        "butlerd/sessions"]
    assert "/var/lib/butlerd/logs" in service["Environment"][0]


def _short_dir() -> str:
    return tempfile.mkdtemp(prefix="bdsys-", dir="/tmp")


class NotifyListener:
    """The NOTIFY_SOCKET a test plays systemd on (abstract, as systemd uses)."""

    def __init__(self) -> None:
        self.name = f"butlerd-test-{os.getpid()}-{time.monotonic_ns()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name.encode())
        self.messages: list[dict[str, str]] = []

    @property
    def address(self) -> str:
        return "@" + self.name

    def wait_for(self, key: str, value: str | None = None, timeout: float = 20) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        for m in self.messages:
            if key in m and (value is None or m[key] == value):
                return m
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            m = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(m)
            if key in m and (value is None or m[key] == value):
                return m
        raise AssertionError(f"no {key}={value} in {self.messages}")

    def collect(self, seconds: float) -> None:
        """Read every message that arrives within ``seconds``."""
        try:
            self.wait_for("never sent", timeout=seconds)
        except AssertionError:
            pass

    def count(self, key: str) -> int:
        return sum(1 for m in self.messages if key in m)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def activated(tmp_path):
    """butlerd started by systemd-socket-activate with both unit sockets."""
    run = _short_dir()
    notify = NotifyListener()
    procs: list[subprocess.Popen[bytes]] = []
    stderr_path = tmp_path / "stderr"

    def start(watchdog_usec: int = 400_000) -> dict:
        stream_sock = os.path.join(run, "butler.sock")
        control_sock = os.path.join(run, "control.sock")
        stderr = open(stderr_path, "wb")
        st = os.fstat(stderr.fileno())
        env = {
            "NOTIFY_SOCKET": notify.address,
            "WATCHDOG_USEC": str(watchdog_usec),
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
        }
        args = ["systemd-socket-activate", "-l", stream_sock, "-l", control_sock]
        for key, value in env.items():
            args += ["-E", f"{key}={value}"]
        args += [BUTLERD_BIN, "-log-level", "info", "-output", f"directory,path={tmp_path}/out",
                 "serve", "-streamserver-uri", f"unix:{stream_sock}",
                 "-control-socket", control_sock, "-session-dir", os.path.join(run, "s"),
                 "-session-output", f"directory,path={tmp_path}/sessions/{{id}}"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr)
        procs.append(proc)
        deadline = time.monotonic() + 20
        while not (os.path.exists(stream_sock) and os.path.exists(control_sock)):
            assert proc.poll() is None and time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.02)
        return {"proc": proc, "stream": stream_sock, "control": control_sock, "notify": notify,
                "out": tmp_path / "out", "sessions": tmp_path / "sessions", "stderr": stderr_path}

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    notify.close()
    shutil.rmtree(run, ignore_errors=True)


@needs_activate
def test_socket_activation_ready_watchdog_data_stopping(activated):
    d = activated()
    notify: NotifyListener = d["notify"]
    # systemd-socket-activate starts butlerd on the first connection: that
    # connection's stream must not be lost (it sits in the passed socket).
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(d["stream"])
        s.sendall(handshake("logs/first") + b"written before the daemon ran\n")
    ready = notify.wait_for("READY", "1")
    assert int(ready["MAINPID"]) == d["proc"].pid, "exec'd in place: the main pid is butlerd"
    assert "session(s)" in ready["STATUS"]
    # Watchdog pings at half WATCHDOG_USEC (0.2s): several within a second.
    notify.wait_for("WATCHDOG", "1")
    notify.collect(1.2)
    assert notify.count("WATCHDOG") >= 4
    # Sessions work through the passed control socket.
    proc = subprocess.run([BUTLERD_BIN, "session", "-control-socket", d["control"], "open",
                           "--prefix", "p/1", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(info["socket"])
        s.sendall(handshake("u/stdout") + b"in a session\n")
    time.sleep(0.2)
    d["proc"].send_signal(signal.SIGTERM)
    assert d["proc"].wait(30) == 0
    notify.wait_for("STOPPING", "1")
    assert (d["out"] / "logs" / "first").read_bytes() == b"written before the daemon ran\n"
    assert (d["sessions"] / info["id"] / "u" / "stdout").read_bytes() == b"in a session\n"
    # Sockets passed by systemd are not removed by butlerd (systemd owns them).
    assert os.path.exists(d["stream"]) and os.path.exists(d["control"])
    # Under journald every log line carries a syslog priority and no timestamp.
    lines = d["stderr"].read_text().splitlines()
    # (systemd-socket-activate's own lines come first, until it execs butlerd)
    lines = lines[next(i for i, line in enumerate(lines) if "butlerd" in line and
                       line.startswith("<")):]
    assert lines and all(line[:1] == "<" and line[2:3] == ">" for line in lines), lines
    assert any(line.startswith("<4>butlerd: received SIGTERM") for line in lines), lines
    assert any(line.startswith("<6>") for line in lines)


@needs_activate
def test_status_shows_live_counts(activated):
    d = activated(watchdog_usec=200_000)
    notify: NotifyListener = d["notify"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d["stream"])
    s.sendall(handshake("open/one") + b"x\n")
    notify.wait_for("STATUS", "0 session(s), 1 open stream(s), 0 bundle(s) sent")
    s.close()
    d["proc"].send_signal(signal.SIGTERM)
    assert d["proc"].wait(30) == 0


def test_no_systemd_means_no_notify_and_own_sockets(tmp_path):
    """Outside systemd nothing changes: plain log format, own socket, removed at exit."""
    run = _short_dir()
    try:
        sock = os.path.join(run, "b.sock")
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM")}
        env.update(LISTEN_FDS="1", LISTEN_PID="1")  # meant for another process: ignored
        proc = subprocess.Popen([BUTLERD_BIN, "-log-level", "info", "-output",
                                 f"directory,path={tmp_path}/out", "serve",
                                 "-streamserver-uri", f"unix:{sock}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sock)
            s.sendall(handshake("a") + b"x\n")
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert (tmp_path / "out" / "a").read_bytes() == b"x\n"
        assert not os.path.exists(sock)
        assert not err.decode().startswith("<")
    finally:
        shutil.rmtree(run, ignore_errors=True)
