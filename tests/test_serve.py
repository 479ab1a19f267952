"""End to end: ``butlerd serve`` as a subprocess, real streams over its socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.daemon import MAGIC, Butlerd, handshake
from tests.vectors.luci_py_client import VECTORS
from wire.varint import encode_uvarint


@pytest.fixture
def butlerd(tmp_path: Path):
    started: list[Butlerd] = []

    def start(*flags: str, **kw) -> Butlerd:
        d = Butlerd(tmp_path, *flags, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()


def test_text_binary_datagram_streams(butlerd):
    d = butlerd()
    d.stream("logs/stdout", b"one\r\ntwo\nthree")
    d.stream("blob", bytes(range(256)) * 100, "binary")
    dgrams = [b"", b"x", b"y" * 300]
    d.stream("dg", b"".join(encode_uvarint(len(g)) + g for g in dgrams), "datagram")
    assert d.stop() == 0
    assert d.read("logs/stdout") == b"one\ntwo\nthree\n"
    assert d.read("blob") == bytes(range(256)) * 100
    assert [d.read(f"_{i:05d}.dg") for i in range(3)] == dgrams
    meta = d.meta("blob")
    assert meta["stream_type"] == "BINARY" and meta["content_type"] == "application/octet-stream"
    assert d.meta("dg")["content_type"] == "application/x-logdog-datagram"
    assert "stream_type" not in d.meta("logs/stdout")
    assert not os.path.exists(d.sock), "the socket is removed on exit"


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_luci_py_client_vectors_sent_as_it_sends_them(butlerd, vector):
    d = butlerd()
    with d.connect() as s:
        for chunk in vector.chunks():
            s.sendall(chunk)
            time.sleep(0.002)  # separate reads on the daemon side
    assert d.stop() == 0
    name = vector.stream_name
    if vector.datagrams is not None:
        assert [d.read(f"{name.rpartition('/')[0]}/_{i:05d}.{name.rpartition('/')[2]}")
                for i in range(len(vector.datagrams))] == list(vector.datagrams)
    elif vector.body:
        written = d.read(name)
        if vector.stream_type == 0:
            assert written == vector.body.replace(b"\r\n", b"\n")
        else:
            assert written == vector.body
    if not vector.body:
        # As in the Go Butler, a stream that sent nothing leaves no trace.
        assert not (d.out / name).exists()
        return
    meta = d.meta(name)
    assert meta["name"] == name
    assert meta.get("tags", {}) == vector.tags


def test_one_hundred_concurrent_streams(butlerd):
    d = butlerd()
    socks = [d.connect() for _ in range(100)]
    for i, s in enumerate(socks):
        s.sendall(handshake(f"many/s{i}"))
    for round_ in range(3):
        for i, s in enumerate(socks):
            s.sendall(f"stream {i} line {round_}\n".encode())
    for s in socks:
        s.close()
    assert d.stop() == 0
    for i in range(100):
        assert d.read(f"many/s{i}") == b"".join(f"stream {i} line {r}\n".encode() for r in range(3))


def test_child_process_writes_into_an_inherited_socket(butlerd):
    d = butlerd()
    s = d.connect()
    s.sendall(handshake("child/stdout"))
    child = subprocess.run(
        [sys.executable, "-c", "import sys; print('from child'); print('line 2')"],
        stdout=s.fileno(),
    )
    s.close()
    assert child.returncode == 0
    assert d.stop() == 0
    assert d.read("child/stdout") == b"from child\nline 2\n"


def test_global_tags_fill_only_missing_keys(butlerd):
    d = butlerd("-tag", "foo=bar", "-tag", "baz=qux")
    d.stream("tagged", b"x\n", tags={"baz": "override"})
    d.stream("plain", b"y\n")
    assert d.stop() == 0
    assert d.meta("tagged")["tags"] == {"baz": "override", "foo": "bar"}
    assert d.meta("plain")["tags"] == {"baz": "qux", "foo": "bar"}


def test_fixed_timestamp_is_kept(butlerd):
    d = butlerd()
    d.stream("ts", b"x\n", timestamp="2024-01-02T04:04:05.5+01:00")
    assert d.stop() == 0
    assert d.meta("ts")["timestamp"] == "2024-01-02T03:04:05.500Z"


BAD_CONNECTIONS = {
    "bad magic": (b"BTLR2\x1e\x02{}", "magic number mismatch"),
    "oversized handshake": (MAGIC + encode_uvarint((1 << 20) + 1), "frame size exceeds maximum"),
    "varint overflow in handshake": (MAGIC + b"\xff" * 11, "overflow"),
    "invalid json": (MAGIC + b"\x05{nope", "JSON"),
    "not an object": (MAGIC + b"\x02[]", ""),
    "invalid name": (handshake("_bad/name"), "must begin with alphanumeric"),
    "invalid tag": (handshake("ok/name", tags={"bad tag": "v"}), "tag"),
    "unknown type": (handshake("ok/t", "video"), "type"),
    "bad timestamp": (handshake("ok/ts", timestamp="yesterday"), "timestamp"),
    "trailing garbage in frame": (MAGIC + b"\x0c{\"name\":\"a\"}x", ""),
    "truncated handshake": (MAGIC + b"\x40{\"name\":", "handshake"),
}


def test_bad_input_closes_only_that_connection(butlerd):
    d = butlerd()
    good = d.connect()
    good.sendall(handshake("good/stream") + b"before\n")
    dgram_good = d.connect()
    dgram_good.sendall(handshake("good/dgram", "datagram") + b"\x02ok")
    for label, (data, _) in BAD_CONNECTIONS.items():
        with d.connect() as s:
            s.sendall(data)
    d.stream("dup", b"first\n")
    d.stream("dup", b"second\n")  # duplicate names are refused for the daemon's lifetime
    # A datagram stream whose second frame is over 10 MiB: the first is kept.
    d.stream("big/dgram", b"\x03abc" + encode_uvarint(10 * 1024 * 1024 + 1) + b"zz", "datagram")
    d.stream("overflow/dgram", b"\x01a" + b"\xff" * 10 + b"\x01", "datagram")
    good.sendall(b"after\n")
    good.close()
    dgram_good.sendall(b"\x00")
    dgram_good.close()
    assert d.stop() == 0
    assert d.read("good/stream") == b"before\nafter\n"
    assert d.read("good/_00000.dgram") == b"ok" and d.read("good/_00001.dgram") == b""
    assert d.read("dup") == b"first\n"
    assert d.read("big/_00000.dgram") == b"abc"
    assert not (d.out / "big" / "_00001.dgram").exists()
    assert d.read("overflow/_00000.dgram") == b"a"
    log = d.stderr()
    for label, (_, reason) in BAD_CONNECTIONS.items():
        assert reason in log, f"{label}: {reason!r} not logged"
    assert "duplicate registration" in log
    assert "frame size exceeds maximum" in log
    assert log.count("closing the connection") >= len(BAD_CONNECTIONS) - 1


def test_sigterm_with_streams_still_open_flushes_what_was_read(butlerd):
    d = butlerd("-drain-timeout", "1s")
    s = d.connect()
    s.sendall(handshake("open/text") + b"complete\npartial")
    b = d.connect()
    b.sendall(handshake("open/bin", "binary") + b"\x01\x02")
    time.sleep(0.3)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 10
    assert d.read("open/text") == b"complete\npartial\n"
    assert d.read("open/bin") == b"\x01\x02"
    s.close()
    b.close()


def test_streams_finishing_during_the_drain_are_complete(butlerd):
    d = butlerd("-drain-timeout", "10s")
    s = d.connect()
    s.sendall(handshake("drain/text") + b"a\n")
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    s.sendall(b"b\n")  # still accepted while draining
    s.close()
    assert d.proc.wait(20) == 0
    assert d.read("drain/text") == b"a\nb\n"


def test_silent_connection_is_closed_after_the_handshake_timeout(butlerd):
    d = butlerd("-handshake-timeout", "300ms")
    s = d.connect()
    s.sendall(MAGIC)
    s.settimeout(5)
    assert s.recv(1) == b""  # the daemon closed it
    d.stream("after", b"ok\n")
    assert d.stop() == 0
    assert "no complete handshake within 0.3s" in d.stderr()
    assert d.read("after") == b"ok\n"


def test_idle_handshake_never_delays_shutdown(butlerd):
    d = butlerd()  # default handshake timeout: 60s
    s = d.connect()
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
    s.close()


def test_socket_mode_and_removal(butlerd, tmp_path):
    d = butlerd()
    assert stat.S_IMODE(os.stat(d.sock).st_mode) == 0o600
    assert d.announce == f"export LOGDOG_STREAM_SERVER_PATH=unix:{d.sock}\n"
    assert d.stop() == 0
    assert not os.path.exists(d.sock)


def test_socket_mode_flag(butlerd):
    d = butlerd(serve_flags=("-socket-mode", "660"))
    assert stat.S_IMODE(os.stat(d.sock).st_mode) == 0o660
    assert d.stop() == 0


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 20):
    return subprocess.run([sys.executable, "-m", "butlerd", *args], capture_output=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def test_refuses_to_steal_a_live_socket(butlerd, tmp_path):
    d = butlerd()
    r = run_cli("serve", "-streamserver-uri", f"unix:{d.sock}")
    assert r.returncode == 250
    assert b"live process" in r.stderr
    d.stream("still", b"served\n")
    assert d.stop() == 0
    assert d.read("still") == b"served\n"


def test_replaces_a_stale_socket(butlerd, tmp_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "butler.sock"))
    stale.close()  # the file stays, nobody listens
    d = butlerd()
    d.stream("x", b"y\n")
    assert d.stop() == 0
    assert d.read("x") == b"y\n"


def test_refuses_socket_paths_over_104_bytes(tmp_path):
    long_path = "/tmp/" + "x" * 100 + ".sock"
    r = run_cli("-output", f"directory,path={tmp_path}", "serve", "-streamserver-uri", f"unix:{long_path}")
    assert r.returncode == 250
    assert b"path exceeds maximum length 104" in r.stderr


def test_bad_flags_exit_2():
    assert run_cli("-no-such-flag", "serve").returncode == 2
    assert run_cli("-project", "Not_Valid!", "serve").returncode == 2
    assert run_cli("-tag", "_bad=1", "serve").returncode == 2
    assert run_cli("-output-max-buffer-age", "soon", "serve").returncode == 2
    assert run_cli("nonsense").returncode == 2


def test_no_flags_serves_on_the_embedded_default(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "run")}
    (tmp_path / "run").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "butlerd"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, **env})
    try:
        sock = tmp_path / "run" / "butlerd" / "butler.sock"
        line = proc.stdout.readline().decode()
        assert line == f"export LOGDOG_STREAM_SERVER_PATH=unix:{sock}\n"
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(handshake("hello") + b"world\n")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert (tmp_path / "butlerd-logs" / "hello").read_bytes() == b"world\n"
        assert not sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_no_buffer_sends_partial_lines_at_once(butlerd):
    d = butlerd("-output-no-buffer")
    s = d.connect()
    s.sendall(handshake("nb") + b"partial")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        p = d.out / "nb"
        if p.exists() and p.read_bytes() == b"partial\n":
            break
        time.sleep(0.05)
    assert (d.out / "nb").read_bytes() == b"partial\n"
    s.close()
    assert d.stop() == 0


def test_unknown_json_keys_and_case_insensitive_keys(butlerd):
    d = butlerd()
    with d.connect() as s:
        body = json.dumps({"NAME": "ci/name", "Type": "binary", "tee": "stdout",
                           "binaryFileExtension": "txt"}).encode()
        s.sendall(MAGIC + encode_uvarint(len(body)) + body + b"\x00\x01")
    assert d.stop() == 0
    assert d.read("ci/name") == b"\x00\x01"
    assert d.meta("ci/name")["stream_type"] == "BINARY"


def test_an_oversized_datagram_closes_its_connection_at_once(butlerd):
    d = butlerd("-output-no-buffer")
    s = d.connect()
    s.sendall(handshake("huge", "datagram") + encode_uvarint(10 * 1024 * 1024 + 1))
    s.settimeout(10)
    assert s.recv(1) == b""  # closed by the daemon, though the client sent nothing more
    s.close()
    assert d.stop() == 0
    assert "frame size exceeds maximum" in d.stderr()


def test_a_control_socket_that_cannot_listen_leaves_nothing_behind(tmp_path):
    sock = tmp_path / "butler.sock"
    r = run_cli("-output", f"directory,path={tmp_path / 'out'}", "serve",
                "-streamserver-uri", f"unix:{sock}",
                "-control-socket", "/tmp/" + "c" * 110 + ".sock")
    assert r.returncode == 250
    assert b"path exceeds maximum length 104" in r.stderr
    assert not sock.exists()
