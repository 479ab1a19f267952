"""Byte and file-descriptor helpers shared by the blocking and asyncio clients."""

from __future__ import annotations

import io
import os
import socket

from wire.types import MAX_DATAGRAM_SIZE, StreamType
from wire.varint import encode_uvarint

from .errors import InvalidStreamError

JOIN_LIMIT = 64 * 1024
"""Datagrams smaller than this go out as one send; bigger ones skip the copy of joining header and body."""


def stream_bytes(data: bytes | bytearray | memoryview | str, stream_type: StreamType) -> bytes | bytearray | memoryview:
    if isinstance(data, str):
        if stream_type != StreamType.TEXT:
            raise TypeError("a binary stream takes bytes, not str")
        return data.encode("utf-8")
    return data


def datagram_header(data: bytes | bytearray | memoryview) -> bytes:
    """The uvarint length prefix for one datagram, refusing sizes the butler would reject."""
    size = memoryview(data).nbytes
    if size > MAX_DATAGRAM_SIZE:
        # The butler would put the whole stream into an error state and drop the rest.
        raise ValueError(f"datagram exceeds maximum size ({size} > {MAX_DATAGRAM_SIZE})")
    return encode_uvarint(size)


def check_datagram_for_process(for_process: bool) -> None:
    if for_process:
        raise InvalidStreamError("cannot specify ForProcess on a datagram stream")


def socket_to_file(sock: socket.socket) -> io.FileIO:
    """Go's ``conn.File()``: the connected socket as a plain, blocking, inheritable file."""
    sock.setblocking(True)
    fd = sock.detach()
    os.set_inheritable(fd, True)
    return open(fd, "wb", buffering=0)  # type: ignore[return-value]


def open_devnull() -> io.FileIO:
    """What a ``null`` client hands a child process: ``/dev/null`` opened for writing."""
    f = open(os.devnull, "wb", buffering=0)
    os.set_inheritable(f.fileno(), True)
    return f  # type: ignore[return-value]
