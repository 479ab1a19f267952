"""Our arithmetic sizes must equal the real protobuf encodings (Go sizer_test)."""

from __future__ import annotations

import pytest

from butlerd._events import BinaryContent, DatagramContent, LogEntry, Partial, TextContent
from butlerd._sizer import duration_size, log_entry_size, timestamp_size, varint_len
from wire import logpb
from wire.varint import encode_uvarint


def to_proto(e: LogEntry) -> logpb.LogEntry:
    msg = logpb.LogEntry(prefix_index=e.prefix_index, stream_index=e.stream_index, sequence=e.sequence)
    secs = -(-e.time_offset_ns // 10**9) if e.time_offset_ns < 0 else e.time_offset_ns // 10**9
    msg.time_offset.seconds = secs
    msg.time_offset.nanos = e.time_offset_ns - secs * 10**9
    msg.SetInParent()
    msg.time_offset.SetInParent()
    c = e.content
    if isinstance(c, TextContent):
        msg.text.SetInParent()
        for line in c.lines():
            msg.text.lines.add(value=line.value, delimiter=line.delimiter)
    elif isinstance(c, BinaryContent):
        msg.binary.SetInParent()
        msg.binary.data = c.data
    else:
        msg.datagram.SetInParent()
        msg.datagram.data = c.data
        if c.partial is not None:
            msg.datagram.partial.SetInParent()
            msg.datagram.partial.index = c.partial.index
            msg.datagram.partial.size = c.partial.size
            msg.datagram.partial.last = c.partial.last
    return msg


@pytest.mark.parametrize("v", sorted({0, 1} | {t + d for t in (1 << 7, 1 << 14, 1 << 21, 1 << 28, 1 << 35,
                                                            1 << 42, 1 << 49, 1 << 56, 1 << 63)
                                          for d in (-2, -1, 0, 1, 2)}))
def test_varint_len_matches_protobuf(v):
    if v >= 1 << 64:
        return
    assert varint_len(v) == (0 if v == 0 else len(encode_uvarint(v)))


TEXTS = [
    b"foo\n",
    b"foo\nbar\r\nbaz\n",
    b"\n\r\n\n",
    b"partial only",
    b"a\r\r\nb\n\xff\xfe tail",
    b"x" * 119 + b"\n" + b"y" * 121 + b"\r\n",
    b"x" * 121 + b"\n",
    b"x" * 200 + b"\n" + b"short\n",
    b"x" * 20000 + b"\r\n" + b"z" * 3,
    b"\r\n" * 50 + b"\n" * 50,
]


@pytest.mark.parametrize("data", TEXTS)
@pytest.mark.parametrize("offset", [0, 1, -1, 1_500_000_000, -2_000_000_001, 10**18])
def test_text_entry_size(data, offset):
    e = LogEntry(offset, 1337, 5, 130, TextContent(data))
    assert log_entry_size(e) == to_proto(e).ByteSize()


@pytest.mark.parametrize(
    "content",
    [
        BinaryContent(b"\x00"),
        BinaryContent(b"z" * 300),
        DatagramContent(b""),
        DatagramContent(b"abc"),
        DatagramContent(b"abc", Partial(0, 10, False)),
        DatagramContent(b"x" * 200, Partial(3, 1 << 40, True)),
        DatagramContent(b"", Partial(0, 0, False)),
    ],
)
@pytest.mark.parametrize("indices", [(0, 0, 0), (1, 2, 3), (1 << 40, 200, 1 << 20)])
def test_binary_and_datagram_entry_size(content, indices):
    e = LogEntry(7, *indices, content)
    assert log_entry_size(e) == to_proto(e).ByteSize()


def test_known_encoding_from_the_reference():
    e = LogEntry(0, 0, 0, 0, TextContent(b"foo\n"))
    assert to_proto(e).SerializeToString().hex() == "0a00520a0a080a03666f6f12010a"
    assert log_entry_size(e) == 14


@pytest.mark.parametrize("ns", [0, 1, 10**9, 1_420_070_400 * 10**9 + 123, -1, -62135596800 * 10**9])
def test_timestamp_and_duration_sizes(ns):
    from google.protobuf import duration_pb2, timestamp_pb2

    ts = timestamp_pb2.Timestamp(seconds=ns // 10**9, nanos=ns % 10**9)
    assert timestamp_size(ns) == ts.ByteSize()
    secs = -(-ns // 10**9) if ns < 0 else ns // 10**9
    d = duration_pb2.Duration(seconds=secs, nanos=ns - secs * 10**9)
    assert duration_size(ns) == d.ByteSize()
