"""Parsing a stream server address (``unix:/path``, ``null``) as Go ``streamclient.New`` does.

The protocol is everything before the first ``:``. ``unix`` is checked when the
client is built (the path must already be a socket; a symlink to one is
refused, as in Go), so a misconfigured environment fails at start-up rather
than on the first stream. ``net.pipe`` exists only on Windows in Go and is
therefore unknown here, with Go's message.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from dataclasses import dataclass
from typing import Literal

from wire.goquote import go_quote
from .errors import StreamServerError


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed stream server address."""

    uri: str
    protocol: Literal["unix", "null"]
    path: str = ""


def parse_address(uri: str) -> Address:
    protocol, _, value = uri.partition(":")
    if protocol == "null":
        return Address(uri, "null")
    if protocol == "unix":
        try:
            st = os.lstat(value)
        except OSError as e:
            raise StreamServerError(
                f"opening path {go_quote(uri)}: failed to stat file [{value}]: lstat {value}: {os_error_text(e)}"
            ) from None
        if not stat.S_ISSOCK(st.st_mode):
            raise StreamServerError(f"opening path {go_quote(uri)}: not a named pipe: [{value}]")
        return Address(uri, "unix", value)
    raise StreamServerError(f"no protocol registered for [{protocol}]")


def os_error_text(e: OSError) -> str:
    """Go's spelling of an errno (``no such file or directory``), falling back to Python's text."""
    if e.errno is not None and e.errno in errno.errorcode:
        text = os.strerror(e.errno)
        return text[:1].lower() + text[1:]
    return str(e)


def dial_unix(path: str) -> socket.socket:
    """A blocking, connected Unix stream socket, or `StreamServerError` in Go's words."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise StreamServerError(
            f"opening socket {go_quote(path)}: dial unix {path}: connect: {os_error_text(e)}"
        ) from e
    return sock


def connect_error(kind: str, name: str, err: Exception) -> StreamServerError:
    """Go's wrapping of a dial failure: ``attempting to connect stream "name": ...``."""
    exc = StreamServerError(f"attempting to connect {kind} {go_quote(name)}: {err}")
    exc.__cause__ = err
    return exc


def handshake_error(err: OSError) -> StreamServerError:
    exc = StreamServerError(f"writing handshake: {os_error_text(err)}")
    exc.__cause__ = err
    return exc
