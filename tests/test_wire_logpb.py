"""wire.logpb: the generated messages match luci-go's field numbers and use upb."""

from __future__ import annotations

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.internal import api_implementation

from wire import logpb


def test_upb_backend_is_in_use() -> None:
    # The pure-Python backend is ~10x slower at serializing bundles.
    assert api_implementation.Type() == "upb"


def test_package_and_names() -> None:
    assert logpb.LogStreamDescriptor.DESCRIPTOR.full_name == "logpb.LogStreamDescriptor"
    assert logpb.ButlerLogBundle.Entry.DESCRIPTOR.full_name == "logpb.ButlerLogBundle.Entry"
    assert logpb.ButlerMetadata.DESCRIPTOR.file.name == "wire/logpb/butler.proto"
    assert (logpb.TEXT, logpb.BINARY, logpb.DATAGRAM) == (0, 1, 2)
    assert logpb.StreamType.Name(2) == "DATAGRAM"
    assert (logpb.ButlerMetadata.Invalid, logpb.ButlerMetadata.ButlerLogBundle) == (0, 1)
    assert (logpb.ButlerMetadata.NONE, logpb.ButlerMetadata.ZLIB) == (0, 1)


def _fields(msg) -> dict[str, int]:
    return {f.name: f.number for f in msg.DESCRIPTOR.fields}


def test_field_numbers_match_luci_go() -> None:
    assert _fields(logpb.LogStreamDescriptor) == {
        "prefix": 1,
        "name": 2,
        "stream_type": 3,
        "content_type": 4,
        "timestamp": 5,
        "tags": 6,
        "binary_file_ext": 7,
    }
    assert _fields(logpb.Text) == {"lines": 1}
    assert _fields(logpb.Text.Line) == {"value": 1, "delimiter": 2}
    assert _fields(logpb.Binary) == {"data": 2}
    assert _fields(logpb.Datagram) == {"data": 1, "partial": 2}
    assert _fields(logpb.Datagram.Partial) == {"index": 1, "size": 2, "last": 3}
    assert _fields(logpb.LogEntry) == {
        "time_offset": 1,
        "prefix_index": 2,
        "stream_index": 3,
        "sequence": 4,
        "text": 10,
        "binary": 11,
        "datagram": 12,
    }
    assert _fields(logpb.LogIndex) == {
        "desc": 1,
        "entries": 2,
        "last_prefix_index": 3,
        "last_stream_index": 4,
        "log_entry_count": 5,
    }
    assert _fields(logpb.LogIndex.Entry) == {
        "offset": 1,
        "sequence": 2,
        "prefix_index": 3,
        "stream_index": 4,
        "time_offset": 5,
    }
    assert _fields(logpb.ButlerMetadata) == {"type": 1, "compression": 2, "proto_version": 3}
    assert _fields(logpb.ButlerLogBundle) == {
        "deprecated_source": 1,
        "timestamp": 2,
        "entries": 3,
        "project": 4,
        "prefix": 5,
        "secret": 6,
    }
    assert _fields(logpb.ButlerLogBundle.Entry) == {
        "desc": 1,
        "deprecated_entry_secret": 2,
        "terminal": 3,
        "terminal_index": 4,
        "logs": 5,
    }


def test_field_types() -> None:
    d = logpb.LogEntry.DESCRIPTOR.fields_by_name
    assert d["time_offset"].message_type.full_name == "google.protobuf.Duration"
    assert logpb.Text.Line.DESCRIPTOR.fields_by_name["value"].type == 12  # bytes
    assert logpb.Datagram.Partial.DESCRIPTOR.fields_by_name["index"].type == 13  # uint32
    assert logpb.ButlerLogBundle.DESCRIPTOR.fields_by_name["secret"].type == 12
    assert logpb.ButlerLogBundle.DESCRIPTOR.fields_by_name["timestamp"].message_type is timestamp_pb2.Timestamp.DESCRIPTOR
    assert [o.name for o in logpb.LogEntry.DESCRIPTOR.oneofs] == ["content"]


def test_worked_example_log_entry_bytes() -> None:
    # butler-core.md §5: LogEntry{time_offset: 0s, text: [{"foo", "\n"}]} is 14 bytes.
    e = logpb.LogEntry(time_offset=duration_pb2.Duration(), text=logpb.Text(lines=[logpb.Text.Line(value=b"foo", delimiter="\n")]))
    assert e.SerializeToString().hex() == "0a00520a0a080a03666f6f12010a"


def test_bundle_round_trip() -> None:
    b = logpb.ButlerLogBundle(project="p", prefix="x", secret=b"s" * 36)
    b.timestamp.seconds = 5
    ent = b.entries.add(terminal=True, terminal_index=3)
    ent.desc.name = "n"
    ent.logs.add(stream_index=3, datagram=logpb.Datagram(data=b"", partial=logpb.Datagram.Partial(index=1, size=9, last=True)))
    back = logpb.ButlerLogBundle.FromString(b.SerializeToString())
    assert back == b
    assert back.entries[0].logs[0].WhichOneof("content") == "datagram"
