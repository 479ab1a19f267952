"""End to end: clients -> ``butlerd serve -output pubsub`` -> the real emulator -> decode.

What a LogDog collector relies on, checked on what the emulator delivers:
every byte a client wrote arrives exactly once in its stream, stream_index
runs 0, 1, 2... without gaps or repeats, a non-empty stream has exactly one
terminal entry whose terminal_index is its last index, an empty stream never
appears, and every bundle carries the project, prefix and 36-byte secret.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from tests.daemon import Butlerd, handshake
from tests.emulator import PubSubEmulator, skip_without_emulator
from wire import butlerproto, logpb
from wire.varint import encode_uvarint

pytestmark = [pytest.mark.emulator, skip_without_emulator()]


class Collected:
    """Pulled messages regrouped per stream, as the collector would see them."""

    def __init__(self, messages: list[bytes]) -> None:
        decoded = [butlerproto.decode(m) for m in messages]
        self.bundles = [m.bundle for m in decoded]
        self.bundle_sizes = [len(m.raw_bundle) for m in decoded]
        self.entries: dict[str, list[logpb.ButlerLogBundle.Entry]] = defaultdict(list)
        for b in self.bundles:
            for e in b.entries:
                self.entries[e.desc.name].append(e)

    def logs(self, name: str) -> list[logpb.LogEntry]:
        logs = [log for e in self.entries[name] for log in e.logs]
        return sorted(logs, key=lambda log: log.stream_index)

    def data(self, name: str) -> bytes | list[bytes]:
        logs = self.logs(name)
        kind = self.entries[name][0].desc.stream_type
        if kind == logpb.TEXT:
            return b"".join(line.value + line.delimiter.encode()
                            for log in logs for line in log.text.lines)
        if kind == logpb.BINARY:
            return b"".join(log.binary.data for log in logs)
        datagrams: list[bytes] = []
        pending = b""
        for log in logs:
            pending += log.datagram.data
            if not log.datagram.HasField("partial") or log.datagram.partial.last:
                datagrams.append(pending)
                pending = b""
        assert pending == b"", "a datagram was left incomplete"
        return datagrams


def check_streams(got: Collected, byte_streams: dict[str, bytes],
                  dgram_streams: dict[str, list[bytes]]) -> None:
    """Each non-empty stream arrived exactly once, in order, with one terminal."""
    nonempty = {n for n, b in {**byte_streams, **dgram_streams}.items() if b}
    assert set(got.entries) == nonempty, "empty streams never appear"
    for name in nonempty:
        indices = [log.stream_index for log in got.logs(name)]
        assert indices == list(range(len(indices))), f"{name}: gaps or repeats"
        terminals = [e for e in got.entries[name] if e.terminal]
        assert len(terminals) == 1, name
        assert terminals[0].terminal_index == indices[-1], name
        assert all(e.desc.prefix == "" for e in got.entries[name])
    for name, body in byte_streams.items():
        if body:
            assert got.data(name) == body, name
    for name, dgrams in dgram_streams.items():
        if dgrams:
            assert got.data(name) == dgrams, name


def write_stream(d: Butlerd, name: str, type_: str, body: bytes, pieces: int = 5) -> None:
    with d.connect() as s:
        s.sendall(handshake(name, type_))
        step = max(1, len(body) // pieces)
        for i in range(0, len(body), step):
            s.sendall(body[i : i + step])
            time.sleep(0.01)


def test_streams_of_each_type_arrive_once_in_order_with_one_terminal(emulator, tmp_path: Path):
    topic, sub = emulator.create_topic_and_subscription(f"serve-{uuid.uuid4().hex[:8]}")
    rnd = random.Random(4)
    text = {
        "t/stdout": b"".join(f"line {i}\r\n".encode() if i % 7 == 0 else f"line {i}\n".encode()
                             for i in range(20_000)),
        "t/stderr": b"oops\nno newline at the end",
        "t/one": b"x\n",
        "t/empty": b"",
    }
    binary = {
        "b/big": rnd.randbytes(6_000_000),
        "b/small": b"\x00\x01\x02",
        "b/empty": b"",
    }
    dgram_lists = {
        "d/a": [b"", b"x", rnd.randbytes(1_500_000), b"y" * 100],
        "d/b": [f"dg {i}".encode() for i in range(500)],
        "d/empty": [],
    }
    datagram = {k: b"".join(encode_uvarint(len(g)) + g for g in v) for k, v in dgram_lists.items()}

    d = Butlerd(tmp_path, "-project", "proj", "-prefix", "e2e/prefix",
                "-output-max-buffer-age", "200ms",
                output=f"pubsub,topic={topic}", env=emulator.env())
    try:
        threads = [threading.Thread(target=write_stream, args=(d, n, t, b))
                   for t, streams in (("text", text), ("binary", binary), ("datagram", datagram))
                   for n, b in streams.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert d.stop() == 0, d.stderr()
    finally:
        d.kill()

    got = Collected(emulator.pull(sub, idle=3))
    for b in got.bundles:
        assert (b.project, b.prefix) == ("proj", "e2e/prefix")
        assert len(b.secret) == 36 and b.secret == got.bundles[0].secret

    check_streams(got, {**text, **binary}, dgram_lists)
    # 7.5 MB of incompressible data: the 5,000,000-byte budget forces several bundles.
    assert len(got.bundles) >= 2
    # The collector's limit. (The 5,000,000 budget itself excludes project,
    # prefix and secret, which are stamped after sizing, as in Go.)
    assert max(got.bundle_sizes) <= butlerproto.MAX_BUNDLE_SIZE


def test_outage_while_clients_write_loses_nothing(tmp_path: Path):
    """Kill the emulator while clients write, restart it on the same port and
    re-create topic and subscription: everything written arrives."""
    emu = PubSubEmulator(tmp_path / "emu")
    (tmp_path / "emu").mkdir()
    emu.start()
    d = None
    try:
        topic, sub = emu.create_topic_and_subscription("outage")
        d = Butlerd(tmp_path, "-project", "proj", "-prefix", "outage/p",
                    "-output-max-buffer-age", "100ms",
                    output=f"pubsub,topic={topic}", env=emu.env())
        # Before: one stream, delivered and pulled while the emulator is up.
        write_stream(d, "before", "text", b"before\n" * 100)
        before: list[bytes] = []
        deadline = time.monotonic() + 30
        while not any(e.terminal for e in Collected(before).entries.get("before", [])):
            assert time.monotonic() < deadline, "the first stream never arrived"
            before += emu.pull(sub, idle=0.2, timeout=1)

        # During: streams opened and written with the emulator down; one stays
        # open across the restart and writes more afterwards.
        emu.stop()
        rnd = random.Random(7)
        during = {f"during/{i}": rnd.randbytes(200_000) for i in range(3)}
        texts = {f"text/{i}": b"".join(f"{i}:{n}\n".encode() for n in range(5000))
                 for i in range(3)}
        for name, body in during.items():
            write_stream(d, name, "binary", body)
        for name, body in texts.items():
            write_stream(d, name, "text", body)
        across = d.connect()
        across.sendall(handshake("across", "text") + b"written during the outage\n")
        time.sleep(2)  # several bundles fail and back off
        emu.start()
        emu.create_topic_and_subscription("outage")
        across.sendall(b"written after the restart\n")
        across.close()
        assert d.stop() == 0, d.stderr()
        got = Collected(emu.pull(sub, idle=3))
    finally:
        if d is not None:
            d.kill()
        emu.stop()

    assert any(e.terminal for e in Collected(before).entries["before"])
    check_streams(got, {**during, **texts,
                        "across": b"written during the outage\nwritten after the restart\n"}, {})
    assert "TRANSIENT error publishing" in d.stderr()


def test_sigterm_with_pubsub_down_waits_flush_timeout_then_fails(tmp_path: Path):
    emu = PubSubEmulator(tmp_path / "emu")
    (tmp_path / "emu").mkdir()
    emu.start()
    d = None
    try:
        topic, _ = emu.create_topic_and_subscription("down")
        d = Butlerd(tmp_path, "-project", "proj", "-prefix", "down/p",
                    "-output-flush-timeout", "2s",
                    output=f"pubsub,topic={topic}", env=emu.env())
        emu.stop()
        for i in range(3):
            write_stream(d, f"s{i}", "text", b"lost?\n")
        t = time.monotonic()
        code = d.stop()
        took = time.monotonic() - t
    finally:
        if d is not None:
            d.kill()
        emu.stop()
    assert code != 0
    assert 1.5 < took < 15
    assert "bundle(s) were not delivered" in d.stderr()
