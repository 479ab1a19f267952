"""A stream's receive buffer: timestamped chunks, addressed by stream offset.

Goals: the parsers need (a) the receive time of the byte at the head, since
every LogEntry is stamped with the time its first byte arrived, (b) searches
for ``\\n`` that span chunks without joining them, and (c) consumption from the
head without copying what stays. Chunks are kept as received (no copying on
append); only emitted ranges are copied out, once.

Positions are absolute stream offsets (bytes since the stream began), so a
parser can remember "searched up to here" across calls and never rescan.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import NamedTuple


class Chunk(NamedTuple):
    data: bytes
    timestamp_ns: int
    start: int  # absolute offset of data[0]


class ChunkBuffer:
    __slots__ = ("_chunks", "_head", "_end")

    def __init__(self) -> None:
        self._chunks: deque[Chunk] = deque()
        self._head = 0  # absolute offset of the first unconsumed byte
        self._end = 0  # absolute offset just past the last buffered byte

    def __len__(self) -> int:
        return self._end - self._head

    @property
    def head(self) -> int:
        return self._head

    @property
    def end(self) -> int:
        return self._end

    def append(self, data: bytes, timestamp_ns: int) -> None:
        """Add a received chunk. Empty chunks are ignored, as in the Go Butler."""
        if data:
            self._chunks.append(Chunk(data, timestamp_ns, self._end))
            self._end += len(data)

    def first_timestamp(self) -> int | None:
        """Receive time of the chunk holding the head byte (None when empty)."""
        return self._chunks[0].timestamp_ns if self._chunks else None

    def chunk_at(self, pos: int) -> Chunk:
        """The chunk holding absolute offset ``pos`` (head <= pos < end)."""
        for chunk in self._chunks:
            if pos < chunk.start + len(chunk.data):
                return chunk
        raise IndexError(pos)

    def _spans(self, start: int, stop: int) -> Iterator[tuple[Chunk, int, int]]:
        """Each chunk overlapping [start, stop), with the overlap as chunk indices."""
        stop = min(stop, self._end)
        for chunk in self._chunks:
            chunk_end = chunk.start + len(chunk.data)
            if chunk_end <= start:
                continue
            if chunk.start >= stop:
                break
            yield chunk, max(start, chunk.start) - chunk.start, min(stop, chunk_end) - chunk.start

    def find(self, needle: int, start: int, stop: int) -> int:
        """Absolute offset of the first byte ``needle`` in [start, stop), or -1."""
        for chunk, lo, hi in self._spans(start, stop):
            i = chunk.data.find(needle, lo, hi)
            if i >= 0:
                return chunk.start + i
        return -1

    def peek(self, start: int, stop: int) -> bytes:
        """Copy of the bytes in [start, stop); a whole chunk is returned as is."""
        parts = [
            chunk.data if lo == 0 and hi == len(chunk.data) else chunk.data[lo:hi]
            for chunk, lo, hi in self._spans(start, stop)
        ]
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes (a slice of the head chunk
        when they lie in it, which is the common case)."""
        if self._chunks:
            chunk = self._chunks[0]
            lo = self._head - chunk.start
            if lo + n <= len(chunk.data):
                data = chunk.data if lo == 0 and n == len(chunk.data) else chunk.data[lo : lo + n]
                self.consume(n)
                return data
        data = self.peek(self._head, self._head + n)
        self.consume(n)
        return data

    def take_parts(self, n: int) -> tuple[bytes, ...]:
        """Remove the first ``n`` bytes, returned as the pieces they were
        received in (whole chunks are not copied)."""
        parts = tuple(
            chunk.data if lo == 0 and hi == len(chunk.data) else chunk.data[lo:hi]
            for chunk, lo, hi in self._spans(self._head, self._head + n)
        )
        self.consume(n)
        return parts

    def head_chunk(self) -> Chunk | None:
        """The chunk holding the head byte (None when empty)."""
        return self._chunks[0] if self._chunks else None

    def consume(self, n: int) -> None:
        """Drop ``n`` bytes from the head, releasing chunks that are used up."""
        if n > len(self):
            raise ValueError(f"consume({n}) with only {len(self)} bytes buffered")
        self._head += n
        chunks = self._chunks
        while chunks and chunks[0].start + len(chunks[0].data) <= self._head:
            chunks.popleft()

    def clear(self) -> None:
        """Drop everything buffered (a stream that failed)."""
        self._chunks.clear()
        self._head = self._end
