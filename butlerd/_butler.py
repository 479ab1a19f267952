"""The Butler: streams in, bundles out, through one output.

This module is the thin asyncio layer around the sans-IO bundler. It owns
what the Go ``butler`` package owns: accepting a stream (descriptor defaults,
global tags, names unique for the daemon's lifetime), the per-stream byte
limit and its truncation messages, the task that polls the bundler, and the
pump that hands bundles to the output with at most ``max_send_bundles`` sends
in flight. While the pump waits for the output, the bundler is not polled, so
streams fill up to their 5 MiB and their readers pause: backpressure, never
dropping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from butlerd._bundler import Bundler, BundlerStream, Finished, SendBundle
from butlerd._events import Bundle
from butlerd.outputs.base import Output
from wire.descriptor import StreamDescriptor
from wire.types import StreamType

log = logging.getLogger("butlerd")

#: Go archive.MaxLogContentSize * 0.9: the most bytes one stream may send.
MAX_STREAM_BYTES = int(5 * 1024 * 1024 * 1024 * 0.9)
#: Go reads a stream 4096 bytes at a time; truncation drops whole reads.
_READ_SIZE = 4096
#: Go butler.DefaultMaxBufferAge.
DEFAULT_MAX_BUFFER_AGE_NS = 5_000_000_000


def _log_failure(task: asyncio.Task[None]) -> None:
    """The bundling task must never die quietly: streams would fill up and stall."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("the bundler failed; no more data will be sent", exc_info=task.exception())


class StreamRejected(Exception):
    """A handshake was fine but the stream cannot be added (e.g. duplicate name)."""


class StreamWriter:
    """The reader side of one stream: what a connection feeds its bytes into."""

    __slots__ = ("name", "_butler", "_stream", "_total", "_truncated", "_limit", "_closed")

    def __init__(self, butler: Butler, stream: BundlerStream) -> None:
        self.name = stream.desc.name
        self._butler = butler
        self._stream = stream
        self._total = 0
        self._truncated = 0
        self._limit = butler.max_stream_bytes
        self._closed = False

    @property
    def stream(self) -> BundlerStream:
        return self._stream

    @property
    def failed(self) -> bool:
        """The stream hit a fatal parse error; its connection should close."""
        return self._stream.error is not None

    def full(self) -> bool:
        return self._stream.full()

    def set_on_consumed(self, callback: Callable[[], None] | None) -> None:
        self._stream.on_consumed = callback

    def feed(self, data: bytes) -> None:
        """Take bytes read from the client, stamped with the time of reading."""
        now = self._butler.clock()
        n = len(data)
        self._butler.bytes_received += n
        if not self._truncated and self._total + n <= self._limit:
            self._total += n
            self._stream.append(data, now)
        else:
            self._feed_over_limit(data, now)
        self._butler.wake()

    def _feed_over_limit(self, data: bytes, now: int) -> None:
        # Go drops every whole read that would cross the limit, and all reads
        # after it; emulate its 4096-byte reads so the kept size matches.
        for i in range(0, len(data), _READ_SIZE):
            piece = data[i : i + _READ_SIZE]
            n = len(piece)
            if not self._truncated and self._total + n <= self._limit:
                self._stream.append(piece, now)
            else:
                if not self._truncated:
                    self._on_first_truncation(now)
                self._truncated += n
            self._total += n

    def _on_first_truncation(self, now: int) -> None:
        msg = f"Stream size limit of {self._limit} bytes reached. Truncating."
        if self._stream.desc.stream_type == StreamType.TEXT:
            self._stream.append(b"\n" + msg.encode(), now)
        else:
            log.warning("stream %r: %s streamType: (%s).", self.name, msg,
                        self._stream.desc.stream_type.name)

    def close(self) -> None:
        """The client is gone; what was read is flushed and the stream ends."""
        if self._closed:
            return
        self._closed = True
        self._butler.streams_closed += 1
        if self._truncated and self._stream.desc.stream_type == StreamType.TEXT:
            summary = (
                f"\n*** LOG TRUNCATED: Log stream exceeded LogDog's {self._limit}-byte limit,"
                f"omitted {self._truncated} bytes, total stream size {self._total} bytes ***\n"
            )
            self._stream.append(summary.encode(), self._butler.clock())
        self._stream.close()
        self._butler.wake()


class Butler:
    """One bundler feeding one output; streams come from any number of servers."""

    def __init__(
        self,
        output: Output,
        *,
        max_buffer_delay_ns: int = DEFAULT_MAX_BUFFER_AGE_NS,
        global_tags: dict[str, str] | None = None,
        clock: Callable[[], int] = time.time_ns,
        max_stream_bytes: int = MAX_STREAM_BYTES,
    ) -> None:
        self.output = output
        self.clock = clock
        self.global_tags = dict(global_tags or {})
        self.max_stream_bytes = max_stream_bytes
        self.bundler = Bundler(output.max_size, max_buffer_delay_ns)
        self._seen: set[str] = set()
        self._wake = asyncio.Event()
        self._send_slots = asyncio.Semaphore(max(1, output.max_send_bundles))
        self._sends: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.closing = False
        self.bundles_sent = 0
        self.send_errors = 0
        # Counts for status lines and session results.
        self.bytes_received = 0
        self.streams_opened = 0
        self.streams_closed = 0
        self.streams_refused = 0

    # -- streams ------------------------------------------------------------------

    def add_stream(self, desc: StreamDescriptor) -> StreamWriter:
        """Register a stream from a decoded handshake, as Go's AddStream does."""
        try:
            writer = self._add_stream(desc)
        except StreamRejected:
            self.streams_refused += 1
            raise
        self.streams_opened += 1
        return writer

    def _add_stream(self, desc: StreamDescriptor) -> StreamWriter:
        if self.closing:
            raise StreamRejected("the butler is shutting down")
        if desc.timestamp_ns is None:
            desc.timestamp_ns = self.clock()
        try:
            desc.validate()
        except ValueError as e:
            raise StreamRejected(str(e)) from None
        for key, value in self.global_tags.items():
            desc.tags.setdefault(key, value)
        if desc.name in self._seen:
            raise StreamRejected(f"stream {desc.name!r}: duplicate registration")
        self._seen.add(desc.name)
        stream = self.bundler.register(desc)
        self.wake()
        return StreamWriter(self, stream)

    @property
    def open_streams(self) -> int:
        """Streams whose data is not all bundled yet (still reading, or flushing)."""
        return len(self.bundler.streams)

    @property
    def reading_streams(self) -> int:
        """Streams whose client has not closed yet."""
        return self.streams_opened - self.streams_closed

    def wake(self) -> None:
        self._wake.set()

    # -- the bundling loop and the output pump ------------------------------------

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="bundler")
        self._loop_task.add_done_callback(_log_failure)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        bundler = self.bundler
        while True:
            self._wake.clear()
            now = self.clock()
            result = bundler.poll(now)
            if isinstance(result, SendBundle):
                await self._dispatch(result.bundle)
                continue
            if isinstance(result, Finished):
                if result.bundle is not None:
                    await self._dispatch(result.bundle)
                break
            if result.deadline_ns is not None and result.deadline_ns <= now:
                await asyncio.sleep(0)
                continue
            timer = None
            if result.deadline_ns is not None:
                timer = loop.call_later((result.deadline_ns - now) / 1e9, self._wake.set)
            await self._wake.wait()
            if timer is not None:
                timer.cancel()
        if self._sends:
            await asyncio.gather(*self._sends, return_exceptions=True)

    async def _dispatch(self, bundle: Bundle) -> None:
        await self._send_slots.acquire()
        if self.output.max_send_bundles <= 1:
            # One send at a time: awaiting it here saves the loop iterations a
            # task would cost (latency), and the bundler would wait anyway.
            await self._send(bundle)
            return
        task = asyncio.get_running_loop().create_task(self._send(bundle))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, bundle: Bundle) -> None:
        try:
            await self.output.send_bundle(bundle)
            self.bundles_sent += 1
        except Exception:  # the Go Butler logs and goes on; so do we
            self.send_errors += 1
            log.exception("output failed to send a bundle")
        finally:
            self._send_slots.release()

    async def flush(self) -> None:
        """Flush every stream (they must be closed) and wait for the output."""
        self.closing = True
        self.bundler.flush()
        self.wake()
        if self._loop_task is not None:
            await self._loop_task
