"""The null output discards bundles and counts them as Go's null output does."""

from __future__ import annotations

import asyncio

from butlerd._events import BinaryContent, Bundle, BundleEntry, LogEntry, TextContent
from butlerd._proto import bundle_to_proto
from butlerd.outputs import OutputConfig, create_output
from butlerd.outputs.null import NullOutput
from wire.descriptor import StreamDescriptor
from wire.types import StreamType


def test_null_counts_entries_and_serialized_bytes() -> None:
    out = create_output("null", OutputConfig(project="p"))
    assert isinstance(out, NullOutput)
    a = StreamDescriptor("a", StreamType.TEXT, "text/plain; charset=utf-8", 10**18, {"k": "v"})
    b = StreamDescriptor("b", StreamType.BINARY, "application/octet-stream", 10**18)
    bundles = [
        Bundle(10**18, [
            BundleEntry(a, [LogEntry(0, 0, 0, 0, TextContent(b"x\r\ny" * 50)), LogEntry(1, 1, 1, 1, TextContent(b"z\n"))]),
            BundleEntry(b, [LogEntry(0, 2, 0, 0, BinaryContent(b"\x00" * 300))], terminal=True),
        ]),
        Bundle(10**18 + 1, [BundleEntry(a, [], terminal=True, terminal_index=1)]),
    ]

    async def run() -> None:
        for bundle in bundles:
            await out.send_bundle(bundle)
        await out.close()

    asyncio.run(run())
    stats = out.stats()
    # Go: SentMessages += len(bundle.Entries); SentBytes += proto.Size(bundle).
    assert stats.sent_messages == 3
    assert stats.sent_bytes == sum(bundle_to_proto(b).ByteSize() for b in bundles)
    assert (stats.errors, stats.discarded_messages) == (0, 0)


def test_null_limits_and_environment() -> None:
    out = NullOutput()
    assert (out.max_size, out.max_send_bundles) == (1 << 30, 1)
    assert out.url_env() == {"LOGDOG_STREAM_PROJECT": "null", "LOGDOG_STREAM_PREFIX": "null"}
