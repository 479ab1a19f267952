"""Our event values (``butlerd._events``) as ``logpb`` messages, as Go builds them.

Two rules matter for byte identity with the Go Butler: ``time_offset`` is
always present (a zero Duration still encodes as ``0a 00``) and follows Go's
``durationpb.New`` (seconds and nanos both truncated toward zero, same sign);
oneof members and ``Datagram.partial`` are marked present even when empty,
because Go sets the pointer whenever it has one.

``bundle_size`` gives the serialized size without building messages: the
null and log outputs only need it for their statistics.
"""

from __future__ import annotations

from wire import logpb
from wire.descriptor import StreamDescriptor

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    DatagramContent,
    LogEntry,
    TextContent,
)

__all__ = [
    "log_entry_to_proto",
    "bundle_to_proto",
    "bundle_size",
    "descriptor_size",
    "duration_parts",
]

_NS = 1_000_000_000


def duration_parts(ns: int) -> tuple[int, int]:
    """Go ``durationpb.New``: (seconds, nanos), truncated toward zero."""
    q, r = divmod(abs(ns), _NS)
    return (-q, -r) if ns < 0 else (q, r)


def _fill_log_entry(msg: logpb.LogEntry, entry: LogEntry) -> None:
    offset = msg.time_offset
    offset.seconds, offset.nanos = duration_parts(entry.time_offset_ns)
    msg.time_offset.SetInParent()
    msg.prefix_index = entry.prefix_index
    msg.stream_index = entry.stream_index
    msg.sequence = entry.sequence
    content = entry.content
    if isinstance(content, TextContent):
        text = msg.text
        text.SetInParent()
        add = text.lines.add
        for value, delimiter in content.lines():
            add(value=value, delimiter=delimiter)
    elif isinstance(content, BinaryContent):
        msg.binary.SetInParent()
        msg.binary.data = content.data
    elif isinstance(content, DatagramContent):
        dg = msg.datagram
        dg.SetInParent()
        dg.data = content.data
        if content.partial is not None:
            p = dg.partial
            p.SetInParent()
            p.index, p.size, p.last = content.partial
    else:  # pragma: no cover - the Content union is closed
        raise TypeError(f"unknown log content {type(content).__name__}")


def log_entry_to_proto(entry: LogEntry) -> logpb.LogEntry:
    msg = logpb.LogEntry()
    _fill_log_entry(msg, entry)
    return msg


def bundle_to_proto(
    bundle: Bundle, project: str = "", prefix: str = "", secret: bytes = b""
) -> logpb.ButlerLogBundle:
    """The ``ButlerLogBundle`` for ``bundle``; only the Pub/Sub output passes
    ``project``/``prefix``/``secret``."""
    msg = logpb.ButlerLogBundle(project=project, prefix=prefix, secret=secret)
    s, n = divmod(bundle.timestamp_ns, _NS)  # Timestamp nanos are never negative
    msg.timestamp.seconds = s
    msg.timestamp.nanos = n
    msg.timestamp.SetInParent()
    for be in bundle.entries:
        e = msg.entries.add()
        e.desc.CopyFrom(be.desc.to_proto())
        if be.terminal:
            e.terminal = True
            e.terminal_index = be.terminal_index
        add = e.logs.add
        for le in be.logs:
            _fill_log_entry(add(), le)
    return msg


# --- sizes without messages ---------------------------------------------------


def _vlen(n: int) -> int:
    """Bytes in the protobuf varint for ``n`` (negative int64 take 10)."""
    if n < 0:
        return 10
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _field(payload_len: int) -> int:
    """A length-delimited field with a one-byte tag."""
    return 1 + _vlen(payload_len) + payload_len


def _line_size(v: int, delimiter_len: int) -> int:
    """A ``Text.Line`` field: value ``v`` bytes (omitted when empty) + delimiter."""
    line = (1 + _vlen(v) + v if v else 0) + (2 + delimiter_len if delimiter_len else 0)
    return 1 + _vlen(line) + line


def _text_size(data: bytes) -> int:
    """Size of the ``Text`` message for ``data`` with little Python per line.

    A complete line of value ``v`` bytes (v <= 120) and delimiter ``d`` bytes
    costs exactly ``4 + d + (v + 2 if v else 0)``, which sums over all lines
    from a few counts; longer lines are corrected one by one.
    """
    pieces = data.split(b"\n")
    tail = pieces.pop()
    total = 0
    n = len(pieces)
    if n:
        crlf = data.count(b"\r\n")
        empty = pieces.count(b"") + pieces.count(b"\r")
        total = 5 * n + crlf + (len(data) - len(tail) - n - crlf) + 2 * (n - empty)
        for p in [p for p in pieces if len(p) >= 120]:
            d = 2 if p[-1] == 0x0D else 1
            v = len(p) - (d - 1)
            total += _line_size(v, d) - (4 + d + v + 2)
    if tail:
        total += _line_size(len(tail), 0)
    return total


def _log_entry_size(entry: LogEntry) -> int:
    secs, nanos = duration_parts(entry.time_offset_ns)
    dur = (1 + _vlen(secs) if secs else 0) + (1 + _vlen(nanos) if nanos else 0)
    size = _field(dur)
    if entry.prefix_index:
        size += 1 + _vlen(entry.prefix_index)
    if entry.stream_index:
        size += 1 + _vlen(entry.stream_index)
    if entry.sequence:
        size += 1 + _vlen(entry.sequence)
    c = entry.content
    if isinstance(c, TextContent):
        size += _field(_text_size(c.data))
    elif isinstance(c, BinaryContent):
        size += _field(_field(len(c.data)) if c.data else 0)
    else:
        dg = _field(len(c.data)) if c.data else 0
        if c.partial is not None:
            index, total, last = c.partial
            p = (1 + _vlen(index) if index else 0) + (1 + _vlen(total) if total else 0)
            p += 2 if last else 0
            dg += _field(p)
        size += _field(dg)
    return size


def _ulen(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode())


def _str_field(s: str) -> int:
    return _field(_ulen(s)) if s else 0


def descriptor_size(desc: StreamDescriptor) -> int:
    """``desc.to_proto().ByteSize()`` without building the message."""
    size = _str_field(desc.prefix) + _str_field(desc.name) + _str_field(desc.content_type)
    size += _str_field(desc.binary_file_ext)
    stype = int(desc.stream_type)
    if stype:
        size += 1 + _vlen(stype)
    if desc.timestamp_ns is not None:
        s, n = divmod(desc.timestamp_ns, _NS)
        size += _field((1 + _vlen(s) if s else 0) + (1 + _vlen(n) if n else 0))
    for k, v in desc.tags.items():
        # A map entry always carries both key and value, even empty ones
        # (Go and upb agree).
        size += _field(_field(_ulen(k)) + _field(_ulen(v)))
    return size


def _bundle_entry_size(be: BundleEntry) -> int:
    size = _field(descriptor_size(be.desc))
    if be.terminal:
        size += 2
        if be.terminal_index:
            size += 1 + _vlen(be.terminal_index)
    for le in be.logs:
        size += _field(_log_entry_size(le))
    return size


def bundle_size(bundle: Bundle, project: str = "", prefix: str = "", secret: bytes = b"") -> int:
    """``bundle_to_proto(...).ByteSize()``, computed arithmetically."""
    s, n = divmod(bundle.timestamp_ns, _NS)
    size = _field((1 + _vlen(s) if s else 0) + (1 + _vlen(n) if n else 0))
    for be in bundle.entries:
        size += _field(_bundle_entry_size(be))
    for field in (project.encode(), prefix.encode(), secret):
        if field:
            size += _field(len(field))
    return size
