"""The Python client helper (clients/) against a Unix listener that records every byte.

What a user relies on: the handshake is the Go client's, bytes written arrive
unchanged, bad streams fail before anything is sent, and a child process can
write straight into a stream.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import queue
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import uvloop

from clients import (
    AsyncStreamClient,
    Bootstrap,
    BootstrapError,
    InvalidStreamError,
    NotBootstrapped,
    StreamClient,
    StreamServerError,
)
from wire.timefmt import parse_rfc3339
from wire.varint import decode_uvarint

MAGIC = b"BTLR1\x1e"
GO_VECTORS = Path(__file__).parent / "vectors" / "go_client_handshakes.json"
# 2024-01-02T03:04:05.123456789Z, the time of the worked examples in wire-outputs-cli.md §1.9.
EXAMPLE_NS = calendar.timegm((2024, 1, 2, 3, 4, 5)) * 1_000_000_000 + 123_456_789


class Recorder:
    """A stream server that accepts every connection and keeps all it receives until EOF."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(64)
        self._done: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        chunks = []
        with conn:
            while data := conn.recv(65536):
                chunks.append(data)
        self._done.put(b"".join(chunks))

    def next(self) -> bytes:
        """The bytes of the next connection to reach EOF."""
        return self._done.get(timeout=10)

    def close(self) -> None:
        self._listener.close()


def split_handshake(data: bytes) -> tuple[dict, bytes, bytes]:
    """(decoded JSON, raw handshake bytes, body), parsed independently of the encoder under test."""
    assert data[:6] == MAGIC
    size, pos = decode_uvarint(data, 6)
    end = pos + size
    return json.loads(data[pos:end]), data[:end], data[end:]


@pytest.fixture
def sockdir() -> Iterator[str]:
    # AF_UNIX paths are limited to ~104 bytes; pytest's tmp_path can be longer.
    d = tempfile.mkdtemp(prefix="cl", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def recorder(sockdir: str) -> Iterator[Recorder]:
    rec = Recorder(os.path.join(sockdir, "sock"))
    yield rec
    rec.close()


@pytest.fixture
def idle_listener(sockdir: str) -> Iterator[socket.socket]:
    """A listener that never accepts: a connection attempt shows up as a readable listener."""
    path = os.path.join(sockdir, "idle")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    yield s
    s.close()


def nobody_connected(listener: socket.socket) -> bool:
    return select.select([listener], [], [], 0.05)[0] == []


# --- handshake bytes ---------------------------------------------------------------------


def test_text_stream_matches_the_go_worked_example(recorder: Recorder) -> None:
    client = StreamClient(f"unix:{recorder.path}")
    with client.text("stdout", timestamp=EXAMPLE_NS) as w:
        w.write("hello\n")
    expected = bytes.fromhex(
        "42544c52311e687b226e616d65223a227374646f7574222c22636f6e74656e74"
        "54797065223a22746578742f706c61696e3b20636861727365743d7574662d38"
        "222c2274696d657374616d70223a22323032342d30312d30325430333a30343a"
        "30352e3132333435363738395a227d"
    )
    assert recorder.next() == expected + b"hello\n"


def test_datagram_stream_matches_the_go_worked_example(recorder: Recorder) -> None:
    client = StreamClient(f"unix:{recorder.path}", namespace="u")
    ct = "application/luci+proto; message=buildbucket.v2.Build; encoding=zlib"
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    with client.datagram("build.proto", content_type=ct, timestamp=when, tags={"b": "2", "a": "x"}) as dg:
        dg.write_datagram(b"hello")
        dg.write_datagram(b"")
    js = (
        '{"name":"u/build.proto","contentType":"' + ct + '","type":"datagram",'
        '"timestamp":"2024-01-02T02:04:05Z","tags":{"a":"x","b":"2"}}'
    ).encode()
    assert len(js) == 186
    assert recorder.next() == MAGIC + b"\xba\x01" + js + b"\x05hello" + b"\x00"


def test_binary_stream_sends_type_and_default_content_type(recorder: Recorder) -> None:
    client = StreamClient(f"unix:{recorder.path}")
    with client.binary("blob", tags={"k": "v"}) as w:
        w.write(b"\x00\x01\xff")
        w.write(memoryview(b"tail"))
        with pytest.raises(TypeError):
            w.write("text is not binary")
    flags, _, body = split_handshake(recorder.next())
    assert list(flags) == ["name", "contentType", "type", "timestamp", "tags"]
    assert flags["type"] == "binary"
    assert flags["contentType"] == "application/octet-stream"
    assert flags["tags"] == {"k": "v"}
    assert body == b"\x00\x01\xfftail"


def test_default_timestamp_is_now_in_utc(recorder: Recorder) -> None:
    before = datetime.now(timezone.utc)
    StreamClient(f"unix:{recorder.path}").text("t").close()
    after = datetime.now(timezone.utc)
    flags, _, _ = split_handshake(recorder.next())
    stamp = flags["timestamp"]
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp[:-1][:26]).replace(tzinfo=timezone.utc)
    assert before - timedelta(microseconds=1) <= parsed <= after


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidStreamError, match="timezone-aware"):
        StreamClient("null").text("x", timestamp=datetime(2024, 1, 1))


def test_text_writes_are_utf8_and_arrive_in_order(recorder: Recorder) -> None:
    with StreamClient(f"unix:{recorder.path}").text("log") as w:
        print("wörld 😄", file=w)
        w.write(b"raw bytes\r\n")
    _, _, body = split_handshake(recorder.next())
    assert body == "wörld 😄\n".encode() + b"raw bytes\r\n"


def test_write_after_close_fails(recorder: Recorder) -> None:
    w = StreamClient(f"unix:{recorder.path}").text("x")
    w.close()
    with pytest.raises(ValueError):
        w.write("late\n")


@pytest.mark.parametrize(
    ("namespace", "name", "full"),
    [
        ("", "stdout", "stdout"),
        ("u", "stdout", "u/stdout"),
        ("u/step/", "/stdout/", "u/step/stdout"),
        ("/a/b/", "c/d", "a/b/c/d"),
        ("ns", "", "ns"),
    ],
)
def test_namespace_is_joined_like_go(recorder: Recorder, namespace: str, name: str, full: str) -> None:
    w = StreamClient(f"unix:{recorder.path}", namespace=namespace).text(name)
    assert w.name == full
    w.close()
    flags, _, _ = split_handshake(recorder.next())
    assert flags["name"] == full



def _go_vectors() -> list:
    if not GO_VECTORS.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{GO_VECTORS.name} not captured yet"))]
    return [pytest.param(v, id=v["id"]) for v in json.loads(GO_VECTORS.read_text())["vectors"]]


@pytest.mark.parametrize("vector", _go_vectors())
def test_handshake_is_byte_identical_to_the_go_client(recorder: Recorder, vector: dict) -> None:
    """Vectors captured from the real Go streamclient by tests/interop/test_handshake_vectors.py."""
    opts = vector["options"]
    client = StreamClient(f"unix:{recorder.path}", namespace=opts.get("namespace", ""))
    kind = opts.get("type", "text")
    kwargs = dict(content_type=opts.get("content_type"), timestamp=parse_rfc3339(opts["timestamp"]), tags=opts.get("tags"))
    if opts.get("for_process"):
        kwargs["for_process"] = True
    getattr(client, kind)(opts["name"], **kwargs).close()
    assert recorder.next().hex() == vector["handshake_hex"]

# --- validation before connecting -----------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.text(""), "invalid stream descriptor: invalid name: must contain at least one character"),
        (lambda c: c.text("a//b"), "invalid stream descriptor: invalid name: segment (at 2) must begin with alphanumeric character"),
        (lambda c: c.binary("a+b"), "invalid stream descriptor: invalid name: illegal character (+) at index 1"),
        (lambda c: c.text("x" * 4097), "invalid stream descriptor: invalid name: stream name is too long (4097 > 4096)"),
        (
            lambda c: c.text("x", tags={"bad+@!tag": "v"}),
            'invalid stream descriptor: invalid tag "bad+@!tag": invalid tag key: illegal character (+) at index 3',
        ),
        (
            lambda c: c.datagram("x", tags={"k": "v" * 4097}),
            'invalid stream descriptor: invalid tag "k": tag value exceeds maximum size (4097 > 4096)',
        ),
        (
            lambda c: c.text("x", tags={"k" * 65: ""}),
            'invalid stream descriptor: invalid tag "' + "k" * 65 + '": tag key exceeds maximum size (65 > 64)',
        ),
        (lambda c: c.datagram("x", for_process=True), "cannot specify ForProcess on a datagram stream"),
    ],
)
def test_invalid_streams_fail_before_connecting(idle_listener: socket.socket, call, message: str) -> None:
    client = StreamClient(f"unix:{idle_listener.getsockname()}")
    with pytest.raises(InvalidStreamError) as exc:
        call(client)
    assert str(exc.value) == message
    assert nobody_connected(idle_listener)


def test_namespace_makes_an_empty_name_valid_but_not_a_bad_one(idle_listener: socket.socket) -> None:
    client = StreamClient(f"unix:{idle_listener.getsockname()}", namespace="-bad")
    with pytest.raises(InvalidStreamError, match="segment \\(at 0\\) must begin"):
        client.text("ok")
    assert nobody_connected(idle_listener)


def test_oversized_datagram_is_refused_without_sending(recorder: Recorder) -> None:
    with StreamClient(f"unix:{recorder.path}").datagram("dg") as dg:
        with pytest.raises(ValueError, match="datagram exceeds maximum size"):
            dg.write_datagram(bytes(10 * 1024 * 1024 + 1))
        dg.write_datagram(b"ok")
    _, _, body = split_handshake(recorder.next())
    assert body == b"\x02ok"


def test_large_datagram_is_framed(recorder: Recorder) -> None:
    payload = os.urandom(300_000)
    with StreamClient(f"unix:{recorder.path}").datagram("dg") as dg:
        dg.write_datagram(payload)
    _, _, body = split_handshake(recorder.next())
    assert decode_uvarint(body) == (300_000, 3)
    assert body[3:] == payload


# --- addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["tcp:127.0.0.1:1", "net.pipe:foo", "bogus", ""])
def test_unknown_protocols_are_refused(address: str) -> None:
    proto = address.partition(":")[0]
    with pytest.raises(StreamServerError) as exc:
        StreamClient(address)
    assert str(exc.value) == f"no protocol registered for [{proto}]"


def test_unix_path_must_exist(sockdir: str) -> None:
    path = os.path.join(sockdir, "missing")
    with pytest.raises(StreamServerError) as exc:
        StreamClient(f"unix:{path}")
    assert str(exc.value) == (
        f'opening path "unix:{path}": failed to stat file [{path}]: lstat {path}: no such file or directory'
    )


def test_unix_path_must_be_a_socket_not_a_file_or_symlink(recorder: Recorder, sockdir: str) -> None:
    regular = os.path.join(sockdir, "file")
    Path(regular).write_text("")
    link = os.path.join(sockdir, "link")
    os.symlink(recorder.path, link)
    for path in (regular, link):
        with pytest.raises(StreamServerError) as exc:
            StreamClient(f"unix:{path}")
        assert str(exc.value) == f'opening path "unix:{path}": not a named pipe: [{path}]'


def test_connect_failure_names_the_stream(sockdir: str) -> None:
    path = os.path.join(sockdir, "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # a socket file with nobody listening
    client = StreamClient(f"unix:{path}")
    with pytest.raises(StreamServerError) as exc:
        client.text("out")
    s.close()
    assert str(exc.value) == (
        f'attempting to connect stream "out": opening socket "{path}": dial unix {path}: connect: connection refused'
    )
    with pytest.raises(StreamServerError, match='^attempting to connect datagram stream "dg": '):
        client.datagram("dg")


def test_null_client_discards_everything() -> None:
    client = StreamClient("null")
    with client.text("a") as w:
        assert w.write("x\n") == 2
    with client.datagram("d") as dg:
        dg.write_datagram(b"x")
    with client.binary("b", for_process=True) as f:
        assert os.path.samefile(f"/proc/self/fd/{f.fileno()}", os.devnull)
        subprocess.run([sys.executable, "-c", "print('into the void')"], stdout=f, check=True)


# --- for_process -----------------------------------------------------------------------------------


def test_for_process_gives_a_child_the_stream_as_stdout(recorder: Recorder) -> None:
    client = StreamClient(f"unix:{recorder.path}", namespace="u")
    with client.text("child", for_process=True, tags={"k": "v"}) as f:
        assert os.get_inheritable(f.fileno())
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdout.write('from child\\n'); sys.stdout.flush()"],
            stdout=f,
        )
    assert proc.wait() == 0
    flags, _, body = split_handshake(recorder.next())
    assert flags["name"] == "u/child"
    assert "type" not in flags
    assert body == b"from child\n"


def test_for_process_stream_ends_only_when_the_child_exits(recorder: Recorder) -> None:
    script = "import sys, time; time.sleep(0.3); sys.stdout.buffer.write(b'late\\x00'); sys.stdout.flush()"
    with StreamClient(f"unix:{recorder.path}").binary("bin", for_process=True) as f:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=f)
    # The parent's copy is closed; the child still holds the socket.
    flags, _, body = split_handshake(recorder.next())
    assert proc.wait() == 0
    assert flags["type"] == "binary"
    assert body == b"late\x00"


# --- bootstrap ----------------------------------------------------------------------------------


def test_from_env_without_server_path_is_not_bootstrapped() -> None:
    with pytest.raises(NotBootstrapped, match="not bootstrapped"):
        StreamClient.from_env({"LOGDOG_NAMESPACE": "u"})
    with pytest.raises(NotBootstrapped):
        AsyncStreamClient.from_env({})


def test_from_env_reads_every_variable_and_applies_the_namespace(recorder: Recorder) -> None:
    env = {
        "LOGDOG_STREAM_SERVER_PATH": f"unix:{recorder.path}",
        "LOGDOG_NAMESPACE": "u/step",
        "LOGDOG_STREAM_PROJECT": "chromium",
        "LOGDOG_STREAM_PREFIX": "buildbucket/cr-buildbucket/12345",
        "LOGDOG_COORDINATOR_HOST": "logs.chromium.org",
    }
    bs = Bootstrap.from_env(env)
    assert (bs.coordinator_host, bs.project, bs.prefix, bs.namespace) == (
        "logs.chromium.org",
        "chromium",
        "buildbucket/cr-buildbucket/12345",
        "u/step",
    )
    StreamClient.from_env(env).text("stdout").close()
    assert split_handshake(recorder.next())[0]["name"] == "u/step/stdout"
    assert bs.stream_viewer_url("stdout") == (
        "https://logs.chromium.org/logs/chromium/buildbucket/cr-buildbucket/12345/+/u/step/stdout"
    )


def test_from_env_with_only_a_null_server() -> None:
    bs = Bootstrap.from_env({"LOGDOG_STREAM_SERVER_PATH": "null"})
    assert (bs.coordinator_host, bs.project, bs.prefix, bs.namespace) == ("", "", "", "")
    assert bs.client.address == "null"


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("LOGDOG_STREAM_PREFIX", "_notavaildprefix", 'bootstrap: failed to validate prefix "_notavaildprefix": segment (at 0) must begin with alphanumeric character'),
        ("LOGDOG_STREAM_PROJECT", "_notavaildproject", 'bootstrap: failed to validate project "_notavaildproject": must begin with a letter'),
        ("LOGDOG_STREAM_PROJECT", "Chromium", 'bootstrap: failed to validate project "Chromium": invalid character at 0 (C)'),
        ("LOGDOG_NAMESPACE", "!!! invalid", 'bootstrap: failed to validate namespace "!!! invalid": segment (at 0) must begin with alphanumeric character'),
        ("LOGDOG_STREAM_SERVER_PATH", "tcp:x", "bootstrap: failed to create stream client [tcp:x]: no protocol registered for [tcp]"),
    ],
)
def test_from_env_validates_like_go(var: str, value: str, message: str) -> None:
    env = {"LOGDOG_STREAM_SERVER_PATH": "null", var: value}
    with pytest.raises(BootstrapError) as exc:
        StreamClient.from_env(env)
    assert str(exc.value) == message


def test_viewer_urls_match_go() -> None:
    bs = Bootstrap("null", coordinator_host="example.appspot.com", project="test", prefix="foo")
    assert bs.viewer_url("foo/bar/+/baz") == "https://example.appspot.com/logs/test/foo/bar/+/baz"
    assert bs.viewer_url("foo/bar/+/baz", "foo/bar/+/qux") == (
        "https://example.appspot.com/v/?s=test%2Ffoo%2Fbar%2F%2B%2Fbaz&s=test%2Ffoo%2Fbar%2F%2B%2Fqux"
    )
    assert bs.stream_path("a/b") == "foo/+/a/b"
    with pytest.raises(BootstrapError, match="^no project is configured$"):
        Bootstrap("null", coordinator_host="example.appspot.com").viewer_url("bar")
    with pytest.raises(BootstrapError, match="^no coordinator host is configured$"):
        Bootstrap("null", project="test").viewer_url("bar")


def test_viewer_url_for_a_directory_output_is_the_file() -> None:
    bs = Bootstrap.from_env({"LOGDOG_STREAM_SERVER_PATH": "null", "LOGDOG_COORDINATOR_HOST": "file:///tmp/logs", "LOGDOG_NAMESPACE": "u"})
    assert bs.stream_viewer_url("stdout") == "file:///tmp/logs/u/stdout"
    assert bs.viewer_url("+/a/b") == "file:///tmp/logs/a/b"


# --- asyncio --------------------------------------------------------------------------------------


def test_async_streams_send_the_same_bytes_as_blocking_ones(recorder: Recorder) -> None:
    address = f"unix:{recorder.path}"
    opts = dict(timestamp=EXAMPLE_NS, tags={"k": "v"}, content_type="text/x-log")

    with StreamClient(address, namespace="ns").text("t", **opts) as w:
        w.write("line\n")
    with StreamClient(address, namespace="ns").binary("b", **opts) as w:
        w.write(b"\x00\x01")
    with StreamClient(address, namespace="ns").datagram("d", **opts) as dg:
        dg.write_datagram(b"one")
    blocking = {recorder.next() for _ in range(3)}

    async def run() -> None:
        client = AsyncStreamClient(address, namespace="ns")
        async with client.text("t", **opts) as w:
            assert await w.write("line\n") == 5
        w = await client.binary("b", **opts)
        await w.write(b"\x00\x01")
        w.close()
        async with client.datagram("d", **opts) as dg:
            await dg.write_datagram(b"one")

    asyncio.run(run())
    assert {recorder.next() for _ in range(3)} == blocking


def test_async_concurrent_datagrams_do_not_interleave(recorder: Recorder) -> None:
    payloads = [bytes([i]) * (70_000 + i) for i in range(8)]

    async def run() -> None:
        async with AsyncStreamClient(f"unix:{recorder.path}").datagram("dg") as dg:
            await asyncio.gather(*(dg.write_datagram(p) for p in payloads))

    asyncio.run(run())
    _, _, body = split_handshake(recorder.next())
    got, pos = [], 0
    while pos < len(body):
        size, pos = decode_uvarint(body, pos)
        got.append(body[pos : pos + size])
        pos += size
    assert sorted(got) == sorted(payloads)


def test_async_validation_raises_at_the_call(idle_listener: socket.socket) -> None:
    client = AsyncStreamClient(f"unix:{idle_listener.getsockname()}")
    with pytest.raises(InvalidStreamError, match="invalid name"):
        client.text("bad name")
    with pytest.raises(InvalidStreamError, match="ForProcess"):
        client.datagram("d", for_process=True)
    assert nobody_connected(idle_listener)


def test_async_for_process_and_null(recorder: Recorder) -> None:
    async def run() -> int:
        async with AsyncStreamClient(f"unix:{recorder.path}").text("child", for_process=True) as f:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('hi from async child')", stdout=f)
        async with AsyncStreamClient("null").datagram("d") as dg:
            await dg.write_datagram(b"dropped")
        return await proc.wait()

    assert asyncio.run(run()) == 0
    _, _, body = split_handshake(recorder.next())
    assert body == b"hi from async child\n"


def test_async_connect_failure(sockdir: str) -> None:
    path = os.path.join(sockdir, "stale")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    client = AsyncStreamClient(f"unix:{path}")
    with pytest.raises(StreamServerError, match='^attempting to connect stream "x": .*connection refused$'):
        asyncio.run(client.text("x").__aenter__())
    s.close()


def test_async_cancelled_datagram_closes_the_stream_rather_than_corrupting_it(recorder: Recorder) -> None:
    big = bytes(8 * 1024 * 1024)  # far more than a socket buffer: the send must wait for the reader

    async def run() -> None:
        dg = await AsyncStreamClient(f"unix:{recorder.path}").datagram("dg")
        task = asyncio.create_task(dg.write_datagram(big))
        await asyncio.sleep(0)  # let it start, then cancel before the recorder has read everything
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert dg.closed
        with pytest.raises(ValueError, match="closed"):
            await dg.write_datagram(b"after")

    asyncio.run(run())
    _, _, body = split_handshake(recorder.next())
    assert b"after" not in body and len(body) < 3 + len(big)


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_async_close_fails_a_write_the_butler_is_not_reading(idle_listener: socket.socket, loop_factory) -> None:
    # The listener never accepts, so nothing reads: the write fills the socket buffers and waits.
    async def run() -> None:
        w = await AsyncStreamClient(f"unix:{idle_listener.getsockname()}").binary("b")
        write = asyncio.create_task(w.write(bytes(64 * 1024 * 1024)))
        await asyncio.sleep(0.05)
        assert not write.done()
        w.close()
        await asyncio.wait({write}, timeout=5)  # without the fix the write waits forever
        assert write.done(), "close() left a pending write waiting"
        assert isinstance(write.exception(), OSError) and not isinstance(write.exception(), TimeoutError)
        assert w.closed
        with pytest.raises(ValueError, match="closed"):
            await w.write(b"after")

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())
