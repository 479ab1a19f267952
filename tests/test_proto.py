"""Event values become the logpb messages (and bytes) the Go Butler produces."""

from __future__ import annotations

import random

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    DatagramContent,
    LogEntry,
    Partial,
    TextContent,
)
from butlerd._proto import bundle_to_proto, duration_parts, log_entry_to_proto
from butlerd._sizer import bundle_size
from wire import logpb
from wire.descriptor import StreamDescriptor
from wire.types import StreamType


def test_known_encoding_from_reference() -> None:
    # butler-core.md section 5: LogEntry{time_offset: 0s, text: [{"foo", "\n"}]}.
    le = LogEntry(0, 0, 0, 0, TextContent(b"foo\n"))
    assert log_entry_to_proto(le).SerializeToString().hex() == "0a00520a0a080a03666f6f12010a"


@pytest.mark.parametrize(
    "ns,parts",
    [
        (0, (0, 0)),
        (1, (0, 1)),
        (1_500_000_000, (1, 500_000_000)),
        (-1, (0, -1)),
        (-1_500_000_000, (-1, -500_000_000)),
        (-2_000_000_000, (-2, 0)),
        (10**18 + 7, (10**9, 7)),
    ],
)
def test_duration_truncates_toward_zero(ns: int, parts: tuple[int, int]) -> None:
    assert duration_parts(ns) == parts
    msg = log_entry_to_proto(LogEntry(ns, 0, 0, 0, BinaryContent(b"x")))
    assert msg.HasField("time_offset")
    assert (msg.time_offset.seconds, msg.time_offset.nanos) == parts


def test_text_lines_and_indexes() -> None:
    msg = log_entry_to_proto(LogEntry(2_000_000_001, 7, 3, 12, TextContent(b"a\nb\r\n\nc\rd")))
    expected = logpb.LogEntry(
        time_offset=Duration(seconds=2, nanos=1),
        prefix_index=7,
        stream_index=3,
        sequence=12,
        text=logpb.Text(
            lines=[
                logpb.Text.Line(value=b"a", delimiter="\n"),
                logpb.Text.Line(value=b"b", delimiter="\r\n"),
                logpb.Text.Line(value=b"", delimiter="\n"),
                logpb.Text.Line(value=b"c\rd", delimiter=""),
            ]
        ),
    )
    assert msg == expected
    assert msg.SerializeToString() == expected.SerializeToString()


def test_empty_contents_are_still_present() -> None:
    # Go sets the oneof (and Partial) pointer even when the message is empty.
    empty_bin = log_entry_to_proto(LogEntry(0, 0, 0, 0, BinaryContent(b"")))
    assert empty_bin.WhichOneof("content") == "binary"
    assert empty_bin.SerializeToString() == bytes.fromhex("0a00 5a00")
    empty_dg = log_entry_to_proto(LogEntry(0, 0, 0, 0, DatagramContent(b"", Partial(0, 0, False))))
    assert empty_dg.SerializeToString() == bytes.fromhex("0a00 6202 1200")
    assert log_entry_to_proto(LogEntry(0, 0, 0, 0, TextContent(b""))).SerializeToString() == (
        bytes.fromhex("0a00 5200")
    )


def test_datagram_partial_only_when_given() -> None:
    whole = log_entry_to_proto(LogEntry(0, 1, 1, 1, DatagramContent(b"hi")))
    assert not whole.datagram.HasField("partial")
    assert whole == logpb.LogEntry(
        time_offset=Duration(), prefix_index=1, stream_index=1, sequence=1,
        datagram=logpb.Datagram(data=b"hi"),
    )
    piece = log_entry_to_proto(LogEntry(0, 0, 0, 0, DatagramContent(b"he", Partial(2, 5, True))))
    assert piece.datagram == logpb.Datagram(
        data=b"he", partial=logpb.Datagram.Partial(index=2, size=5, last=True)
    )


def desc(name: str, stype: StreamType = StreamType.TEXT, **kw) -> StreamDescriptor:
    return StreamDescriptor(name, stype, "text/plain; charset=utf-8", 1_704_164_645_123_000_000, **kw)


def test_bundle_matches_hand_built_message() -> None:
    a, b = desc("a", tags={"k": "v"}), desc("b", StreamType.BINARY)
    bundle = Bundle(
        1_704_164_645_500_000_000,
        [
            BundleEntry(a, [LogEntry(5, 0, 0, 0, TextContent(b"x\n"))], terminal=True, terminal_index=0),
            BundleEntry(b, [LogEntry(0, 1, 0, 0, BinaryContent(b"\x01")), LogEntry(0, 2, 1, 1, BinaryContent(b"\x02"))]),
        ],
    )
    msg = bundle_to_proto(bundle, project="proj", prefix="pre/fix", secret=b"s" * 36)
    expected = logpb.ButlerLogBundle(
        timestamp=Timestamp(seconds=1_704_164_645, nanos=500_000_000),
        project="proj",
        prefix="pre/fix",
        secret=b"s" * 36,
        entries=[
            logpb.ButlerLogBundle.Entry(
                desc=a.to_proto(),
                terminal=True,
                logs=[log_entry_to_proto(bundle.entries[0].logs[0])],
            ),
            logpb.ButlerLogBundle.Entry(
                desc=b.to_proto(),
                logs=[log_entry_to_proto(le) for le in bundle.entries[1].logs],
            ),
        ],
    )
    assert msg == expected
    assert [e.desc.name for e in msg.entries] == ["a", "b"]
    assert [le.prefix_index for le in msg.entries[1].logs] == [1, 2]
    assert msg.SerializeToString() == expected.SerializeToString()


def test_bundle_timestamp_always_set_and_floored() -> None:
    empty = bundle_to_proto(Bundle(0, []))
    assert empty.HasField("timestamp")
    assert empty.SerializeToString() == bytes.fromhex("1200")
    before = bundle_to_proto(Bundle(-1, []))
    assert (before.timestamp.seconds, before.timestamp.nanos) == (-1, 999_999_999)


def _random_bundle(rng: random.Random) -> Bundle:
    def content():
        kind = rng.randrange(3)
        n = rng.choice([0, 1, 5, 127, 128, 300, 20000])
        raw = bytes(rng.choice(b"ab\r\n\x00\xff") for _ in range(n))
        if kind == 0:
            return TextContent(raw)
        if kind == 1:
            return BinaryContent(raw)
        partial = None
        if rng.random() < 0.5:
            partial = Partial(rng.choice([0, 1, 200]), rng.choice([0, 5, 1 << 40]), rng.random() < 0.5)
        return DatagramContent(raw, partial)

    def num():
        return rng.choice([0, 1, 127, 128, 16383, 16384, 1 << 35, (1 << 63) - 1])

    entries = []
    for i in range(rng.randrange(4)):
        logs = [
            LogEntry(
                rng.choice([0, 1, -1, 10**9, -(10**9) - 1, 3 * 10**17, -(3 * 10**17)]),
                num(), num(), num(), content(),
            )
            for _ in range(rng.randrange(4))
        ]
        entries.append(
            BundleEntry(
                desc(f"s{i}", tags={"t": "x" * rng.randrange(200)}),
                logs,
                terminal=rng.random() < 0.5,
                terminal_index=num(),
            )
        )
    ts = rng.choice([0, 1, -1, 1_704_164_645_123_456_789])
    return Bundle(ts, entries)


def test_bundle_size_equals_serialized_size() -> None:
    rng = random.Random(20261204)
    for _ in range(300):
        bundle = _random_bundle(rng)
        secret = rng.choice([b"", b"k" * 36])
        project = rng.choice(["", "chromium"])
        prefix = rng.choice(["", "p/" * 70])
        msg = bundle_to_proto(bundle, project, prefix, secret)
        assert bundle_size(bundle, project, prefix, secret) == len(msg.SerializeToString())


@pytest.mark.parametrize(
    "d",
    [
        StreamDescriptor("x", StreamType.TEXT, "", None),
        StreamDescriptor("a/b", StreamType.DATAGRAM, "application/x", 0, {"": "", "k": "v\u00e9"}),
        StreamDescriptor("n", 7, "c", -1, {"t" * 64: "v" * 4096}, prefix="p", binary_file_ext="e"),
        StreamDescriptor("\u65e5", StreamType.BINARY, "c", 1_704_164_645_123_456_789),
    ],
)
def test_descriptor_size_equals_serialized_size(d: StreamDescriptor) -> None:
    from butlerd._sizer import descriptor_size

    assert descriptor_size(d) == d.to_proto().ByteSize()


def test_text_size_arithmetic_on_many_line_shapes() -> None:
    rng = random.Random(7)
    lengths = [0, 1, 2, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 16380, 16390]
    for _ in range(400):
        parts = []
        for _ in range(rng.randrange(1, 8)):
            n = rng.choice(lengths)
            body = bytes(rng.choice(b"x\r") for _ in range(n))
            parts.append(body + rng.choice([b"\n", b"\r\n", b""]))
        data = b"".join(parts)
        le = LogEntry(0, 0, 0, 0, TextContent(data))
        bundle = Bundle(0, [BundleEntry(desc("t"), [le])])
        assert bundle_size(bundle) == bundle_to_proto(bundle).ByteSize(), data
