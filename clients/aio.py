"""The asyncio stream client: the same streams and bytes as `StreamClient`, without blocking the loop.

Plan: ``client.text(...)`` validates at once (so errors surface at the call,
as in the blocking client) and returns an `Opening`, which connects when it is
awaited or entered with ``async with``. The connect runs in a worker thread:
a non-blocking ``connect()`` on a Unix socket whose backlog is full fails with
EAGAIN instead of waiting, which asyncio cannot recover from. Writes then use
``loop.sock_sendall`` under a per-stream lock so concurrent writers never
interleave a datagram's header and body. ``close()`` during a write shuts the
socket down (the write then fails) and leaves the close to the write, since
the loop is still watching that descriptor.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, Self, TypeVar

from wire.types import StreamType

from ._address import connect_error, dial_unix, handshake_error
from ._io import datagram_frame, socket_to_file, stream_bytes
from ._options import ClientBase, StreamOptions, Timestamp
from .errors import StreamServerError

T = TypeVar("T", bound="AsyncStreamWriter | AsyncDatagramWriter | io.FileIO")


class Opening(Generic[T]):
    """A stream being opened: ``await`` it for the writer, or ``async with`` it to close it afterwards.

    Each await (or ``async with``) opens a new connection; use it once.
    """

    def __init__(self, open_: Callable[[], Awaitable[T]]) -> None:
        self._open = open_
        self._value: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._open().__await__()

    async def __aenter__(self) -> T:
        self._value = await self._open()
        return self._value

    async def __aexit__(self, *exc_info: object) -> None:
        if self._value is not None:
            self._value.close()


class _AsyncWriter:
    def __init__(self, sock: socket.socket | None, name: str) -> None:
        self._sock = sock  # None: the "null" protocol
        self._lock = asyncio.Lock()
        self._closed = False
        self._sending = False  # the loop is watching the socket for a write
        self.name = name
        """The full stream name (namespace applied), as the butler sees it."""

    async def _send(self, *chunks: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed stream")
        if self._sock is None:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._closed:  # closed while this write waited for the previous one
                raise ValueError("write to a closed stream")
            self._sending = True
            try:
                for chunk in chunks:
                    await loop.sock_sendall(self._sock, chunk)
            except BaseException:
                # Cancelled or failed part-way: the butler may hold half a
                # record, and anything sent after it would be misread.
                self._closed = True
                raise
            finally:
                self._sending = False
                if self._closed:
                    self._sock.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the stream (the butler sees EOF). Data already sent is not lost.

        A write still waiting for the butler to read fails at once (with the
        `OSError` of a shut-down socket) instead of waiting forever.
        """
        self._closed = True
        if self._sock is None:
            return
        if self._sending:
            # The loop still watches this descriptor for the pending write:
            # closing it now would strand that write (no event ever comes)
            # and leave the loop watching a number the kernel may reuse.
            # Shutting the socket down wakes the write with EPIPE on both
            # asyncio and uvloop; `_send` closes the socket once it is done.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already shut down by the peer
        else:
            self._sock.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class AsyncStreamWriter(_AsyncWriter):
    """A text or binary stream; ``await write(...)`` returns once the kernel has the bytes."""

    def __init__(self, sock: socket.socket | None, name: str, stream_type: StreamType) -> None:
        super().__init__(sock, name)
        self.stream_type = stream_type

    async def write(self, data: bytes | bytearray | memoryview | str) -> int:
        await self._send(stream_bytes(data, self.stream_type))
        return len(data)


class AsyncDatagramWriter(_AsyncWriter):
    """A datagram stream; each ``await write_datagram(...)`` is one framed record.

    Concurrent writes are sent one after another. A write that is cancelled
    or fails closes the stream, so a partial record is never followed by more.
    """

    async def write_datagram(self, data: bytes | bytearray | memoryview) -> None:
        await self._send(*datagram_frame(data))


class AsyncStreamClient(ClientBase[AsyncStreamWriter, AsyncDatagramWriter]):
    """`StreamClient` for asyncio code: same addresses, names, options and bytes."""

    _stream_writer = AsyncStreamWriter
    _datagram_writer = AsyncDatagramWriter

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AsyncStreamClient:
        """As `StreamClient.from_env`."""
        from .bootstrap import Bootstrap

        return Bootstrap.from_env(env).async_client

    def text(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
             tags: Mapping[str, str] | None = None, for_process: bool = False) -> Opening[AsyncStreamWriter | io.FileIO]:
        """Open a text stream: ``async with client.text("x") as w: await w.write("hi\\n")``.

        ``for_process=True`` yields a plain file for a child's stdout, as in `StreamClient.text`.
        """
        opts = self._options(name, StreamType.TEXT, content_type=content_type, timestamp=timestamp,
                             tags=tags, for_process=for_process)
        return Opening(lambda: self._open_stream(name, opts, for_process))

    def binary(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
               tags: Mapping[str, str] | None = None, for_process: bool = False) -> Opening[AsyncStreamWriter | io.FileIO]:
        """Open a binary stream."""
        opts = self._options(name, StreamType.BINARY, content_type=content_type, timestamp=timestamp,
                             tags=tags, for_process=for_process)
        return Opening(lambda: self._open_stream(name, opts, for_process))

    def datagram(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
                 tags: Mapping[str, str] | None = None, for_process: bool = False) -> Opening[AsyncDatagramWriter]:
        """Open a datagram stream; ``for_process`` is refused, as in Go."""
        opts = self._options(name, StreamType.DATAGRAM, content_type=content_type, timestamp=timestamp,
                             tags=tags, for_process=for_process)
        return Opening(lambda: self._open_datagram(name, opts))

    async def _open_stream(self, name: str, opts: StreamOptions, for_process: bool) -> AsyncStreamWriter | io.FileIO:
        if (null := self._null_stream(opts, for_process)) is not None:
            return null
        sock = await self._connect("stream", name, opts)
        if for_process:
            return socket_to_file(sock)
        return AsyncStreamWriter(sock, opts.name, opts.stream_type)

    async def _open_datagram(self, name: str, opts: StreamOptions) -> AsyncDatagramWriter:
        if (null := self._null_datagram(opts)) is not None:
            return null
        return AsyncDatagramWriter(await self._connect("datagram stream", name, opts), opts.name)

    async def _connect(self, kind: str, name: str, opts: StreamOptions) -> socket.socket:
        dialing = asyncio.get_running_loop().run_in_executor(None, dial_unix, self._address.path)
        try:
            sock = await asyncio.shield(dialing)
        except StreamServerError as e:
            raise connect_error(kind, name, e) from e
        except asyncio.CancelledError:
            # The thread cannot be stopped; close its socket when it finishes.
            dialing.add_done_callback(_close_result)
            raise
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_sendall(sock, opts.handshake())
        except OSError as e:
            sock.close()
            raise connect_error(kind, name, handshake_error(e)) from e
        except BaseException:
            sock.close()
            raise
        return sock


def _close_result(fut: asyncio.Future[socket.socket]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fut.result().close()
