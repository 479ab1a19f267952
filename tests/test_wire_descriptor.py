"""wire.descriptor: Go's LogStreamDescriptor.Validate and the protobuf form."""

from __future__ import annotations

import pytest

from wire import logpb
from wire.descriptor import InvalidDescriptorError, StreamDescriptor
from wire.goquote import go_quote
from wire.timefmt import GO_ZERO_TIME_NS
from wire.types import StreamType


def good(**kw) -> StreamDescriptor:
    args = dict(name="u/stdout", stream_type=StreamType.TEXT, content_type="text/plain", timestamp_ns=0, tags={})
    args.update(kw)
    return StreamDescriptor(**args)


def test_valid_descriptor() -> None:
    good().validate()
    good(tags={"a": "", "b/c": "x" * 4096}, binary_file_ext="bin", prefix="anything?").validate()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(name=""), "invalid name: must contain at least one character"),
        (dict(name="a//b"), "invalid name: segment (at 2) must begin with alphanumeric character"),
        (dict(stream_type=3), "invalid stream type: 3"),
        (dict(content_type=""), "missing content type"),
        (dict(timestamp_ns=None), "missing timestamp"),
        (dict(tags={"_k": "v"}), 'invalid tag "_k": invalid tag key: segment (at 0) must begin with alphanumeric character'),
        (dict(tags={"k": "v" * 4097}), 'invalid tag "k": tag value exceeds maximum size (4097 > 4096)'),
        # Checks run in Go's order: name before type before content type...
        (dict(name="", stream_type=9, content_type="", timestamp_ns=None), "invalid name: must contain at least one character"),
        (dict(stream_type=9, content_type="", timestamp_ns=None), "invalid stream type: 9"),
        (dict(content_type="", timestamp_ns=None, tags={"_": ""}), "missing content type"),
        (dict(timestamp_ns=None, tags={"_": ""}), "missing timestamp"),
    ],
)
def test_invalid_descriptors_report_gos_first_failing_check(kw: dict, message: str) -> None:
    d = good(**kw)
    assert d.validation_error() == message
    with pytest.raises(InvalidDescriptorError) as ei:
        d.validate()
    assert str(ei.value) == message
    assert isinstance(ei.value, ValueError)


def test_prefix_is_checked_only_on_request() -> None:
    d = good(prefix="")
    d.validate()
    assert d.validation_error(check_prefix=True) == "invalid prefix: must contain at least one character"
    good(prefix="buildbucket/cr/123").validate(check_prefix=True)


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'


def test_to_proto_fields_and_bytes() -> None:
    d = StreamDescriptor(
        name="u/build.proto",
        stream_type=StreamType.DATAGRAM,
        content_type="application/x",
        timestamp_ns=1704164645123456789,
        tags={"b": "2", "a": "x"},
    )
    msg = d.to_proto()
    assert isinstance(msg, logpb.LogStreamDescriptor)
    assert msg.name == "u/build.proto"
    assert msg.stream_type == logpb.DATAGRAM
    assert msg.content_type == "application/x"
    assert (msg.timestamp.seconds, msg.timestamp.nanos) == (1704164645, 123456789)
    assert dict(msg.tags) == {"a": "x", "b": "2"}
    assert msg.prefix == "" and msg.binary_file_ext == ""
    # Field 1 (prefix) and 7 are absent; field 2 comes first.
    assert msg.SerializeToString(deterministic=True).startswith(b"\x12\x0du/build.proto\x18\x02")


def test_text_stream_type_and_empty_fields_are_not_serialized() -> None:
    msg = good(content_type="c", timestamp_ns=0, name="n").to_proto()
    # name, content type, and an empty (but present) Timestamp message.
    assert msg.SerializeToString() == b"\x12\x01n\x22\x01c\x2a\x00"


@pytest.mark.parametrize(
    ("ns", "secs", "nanos"),
    [
        (0, 0, 0),
        (1, 0, 1),
        (-1, -1, 999_999_999),
        (-1_500_000_000, -2, 500_000_000),
        (GO_ZERO_TIME_NS, -62135596800, 0),
    ],
)
def test_timestamp_is_floor_seconds_with_non_negative_nanos(ns: int, secs: int, nanos: int) -> None:
    ts = good(timestamp_ns=ns).to_proto().timestamp
    assert (ts.seconds, ts.nanos) == (secs, nanos)


def test_no_timestamp_means_no_field() -> None:
    assert not good(timestamp_ns=None).to_proto().HasField("timestamp")


def test_proto_round_trip() -> None:
    d = StreamDescriptor(
        name="a/b",
        stream_type=StreamType.BINARY,
        content_type="application/octet-stream",
        timestamp_ns=-1_500_000_000,
        tags={"k": "v"},
        prefix="p",
        binary_file_ext="txt",
    )
    back = StreamDescriptor.from_proto(logpb.LogStreamDescriptor.FromString(d.to_proto().SerializeToString()))
    assert back == d
    assert back.stream_type is StreamType.BINARY
    assert StreamDescriptor.from_proto(logpb.LogStreamDescriptor(name="x")).timestamp_ns is None


def test_from_proto_keeps_an_unknown_stream_type_so_validate_reports_it() -> None:
    msg = logpb.LogStreamDescriptor(name="x", stream_type=5, content_type="c")
    msg.timestamp.seconds = 1
    d = StreamDescriptor.from_proto(msg)
    assert d.stream_type == 5
    assert d.validation_error() == "invalid stream type: 5"
