"""Stream parsers: buffered bytes in, LogEntry content out (sans-IO).

Each parser reproduces one Go bundler parser exactly (text, binary, datagram;
see butler-core.md section 2): the same cut points, the same sequence numbers,
the same timestamps. What differs is the method: the Go text parser walks line
by line; this one finds the last newline in a chunk with one ``rfind`` and
emits every line before it in one slice, because all those lines start in the
same chunk and therefore belong to the same entry. Per-line Python work only
happens for the rare partial fragment.

``next_entry`` returns ``(timestamp_ns, sequence, content)`` or None when
nothing can be emitted now; it raises ``StreamParseError`` when the stream can
never be parsed further (an oversized or overflowing datagram header).
"""

from __future__ import annotations

from typing import Protocol

from butlerd._chunks import ChunkBuffer
from butlerd._events import BinaryContent, Content, DatagramContent, Partial, TextContent
from wire.types import MAX_DATAGRAM_SIZE, StreamType
from wire.varint import MAX_VARINT_LEN, VarintOverflowError, decode_uvarint

#: A binary stream emits nothing non-aggressively until it holds more than this.
BINARY_THRESHOLD = 8 * 1024

Parsed = tuple[int, int, Content]


class StreamParseError(Exception):
    """The stream's bytes can never become entries; the stream must end."""


class Parser(Protocol):
    def next_entry(
        self, buf: ChunkBuffer, limit: int, allow_split: bool, closed: bool
    ) -> Parsed | None: ...


_NL = 0x0A
_CR = b"\r"


def _utf8_valid_prefix(b: bytes) -> int:
    """Length of ``b`` cut after its last valid, non-U+FFFD rune (Go's guard).

    Every non-continuation byte is a rune boundary under Go's decoding, so it
    is enough to look backwards for the last complete valid rune.
    """
    end = len(b)
    while end > 0:
        last = b[end - 1]
        if last < 0x80:
            return end
        # Find the start of the rune that would end at `end`.
        start = end - 1
        while start > max(end - 4, 0) and 0x80 <= b[start] < 0xC0:
            start -= 1
        try:
            ch = b[start:end].decode("utf-8")
        except UnicodeDecodeError:
            ch = ""
        if len(ch) == 1 and ch != "\ufffd":
            return end
        end -= 1
    return 0


class TextParser:
    __slots__ = ("sequence", "_searched")

    def __init__(self) -> None:
        self.sequence = 0
        # Absolute offset up to which the head line is known to hold no "\n":
        # a long line arriving in many reads is searched once, not per read.
        self._searched = 0

    def next_entry(
        self, buf: ChunkBuffer, limit: int, allow_split: bool, closed: bool
    ) -> Parsed | None:
        head = buf.head
        if not len(buf):
            return None
        ts = buf.first_timestamp()
        assert ts is not None
        pos = head  # start of the next line to emit
        stop = head + limit  # the entry may not extend past this
        end = min(stop, buf.end)
        lines = 0
        partial = b""
        while pos < end:
            chunk = buf.chunk_at(pos)
            if pos > head and chunk.timestamp_ns != ts:
                break  # a line starting in a newer read starts a new entry
            # Every line that ends within this chunk starts in a chunk with the
            # same timestamp, so take all of them at once.
            chunk_end = min(chunk.start + len(chunk.data), end)
            last_nl = chunk.data.rfind(b"\n", pos - chunk.start, chunk_end - chunk.start)
            if last_nl >= 0:
                nl_abs = chunk.start + last_nl
                lines += chunk.data.count(b"\n", pos - chunk.start, last_nl + 1)
                pos = nl_abs + 1
                continue
            # The line starting at `pos` continues past this chunk (or the limit).
            nl = buf.find(_NL, max(pos, self._searched), end)
            if nl >= 0:
                lines += 1
                pos = nl + 1
                continue
            self._searched = max(self._searched, end)
            if not allow_split:
                break
            # A partial fragment: everything that fits.
            fragment = buf.peek(pos, end)
            if fragment.endswith(_CR) and not (closed and end == buf.end):
                fragment = fragment[:-1]  # may be half of a "\r\n"
            if fragment and fragment[-1] >= 0x80:
                fragment = fragment[: _utf8_valid_prefix(fragment)]
            partial = fragment
            break
        if pos == head and not partial:
            return None
        data = buf.peek(head, pos)
        if partial:
            data = data + partial if data else partial
        buf.consume(len(data))
        seq = self.sequence
        self.sequence += lines
        return ts, seq, TextContent(data)


class BinaryParser:
    __slots__ = ("offset", "threshold")

    def __init__(self, threshold: int = BINARY_THRESHOLD) -> None:
        self.offset = 0
        self.threshold = threshold

    def next_entry(
        self, buf: ChunkBuffer, limit: int, allow_split: bool, closed: bool
    ) -> Parsed | None:
        n = len(buf)
        if n <= (0 if allow_split else self.threshold):
            return None
        ts = buf.first_timestamp()
        assert ts is not None
        count = min(n, limit)
        parts = buf.take_parts(count)
        seq = self.offset
        self.offset += count
        return ts, seq, BinaryContent(parts=parts)


class DatagramParser:
    __slots__ = ("seq", "remaining", "index", "size", "max_size")

    def __init__(self, max_size: int = MAX_DATAGRAM_SIZE) -> None:
        self.seq = 0
        self.remaining = 0  # bytes left in the current datagram; 0 = need a header
        self.index = 0  # fragment index within the current datagram
        self.size = 0
        self.max_size = max_size

    def next_entry(
        self, buf: ChunkBuffer, limit: int, allow_split: bool, closed: bool
    ) -> Parsed | None:
        chunk = buf.head_chunk()
        if chunk is None:
            return None
        ts = chunk.timestamp_ns
        if self.remaining == 0:
            # The header usually lies in the head chunk and is 1 or 2 bytes.
            data, off = chunk.data, buf.head - chunk.start
            b0 = data[off]
            if b0 < 0x80:
                size, header_len = b0, 1
            elif off + 1 < len(data) and data[off + 1] < 0x80:
                size, header_len = (b0 & 0x7F) | (data[off + 1] << 7), 2
            else:
                try:
                    decoded = decode_uvarint(buf.peek(buf.head, buf.head + MAX_VARINT_LEN))
                except VarintOverflowError as e:
                    raise StreamParseError(f"datagram header: {e}") from e
                if decoded is None:
                    return None
                size, header_len = decoded
            if size > self.max_size:
                raise StreamParseError("frame: frame size exceeds maximum")
            buf.consume(header_len)
            self.index = 0
            self.size = self.remaining = size
        emit = self.remaining
        continued = False
        if emit > limit:
            continued, emit = True, limit
        if len(buf) < emit:
            continued, emit = True, len(buf)
        if self.remaining > 0 and emit == 0:
            return None
        if continued and not allow_split:
            return None
        data = buf.take(emit)
        partial = None
        if continued or self.index > 0:
            partial = Partial(self.index, self.size, not continued)
        seq = self.seq
        if continued:
            self.index += 1
            self.remaining -= emit
        else:
            self.seq += 1
            self.remaining = 0
        return ts, seq, DatagramContent(data, partial)


def make_parser(stream_type: StreamType) -> Parser:
    if stream_type == StreamType.TEXT:
        return TextParser()
    if stream_type == StreamType.BINARY:
        return BinaryParser()
    if stream_type == StreamType.DATAGRAM:
        return DatagramParser()
    raise ValueError(f"unknown stream type: {stream_type}")
