"""The bundler: streams' buffered bytes in, ButlerLogBundles out (sans-IO).

This is the Go bundler (butler-core.md sections 3-6) as a state machine with
no clock and no tasks of its own. The driver appends received chunks to
streams, then calls ``Bundler.poll(now)`` whenever something changed or the
deadline it was given passed; ``poll`` answers with one of three events:

* ``SendBundle(bundle)``: hand this bundle to the output, then poll again;
* ``WaitUntil(deadline_ns)``: nothing to send yet; poll again at the deadline
  (None: only when something changes);
* ``Finished(bundle)``: flushing is complete, the last bundle (maybe None).

Keeping the Go rounds exactly -- the builder's size accounting, which streams
are served aggressively, when a bundle is ready -- is what makes our bundles
split where the Go Butler's do. The deliberate differences are the fixes for
the Go hangs (section 6.6): leftover bytes that can never form an entry are
dropped at the end of a closed stream instead of blocking the flush forever,
and a zero max bundle size is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from butlerd._chunks import ChunkBuffer
from butlerd._events import Bundle, BundleEntry, LogEntry
from butlerd._parsers import Parser, StreamParseError, make_parser
from butlerd._sizer import descriptor_size, log_entry_size, timestamp_size, varint_len
from wire.descriptor import StreamDescriptor

log = logging.getLogger("butlerd.bundler")

#: Go butler.streamBufferSize: bytes a stream may hold before its reader pauses.
MAX_BUFFERED_BYTES = 5 * 1024 * 1024


# --- events returned by Bundler.poll -------------------------------------------


@dataclass(slots=True, frozen=True)
class SendBundle:
    bundle: Bundle


@dataclass(slots=True, frozen=True)
class WaitUntil:
    deadline_ns: int | None


@dataclass(slots=True, frozen=True)
class Finished:
    bundle: Bundle | None


PollResult = Union[SendBundle, WaitUntil, Finished]


# --- the bundle builder and its size accounting --------------------------------


class _BuilderEntry:
    __slots__ = ("desc", "size", "framed", "logs", "terminal", "terminal_index")

    def __init__(self, desc: StreamDescriptor, desc_size: int) -> None:
        self.desc = desc
        self.size = 1 + (varint_len(desc_size) or 1) + desc_size  # Entry{desc}
        #: What this entry adds to the bundle: tag, length and ``size``.
        self.framed = 1 + varint_len(self.size) + self.size
        self.logs: list[LogEntry] = []
        self.terminal = False
        self.terminal_index = 0


class BundleBuilder:
    """One bundle being filled, with the Go estimate of its encoded size."""

    __slots__ = ("max_size", "timestamp_ns", "_entries", "_size")

    def __init__(self, max_size: int, timestamp_ns: int) -> None:
        self.max_size = max_size
        self.timestamp_ns = timestamp_ns
        self._entries: dict[str, _BuilderEntry] = {}
        ts = timestamp_size(timestamp_ns)
        self._size = 1 + (varint_len(ts) or 1) + ts  # ButlerLogBundle{timestamp}

    @property
    def size(self) -> int:
        return self._size

    def remaining(self) -> int:
        return self.max_size - self._size

    def has_content(self) -> bool:
        return bool(self._entries)

    def ready(self) -> bool:
        return bool(self._entries) and self._size >= self.max_size

    def _entry(self, stream: BundlerStream) -> _BuilderEntry:
        e = self._entries.get(stream.desc.name)
        if e is None:
            e = _BuilderEntry(stream.desc, stream.desc_size)
            self._entries[stream.desc.name] = e
            self._size += e.framed
        return e

    def _grow(self, e: _BuilderEntry, delta: int) -> None:
        self._size -= e.framed
        e.size += delta
        e.framed = 1 + varint_len(e.size) + e.size
        self._size += e.framed

    def add(self, stream: BundlerStream, entry: LogEntry) -> None:
        e = self._entry(stream)
        n = log_entry_size(entry)
        self._grow(e, 1 + varint_len(n) + n)
        e.logs.append(entry)

    def set_terminal(self, stream: BundlerStream, index: int) -> None:
        e = self._entry(stream)
        if e.terminal:
            if e.terminal_index != index:
                raise AssertionError(f"terminal index of {stream.desc.name!r} set twice")
            return
        e.terminal = True
        e.terminal_index = index
        # The Go estimate; one byte too many when index is 0 (a Go quirk we keep
        # so that bundles split identically).
        self._grow(e, 2 + 1 + varint_len(index))

    def bundle(self) -> Bundle:
        entries = [
            BundleEntry(e.desc, e.logs, e.terminal, e.terminal_index)
            for _, e in sorted(self._entries.items(), key=lambda kv: kv[0].encode())
        ]
        return Bundle(self.timestamp_ns, entries)


# --- per-stream state ------------------------------------------------------------


class BundlerStream:
    """A registered stream: its receive buffer, parser and index counters."""

    __slots__ = (
        "desc",
        "desc_size",
        "buffer",
        "parser",
        "closed",
        "error",
        "drained",
        "next_stream_index",
        "last_offset_ns",
        "on_consumed",
        "dropped_bytes",
        "_bundler",
    )

    def __init__(self, bundler: Bundler, desc: StreamDescriptor, parser: Parser) -> None:
        self._bundler = bundler
        self.desc = desc
        self.desc_size = descriptor_size(desc)
        self.buffer = ChunkBuffer()
        self.parser = parser
        self.closed = False
        self.error: Exception | None = None
        self.drained = False
        self.next_stream_index = 0
        self.last_offset_ns: int | None = None
        #: Called after the bundler took bytes out of the buffer (resume reading).
        self.on_consumed: Callable[[], None] | None = None
        #: Bytes dropped because they could never become an entry.
        self.dropped_bytes = 0

    def _drop(self, n: int) -> None:
        self.dropped_bytes += n
        self._bundler.dropped_bytes += n

    @property
    def buffered(self) -> int:
        return len(self.buffer)

    def full(self) -> bool:
        """True when the reader should stop reading until data is consumed."""
        return len(self.buffer) >= self._bundler.max_buffered_bytes

    def append(self, data: bytes, timestamp_ns: int) -> None:
        """Buffer received bytes. Never refuses: backpressure is ``full()``."""
        if self.error is not None or not data:
            return
        self.buffer.append(data, timestamp_ns)

    def close(self) -> None:
        """The client is gone (EOF, error or shutdown); flush what is left."""
        self.closed = True

    def expire_time(self, delay_ns: int) -> int | None:
        ts = self.buffer.first_timestamp()
        return None if ts is None else ts + delay_ns

    def _no_more_data(self) -> bool:
        return self.closed and (self.error is not None or not len(self.buffer))

    def next_bundle_entry(self, bb: BundleBuilder, aggressive: bool, prefix_counter: list[int]) -> bool:
        """Move what the parser can emit into ``bb``; True if anything moved."""
        emitted = False
        if not self._no_more_data():
            next_entry, buffer, closed, add = self.parser.next_entry, self.buffer, self.closed, bb.add
            while (limit := bb.max_size - bb.size) > 0:
                try:
                    parsed = next_entry(buffer, limit, aggressive, closed)
                except StreamParseError as e:
                    log.warning("stream %r: %s; ending the stream", self.desc.name, e)
                    self.error = e
                    self.closed = True
                    self._drop(len(self.buffer))
                    self.buffer.clear()
                    break
                if parsed is None:
                    if self.closed and aggressive and 0 < len(self.buffer) < limit:
                        # Nothing will ever come of these bytes (an incomplete
                        # UTF-8 tail or datagram header at EOF). Go waits for
                        # them forever; we drop them so the stream can end.
                        log.warning(
                            "stream %r: dropping %d undecodable trailing bytes at end of stream",
                            self.desc.name,
                            len(self.buffer),
                        )
                        self._drop(len(self.buffer))
                        self.buffer.clear()
                    break
                ts, sequence, content = parsed
                offset = ts - self.desc.timestamp_ns  # type: ignore[operator]
                if self.last_offset_ns is not None and offset < self.last_offset_ns:
                    offset = self.last_offset_ns
                self.last_offset_ns = offset
                entry = LogEntry(offset, prefix_counter[0], self.next_stream_index, sequence, content)
                prefix_counter[0] += 1
                self.next_stream_index += 1
                add(self, entry)
                emitted = True
            # Wake the reader: it may resume reading or, after an error, close.
            if (emitted or self.error is not None) and self.on_consumed is not None:
                self.on_consumed()
        if self._no_more_data():
            if self.next_stream_index > 0:
                bb.set_terminal(self, self.next_stream_index - 1)
            self.drained = True
        return emitted


def _oldest_first(stream: BundlerStream) -> tuple[bool, int]:
    ts = stream.buffer.first_timestamp()
    return (ts is None, ts or 0)


# --- the bundler -----------------------------------------------------------------------


class Bundler:
    """All streams of one daemon (or one session), bundled together."""

    def __init__(
        self,
        max_bundle_size: int,
        max_buffer_delay_ns: int,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        parser_factory: Callable[[StreamDescriptor], Parser] | None = None,
    ) -> None:
        if max_bundle_size <= 0:
            raise ValueError("the bundle size must be positive")
        self.max_bundle_size = max_bundle_size
        self.max_buffer_delay_ns = max_buffer_delay_ns
        self.max_buffered_bytes = max_buffered_bytes
        self._parser_factory = parser_factory or (lambda d: make_parser(d.stream_type))
        self._streams: dict[str, BundlerStream] = {}
        self._prefix_counter = [0]
        self._builder: BundleBuilder | None = None
        self._oldest_content_ns: int | None = None
        self.flushing = False
        self.finished = False
        #: Bytes of all streams dropped because they could never become entries.
        self.dropped_bytes = 0

    @property
    def streams(self) -> dict[str, BundlerStream]:
        return self._streams

    def register(self, desc: StreamDescriptor) -> BundlerStream:
        """Add a stream. The descriptor must be valid; its prefix is cleared."""
        if desc.name in self._streams:
            raise ValueError(f"a Stream is already registered for {desc.name!r}")
        if self.finished:
            raise RuntimeError("the bundler has finished")
        desc.prefix = ""
        stream = BundlerStream(self, desc, self._parser_factory(desc))
        self._streams[desc.name] = stream
        return stream

    def flush(self) -> None:
        """Start the final flush: everything left is emitted aggressively."""
        self.flushing = True

    def _round(self, bb: BundleBuilder, now: int) -> bool:
        delay = self.max_buffer_delay_ns
        # Longest-waiting data first; streams with nothing buffered last.
        streams = sorted(self._streams.values(), key=_oldest_first)
        send_now = False
        # Pass 1: streams whose oldest data expired are served aggressively.
        skipped: set[int] = set()
        for s in streams:
            if bb.remaining() <= 0:
                break
            expire = s.expire_time(delay)
            if s.drained or expire is None or expire > now:
                break
            if s.next_bundle_entry(bb, True, self._prefix_counter):
                send_now = True
            else:
                skipped.add(id(s))
        # Pass 2: everything else, aggressive only while flushing.
        for s in streams:
            if bb.remaining() == 0:
                break
            if s.drained or id(s) in skipped:
                continue
            s.next_bundle_entry(bb, self.flushing, self._prefix_counter)
        for s in streams:
            if s.drained:
                del self._streams[s.desc.name]
        return send_now

    def poll(self, now: int) -> PollResult:
        """Advance the Go bundling loop as far as it goes at time ``now``."""
        if self.finished:
            return Finished(None)
        if self._builder is None:
            self._builder = BundleBuilder(self.max_bundle_size, now)
            self._oldest_content_ns = None
        bb = self._builder
        send_now = self._round(bb, now)
        if self.flushing and not self._streams:
            self.finished = True
            self._builder = None
            return Finished(bb.bundle() if bb.has_content() else None)
        if bb.has_content() and (self.max_buffer_delay_ns == 0 or send_now or bb.ready()):
            return self._take()
        if self._oldest_content_ns is None and bb.has_content():
            self._oldest_content_ns = now
        deadline = None
        for s in self._streams.values():
            expire = s.expire_time(self.max_buffer_delay_ns)
            if expire is not None and (deadline is None or expire < deadline):
                deadline = expire
        if self._oldest_content_ns is not None:
            round_expire = self._oldest_content_ns + self.max_buffer_delay_ns
            if round_expire <= now:
                return self._take()
            deadline = round_expire if deadline is None else min(deadline, round_expire)
        return WaitUntil(deadline)

    def _take(self) -> SendBundle:
        assert self._builder is not None
        bundle = self._builder.bundle()
        self._builder = None
        return SendBundle(bundle)
