"""wire.handshake: decode what Go and luci-py clients send; encode what the Go client sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vectors.luci_py_client import VECTORS
from wire.handshake import (
    HANDSHAKE,
    MAGIC,
    MAX_HANDSHAKE_SIZE,
    HandshakeDecoder,
    HandshakeError,
    StreamFlags,
    decode_flags,
    decode_handshake,
    encode_handshake,
    go_json_string,
)
from wire.timefmt import parse_rfc3339
from wire.types import StreamType
from wire.varint import encode_uvarint

TS = parse_rfc3339("2024-01-02T03:04:05.123456789Z")


def hs(json_text: str | bytes) -> bytes:
    data = json_text.encode() if isinstance(json_text, str) else json_text
    return MAGIC + encode_uvarint(len(data)) + data


def decode_json(json_text: str | bytes) -> StreamFlags:
    return decode_handshake(hs(json_text))[0]


# --- worked examples, wire-outputs-cli.md §1.9 ---------------------------------------

EXAMPLE_1 = bytes.fromhex(
    "42544c52311e687b226e616d65223a22"
    "7374646f7574222c22636f6e74656e74"
    "54797065223a22746578742f706c6169"
    "6e3b20636861727365743d7574662d38"
    "222c2274696d657374616d70223a2232"
    "3032342d30312d30325430333a30343a"
    "30352e3132333435363738395a227d"
)


def test_encode_matches_worked_example_text_stream() -> None:
    flags = StreamFlags(name="stdout", timestamp_ns=TS)
    assert encode_handshake(flags) == EXAMPLE_1


def test_encode_matches_worked_example_datagram_with_tags() -> None:
    ct = "application/luci+proto; message=buildbucket.v2.Build; encoding=zlib"
    flags = StreamFlags(
        name="u/build.proto",
        content_type=ct,
        stream_type=StreamType.DATAGRAM,
        timestamp_ns=parse_rfc3339("2024-01-02T02:04:05Z"),
        tags={"b": "2", "a": "x"},
    )
    expected_json = (
        '{"name":"u/build.proto","contentType":"application/luci+proto; message=buildbucket.v2.Build; '
        'encoding=zlib","type":"datagram","timestamp":"2024-01-02T02:04:05Z","tags":{"a":"x","b":"2"}}'
    )
    out = encode_handshake(flags)
    assert len(expected_json) == 186
    assert out[:16] == bytes.fromhex("42544c52311eba017b226e616d65223a")
    assert out == MAGIC + b"\xba\x01" + expected_json.encode()


def test_worked_example_decodes_and_leaves_the_body() -> None:
    flags, rest = decode_handshake(EXAMPLE_1 + b"hello\n")
    assert flags == StreamFlags(
        name="stdout", content_type="text/plain; charset=utf-8", stream_type=StreamType.TEXT, timestamp_ns=TS
    )
    assert rest == b"hello\n"


def test_construct_declaration_parses_what_we_build() -> None:
    built = encode_handshake(StreamFlags(name="a", timestamp_ns=0))
    parsed = HANDSHAKE.parse(built)
    assert parsed.flags == b'{"name":"a","contentType":"text/plain; charset=utf-8","timestamp":"1970-01-01T00:00:00Z"}'


GO_VECTORS = Path(__file__).parent / "vectors" / "go_client_handshakes.json"


def _go_vectors() -> list[dict]:
    if not GO_VECTORS.exists():
        return []
    return json.loads(GO_VECTORS.read_text())["vectors"]


@pytest.mark.skipif(not GO_VECTORS.exists(), reason="Go client vectors not captured")
@pytest.mark.parametrize("vec", _go_vectors(), ids=lambda v: v["id"])
def test_encode_matches_bytes_captured_from_the_go_client(vec: dict) -> None:
    opts = vec["options"]
    name = opts["name"]
    if opts.get("namespace"):
        name = opts["namespace"].strip("/") + "/" + name
    flags = StreamFlags(
        name=name,
        content_type=opts.get("content_type"),
        stream_type={"binary": StreamType.BINARY, "datagram": StreamType.DATAGRAM}.get(
            opts.get("type", ""), StreamType.TEXT
        ),
        timestamp_ns=parse_rfc3339(opts["timestamp"]),
        tags=opts.get("tags") or {},
    )
    expected = bytes.fromhex(vec["handshake_hex"])
    assert encode_handshake(flags) == expected
    # And what we decode from the Go bytes encodes back to the same bytes.
    assert encode_handshake(decode_handshake(expected)[0]) == expected


# --- Go JSON encoding details ---------------------------------------------------------


def test_encode_escapes_like_go() -> None:
    flags = StreamFlags(
        name="n",
        content_type='a<b>&"c"\\ é 😄 \u2028\u2029 \x00\x01\x1f\x7f\b\f\n\r\t',
        timestamp_ns=0,
        tags={"z": "1", "a": "<"},
    )
    text = HANDSHAKE.parse(encode_handshake(flags)).flags.decode()
    assert text == (
        '{"name":"n","contentType":"a\\u003cb\\u003e\\u0026\\"c\\"\\\\ é 😄 \\u2028\\u2029 '
        '\\u0000\\u0001\\u001f\x7f\\b\\f\\n\\r\\t","timestamp":"1970-01-01T00:00:00Z",'
        '"tags":{"a":"\\u003c","z":"1"}}'
    )


def test_go_json_string_replaces_invalid_bytes() -> None:
    assert go_json_string("a\udcff") == '"a\\ufffd"'


def test_encode_omits_type_for_text_and_tags_when_empty() -> None:
    out = encode_handshake(StreamFlags(name="x", stream_type=StreamType.TEXT, timestamp_ns=0, tags={}))
    assert b'"type"' not in out and b'"tags"' not in out
    out = encode_handshake(StreamFlags(name="x", stream_type=StreamType.BINARY, timestamp_ns=0))
    assert b'"contentType":"application/octet-stream","type":"binary"' in out


def test_encode_fills_timestamp_with_now_like_the_go_client() -> None:
    flags, _ = decode_handshake(encode_handshake(StreamFlags(name="x")))
    assert flags.timestamp_ns is not None and flags.timestamp_ns > parse_rfc3339("2020-01-01T00:00:00Z")


def test_encode_uses_multi_byte_length() -> None:
    out = encode_handshake(StreamFlags(name="a/" + "b" * 300, timestamp_ns=0))
    n = len(out) - 6 - 2
    assert out[6:8] == encode_uvarint(n)


# --- luci-py vectors, fed as the client sent them ---------------------------------------


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_luci_py_vectors_decode_with_exact_send_sizes(vec) -> None:
    dec = HandshakeDecoder()
    result = None
    body = b""
    for chunk in vec.chunks():
        if result is None:
            assert dec.incomplete_reason() is not None
            result = dec.feed(chunk)
            if result is not None:
                body += dec.remainder
        else:
            body += chunk
    assert result is not None
    assert dec.incomplete_reason() is None
    assert body == vec.body
    assert result.name == vec.stream_name
    assert result.stream_type == vec.stream_type
    assert result.content_type == vec.content_type
    assert result.tags == vec.tags
    assert result.timestamp_ns is None


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_luci_py_vectors_decode_one_byte_at_a_time(vec) -> None:
    dec = HandshakeDecoder()
    data = vec.connection
    for i in range(len(data)):
        got = dec.feed(data[i : i + 1])
        if got is not None:
            assert i == len(vec.handshake) - 1
            assert dec.remainder == b""
            break
    else:
        pytest.fail("handshake never completed")


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_luci_py_vectors_in_one_read_keep_the_body(vec) -> None:
    flags, rest = decode_handshake(vec.connection)
    assert rest == vec.body
    desc = flags.descriptor()
    desc.timestamp_ns = 0
    desc.validate()


def test_every_split_point_decodes_the_same() -> None:
    data = EXAMPLE_1 + b"body"
    want = decode_handshake(EXAMPLE_1)[0]
    for cut in range(len(data) + 1):
        dec = HandshakeDecoder()
        got = dec.feed(data[:cut])
        if got is None:
            assert cut < len(EXAMPLE_1)
            got = dec.feed(data[cut:])
            body = dec.remainder
        else:
            assert cut >= len(EXAMPLE_1)
            body = dec.remainder + data[cut:]
        assert got == want
        assert body == b"body"


def test_feed_after_completion_is_a_programming_error() -> None:
    dec = HandshakeDecoder()
    assert dec.feed(EXAMPLE_1) is not None
    with pytest.raises(RuntimeError):
        dec.feed(b"x")


# --- framing errors ----------------------------------------------------------------------


def test_truncated_handshake_reports_bytes_received() -> None:
    dec = HandshakeDecoder()
    assert dec.feed(EXAMPLE_1[:10]) is None
    assert dec.incomplete_reason() == "connection closed during handshake (10 bytes received)"
    assert HandshakeDecoder().incomplete_reason() == "connection closed during handshake (0 bytes received)"
    with pytest.raises(HandshakeError, match=r"connection closed during handshake \(3 bytes received\)"):
        decode_handshake(b"BTL")


def test_bad_magic_is_rejected_at_the_first_wrong_byte() -> None:
    dec = HandshakeDecoder()
    with pytest.raises(HandshakeError, match="magic number mismatch"):
        dec.feed(b"BTX")
    with pytest.raises(HandshakeError, match="magic number mismatch"):
        decode_handshake(b"\x55\xaa\x55\xaa\x55\xaa\x02{}")
    with pytest.raises(HandshakeError):
        dec.feed(b"more")  # stays failed


def test_varint_overflow_is_rejected() -> None:
    with pytest.raises(HandshakeError, match="overflows a 64-bit integer"):
        HandshakeDecoder().feed(MAGIC + b"\xff" * 9 + b"\x79")


def test_frame_size_limit() -> None:
    with pytest.raises(HandshakeError, match="frame size exceeds maximum"):
        HandshakeDecoder().feed(MAGIC + encode_uvarint(MAX_HANDSHAKE_SIZE + 1))
    # Exactly the maximum is allowed.
    body = b'{"name":"a"}'
    body += b" " * (MAX_HANDSHAKE_SIZE - len(body))
    flags, rest = decode_handshake(MAGIC + encode_uvarint(MAX_HANDSHAKE_SIZE) + body + b"X")
    assert flags.name == "a" and rest == b"X"


def test_frame_longer_than_json_takes_body_bytes_and_rejects_them() -> None:
    data = b"{}"
    with pytest.raises(HandshakeError, match="trailing data"):
        decode_handshake(MAGIC + encode_uvarint(len(data) + 10) + data + b"0123456789")


def test_trailing_whitespace_inside_the_frame_is_accepted() -> None:
    assert decode_json('  {"name":"a"} \r\n\t').name == "a"


# --- JSON decoding as Go's encoding/json -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('["This is an array!"]', "cannot unmarshal array"),
        ('"str"', "cannot unmarshal string"),
        ("5", "cannot unmarshal number"),
        ("null", "cannot unmarshal null"),
        ("invalid", "invalid JSON"),
        ("", "invalid JSON"),
        ('{"name":"a"', "invalid JSON"),
        ('{"name":"a",}', "invalid JSON"),
        ('{"name" "a"}', "invalid JSON"),
        ("{'name':'a'}", "invalid JSON"),
        ('{"name":"a","x":NaN}', "invalid JSON"),
        ('{"name":"a","x":-Infinity}', "invalid JSON"),
        ('{"name":"a","x":01}', "invalid JSON"),
        ('{"name":"a\x01"}', "invalid JSON"),
        ('{"name":"a\\x"}', "invalid JSON"),
        ('{"name":"a"} {}', "trailing data"),
        ('{"name":"a"}x', "trailing data"),
    ],
)
def test_invalid_json_and_non_objects_are_rejected(text: str, match: str) -> None:
    with pytest.raises(HandshakeError, match=match):
        decode_json(text)


def test_invalid_utf8_outside_strings_is_rejected() -> None:
    with pytest.raises(HandshakeError, match="invalid JSON"):
        decode_json(b'{"name":\xff"a"}')
    with pytest.raises(HandshakeError, match="trailing data"):
        decode_json(b'{"name":"a"}\xff')


def test_keys_match_case_insensitively_with_exact_match_winning() -> None:
    f = decode_json('{"NAME":"a","ContentType":"x/y","TYPE":"binary","Tags":{"k":"v"},"TimeStamp":"1970-01-01T00:00:01Z"}')
    assert (f.name, f.content_type, f.stream_type, f.tags, f.timestamp_ns) == (
        "a",
        "x/y",
        StreamType.BINARY,
        {"k": "v"},
        10**9,
    )
    # Go folds U+017F (long s) to S and U+212A (Kelvin) to K.
    f = decode_json('{"name":"a","tag\u017f":{"k":"v"},"time\u017ftamp":"1970-01-01T00:00:02Z"}')
    assert f.tags == {"k": "v"} and f.timestamp_ns == 2 * 10**9
    # Other non-ASCII look-alikes do not match.
    assert decode_json('{"name":"a","t\u0430gs":{"k":"v"}}').tags == {}


def test_repeated_keys_last_wins_in_document_order() -> None:
    assert decode_json('{"name":"a","Name":"b"}').name == "b"
    assert decode_json('{"Name":"b","name":"a"}').name == "a"
    assert decode_json('{"name":"a","type":"binary","type":"datagram"}').stream_type == StreamType.DATAGRAM


def test_unknown_keys_are_ignored_including_old_luci_py_keys() -> None:
    f = decode_json('{"name":"a","tee":"stdout","binaryFileExtension":"txt","x":{"y":[1,2,{"z":null}]}}')
    assert f == StreamFlags(name="a")


def test_null_values_as_go_treats_them() -> None:
    # name: null → empty name → the stream-name check fails.
    with pytest.raises(HandshakeError, match="must contain at least one character"):
        decode_json('{"name":null}')
    # contentType: null leaves the earlier value alone.
    assert decode_json('{"name":"a","contentType":"x/y","contentType":null}').content_type == "x/y"
    assert decode_json('{"name":"a","contentType":null}').content_type is None
    # type: null is not a valid type.
    with pytest.raises(HandshakeError, match="must be one of"):
        decode_json('{"name":"a","type":null}')
    # timestamp: null resets to the zero time = unset.
    f = decode_json('{"name":"a","timestamp":"2024-01-02T03:04:05Z","timestamp":null}')
    assert f.timestamp_ns is None
    # tags: null resets; a null tag value is the empty string.
    assert decode_json('{"name":"a","tags":{"k":"v"},"tags":null}').tags == {}
    assert decode_json('{"name":"a","tags":{"k":null}}').tags == {"k": ""}


def test_missing_name_passes_the_handshake_and_fails_the_descriptor() -> None:
    f = decode_json("{}")
    assert f.name == ""
    desc = f.descriptor()
    assert desc.validation_error() == "invalid name: must contain at least one character"


@pytest.mark.parametrize("value", ['"Text"', '"TEXT"', '"log"', '""', "0", "1", "true", "[]", "{}"])
def test_unknown_type_is_rejected(value: str) -> None:
    with pytest.raises(HandshakeError):
        decode_json('{"name":"a","type":' + value + "}")


@pytest.mark.parametrize(("value", "want"), [('"text"', 0), ('"binary"', 1), ('"datagram"', 2), ('"bin\\u0061ry"', 1)])
def test_known_types(value: str, want: int) -> None:
    assert decode_json('{"name":"a","type":' + value + "}").stream_type == want


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ('"_x"', "segment \\(at 0\\) must begin with alphanumeric character"),
        ('"a//b"', "segment \\(at 2\\) must begin with alphanumeric character"),
        ('"a/"', "name may not end with a separator"),
        ('"a b"', "illegal character \\( \\) at index 1"),
        ('"a\\u00e9"', "illegal character \\(é\\) at index 1"),
        ('"a+"', "illegal character \\(\\+\\) at index 1"),
        ('""', "must contain at least one character"),
        ("5", "cannot unmarshal number"),
        ('"' + "a" * 4097 + '"', "stream name is too long \\(4097 > 4096\\)"),
    ],
)
def test_invalid_names_are_rejected_with_the_go_message(name: str, match: str) -> None:
    with pytest.raises(HandshakeError, match=match):
        decode_json('{"name":' + name + "}")


def test_invalid_utf8_and_lone_surrogates_become_replacement_characters() -> None:
    with pytest.raises(HandshakeError, match="illegal character \\(\ufffd\\) at index 1"):
        decode_json(b'{"name":"a\xffb"}')
    with pytest.raises(HandshakeError, match="illegal character \\(\ufffd\\) at index 1"):
        decode_json('{"name":"a\\ud800b"}')
    f = decode_json(b'{"name":"a","contentType":"x\xe2\x82y\\udc00z\\ud83d\\ude00"}')
    assert f.content_type == "x\ufffd\ufffdy\ufffdz\U0001f600"
    f = decode_json(b'{"name":"a","tags":{"k":"\xc0\xaf"}}')
    assert f.tags == {"k": "\ufffd\ufffd"}


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ('{"_k":"v"}', "invalid tag key: segment \\(at 0\\) must begin"),
        ('{"":"v"}', "invalid tag key: must contain at least one character"),
        ('{"' + "k" * 65 + '":"v"}', "tag key exceeds maximum size \\(65 > 64\\)"),
        ('{"k":"' + "v" * 4097 + '"}', "tag value exceeds maximum size \\(4097 > 4096\\)"),
        ('{"k":"' + "é" * 2049 + '"}', "tag value exceeds maximum size \\(4098 > 4096\\)"),
        ('{"k":5}', "cannot unmarshal number"),
        ('["k"]', "cannot unmarshal array"),
        ('"k=v"', "cannot unmarshal string"),
    ],
)
def test_invalid_tags_are_rejected(tags: str, match: str) -> None:
    with pytest.raises(HandshakeError, match=match):
        decode_json('{"name":"a","tags":' + tags + "}")


def test_a_bad_tag_value_is_rejected_even_if_a_repeated_key_overwrites_it() -> None:
    # Go decodes every member of the map, so the type error is not hidden.
    with pytest.raises(HandshakeError, match="cannot unmarshal number"):
        decode_json('{"name":"a","tags":{"k":5,"k":""}}')
    assert decode_json('{"name":"a","tags":{"k":"x","k":"y"}}').tags == {"k": "y"}


def test_tag_limits_are_inclusive() -> None:
    f = decode_json('{"name":"a","tags":{"' + "k" * 64 + '":"' + "v" * 4096 + '","e":""}}')
    assert len(f.tags) == 2


def test_content_type_of_the_wrong_type_is_rejected_after_the_other_fields() -> None:
    with pytest.raises(HandshakeError, match="cannot unmarshal number"):
        decode_json('{"contentType":5,"name":"a"}')
    # A hard error later in the object wins over the saved type error, as in Go.
    with pytest.raises(HandshakeError, match="must begin with alphanumeric"):
        decode_json('{"contentType":5,"name":"_a"}')


def test_empty_content_type_means_default() -> None:
    f = decode_json('{"name":"a","type":"datagram","contentType":""}')
    assert f.content_type is None
    assert f.descriptor().content_type == "application/x-logdog-datagram"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ('"2015-05-07T01:29:51+00:00"', parse_rfc3339("2015-05-07T01:29:51Z")),
        ('"2024-01-02T05:04:05.5+02:00"', parse_rfc3339("2024-01-02T03:04:05.5Z")),
        ('"1970-01-01T00:00:00Z"', 0),
        ('"0001-01-01T00:00:00Z"', None),
        ('"0001-01-01T01:00:00+01:00"', None),
        ("null", None),
    ],
)
def test_timestamps(value: str, want: int | None) -> None:
    assert decode_json('{"name":"a","timestamp":' + value + "}").timestamp_ns == want


@pytest.mark.parametrize(
    "value",
    ['"text-for-some-reason"', "0", "true", "{}", '"2024-01-02T03:04:05"', '"2024-01-02\\u005403:04:05Z"', '"2024-13-02T03:04:05Z"'],
)
def test_bad_timestamps_are_rejected(value: str) -> None:
    with pytest.raises(HandshakeError):
        decode_json('{"name":"a","timestamp":' + value + "}")


def test_flags_descriptor_fills_the_default_content_type() -> None:
    for st, ct in [
        (StreamType.TEXT, "text/plain; charset=utf-8"),
        (StreamType.BINARY, "application/octet-stream"),
        (StreamType.DATAGRAM, "application/x-logdog-datagram"),
    ]:
        d = StreamFlags(name="a", stream_type=st, tags={"k": "v"}).descriptor()
        assert (d.name, d.stream_type, d.content_type, d.timestamp_ns, d.tags, d.prefix) == ("a", st, ct, None, {"k": "v"}, "")


def test_decode_flags_alone() -> None:
    assert decode_flags(b'{"name":"x/y"}').name == "x/y"
