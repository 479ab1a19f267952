"""The Go bundler's parser tests (butler-core.md 10.1-10.3), re-expressed.

Entries are compared as (time offset s, sequence, lines/data); prefix and
stream indices are assigned by the bundler stream and tested in test_bundler.
"""

from __future__ import annotations

import pytest

from butlerd._chunks import ChunkBuffer
from butlerd._events import BinaryContent, DatagramContent, Line, Partial, TextContent
from butlerd._parsers import BinaryParser, DatagramParser, StreamParseError, TextParser

S = 1_000_000_000
BASE = 1_420_070_400 * S  # 2015-01-01T00:00:00Z, the Go tests' base time


def buffer(*chunks: tuple[bytes, int]) -> ChunkBuffer:
    buf = ChunkBuffer()
    for data, second in chunks:
        buf.append(data, BASE + second * S)
    return buf


def drain_text(buf, limit=1024, split=False, closed=False):
    p = TextParser()
    out = []
    while (r := p.next_entry(buf, limit, split, closed)) is not None:
        ts, seq, content = r
        assert isinstance(content, TextContent)
        out.append(((ts - BASE) // S, seq, [tuple(l) for l in content.lines()]))
    return out


def L(value: bytes, delim: str = "") -> tuple[bytes, str]:
    return (value, delim)


class TestTextParser:
    def test_funky_newlines_in_one_entry(self):
        assert drain_text(buffer((b"foo\nbar\r\nbaz\n", 0))) == [
            (0, 0, [L(b"foo", "\n"), L(b"bar", "\r\n"), L(b"baz", "\n")])
        ]

    def test_undelimited_tail_waits_without_split(self):
        buf = buffer((b"foo\nbar\nbaz", 0))
        assert drain_text(buf) == [(0, 0, [L(b"foo", "\n"), L(b"bar", "\n")])]
        assert buf.peek(buf.head, buf.end) == b"baz"

    def test_dangling_cr_held_when_splitting_open_stream(self):
        buf = buffer((b"foo\r\nbar\r\nbaz\r", 0))
        assert drain_text(buf, split=True) == [
            (0, 0, [L(b"foo", "\r\n"), L(b"bar", "\r\n"), L(b"baz")])
        ]
        assert buf.peek(buf.head, buf.end) == b"\r"

    def test_dangling_cr_kept_when_splitting_closed_stream(self):
        assert drain_text(buffer((b"foo\r\nbar\r\nbaz\r", 0)), split=True, closed=True) == [
            (0, 0, [L(b"foo", "\r\n"), L(b"bar", "\r\n"), L(b"baz\r")])
        ]

    def test_partials_do_not_advance_sequence(self):
        assert drain_text(buffer((b"foobar\rbaz\nq\nux", 0)), limit=3, split=True) == [
            (0, 0, [L(b"foo")]),
            (0, 0, [L(b"bar")]),
            (0, 0, [L(b"\rba")]),
            (0, 0, [L(b"z", "\n"), L(b"q")]),
            (0, 1, [L(b"", "\n"), L(b"ux")]),
        ]

    def test_limit_obeyed_when_next_line_does_not_fit(self):
        assert drain_text(buffer((b"foo\nbar\nbaz", 0)), limit=5) == [
            (0, 0, [L(b"foo", "\n")]),
            (0, 1, [L(b"bar", "\n")]),
        ]

    def test_unicode_with_crlf(self):
        data = "TEST©\r\n©\r\n©".encode()
        assert drain_text(buffer((data, 0)), split=True, closed=True) == [
            (0, 0, [L("TEST©".encode(), "\r\n"), L("©".encode(), "\r\n"), L("©".encode())])
        ]

    def test_two_byte_rune_cut_by_limit_goes_to_next_entry(self):
        assert drain_text(buffer(("hA©\n".encode(), 0)), limit=3, split=True) == [
            (0, 0, [L(b"hA")]),
            (0, 0, [L("©".encode(), "\n")]),
        ]

    def test_two_byte_rune_with_limit_one_gives_nothing(self):
        assert drain_text(buffer(("©\n".encode(), 0)), limit=1, split=True) == []

    def test_chunk_timestamps_split_entries(self):
        buf = buffer((b"fo", 0), (b"o\nb", 1), (b"ar\n", 2), (b"baz\nqux\n", 3))
        assert drain_text(buf) == [
            (0, 0, [L(b"foo", "\n")]),
            (1, 1, [L(b"bar", "\n")]),
            (3, 2, [L(b"baz", "\n"), L(b"qux", "\n")]),
        ]

    def test_trailing_partial_when_split_and_closed(self):
        assert drain_text(buffer((b"foo\nbar\nbaz", 0)), split=True, closed=True) == [
            (0, 0, [L(b"foo", "\n"), L(b"bar", "\n"), L(b"baz")])
        ]

    def test_empty_lines_from_mixed_delimiters(self):
        data = b"\n\r\n\n\r\n\n\r\n\n\n\r\n\n\n"
        assert drain_text(buffer((data, 0)), limit=8) == [
            (0, 0, [L(b"", "\n"), L(b"", "\r\n"), L(b"", "\n"), L(b"", "\r\n"), L(b"", "\n")]),
            (0, 5, [L(b"", "\r\n"), L(b"", "\n"), L(b"", "\n"), L(b"", "\r\n"), L(b"", "\n"),
                    L(b"", "\n")]),
        ]

    def test_invalid_utf8_tail_is_never_emitted_alone(self):
        buf = buffer((b"abc\xff", 0))
        assert drain_text(buf, split=True, closed=True) == [(0, 0, [L(b"abc")])]
        assert len(buf) == 1

    def test_literal_replacement_char_tail_is_held(self):
        buf = buffer(("a\ufffd".encode(), 0))
        assert drain_text(buf, split=True, closed=True) == [(0, 0, [L(b"a")])]

    def test_complete_lines_pass_invalid_utf8_through(self):
        assert drain_text(buffer((b"\xff\xfe\n", 0))) == [(0, 0, [L(b"\xff\xfe", "\n")])]

    def test_long_line_arriving_in_many_chunks(self):
        buf = ChunkBuffer()
        p = TextParser()
        for i in range(100):
            buf.append(b"x" * 1000, BASE + i)
            assert p.next_entry(buf, 1 << 30, False, False) is None
        buf.append(b"y\n", BASE + 100)
        ts, seq, content = p.next_entry(buf, 1 << 30, False, False)
        assert ts == BASE and seq == 0
        assert content.lines() == [Line(b"x" * 100_000 + b"y", "\n")]


def drain(parser, buf, limit=32, split=False, closed=False):
    out = []
    while (r := parser.next_entry(buf, limit, split, closed)) is not None:
        out.append(r)
    return out


class TestBinaryParser:
    def test_one_byte_waits_unless_split(self):
        buf = buffer((b"\x01", 0))
        assert drain(BinaryParser(threshold=2), buf) == []
        assert drain(BinaryParser(threshold=2), buf, split=True) == [(BASE, 0, BinaryContent(b"\x01"))]

    def test_ten_bytes_in_one_entry(self):
        data = bytes(range(10))
        assert drain(BinaryParser(threshold=2), buffer((data, 0))) == [(BASE, 0, BinaryContent(data))]

    def test_limit_splits_and_sequence_is_byte_offset(self):
        data = bytes(range(10))
        assert drain(BinaryParser(threshold=2), buffer((data, 0)), limit=6) == [
            (BASE, 0, BinaryContent(data[:6])),
            (BASE + 0, 6, BinaryContent(data[6:])),
        ]

    def test_chunk_timestamps_ignored(self):
        buf = buffer(*((bytes([i]), i) for i in range(8)))
        assert drain(BinaryParser(threshold=2), buf) == [(BASE, 0, BinaryContent(bytes(range(8))))]

    def test_default_threshold_is_8192(self):
        buf = buffer((b"x" * 8192, 0))
        assert drain(BinaryParser(), buf, limit=1 << 20) == []
        buf.append(b"y", BASE)
        [(_, seq, content)] = drain(BinaryParser(), buf, limit=1 << 20)
        assert seq == 0 and len(content.data) == 8193


def spread_frames(*frames: bytes) -> ChunkBuffer:
    """Each frame in 2-byte chunks one second apart, the clock running on (as in Go)."""
    buf = ChunkBuffer()
    second = 0
    for frame in frames:
        for i in range(0, len(frame), 2):
            buf.append(frame[i : i + 2], BASE + second * S)
            second += 1
    return buf


FRAMES = (b"\x02\xca\xfe", b"\x00", b"\x05\xd0\x65\x10\xbb\x12")


class TestDatagramParser:
    def entries(self, **kw):
        out = []
        for ts, seq, content in drain(DatagramParser(max_size=64), spread_frames(*FRAMES), **kw):
            out.append(((ts - BASE) // S, seq, content))
        return out

    def test_three_datagrams(self):
        assert self.entries() == [
            (0, 0, DatagramContent(b"\xca\xfe")),
            (2, 1, DatagramContent(b"")),
            (3, 2, DatagramContent(b"\xd0\x65\x10\xbb\x12")),
        ]

    def test_limit_without_split_holds_the_big_one(self):
        assert self.entries(limit=2) == [
            (0, 0, DatagramContent(b"\xca\xfe")),
            (2, 1, DatagramContent(b"")),
        ]

    def test_limit_with_split_fragments(self):
        assert self.entries(limit=2, split=True) == [
            (0, 0, DatagramContent(b"\xca\xfe")),
            (2, 1, DatagramContent(b"")),
            (3, 2, DatagramContent(b"\xd0\x65", Partial(0, 5, False))),
            (4, 2, DatagramContent(b"\x10\xbb", Partial(1, 5, False))),
            (5, 2, DatagramContent(b"\x12", Partial(2, 5, True))),
        ]

    def test_header_without_data(self):
        buf = buffer((b"\x01", 0))
        assert drain(DatagramParser(max_size=64), buf, limit=1, split=True) == []

    def test_incomplete_header(self):
        buf = buffer((b"\x80\x80", 0))
        assert drain(DatagramParser(max_size=64), buf) == []
        assert len(buf) == 2

    def test_frame_too_large(self):
        with pytest.raises(StreamParseError, match="frame size exceeds maximum"):
            drain(DatagramParser(max_size=64), buffer((b"\x80\x80\x01", 0)))

    def test_varint_overflow_is_an_error_not_a_crash(self):
        with pytest.raises(StreamParseError, match="overflow"):
            drain(DatagramParser(), buffer((b"\xff" * 10 + b"\x01", 0)))

    def test_max_size_itself_is_allowed(self):
        buf = buffer((b"\x40" + b"z" * 64, 0))
        [(_, _, content)] = drain(DatagramParser(max_size=64), buf, limit=1024)
        assert content == DatagramContent(b"z" * 64)
