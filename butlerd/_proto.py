"""Our event values (``butlerd._events``) as ``logpb`` messages, as Go builds them.

Two rules matter for byte identity with the Go Butler: ``time_offset`` is
always present (a zero Duration still encodes as ``0a 00``) and follows Go's
``durationpb.New`` (seconds and nanos both truncated toward zero, same sign);
oneof members and ``Datagram.partial`` are marked present even when empty,
because Go sets the pointer whenever it has one.

Sizes without messages are ``butlerd._sizer``'s job.
"""

from __future__ import annotations

from butlerd._events import (
    BinaryContent,
    Bundle,
    DatagramContent,
    LogEntry,
    TextContent,
)
from wire import logpb

__all__ = [
    "log_entry_to_proto",
    "bundle_to_proto",
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
