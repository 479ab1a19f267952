"""wire.types: Go stream-name, tag and project-name rules (butler-core.md §7, §10.11)."""

from __future__ import annotations

import pytest

from wire.types import (
    CONTENT_TYPE_BINARY,
    CONTENT_TYPE_LOGDOG_DATAGRAM,
    CONTENT_TYPE_TEXT,
    MAX_DATAGRAM_SIZE,
    MAX_STREAM_NAME_LENGTH,
    MAX_TAG_KEY_SIZE,
    MAX_TAG_VALUE_SIZE,
    InvalidProjectNameError,
    InvalidStreamNameError,
    InvalidStreamPathError,
    InvalidTagError,
    StreamAddr,
    StreamType,
    as_namespace,
    construct,
    default_content_type,
    go_len,
    is_valid_stream_name,
    join,
    make_stream_name,
    namespaces,
    parse_stream_addr,
    segments,
    split,
    split_last,
    split_stream_path,
    trim,
    validate_project_name,
    validate_stream_name,
    validate_stream_path,
    validate_tag,
)


def test_constants() -> None:
    assert (MAX_STREAM_NAME_LENGTH, MAX_TAG_KEY_SIZE, MAX_TAG_VALUE_SIZE, MAX_DATAGRAM_SIZE) == (
        4096,
        64,
        4096,
        10_485_760,
    )
    assert (StreamType.TEXT, StreamType.BINARY, StreamType.DATAGRAM) == (0, 1, 2)


def test_default_content_types() -> None:
    assert default_content_type(StreamType.TEXT) == CONTENT_TYPE_TEXT == "text/plain; charset=utf-8"
    assert default_content_type(StreamType.BINARY) == CONTENT_TYPE_BINARY == "application/octet-stream"
    assert default_content_type(StreamType.DATAGRAM) == CONTENT_TYPE_LOGDOG_DATAGRAM == "application/x-logdog-datagram"
    assert default_content_type(7) == CONTENT_TYPE_BINARY


VALID = [
    "test",
    "foo/bar",
    "abcdefghijklmnopqrstuvwxyz/ABCDEFGHIJKLMNOPQRSTUVWXYZ/0123456789/a:_-.",
    "A" * 4096,
    "u/step/build.proto",
    "a/b:c/d-e_f.g",
]


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name: str) -> None:
    validate_stream_name(name)
    assert is_valid_stream_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must contain at least one character"),
        ("A" * 4097, "stream name is too long (4097 > 4096)"),
        ("/foo/bar", "segment (at 0) must begin with alphanumeric character"),
        ("foo/bar/", "name may not end with a separator"),
        ("foo//bar", "segment (at 4) must begin with alphanumeric character"),
        ("foo^bar", "illegal character (^) at index 3"),
        ("_foo/bar", "segment (at 0) must begin with alphanumeric character"),
        ("_beginsWithUnderscore", "segment (at 0) must begin with alphanumeric character"),
        ("foo/_bar/baz", "segment (at 4) must begin with alphanumeric character"),
        ("a/.b", "segment (at 2) must begin with alphanumeric character"),
        ("a/+/b", "segment (at 2) must begin with alphanumeric character"),
        ("a+", "illegal character (+) at index 1"),
        ("a b", "illegal character ( ) at index 1"),
        ("a\x00", "illegal character (\x00) at index 1"),
        # Byte offsets, not character offsets, after a multi-byte rune...
        ("a/é", "segment (at 2) must begin with alphanumeric character"),
        ("ab\u00e9", "illegal character (é) at index 2"),
        ("é", "segment (at 0) must begin with alphanumeric character"),
        ("/", "segment (at 0) must begin with alphanumeric character"),
        # ...and an invalid byte (surrogate-escaped) is one U+FFFD rune.
        ("ab\udcff", "illegal character (\ufffd) at index 2"),
        ("a\U0001f600", "illegal character (\U0001f600) at index 1"),
        # The length is in bytes: 2049 two-byte characters is too long.
        ("é" * 2049, "stream name is too long (4098 > 4096)"),
    ],
)
def test_invalid_names_carry_the_go_message(name: str, message: str) -> None:
    with pytest.raises(InvalidStreamNameError) as ei:
        validate_stream_name(name)
    assert str(ei.value) == message
    assert isinstance(ei.value, ValueError)
    assert not is_valid_stream_name(name)


def test_length_limit_is_in_bytes_and_inclusive() -> None:
    validate_stream_name("a" * 4096)
    with pytest.raises(InvalidStreamNameError):
        validate_stream_name("a" * 4097)
    assert go_len("é") == 2 and go_len("\udcff") == 1 and go_len("\ud800") == 3


@pytest.mark.parametrize(
    ("segs", "want"),
    [
        ([""], "FILL"),
        (["", ""], "FILL/FILL"),
        (["", "foo", "ba!r", "¿baz"], "FILL/foo/ba_r/FILL_baz"),
        (["foo", "bar baz"], "foo/bar_baz"),
        (["a/b", "c"], "a_b/c"),
        (["éa"], "FILL_a"),
    ],
)
def test_make_stream_name(segs: list[str], want: str) -> None:
    got = make_stream_name("FILL", *segs)
    assert got == want
    validate_stream_name(got)


def test_make_stream_name_fill_is_checked_only_when_needed() -> None:
    with pytest.raises(InvalidStreamNameError, match="fill string must be a valid stream name: segment"):
        make_stream_name("__not_a_path", "", "b", "c")
    with pytest.raises(InvalidStreamNameError, match="fill string must be a valid stream name: must contain"):
        make_stream_name("", "", "b", "c")
    assert make_stream_name("", "a", "b", "c") == "a/b/c"
    with pytest.raises(InvalidStreamNameError, match="at least one segment"):
        make_stream_name("FILL")


def test_trim_split_segments_join_construct() -> None:
    assert trim("//foo//bar///") == "foo//bar"
    assert [trim(x) for x in ["", "foo/bar", "/foo/bar", "foo/bar/"]] == ["", "foo/bar", "foo/bar", "foo/bar"]
    assert split("") == ("", "")
    assert split("foo") == ("", "foo")
    assert split("/foo") == ("", "foo")
    assert split("foo/bar") == ("foo", "bar")
    assert split("foo/bar/baz") == ("foo/bar", "baz")
    assert [len(segments(x)) for x in ["", "foo", "foo/bar", "foo/bar/baz"]] == [0, 1, 2, 3]
    assert segments("foo/bar") == ["foo", "bar"]
    assert join("foo", "bar") == "foo/+/bar"
    assert join("", "") == "/+/"
    assert join("foo", "") == "foo/+/"
    assert join("", "bar") == "/+/bar"
    assert join("/foo/", "/bar/baz/") == "foo/+/bar/baz"
    assert construct("/ns/", "", "log") == "ns/log"


def test_namespaces_and_as_namespace() -> None:
    assert namespaces("") == [""]
    assert namespaces("foo") == [""]
    assert namespaces("foo/bar") == ["foo/", ""]
    assert namespaces("a/b/c") == ["a/b/", "a/", ""]
    assert namespaces("/") == ["/", ""]
    assert as_namespace("") == ""
    assert as_namespace("foo") == "foo/"
    assert as_namespace("foo/") == "foo/"
    assert as_namespace("foo/bar") == "foo/bar/"


@pytest.mark.parametrize(
    ("path", "prefix", "sep", "name", "valid"),
    [
        ("", "", False, "", False),
        ("foo/+", "foo", True, "", False),
        ("+foo", "+foo", False, "", False),
        ("+/foo", "", True, "foo", False),
        ("a/+/b", "a", True, "b", True),
        ("a/+/", "a", True, "", False),
        ("a/+foo/+/b", "a/+foo", True, "b", False),
        ("fo+o/bar+/+/baz", "fo+o/bar+", True, "baz", False),
        ("a/+/b/+/c", "a", True, "b/+/c", False),
        ("/+/", "", True, "", False),
        ("foo/bar/+/baz/qux", "foo/bar", True, "baz/qux", True),
    ],
)
def test_stream_path_split_parts_and_validate(path: str, prefix: str, sep: bool, name: str, valid: bool) -> None:
    assert split_stream_path(path) == (prefix, sep, name)
    if valid:
        validate_stream_path(path)
    else:
        with pytest.raises(InvalidStreamPathError):
            validate_stream_path(path)


def test_partial_stream_path_allows_an_empty_half() -> None:
    validate_stream_path("a/+/", complete=False)
    validate_stream_path("", complete=False)
    with pytest.raises(InvalidStreamPathError):
        validate_stream_path("_a/+/", complete=False)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", [""]),
        ("/", ["/"]),
        ("foo", ["foo"]),
        ("foo/bar/+/baz", ["baz", "+", "bar", "foo"]),
        ("/foo/+/bar/", ["", "bar", "+", "/foo"]),
    ],
)
def test_split_last_repeatedly(path: str, parts: list[str]) -> None:
    out = []
    while True:
        path, end = split_last(path)
        out.append(end)
        if not path:
            break
    assert out == parts


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("_k", "v", "invalid tag key: segment (at 0) must begin with alphanumeric character"),
        ("", "v", "invalid tag key: must contain at least one character"),
        ("k/", "v", "invalid tag key: name may not end with a separator"),
        ("k" * 65, "v", "tag key exceeds maximum size (65 > 64)"),
        ("k", "v" * 4097, "tag value exceeds maximum size (4097 > 4096)"),
        ("k", "é" * 2049, "tag value exceeds maximum size (4098 > 4096)"),
    ],
)
def test_invalid_tags(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidTagError) as ei:
        validate_tag(key, value)
    assert str(ei.value) == message


def test_valid_tags() -> None:
    validate_tag("k" * 64, "v" * 4096)
    validate_tag("a/b.c:d-e_f", "")
    validate_tag("k", "any \x00 bytes \udcff and ünïcode")


@pytest.mark.parametrize("name", ["chromium", "a", "a-b_c9", "infra-internal"])
def test_valid_project_names(name: str) -> None:
    validate_project_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot have empty name"),
        ("9abc", "must begin with a letter"),
        ("-abc", "must begin with a letter"),
        ("_abc", "must begin with a letter"),
        ("Abc", "invalid character at 0 (A)"),
        ("abC", "invalid character at 2 (C)"),
        ("foo@d", "invalid character at 3 (@)"),
        ("a.b", "invalid character at 1 (.)"),
        ("éa", "invalid character at 0 (é)"),
        ("aé!", "invalid character at 1 (é)"),
        ("ab\udcff", "invalid character at 2 (\ufffd)"),
    ],
)
def test_invalid_project_names(name: str, message: str) -> None:
    with pytest.raises(InvalidProjectNameError) as ei:
        validate_project_name(name)
    assert str(ei.value) == message


def test_stream_addr_parses() -> None:
    assert parse_stream_addr("logdog://host/project/a/+/b") == StreamAddr("host", "project", "a/+/b")
    addr = parse_stream_addr("logdog://host.example.com/project/foo/bar/+/baz")
    assert addr == StreamAddr("host.example.com", "project", "foo/bar/+/baz")
    assert addr.url() == "logdog://host.example.com/project/foo/bar/+/baz"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("://project/prefix/+/name", "failed to parse URL"),
        ("http://example.com/foo/bar/+/baz", "is not logdog"),
        ("logdog://example.com/foo", "URL path does not include both project and path components"),
        ("logdog://example.com/foo@d/bar", "invalid project name"),
        ("logdog://example.com/foo/bar", "invalid stream path"),
        ("logdog://example.com/foo/bar/+/ba!", "invalid stream path"),
    ],
)
def test_stream_addr_errors(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_stream_addr(url)
