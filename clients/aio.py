"""The asyncio stream client: the same streams and bytes as `StreamClient`, without blocking the loop.

Plan: ``client.text(...)`` validates at once (so errors surface at the call,
as in the blocking client) and returns an `Opening`, which connects when it is
awaited or entered with ``async with``. The connect runs in a worker thread:
a non-blocking ``connect()`` on a Unix socket whose backlog is full fails with
EAGAIN instead of waiting, which asyncio cannot recover from. Writes then use
``loop.sock_sendall`` under a per-stream lock so concurrent writers never
interleave a datagram's header and body.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, Self, TypeVar

from wire.types import StreamType

from ._address import Address, connect_error, dial_unix, handshake_error, parse_address
from ._io import check_datagram_for_process, datagram_frame, open_devnull, socket_to_file, stream_bytes
from ._options import StreamOptions, Timestamp, render
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
        self.name = name
        """The full stream name (namespace applied), as the butler sees it."""

    async def _send(self, *chunks: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a closed stream")
        if self._sock is None:
            return
        loop = asyncio.get_running_loop()
        async with self._lock:
            try:
                for chunk in chunks:
                    await loop.sock_sendall(self._sock, chunk)
            except BaseException:
                # Cancelled or failed part-way: the butler may hold half a
                # record, and anything sent after it would be misread.
                self.close()
                raise

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the stream (the butler sees EOF). Data already sent is not lost."""
        self._closed = True
        if self._sock is not None:
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


class AsyncStreamClient:
    """`StreamClient` for asyncio code: same addresses, names, options and bytes."""

    def __init__(self, address: str, namespace: str = "") -> None:
        self._address: Address = parse_address(address)
        self.namespace = namespace

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AsyncStreamClient:
        """As `StreamClient.from_env`."""
        from .bootstrap import Bootstrap

        return Bootstrap.from_env(env).async_client

    @property
    def address(self) -> str:
        return self._address.uri

    def text(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
             tags: Mapping[str, str] | None = None, for_process: bool = False) -> Opening[AsyncStreamWriter | io.FileIO]:
        """Open a text stream: ``async with client.text("x") as w: await w.write("hi\\n")``.

        ``for_process=True`` yields a plain file for a child's stdout, as in `StreamClient.text`.
        """
        opts = render(self.namespace, name, StreamType.TEXT,
                      content_type=content_type, timestamp=timestamp, tags=tags)
        return Opening(lambda: self._open_stream(name, opts, for_process))

    def binary(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
               tags: Mapping[str, str] | None = None, for_process: bool = False) -> Opening[AsyncStreamWriter | io.FileIO]:
        """Open a binary stream."""
        opts = render(self.namespace, name, StreamType.BINARY,
                      content_type=content_type, timestamp=timestamp, tags=tags)
        return Opening(lambda: self._open_stream(name, opts, for_process))

    def datagram(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
                 tags: Mapping[str, str] | None = None, for_process: bool = False) -> Opening[AsyncDatagramWriter]:
        """Open a datagram stream; ``for_process`` is refused, as in Go."""
        opts = render(self.namespace, name, StreamType.DATAGRAM,
                      content_type=content_type, timestamp=timestamp, tags=tags)
        check_datagram_for_process(for_process)
        return Opening(lambda: self._open_datagram(name, opts))

    async def _open_stream(self, name: str, opts: StreamOptions, for_process: bool) -> AsyncStreamWriter | io.FileIO:
        if self._address.protocol == "null":
            return open_devnull() if for_process else AsyncStreamWriter(None, opts.name, opts.stream_type)
        sock = await self._connect("stream", name, opts)
        if for_process:
            return socket_to_file(sock)
        return AsyncStreamWriter(sock, opts.name, opts.stream_type)

    async def _open_datagram(self, name: str, opts: StreamOptions) -> AsyncDatagramWriter:
        if self._address.protocol == "null":
            return AsyncDatagramWriter(None, opts.name)
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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._address.uri!r}, namespace={self.namespace!r})"


def _close_result(fut: asyncio.Future[socket.socket]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        fut.result().close()
