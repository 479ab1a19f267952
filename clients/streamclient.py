"""The blocking stream client: one Unix connection per log stream.

Goals: send exactly the bytes the Go ``streamclient`` sends, fail on bad names
before connecting (the butler never answers, so a rejected stream is otherwise
invisible), and hand a child process a plain file descriptor when asked.

Plan: `StreamClient` resolves options (``_options.ClientBase``), dials
(``_address.dial_unix``), writes the handshake, and wraps the socket in a
writer. The writers add no buffering: each ``write`` is on the wire when it
returns, so nothing is lost if the process dies right after.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Mapping
from typing import Literal, Self, overload

from wire.types import StreamType

from ._address import connect_error, dial_unix, handshake_error
from ._io import datagram_frame, socket_to_file, stream_bytes
from ._options import ClientBase, StreamOptions, Timestamp
from .errors import StreamServerError


class _Writer:
    """What both writers share: the socket (None for "null"), the name, and closing."""

    def __init__(self, sock: socket.socket | None, name: str) -> None:
        self._sock = sock  # None: the "null" protocol, everything is discarded
        self._closed = False
        self.name = name
        """The full stream name (namespace applied), as the butler sees it."""

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the stream (the butler sees EOF). Safe to call twice."""
        self._closed = True
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _kind(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{self._kind()}{' closed' if self._closed else ''}>"


class StreamWriter(_Writer):
    """A text or binary stream. ``write`` sends immediately; closing ends the stream."""

    def __init__(self, sock: socket.socket | None, name: str, stream_type: StreamType) -> None:
        super().__init__(sock, name)
        self.stream_type = stream_type

    def write(self, data: bytes | bytearray | memoryview | str) -> int:
        """Send ``data``; text streams also take ``str`` (sent as UTF-8).

        Each call is one send. ``print(x, file=w)`` makes two (text, then the
        newline); a butler that does not buffer may record the first as a
        partial line, so prefer ``w.write(line + "\\n")`` for whole lines.
        """
        payload = stream_bytes(data, self.stream_type)
        if self._closed:
            raise ValueError("write to a closed stream")
        if self._sock is not None:
            self._sock.sendall(payload)
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered; present so the writer can stand in for a file."""

    def fileno(self) -> int:
        if self._sock is None:
            raise io.UnsupportedOperation("a null stream has no file descriptor")
        return self._sock.fileno()

    def writable(self) -> bool:
        return True

    def _kind(self) -> str:
        return f" {self.stream_type.name.lower()}"


class DatagramWriter(_Writer):
    """A datagram stream: each ``write_datagram`` is one record, framed with a uvarint length."""

    def write_datagram(self, data: bytes | bytearray | memoryview) -> None:
        """Send one datagram; its length goes first (uvarint), as Go's ``WriteDatagram`` does."""
        pieces = datagram_frame(data)
        if self._closed:
            raise ValueError("write to a closed stream")
        if self._sock is not None:
            for piece in pieces:
                self._sock.sendall(piece)


class StreamClient(ClientBase[StreamWriter, DatagramWriter]):
    """Opens log streams on a butler's stream server.

    ``address`` is ``unix:/path/to/socket`` or ``null`` (discard everything);
    ``namespace`` is prepended to every stream name, as ``LOGDOG_NAMESPACE`` is.
    """

    _stream_writer = StreamWriter
    _datagram_writer = DatagramWriter

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StreamClient:
        """The client a butler set up for this process through LOGDOG_* variables.

        Raises `NotBootstrapped` when LOGDOG_STREAM_SERVER_PATH is unset and
        `BootstrapError` when the variables are invalid. See `Bootstrap` for
        the other variables (viewer URLs).
        """
        from .bootstrap import Bootstrap

        return Bootstrap.from_env(env).client

    @overload
    def text(self, name: str, *, content_type: str | None = ..., timestamp: Timestamp | None = ...,
             tags: Mapping[str, str] | None = ..., for_process: Literal[False] = ...) -> StreamWriter: ...
    @overload
    def text(self, name: str, *, content_type: str | None = ..., timestamp: Timestamp | None = ...,
             tags: Mapping[str, str] | None = ..., for_process: Literal[True]) -> io.FileIO: ...

    def text(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
             tags: Mapping[str, str] | None = None, for_process: bool = False) -> StreamWriter | io.FileIO:
        """Open a text stream (lines split by the butler on ``\\n``).

        With ``for_process=True`` the result is a file whose descriptor can be
        a child's stdout/stderr (``subprocess.Popen(..., stdout=f)``); close
        your copy once the child is started so the stream ends with the child.
        """
        opts = self._options(name, StreamType.TEXT, content_type=content_type, timestamp=timestamp,
                             tags=tags, for_process=for_process)
        return self._open_stream(name, opts, for_process)

    @overload
    def binary(self, name: str, *, content_type: str | None = ..., timestamp: Timestamp | None = ...,
               tags: Mapping[str, str] | None = ..., for_process: Literal[False] = ...) -> StreamWriter: ...
    @overload
    def binary(self, name: str, *, content_type: str | None = ..., timestamp: Timestamp | None = ...,
               tags: Mapping[str, str] | None = ..., for_process: Literal[True]) -> io.FileIO: ...

    def binary(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
               tags: Mapping[str, str] | None = None, for_process: bool = False) -> StreamWriter | io.FileIO:
        """Open a binary stream (bytes kept exactly, offset-addressed)."""
        opts = self._options(name, StreamType.BINARY, content_type=content_type, timestamp=timestamp,
                             tags=tags, for_process=for_process)
        return self._open_stream(name, opts, for_process)

    def datagram(self, name: str, *, content_type: str | None = None, timestamp: Timestamp | None = None,
                 tags: Mapping[str, str] | None = None, for_process: bool = False) -> DatagramWriter:
        """Open a datagram stream; ``for_process`` is refused (a child cannot frame records)."""
        opts = self._options(name, StreamType.DATAGRAM, content_type=content_type, timestamp=timestamp,
                             tags=tags, for_process=for_process)
        if (null := self._null_datagram(opts)) is not None:
            return null
        return DatagramWriter(self._connect("datagram stream", name, opts), opts.name)

    def _open_stream(self, name: str, opts: StreamOptions, for_process: bool) -> StreamWriter | io.FileIO:
        if (null := self._null_stream(opts, for_process)) is not None:
            return null
        sock = self._connect("stream", name, opts)
        if for_process:
            return socket_to_file(sock)
        return StreamWriter(sock, opts.name, opts.stream_type)

    def _connect(self, kind: str, name: str, opts: StreamOptions) -> socket.socket:
        try:
            sock = dial_unix(self._address.path)
        except StreamServerError as e:
            raise connect_error(kind, name, e) from e
        try:
            sock.sendall(opts.handshake())
        except OSError as e:
            sock.close()
            raise connect_error(kind, name, handshake_error(e)) from e
        return sock
