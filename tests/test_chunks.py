"""The receive buffer (Go internal/chunkstream tests, butler-core.md 10.7, re-expressed)."""

from __future__ import annotations

import pytest

from butlerd._chunks import ChunkBuffer


def buf_of(*chunks: bytes) -> ChunkBuffer:
    b = ChunkBuffer()
    for i, c in enumerate(chunks):
        b.append(c, i)
    return b


def test_empty_buffer():
    b = ChunkBuffer()
    assert len(b) == 0 and b.first_timestamp() is None
    with pytest.raises(ValueError):
        b.consume(1)


def test_empty_chunk_is_ignored():
    b = buf_of(b"", b"ab", b"")
    assert len(b) == 2 and b.first_timestamp() == 1


@pytest.mark.parametrize("step", [1, 2, 3, 9])
def test_consuming_in_steps_keeps_length_and_bytes(step):
    data = [b"\x01\x02\x00", b"\x00\x03", b"\x00", b"\x00\x00", b"\x04"]
    b = buf_of(*data)
    whole = b"".join(data)
    consumed = 0
    while len(b):
        n = min(step, len(b))
        assert b.peek(b.head, b.end) == whole[consumed:]
        b.consume(n)
        consumed += n
        assert len(b) == len(whole) - consumed
    assert b.first_timestamp() is None  # every chunk released


def test_timestamp_follows_the_head_chunk():
    b = buf_of(b"ab", b"cd")
    b.consume(1)
    assert b.first_timestamp() == 0
    b.consume(1)
    assert b.first_timestamp() == 1


def test_find_across_chunk_boundaries():
    b = buf_of(b"\x01\x02\x00", b"\x00\x03", b"\x00", b"\x00\x00", b"\x04")
    assert b.find(0x00, 0, 9) == 2
    assert b.find(0x03, 0, 9) == 4
    assert b.find(0x04, 0, 9) == 8
    assert b.find(0x04, 0, 8) == -1  # the stop bound is honoured
    assert b.find(0x00, 3, 9) == 3
    assert b.find(0x00, 6, 9) == 6
    assert b.find(0x05, 0, 100) == -1


def test_peek_limits():
    b = buf_of(b"\x01\x02\x00", b"\x00\x03", b"\x00", b"\x00\x00", b"\x04")
    assert b.peek(0, 7) == b"\x01\x02\x00\x00\x03\x00\x00"
    assert b.peek(0, 20) == b"\x01\x02\x00\x00\x03\x00\x00\x00\x04"
    assert b.peek(4, 6) == b"\x03\x00"


def test_a_whole_chunk_is_not_copied():
    chunk = b"x" * 1000
    b = buf_of(chunk)
    assert b.peek(0, 1000) is chunk


def test_clear_drops_everything():
    b = buf_of(b"abc", b"def")
    b.consume(1)
    b.clear()
    assert len(b) == 0 and b.head == b.end == 6


def test_take_parts_keeps_received_pieces_without_copying_whole_chunks():
    first, second, third = b"abc", b"defg", b"hi"
    b = buf_of(first, second, third)
    b.consume(1)
    parts = b.take_parts(7)
    assert parts == (b"bc", b"defg", b"h")
    assert parts[1] is second
    assert b.peek(b.head, b.end) == b"i"


def test_binary_content_joins_its_pieces_once_on_demand():
    from butlerd._events import BinaryContent

    c = BinaryContent(parts=(b"ab", b"cd"))
    assert c.size == 4 and c.parts == (b"ab", b"cd")
    assert c.data == b"abcd" and c.data is c.data
    assert c == BinaryContent(b"abcd")
