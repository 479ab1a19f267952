"""The Butler (asyncio layer): AddStream rules, truncation, backpressure, flushing."""

from __future__ import annotations

import asyncio

import pytest

from butlerd._butler import Butler, StreamRejected
from butlerd._events import Bundle
from butlerd.outputs.base import Output, OutputStats
from wire.descriptor import StreamDescriptor
from wire.types import StreamType


class MemoryOutput(Output):
    """Collects bundles; optionally blocks sends until released."""

    def __init__(self, max_size: int = 1 << 30) -> None:
        self.max_size = max_size
        self.bundles: list[Bundle] = []
        self.gate: asyncio.Event | None = None

    async def send_bundle(self, bundle: Bundle) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.bundles.append(bundle)

    def stats(self) -> OutputStats:
        return OutputStats(sent_messages=len(self.bundles))

    def data(self, name: str) -> bytes:
        return b"".join(
            l.content.data for b in self.bundles for e in b.entries if e.desc.name == name for l in e.logs
        )

    def terminal(self, name: str) -> bool:
        return any(e.terminal for b in self.bundles for e in b.entries if e.desc.name == name)


def desc(name: str, stype: StreamType = StreamType.TEXT, **kw) -> StreamDescriptor:
    ct = "text/plain; charset=utf-8" if stype == StreamType.TEXT else "application/octet-stream"
    return StreamDescriptor(name, stype, kw.pop("content_type", ct), kw.pop("ts", None), **kw)


def run(coro):
    return asyncio.run(coro)


def test_many_streams_each_rebuild_their_text():
    async def main():
        out = MemoryOutput()
        butler = Butler(out, max_buffer_delay_ns=0)
        butler.start()
        for i in range(256):
            w = butler.add_stream(desc(f"stream{i}"))
            for j in range(3):
                w.feed(f"stream data {j}!\n".encode())
            w.close()
        await butler.flush()
        return out

    out = run(main())
    for i in range(256):
        assert out.data(f"stream{i}") == b"stream data 0!\nstream data 1!\nstream data 2!\n"
        assert out.terminal(f"stream{i}")


def test_add_stream_rules():
    async def main():
        butler = Butler(MemoryOutput(), global_tags={"foo": "bar", "baz": "qux"})
        with pytest.raises(StreamRejected, match="missing content type"):
            butler.add_stream(desc("a", content_type=""))
        d = desc("tagged", tags={"baz": "override"}, ts=123)
        butler.add_stream(d)
        assert d.tags == {"foo": "bar", "baz": "override"}
        assert d.timestamp_ns == 123 and d.prefix == ""
        plain = desc("plain")
        butler.add_stream(plain)
        assert plain.tags == {"foo": "bar", "baz": "qux"}
        assert plain.timestamp_ns is not None  # stamped with the butler's clock
        with pytest.raises(StreamRejected, match="duplicate registration"):
            butler.add_stream(desc("tagged"))

    run(main())


def test_names_are_never_reused_even_after_the_stream_ended():
    async def main():
        butler = Butler(MemoryOutput(), max_buffer_delay_ns=0)
        butler.start()
        w = butler.add_stream(desc("once"))
        w.feed(b"x\n")
        w.close()
        await asyncio.sleep(0.01)
        with pytest.raises(StreamRejected, match="duplicate registration"):
            butler.add_stream(desc("once"))
        await butler.flush()

    run(main())


def test_truncation_of_a_text_stream_matches_go():
    async def main():
        out = MemoryOutput()
        butler = Butler(out, max_buffer_delay_ns=0, max_stream_bytes=256)
        butler.start()
        w = butler.add_stream(desc("t"))
        for i in range(4):
            w.feed(bytes([0x41 + i]) * 128)
        w.close()
        await butler.flush()
        return out

    data = run(main()).data("t")
    assert len(data) == 423
    assert data[:256] == b"A" * 128 + b"B" * 128
    assert data[256:] == (
        b"\nStream size limit of 256 bytes reached. Truncating."
        b"\n*** LOG TRUNCATED: Log stream exceeded LogDog's 256-byte limit,omitted 256 bytes, "
        b"total stream size 512 bytes ***\n"
    )


def test_truncation_of_a_binary_stream_keeps_the_limit_only():
    async def main():
        out = MemoryOutput()
        butler = Butler(out, max_buffer_delay_ns=0, max_stream_bytes=256)
        butler.start()
        w = butler.add_stream(desc("b", StreamType.BINARY))
        w.feed(b"\x01" * 200)
        w.feed(b"\x02" * 100)  # crosses the limit: the whole read is dropped
        w.feed(b"\x03" * 10)
        w.close()
        await butler.flush()
        return out

    assert run(main()).data("b") == b"\x01" * 200


def test_backpressure_pauses_and_resumes_without_dropping():
    async def main():
        out = MemoryOutput()
        out.gate = asyncio.Event()  # the output is "down"
        butler = Butler(out, max_buffer_delay_ns=0)
        butler.start()
        w = butler.add_stream(desc("fast", StreamType.BINARY))
        resumed = asyncio.Event()
        w.set_on_consumed(lambda: resumed.set() if not w.full() else None)
        chunk = b"z" * 65536
        sent = 0
        # First bundle goes to the blocked output; then the buffer fills up.
        while not w.full():
            w.feed(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        assert w.stream.buffered >= 5 * 1024 * 1024
        out.gate.set()  # the output recovers
        await asyncio.wait_for(resumed.wait(), 5)
        w.close()
        await butler.flush()
        return out, sent

    out, sent = run(main())
    assert len(out.data("fast")) == sent
    assert out.terminal("fast")


def test_a_failing_output_does_not_stop_the_butler():
    class Flaky(MemoryOutput):
        calls = 0

        async def send_bundle(self, bundle):
            self.calls += 1
            if self.calls == 1:
                raise OSError("disk full")
            await super().send_bundle(bundle)

    async def main():
        out = Flaky()
        butler = Butler(out, max_buffer_delay_ns=0)
        butler.start()
        w = butler.add_stream(desc("a"))
        w.feed(b"lost\n")
        await asyncio.sleep(0.01)
        w.feed(b"kept\n")
        w.close()
        await butler.flush()
        return out, butler

    out, butler = run(main())
    assert out.data("a") == b"kept\n"
    assert butler.send_errors == 1
