"""Byte and file-descriptor helpers shared by the blocking and asyncio clients."""

from __future__ import annotations

import io
import os
import socket

from wire.types import MAX_DATAGRAM_SIZE, StreamType
from wire.varint import encode_uvarint

from .errors import InvalidStreamError

_JOIN_LIMIT = 64 * 1024


def stream_bytes(data: bytes | bytearray | memoryview | str, stream_type: StreamType) -> bytes | bytearray | memoryview:
    if isinstance(data, str):
        if stream_type != StreamType.TEXT:
            raise TypeError("a binary stream takes bytes, not str")
        return data.encode("utf-8")
    return data


def datagram_frame(data: bytes | bytearray | memoryview) -> tuple[bytes | bytearray | memoryview, ...]:
    """One datagram as the pieces to send: uvarint length, then the payload.

    Small datagrams are joined into one send; big ones are sent as two pieces
    to avoid copying the payload. Sizes the butler would reject are refused.
    """
    size = memoryview(data).nbytes
    if size > MAX_DATAGRAM_SIZE:
        # The butler would put the whole stream into an error state and drop the rest.
        raise ValueError(f"datagram exceeds maximum size ({size} > {MAX_DATAGRAM_SIZE})")
    header = encode_uvarint(size)
    return (header + data,) if size < _JOIN_LIMIT else (header, data)


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
