"""Protobuf encoded sizes, computed arithmetically.

The Go bundler decides where bundles split from the encoded size of every
entry, so we must know those sizes exactly -- without building a protobuf
object per entry. ``tests/test_sizer.py`` checks every function here against
``ByteSize()`` of the real messages.
"""

from __future__ import annotations

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    Content,
    DatagramContent,
    LogEntry,
    TextContent,
)
from wire.descriptor import StreamDescriptor
from wire.types import go_len


def varint_len(v: int) -> int:
    """Encoded length of an unsigned varint; 0 for 0, as the Go bundler counts it.

    Negative values are int64s encoded in ten bytes.
    """
    if 0 < v < 0x80:
        return 1
    if v == 0:
        return 0
    if 0 < v < 0x4000:
        return 2
    if v < 0:
        return 10
    return (v.bit_length() + 6) // 7


def _uvarint_len(v: int) -> int:
    """Encoded length of a present varint field value (1 for 0)."""
    return varint_len(v) or 1


def _field(size: int) -> int:
    """A length-delimited field with a 1-byte tag: tag + length + payload."""
    return 1 + _uvarint_len(size) + size


def duration_size(ns: int) -> int:
    """Size of a google.protobuf.Duration built like Go's durationpb.New."""
    seconds = -(-ns // 1_000_000_000) if ns < 0 else ns // 1_000_000_000
    nanos = ns - seconds * 1_000_000_000
    size = 0
    if seconds:
        size += 1 + varint_len(seconds)
    if nanos:
        size += 1 + varint_len(nanos)
    return size


def timestamp_size(ns: int) -> int:
    """Size of a google.protobuf.Timestamp (seconds floored, nanos >= 0)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    size = 0
    if seconds:
        size += 1 + varint_len(seconds)
    if nanos:
        size += 1 + varint_len(nanos)
    return size


def _line_size(value_len: int, delimiter_len: int) -> int:
    size = 0
    if value_len:
        size += 1 + _uvarint_len(value_len) + value_len
    if delimiter_len:
        size += 1 + 1 + delimiter_len
    return size


def text_size(data: bytes) -> int:
    """Size of the logpb ``Text`` holding ``TextContent(data).lines()``."""
    pieces = data.split(b"\n")
    partial = pieces.pop()
    size = 0
    if pieces:
        if max(map(len, pieces)) <= 120:
            # Every line's encoding is < 128 bytes: one tag and one length byte
            # each, so the sum needs no per-line loop. For each complete piece
            # (line without "\n") value + delimiter lengths add up to
            # len(piece) + 1 whether it ends in "\r\n" or "\n".
            n = len(pieces)
            empty = pieces.count(b"") + pieces.count(b"\r")
            total = len(data) - len(partial) - n
            size = 2 * n + 2 * (n - empty) + 2 * n + total + n
        else:
            for p in pieces:
                if p.endswith(b"\r"):
                    size += _field(_line_size(len(p) - 1, 2))
                else:
                    size += _field(_line_size(len(p), 1))
    if partial:
        size += _field(_line_size(len(partial), 0))
    return size


def content_size(content: Content) -> int:
    """Size of the LogEntry oneof field (tag, length and message)."""
    # Called once per entry: the common small cases are computed inline.
    if type(content) is DatagramContent:
        n = len(content.data)
        size = (n + (2 if n < 0x80 else 1 + varint_len(n))) if n else 0
        p = content.partial
        if p is not None:
            psize = 2 if p.last else 0
            if p.index:
                psize += 1 + varint_len(p.index)
            if p.size:
                psize += 1 + varint_len(p.size)
            size += 1 + (varint_len(psize) or 1) + psize
    elif type(content) is TextContent:
        size = text_size(content.data)
    else:
        assert isinstance(content, BinaryContent)
        n = content.size
        size = 1 + _uvarint_len(n) + n if n else 0
    return size + (2 if size < 0x80 else 1 + varint_len(size))


def log_entry_size(entry: LogEntry) -> int:
    """``proto.Size`` of the logpb ``LogEntry`` for ``entry``."""
    ns = entry.time_offset_ns
    if ns == 0:
        size = 2  # always present, even when zero
    elif 0 < ns < 0x80 * 1_000_000_000:
        # Seconds take one byte; nanos (< 10^9) one to five.
        seconds, nanos = divmod(ns, 1_000_000_000)
        d = (2 if seconds else 0) + ((1 + varint_len(nanos)) if nanos else 0)
        size = 2 + d
    else:
        size = _field(duration_size(ns))
    # Indices and sequence: one tag byte plus the varint, inline for < 2^21.
    for v in (entry.prefix_index, entry.stream_index, entry.sequence):
        if v:
            size += 2 if v < 0x80 else 3 if v < 0x4000 else 4 if v < 0x200000 else 1 + varint_len(v)
    return size + content_size(entry.content)


def _string_field(s: str) -> int:
    return _field(go_len(s)) if s else 0


def descriptor_size(desc: StreamDescriptor) -> int:
    """``desc.to_proto().ByteSize()`` without building the message."""
    size = _string_field(desc.prefix) + _string_field(desc.name)
    size += _string_field(desc.content_type) + _string_field(desc.binary_file_ext)
    if int(desc.stream_type):
        size += 1 + varint_len(int(desc.stream_type))
    if desc.timestamp_ns is not None:
        size += _field(timestamp_size(desc.timestamp_ns))
    for k, v in desc.tags.items():
        # A map entry carries both key and value, even empty ones (Go and upb agree).
        size += _field(_field(go_len(k)) + _field(go_len(v)))
    return size


def _bundle_entry_size(be: BundleEntry) -> int:
    size = _field(descriptor_size(be.desc))
    if be.terminal:
        size += 2
        if be.terminal_index:
            size += 1 + varint_len(be.terminal_index)
    for le in be.logs:
        size += _field(log_entry_size(le))
    return size


def bundle_size(bundle: Bundle, project: str = "", prefix: str = "", secret: bytes = b"") -> int:
    """``bundle_to_proto(...).ByteSize()``, computed arithmetically."""
    size = _field(timestamp_size(bundle.timestamp_ns))
    for be in bundle.entries:
        size += _field(_bundle_entry_size(be))
    for field in (project.encode(), prefix.encode(), secret):
        if field:
            size += _field(len(field))
    return size
