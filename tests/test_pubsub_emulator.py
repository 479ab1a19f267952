"""The Pub/Sub output against the real Cloud Pub/Sub emulator (no daemon).

Bundles go through ``PubSubOutput`` and the real google-cloud-pubsub client
to the emulator; a subscription pulls them back and ``wire.butlerproto``
decodes them.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter

import pytest

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    DatagramContent,
    LogEntry,
    TextContent,
)
from butlerd._proto import bundle_to_proto
from butlerd.outputs.pubsub import PubSubOutput
from tests.emulator import PubSubEmulator, skip_without_emulator
from wire import butlerproto
from wire.descriptor import StreamDescriptor
from wire.types import StreamType, default_content_type

pytestmark = [pytest.mark.emulator, skip_without_emulator()]

SECRET = b"0123456789abcdef0123456789abcdef0123"


@pytest.fixture
def emulator_env(emulator, monkeypatch):
    for k, v in emulator.env().items():
        monkeypatch.setenv(k, v)
    return emulator


def make_bundle(i: int, kind: StreamType, payload: bytes) -> Bundle:
    desc = StreamDescriptor(name=f"stream/{i}", stream_type=kind,
                            content_type=default_content_type(kind),
                            timestamp_ns=1_700_000_000_123_456_789, tags={"n": str(i)})
    content = {
        StreamType.TEXT: lambda: TextContent(payload),
        StreamType.BINARY: lambda: BinaryContent(payload),
        StreamType.DATAGRAM: lambda: DatagramContent(payload),
    }[kind]()
    log = LogEntry(time_offset_ns=5_000, prefix_index=i, stream_index=0, sequence=0,
                   content=content)
    return Bundle(timestamp_ns=1_700_000_001_000_000_000 + i,
                  entries=[BundleEntry(desc, [log], terminal=True, terminal_index=0)])


def expected_proto(b: Bundle, prefix: str) -> bytes:
    return bundle_to_proto(b, "proj", prefix, SECRET).SerializeToString(deterministic=True)


def new_output(topic: str, prefix: str, **kw) -> PubSubOutput:
    return PubSubOutput(topic, project="proj", prefix=prefix, secret=SECRET, **kw)


def test_bundles_arrive_decodable_and_complete(emulator_env):
    emu = emulator_env
    topic, sub = emu.create_topic_and_subscription(f"t-{uuid.uuid4().hex[:8]}")
    bundles = [
        make_bundle(0, StreamType.TEXT, b"hello\nworld\n"),
        make_bundle(1, StreamType.TEXT, b"line\n" * 50_000),  # compressed
        make_bundle(2, StreamType.BINARY, os.urandom(3_000_000)),  # big, incompressible
        make_bundle(3, StreamType.DATAGRAM, b"\x00\x01\x02"),
        make_bundle(4, StreamType.DATAGRAM, b""),
    ] + [make_bundle(i, StreamType.TEXT, f"{i}\n".encode()) for i in range(5, 40)]
    out = new_output(topic, "emu/basic")

    async def go() -> None:
        await out.start()
        await asyncio.gather(*(out.send_bundle(b) for b in bundles))
        await out.close()

    asyncio.run(go())
    assert out.undelivered == 0
    assert out.stats().sent_messages == len(bundles)

    got = emu.pull(sub, count=len(bundles))
    decoded = [butlerproto.decode(m) for m in got]
    assert Counter(m.raw_bundle for m in decoded) == Counter(
        expected_proto(b, "emu/basic") for b in bundles
    )
    by_name = {m.bundle.entries[0].desc.name: m for m in decoded}
    assert by_name["stream/1"].metadata.compression == 1
    assert by_name["stream/0"].metadata.compression == 0
    # Uncompressed messages are exactly what Go would send for this bundle.
    small = make_bundle(0, StreamType.TEXT, b"hello\nworld\n")
    assert butlerproto.encode(bundle_to_proto(small, "proj", "emu/basic", SECRET)) in got


def test_outage_loses_nothing(tmp_path, monkeypatch):
    """Stop the emulator while bundles keep coming, start it again on the same
    port, re-create topic and subscription: every bundle arrives."""
    emu = PubSubEmulator(tmp_path)
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)
    emu.start()
    try:
        topic, sub = emu.create_topic_and_subscription("outage")
        out = new_output(topic, "emu/outage", flush_timeout=120)
        before = [make_bundle(i, StreamType.TEXT, f"before {i}\n".encode()) for i in range(10)]
        during = [make_bundle(i, StreamType.TEXT, f"during {i}\n".encode() * (i + 1))
                  for i in range(10, 40)]

        async def phase1() -> None:
            await out.start()
            for b in before:
                await out.send_bundle(b)
            while out.stats().sent_messages < len(before):
                await asyncio.sleep(0.05)

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(phase1())
            got_before = emu.pull(sub, count=len(before), idle=0.5)
            emu.stop()

            async def phase2() -> tuple[int, int]:
                # 30 bundles against a dead emulator: 16 publishes retry while the
                # rest wait for a slot (backpressure), nothing is dropped.
                sending = asyncio.gather(*(out.send_bundle(b) for b in during))
                await asyncio.sleep(3)
                in_flight = len(out._deliveries)
                retries = out.stats().retries
                await asyncio.to_thread(emu.start)
                await asyncio.to_thread(emu.create_topic_and_subscription, "outage")
                await sending
                await out.close()
                return in_flight, retries

            in_flight, retries_during_outage = loop.run_until_complete(phase2())
        finally:
            loop.close()
        got_during = emu.pull(sub, count=len(during))
    finally:
        emu.stop()

    assert in_flight == 16
    assert retries_during_outage >= 16
    assert out.undelivered == 0
    assert sorted(butlerproto.decode(m).raw_bundle for m in got_before) == sorted(
        expected_proto(b, "emu/outage") for b in before)
    assert sorted(butlerproto.decode(m).raw_bundle for m in got_during) == sorted(
        expected_proto(b, "emu/outage") for b in during)


def test_flush_timeout_reports_undelivered_when_emulator_stays_down(tmp_path, monkeypatch):
    emu = PubSubEmulator(tmp_path)
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)
    emu.start()
    try:
        topic, _ = emu.create_topic_and_subscription("down")
        out = new_output(topic, "emu/down", flush_timeout=2)

        async def go() -> float:
            await out.start()
            emu.stop()
            for i in range(5):
                await out.send_bundle(make_bundle(i, StreamType.TEXT, b"x\n"))
            t = time.monotonic()
            await out.close()
            return time.monotonic() - t

        took = asyncio.run(go())
    finally:
        emu.stop()
    assert 1.5 < took < 10
    assert out.undelivered == 5
    assert out.stats().retries >= 5
