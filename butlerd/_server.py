"""The stream server: a Unix socket where each connection is one log stream.

A connection first sends the handshake (wire.handshake), then the stream body
until EOF. The server never writes a byte back; a bad handshake or a rejected
stream is logged with the connection's name and the reason, and only that
connection is closed.

Shutdown (``StreamServer.shutdown``) stops accepting, closes connections that
have not finished their handshake at once, gives open streams ``drain_timeout``
to finish, then closes them; whatever was read by then is flushed.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import socket
import stat
import struct

from butlerd._butler import Butler, StreamRejected, StreamWriter
from wire.handshake import HandshakeDecoder, HandshakeError

log = logging.getLogger("butlerd.server")

#: Go's streamserver refuses longer Unix socket paths.
MAX_SOCKET_PATH = 104

_conn_ids = itertools.count(1)


def peer_credentials(sock: socket.socket | None) -> tuple[int, int] | None:
    """(pid, uid) of the process at the other end of a Unix socket, if known."""
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    pid, uid, _ = struct.unpack("3i", creds)
    return pid, uid


class StreamConnection(asyncio.Protocol):
    """One client connection: handshake, then bytes into a StreamWriter."""

    def __init__(self, server: StreamServer) -> None:
        self._server = server
        self._decoder: HandshakeDecoder | None = HandshakeDecoder()
        self._writer: StreamWriter | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._received = 0
        self._paused = False
        self.label = f"connection #{next(_conn_ids)}"

    # -- asyncio callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses
        creds = peer_credentials(transport.get_extra_info("socket"))
        if creds is not None and creds[0]:
            self.label += f" (pid {creds[0]})"
        self._server._connections.add(self)
        self._server.activity += 1
        timeout = self._server.handshake_timeout
        if timeout > 0:
            self._timer = asyncio.get_running_loop().call_later(timeout, self._handshake_timed_out)

    def data_received(self, data: bytes) -> None:
        self._server.activity += 1
        if self._writer is not None:
            self._feed(data)
            return
        if self._decoder is None:
            return  # closing after a bad handshake
        self._received += len(data)
        try:
            flags = self._decoder.feed(data)
        except HandshakeError as e:
            self._reject(f"bad handshake: {e}")
            return
        if flags is None:
            return
        body = self._decoder.remainder
        self._decoder = None
        self._cancel_timer()
        try:
            self._writer = self._server.butler.add_stream(flags.descriptor())
        except StreamRejected as e:
            self._reject(f"stream {flags.name!r} refused: {e}")
            return
        self.label += f" stream {flags.name!r}"
        log.info("%s: stream opened", self.label)
        self._writer.set_on_consumed(self._maybe_resume)
        if body:
            self._feed(bytes(body))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._server._connections.discard(self)
        if self._writer is not None:
            if exc is not None:
                log.warning("%s: read error: %s", self.label, exc)
            self._writer.set_on_consumed(None)
            self._writer.close()
            self._server._stream_closed()
        elif self._decoder is not None:
            reason = self._decoder.incomplete_reason()
            if reason:
                log.warning("%s: closed during the handshake: %s", self.label, reason)

    # -- helpers --------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        writer = self._writer
        assert writer is not None
        writer.feed(data)
        if writer.failed:
            log.warning("%s: stream ended: %s", self.label, writer.stream.error)
            self.close()
        elif writer.full() and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _maybe_resume(self) -> None:
        writer = self._writer
        if writer is None:
            return
        if writer.failed:
            log.warning("%s: stream ended: %s", self.label, writer.stream.error)
            self.close()
        elif self._paused and not writer.full() and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _reject(self, reason: str) -> None:
        log.warning("%s: %s; closing the connection", self.label, reason)
        self._decoder = None
        self._cancel_timer()
        if self._transport is not None:
            self._transport.close()

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._reject(
            f"no complete handshake within {self._server.handshake_timeout:g}s "
            f"({self._received} bytes received)"
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def streaming(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def check_socket_path(path: str) -> str:
    """Absolute path of a socket to serve, or ValueError with the reason."""
    path = os.path.abspath(path)
    if len(path) > MAX_SOCKET_PATH:
        raise ValueError(f"path exceeds maximum length {MAX_SOCKET_PATH}: {path}")
    return path


def bind_unix_socket(path: str, mode: int = 0o600) -> socket.socket:
    """Bind a listening socket at ``path``, replacing only a stale socket.

    A socket that a live process answers on is never taken over; anything at
    the path that is not a socket is left alone.
    """
    path = check_socket_path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ValueError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # stale: nobody is listening
        except OSError as e:
            if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise ValueError(f"cannot probe existing socket {path}: {e}") from None
        else:
            raise ValueError(f"{path} is being served by a live process; refusing to steal it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    sock.listen(socket.SOMAXCONN)
    os.chmod(path, mode)
    sock.setblocking(False)
    return sock


class StreamServer:
    """Accepts stream connections on listening sockets and feeds a Butler."""

    def __init__(self, butler: Butler, *, handshake_timeout: float = 60.0) -> None:
        self.butler = butler
        self.handshake_timeout = handshake_timeout
        self._servers: list[asyncio.AbstractServer] = []
        self._paths: list[str] = []
        self._connections: set[StreamConnection] = set()
        self._idle = asyncio.Event()
        #: Bumped on every accept and read; shutdown waits for it to settle.
        self.activity = 0

    async def listen(self, sock: socket.socket, *, remove_on_close: str | None = None) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(
            lambda: StreamConnection(self), sock=sock, backlog=socket.SOMAXCONN
        )
        self._servers.append(server)
        if remove_on_close:
            self._paths.append(remove_on_close)

    async def settle(self, limit: float = 0.5) -> None:
        """Let connections and bytes that were already sent be accepted and read.

        A client that wrote its whole stream just before the signal must not
        lose it: wait (briefly) until the event loop finds nothing new.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        seen = -1
        while seen != self.activity and loop.time() < deadline:
            seen = self.activity
            await asyncio.sleep(0.02)

    async def wait_idle(self, quiet_rounds: int = 3, interval: float = 0.02) -> None:
        """Return once no client is connected and none is arriving.

        A client that connected a moment ago may still sit in the accept
        queue, so the server must also stay quiet for ``quiet_rounds``.
        """
        quiet = 0
        while quiet < quiet_rounds:
            seen = self.activity
            await asyncio.sleep(interval)
            if self._connections or self.activity != seen:
                quiet = 0
            else:
                quiet += 1

    def _stream_closed(self) -> None:
        if not any(c.streaming for c in self._connections):
            self._idle.set()

    async def shutdown(self, drain_timeout: float) -> None:
        """Stop accepting, let streams finish up to ``drain_timeout``, close the rest."""
        await self.settle()
        for server in self._servers:
            server.close()
        for path in self._paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        for conn in list(self._connections):
            if not conn.streaming:
                conn.close()
        streaming = [c for c in self._connections if c.streaming]
        if streaming:
            log.info("waiting up to %gs for %d open stream(s)", drain_timeout, len(streaming))
            self._idle.clear()
            if any(c.streaming for c in self._connections):
                try:
                    await asyncio.wait_for(self._idle.wait(), drain_timeout)
                except asyncio.TimeoutError:
                    left = [c for c in self._connections if c.streaming]
                    log.warning("closing %d stream(s) still open after %gs", len(left), drain_timeout)
        for conn in list(self._connections):
            conn.close()
        # Let connection_lost callbacks run so every stream is closed.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while self._connections and loop.time() < deadline:
            await asyncio.sleep(0.005)
        for server in self._servers:
            await server.wait_closed()
