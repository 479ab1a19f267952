"""The values that flow from the parsers through the bundler to the outputs.

They are deliberately plain: an output that writes files never needs a protobuf
object, so none is built here. ``butlerd._proto`` turns them into ``logpb``
messages for the outputs that need encoded bytes.

Text content is kept as the raw bytes the client wrote (complete lines with
their delimiters, then at most one partial fragment) instead of a list of
lines, so the hot path does no per-line Python work; ``TextContent.lines()``
derives the Go ``Text.Line`` list when somebody needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Union

from wire.descriptor import StreamDescriptor


class Line(NamedTuple):
    """One logpb ``Text.Line``: its value without the delimiter, and the delimiter."""

    value: bytes
    delimiter: str  # "\n", "\r\n", or "" for a partial fragment


@dataclass(slots=True, frozen=True)
class TextContent:
    """Lines exactly as written: ``data`` is complete lines (each ending in
    ``\\n``), optionally followed by one partial fragment with no ``\\n``."""

    data: bytes

    def lines(self) -> list[Line]:
        pieces = self.data.split(b"\n")
        last = pieces.pop()
        lines = [
            Line(p[:-1], "\r\n") if p.endswith(b"\r") else Line(p, "\n") for p in pieces
        ]
        if last:
            lines.append(Line(last, ""))
        return lines

    @property
    def complete_line_count(self) -> int:
        return self.data.count(b"\n")

    @property
    def partial(self) -> bytes:
        """The trailing fragment without a delimiter (b"" when there is none)."""
        return self.data[self.data.rfind(b"\n") + 1 :]


class BinaryContent:
    """Binary stream bytes, kept as the pieces they were received in.

    An output that writes them (directory) hands the pieces to ``writev``
    and never needs one joined copy; ``data`` joins them once, on demand
    (the Pub/Sub output, which encodes a protobuf).
    """

    __slots__ = ("parts", "size", "_data")

    def __init__(self, data: bytes = b"", *, parts: tuple[bytes, ...] | None = None) -> None:
        if parts is None:
            parts = (data,) if data else ()
        self.parts = parts
        self.size = sum(map(len, parts))
        self._data: bytes | None = parts[0] if len(parts) == 1 else None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = b"".join(self.parts)
        return self._data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinaryContent):
            return NotImplemented
        return self.size == other.size and self.data == other.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BinaryContent({self.data!r})"


class Partial(NamedTuple):
    """logpb ``Datagram.Partial``: where a fragment sits in its datagram."""

    index: int
    size: int
    last: bool


@dataclass(slots=True, frozen=True)
class DatagramContent:
    data: bytes
    partial: Partial | None = None


Content = Union[TextContent, BinaryContent, DatagramContent]


@dataclass(slots=True)
class LogEntry:
    """One logpb ``LogEntry``; ``time_offset_ns`` becomes its Duration."""

    time_offset_ns: int
    prefix_index: int
    stream_index: int
    sequence: int
    content: Content


@dataclass(slots=True)
class BundleEntry:
    """One logpb ``ButlerLogBundle.Entry``: one stream's logs in one bundle."""

    desc: StreamDescriptor
    logs: list[LogEntry] = field(default_factory=list)
    terminal: bool = False
    terminal_index: int = 0


@dataclass(slots=True)
class Bundle:
    """One logpb ``ButlerLogBundle``. ``entries`` are sorted by stream name.

    ``project``, ``prefix`` and ``secret`` stay empty: as in the Go Butler only
    the Pub/Sub output fills them, when it sends.
    """

    timestamp_ns: int
    entries: list[BundleEntry]
