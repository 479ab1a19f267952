"""butlerd's Pub/Sub and LogDog outputs judged by luci-go's own code.

* cmd/pubsubcheck reads what butlerd published to the emulator with luci-go's
  ``pubsubprotocol`` reader (the collector's) and applies the collector's
  acceptance rules; it also re-encodes each bundle with luci-go's writer to
  compare bytes.
* cmd/fakecoord serves ``logdog.Registration`` with luci-go's pRPC server and
  logs every call; ``-output logdog`` must be accepted by it, retry its
  UNAVAILABLE answers with one nonce, and publish with the topic and secret
  it answers.

Both Go programs are built once into tests/interop/bin/ (gitignored).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemon import Butlerd
from tests.emulator import skip_without_emulator
from tests.test_pubsub_serve import write_stream
from wire.varint import encode_uvarint

from .harness import BIN_DIR, INTEROP_DIR, _unavailable

pytestmark = [pytest.mark.interop, pytest.mark.emulator, skip_without_emulator()]

SECRET = bytes(range(0x40, 0x40 + 36))
PROGRAMS = ("pubsubcheck", "fakecoord")


@dataclass(frozen=True)
class Tools:
    pubsubcheck: Path
    fakecoord: Path


@pytest.fixture(scope="session")
def tools() -> Tools:
    go = shutil.which("go")
    if go is None:
        _unavailable("the interop tests need the `go` toolchain on PATH")
    assert go is not None
    BIN_DIR.mkdir(exist_ok=True)
    sources = [INTEROP_DIR / "go.mod", INTEROP_DIR / "go.sum",
               *(INTEROP_DIR / "cmd" / p / "main.go" for p in PROGRAMS)]
    stamp = "\n".join(f"{p}:{p.stat().st_mtime_ns}" for p in sources)
    stamp_file = BIN_DIR / ".stamp-pubsub"
    with open(BIN_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fresh = (stamp_file.exists() and stamp_file.read_text() == stamp
                     and all((BIN_DIR / p).exists() for p in PROGRAMS))
            if not fresh:
                build = subprocess.run(
                    [go, "build", "-o", str(BIN_DIR) + os.sep, *(f"./cmd/{p}" for p in PROGRAMS)],
                    cwd=INTEROP_DIR, capture_output=True, text=True, timeout=900, check=False)
                if build.returncode != 0:
                    _unavailable("building pubsubcheck/fakecoord failed (module proxy unreachable?):\n"
                                 + build.stderr[-4000:])
                stamp_file.write_text(stamp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return Tools(BIN_DIR / "pubsubcheck", BIN_DIR / "fakecoord")


def pubsubcheck(tools: Tools, messages: list[bytes], secret: bytes) -> dict:
    out = subprocess.run([str(tools.pubsubcheck), "-secret", secret.hex()],
                         input=b"".join(encode_uvarint(len(m)) + m for m in messages),
                         capture_output=True, check=True, timeout=120)
    return json.loads(out.stdout)


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


# One tag at most per stream: Go marshals maps in random order, so only then
# is "identical to luci-go's writer" a fair byte comparison.
WORKLOAD_TEXT = {"app/stdout": b"".join(f"line {i}\n".encode() for i in range(30_000)),
                 "app/stderr": b"warning: x\r\nno newline",
                 "app/late": b"late\n"}  # alone in a small, uncompressed bundle
WORKLOAD_BINARY = {"app/blob": bytes(range(256)) * 4000}
WORKLOAD_DGRAMS = {"app/build.proto": [b"", b"\x08\x01", os.urandom(200_000), b"z" * 10]}


def play_workload(d: Butlerd) -> None:
    for name, body in WORKLOAD_TEXT.items():
        if name != "app/late":
            write_stream(d, name, "text", body)
    for name, body in WORKLOAD_BINARY.items():
        write_stream(d, name, "binary", body)
    for name, dgrams in WORKLOAD_DGRAMS.items():
        write_stream(d, name, "datagram", b"".join(encode_uvarint(len(g)) + g for g in dgrams))
    write_stream(d, "app/empty", "text", b"")  # an empty stream: never published
    time.sleep(0.5)  # everything above is bundled and sent by now
    write_stream(d, "app/late", "text", WORKLOAD_TEXT["app/late"])


def check_report(report: dict, project: str, prefix: str) -> None:
    assert report["rejected"] == []
    assert report["secrets_ok"] is True
    assert (report["projects"], report["prefixes"]) == ([project], [prefix])
    streams = report["streams"]
    assert set(streams) == {*WORKLOAD_TEXT, *WORKLOAD_BINARY, *WORKLOAD_DGRAMS}
    for name, s in streams.items():
        assert s["indices"] == list(range(len(s["indices"]))), name
        assert s["terminals"] == [s["indices"][-1]], name
    for name, body in {**WORKLOAD_TEXT, **WORKLOAD_BINARY}.items():
        assert streams[name]["data"] == b64(body), name
    for name, dgrams in WORKLOAD_DGRAMS.items():
        assert streams[name]["datagrams"] == [b64(g) for g in dgrams], name
    assert streams["app/blob"]["type"] == "BINARY"
    assert streams["app/build.proto"]["content_type"] == "application/x-logdog-datagram"
    # Bytes: every bundle serializes exactly as luci-go marshals it; every
    # uncompressed message is exactly what luci-go's writer emits; compressed
    # ones differ only inside the zlib stream (Go's deflate vs C zlib).
    assert report["identical_bundle_bytes"] == report["messages"]
    assert report["identical_to_go_writer"] >= report["messages"] - report["compressed"]


def test_pubsub_output_messages_pass_luci_go_reader(tools, emulator, tmp_path: Path):
    topic, sub = emulator.create_topic_and_subscription(f"ic-{uuid.uuid4().hex[:8]}")
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET)
    d = Butlerd(tmp_path, "-project", "chromium", "-prefix", "interop/pubsub",
                "-output-max-buffer-age", "50ms",
                output=f"pubsub,topic={topic},secret-file={secret_file}", env=emulator.env())
    try:
        play_workload(d)
        assert d.stop() == 0, d.stderr()
    finally:
        d.kill()
    messages = emulator.pull(sub, idle=2)
    report = pubsubcheck(tools, messages, SECRET)
    assert report["messages"] == len(messages) > 1
    assert 0 < report["compressed"] < report["messages"]
    check_report(report, "chromium", "interop/pubsub")


class FakeCoord:
    def __init__(self, tools: Tools, tmp: Path, topic: str, fail_first: int = 0) -> None:
        self.log = tmp / "fakecoord.jsonl"
        self.proc = subprocess.Popen(
            [str(tools.fakecoord), "-topic", topic, "-secret", SECRET.hex(),
             "-fail-first", str(fail_first), "-log", str(self.log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("listening on "), line + self.proc.stderr.read().decode()
        self.host = line.split()[-1]

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_logdog_output_registers_with_luci_go_prpc_server(tools, emulator, tmp_path: Path):
    topic, sub = emulator.create_topic_and_subscription(f"ld-{uuid.uuid4().hex[:8]}")
    coord = FakeCoord(tools, tmp_path, topic, fail_first=2)
    try:
        start = time.monotonic()
        d = Butlerd(tmp_path, "-project", "chromium", "-prefix", "buildbucket/cr/42",
                    "-coordinator-host", coord.host, "-output-max-buffer-age", "50ms",
                    output="logdog,prefix-expiration=1h", env=emulator.env())
        registered_after = time.monotonic() - start
        try:
            play_workload(d)
            assert d.stop() == 0, d.stderr()
        finally:
            d.kill()
        calls = coord.calls()
    finally:
        coord.stop()

    # Two UNAVAILABLE answers retried by the pRPC layer (1 s, then 2 s), one nonce.
    assert [c["answer"] for c in calls] == ["Unavailable", "Unavailable", "OK"]
    assert registered_after > 2.5
    assert len({c["op_nonce"] for c in calls}) == 1 and len(calls[0]["op_nonce"]) == 64
    c = calls[-1]
    assert (c["project"], c["prefix"], c["realm"]) == ("chromium", "buildbucket/cr/42", "")
    assert c["source_info"][0] == "LogDog Butler"
    assert [s.split("=")[0] for s in c["source_info"][1:]] == ["GOARCH", "GOOS"]
    assert c["has_expiration"] and c["expiration_ns"] == 3600 * 10**9
    # luci-go's server parsed our X-Prpc-Grpc-Timeout into the call's deadline.
    assert 25_000 < c["deadline_ms"] <= 30_000
    assert c["metadata"]["user-agent"] == ["pRPC Client 1.5"]
    assert "authorization" not in c["metadata"]

    report = pubsubcheck(tools, emulator.pull(sub, idle=2), SECRET)
    check_report(report, "chromium", "buildbucket/cr/42")


def test_second_registration_of_a_prefix_is_refused(tools, emulator, tmp_path: Path):
    topic, _ = emulator.create_topic_and_subscription(f"ld-{uuid.uuid4().hex[:8]}")
    coord = FakeCoord(tools, tmp_path, topic)
    try:
        args = ["-project", "chromium", "-prefix", "once/only", "-coordinator-host", coord.host]
        (tmp_path / "a").mkdir()
        first = Butlerd(tmp_path / "a", *args, output="logdog", env=emulator.env())
        try:
            assert first.stop() == 0
        finally:
            first.kill()
        (tmp_path / "b").mkdir()
        with pytest.raises(RuntimeError, match="AlreadyExists"):
            Butlerd(tmp_path / "b", *args, output="logdog", env=emulator.env())
        calls = coord.calls()
    finally:
        coord.stop()
    assert [c["answer"] for c in calls] == ["OK", "AlreadyExists"]
    assert calls[0]["op_nonce"] != calls[1]["op_nonce"]


# --- the reference logdog_butler on the same fake Coordinator and emulator --------------------


class FakeLocalAuth:
    """LUCI_CONTEXT local_auth: the LUCI auth library gets its OAuth tokens from
    this (fake) local server, which is how logdog_butler authenticates on bots.
    Without it the reference has no credentials and refuses to start."""

    def __init__(self, tmp: Path) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                body = json.dumps({"access_token": "fake-token",
                                   "expiry": int(time.time()) + 3600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.context = tmp / "luci_context.json"
        self.context.write_text(json.dumps({"local_auth": {
            "rpc_port": self.server.server_address[1], "secret": "c2VjcmV0",
            "accounts": [{"id": "task", "email": "task@example.com"}],
            "default_account_id": "task"}}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def per_stream(messages: list[bytes]) -> dict[str, dict[str, object]]:
    """What a collector stores per stream, minus what depends on timing
    (time offsets, prefix indices, how lines were grouped into entries)."""
    from wire import butlerproto

    descs: dict[str, bytes] = {}
    logs: dict[str, list] = {}
    terminals: dict[str, list[int]] = {}
    for m in messages:
        b = butlerproto.decode(m).bundle
        for e in b.entries:
            name = e.desc.name
            descs.setdefault(name, e.desc.SerializeToString(deterministic=True))
            assert descs[name] == e.desc.SerializeToString(deterministic=True)
            logs.setdefault(name, []).extend(e.logs)
            if e.terminal:
                terminals.setdefault(name, []).append(e.terminal_index)
    out: dict[str, dict[str, object]] = {}
    for name, entries in logs.items():
        entries.sort(key=lambda le: le.stream_index)
        indices = [le.stream_index for le in entries]
        assert indices == list(range(len(indices))), name
        assert terminals.get(name) == [indices[-1]], name
        kind = entries[0].WhichOneof("content")
        if kind == "text":
            # Every line with the number of the first line of its entry + its position:
            # the line numbers a viewer shows.
            content = [(le.sequence + i, ln.value, ln.delimiter)
                       for le in entries for i, ln in enumerate(le.text.lines)]
        elif kind == "binary":
            offsets = [le.sequence for le in entries]
            data = b"".join(le.binary.data for le in entries)
            sizes = [len(le.binary.data) for le in entries]
            assert offsets == [sum(sizes[:i]) for i in range(len(sizes))], name
            content = data
        else:
            content = [(le.sequence, le.datagram.data, le.datagram.HasField("partial"))
                       for le in entries]
        out[name] = {"desc": descs[name], "content": content}
    return out


def test_same_workload_as_reference_logdog_butler(go_binaries, tools, emulator, tmp_path: Path,
                                                  monkeypatch):
    from .harness import EXIT_AFTER_SIGTERM, Workload, run_daemon
    from .test_workloads import rnd, s, stream

    auth = FakeLocalAuth(tmp_path)
    monkeypatch.setenv("LUCI_CONTEXT", str(auth.context))
    for k, v in emulator.env().items():
        monkeypatch.setenv(k, v)
    streams = [
        stream("ref/text", [s(f"line {i}\n") for i in range(200)] + [s("crlf\r\n")],
               tags={"k": "v"}),
        stream("ref/partial", [s("no newline")]),
        stream("ref/bin", [rnd(5000 + i, i) for i in range(6)], type="binary"),
        stream("ref/dg", [s(""), s("a"), rnd(3000, 9), s("z")], type="datagram"),
        stream("ref/empty", []),
    ]
    results: dict[str, tuple[list[bytes], list[dict]]] = {}
    try:
        for kind in ("go", "butlerd"):
            topic, sub = emulator.create_topic_and_subscription(f"ref-{kind}-{uuid.uuid4().hex[:6]}")
            (tmp_path / kind).mkdir()
            coord = FakeCoord(tools, tmp_path / kind, topic)
            try:
                run = run_daemon(kind, go_binaries, Workload(
                    streams=streams,
                    daemon_flags=["-output", "logdog", "-coordinator-host", coord.host]),
                    tmp_path / kind / "run")
                assert run.returncode == EXIT_AFTER_SIGTERM[kind], run.stderr[-3000:]
                results[kind] = (emulator.pull(sub, idle=2), coord.calls())
            finally:
                coord.stop()
    finally:
        auth.close()

    (go_msgs, go_calls), (our_msgs, our_calls) = results["go"], results["butlerd"]
    # The registration: same request (but for the nonce), same pRPC metadata.
    assert len(go_calls) == len(our_calls) == 1
    for c in (go_calls[0], our_calls[0]):
        c.pop("op_nonce"), c.pop("deadline_ms"), c["metadata"].pop("authorization", None)
        c["metadata"].pop(":authority"), c["metadata"].pop("host")
    assert our_calls[0] == go_calls[0]
    # What the collector stores for each stream.
    go_streams, our_streams = per_stream(go_msgs), per_stream(our_msgs)
    assert set(go_streams) == {"ref/text", "ref/partial", "ref/bin", "ref/dg"}
    assert our_streams == go_streams
    # And both pass luci-go's reader with the coordinator's secret.
    assert pubsubcheck(tools, our_msgs, SECRET)["rejected"] == []
    assert pubsubcheck(tools, go_msgs, SECRET)["rejected"] == []
