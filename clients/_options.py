"""Turning a caller's stream options into the handshake the butler receives.

Shared by the blocking and the asyncio clients. It mirrors Go ``mkOptions``:
the namespace is joined to the name, the timestamp and content type get their
defaults, and the result is validated *here*, before any socket exists, so a
bad name or tag fails fast in the caller instead of as a silently closed
connection (the butler never writes back).
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

from wire.handshake import StreamFlags, encode_handshake
from wire.goquote import go_quote
from wire.types import StreamType, construct, default_content_type, validate_stream_name, validate_tag

from ._address import Address, parse_address
from ._io import check_datagram_for_process, open_devnull
from .errors import InvalidStreamError

Timestamp = datetime | int
"""A stream timestamp: an aware datetime, or integer nanoseconds since the Unix epoch."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def timestamp_ns(value: Timestamp | None) -> int:
    """Nanoseconds since the epoch; ``None`` means now, as in Go's ``mkOptions``."""
    if value is None:
        return time.time_ns()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # A naive datetime is ambiguous (local? UTC?); guessing would
            # silently shift every log by the machine's offset.
            raise InvalidStreamError("timestamp must be a timezone-aware datetime")
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidStreamError(f"timestamp must be a datetime or int nanoseconds, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """A fully resolved, validated stream: what the handshake will say."""

    name: str
    stream_type: StreamType
    content_type: str
    timestamp_ns: int
    tags: dict[str, str]

    def handshake(self) -> bytes:
        """The exact bytes the Go client would send for these options."""
        return encode_handshake(
            StreamFlags(
                name=self.name,
                content_type=self.content_type,
                stream_type=self.stream_type,
                timestamp_ns=self.timestamp_ns,
                tags=dict(self.tags),
            )
        )


def render(
    namespace: str,
    name: str,
    stream_type: StreamType,
    *,
    content_type: str | None = None,
    timestamp: Timestamp | None = None,
    tags: Mapping[str, str] | None = None,
) -> StreamOptions:
    """Resolve and validate options, raising `InvalidStreamError` with Go's message."""
    if not isinstance(name, str):
        raise InvalidStreamError(f"stream name must be a str, not {type(name).__name__}")
    full_name = construct(namespace, name)
    tag_map = dict(tags or {})
    for k, v in tag_map.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidStreamError(f"tag {k!r}: keys and values must be str")
    opts = StreamOptions(
        name=full_name,
        stream_type=stream_type,
        content_type=content_type or default_content_type(stream_type),
        timestamp_ns=timestamp_ns(timestamp),
        tags=tag_map,
    )
    try:
        validate_stream_name(opts.name)
    except ValueError as e:
        raise InvalidStreamError(f"invalid stream descriptor: invalid name: {e}") from None
    for k in sorted(tag_map):
        try:
            validate_tag(k, tag_map[k])
        except ValueError as e:
            raise InvalidStreamError(f"invalid stream descriptor: invalid tag {go_quote(k)}: {e}") from None
    return opts


SW = TypeVar("SW")
DW = TypeVar("DW")


class ClientBase(Generic[SW, DW]):
    """What the blocking and asyncio clients share; they differ only in how they connect and write.

    Options are rendered when a stream is asked for, so a bad name fails at the
    call; the "null" address hands out writers with no socket (or /dev/null
    for a child process), built by the subclass's writer classes.
    """

    _stream_writer: Callable[[socket.socket | None, str, StreamType], SW]
    _datagram_writer: Callable[[socket.socket | None, str], DW]

    def __init__(self, address: str, namespace: str = "") -> None:
        self._address: Address = parse_address(address)
        self.namespace = namespace

    @property
    def address(self) -> str:
        return self._address.uri

    def _options(self, name: str, stream_type: StreamType, *, content_type: str | None,
                 timestamp: Timestamp | None, tags: Mapping[str, str] | None, for_process: bool) -> StreamOptions:
        opts = render(self.namespace, name, stream_type, content_type=content_type, timestamp=timestamp, tags=tags)
        if stream_type == StreamType.DATAGRAM:
            check_datagram_for_process(for_process)
        return opts

    def _null_stream(self, opts: StreamOptions, for_process: bool) -> SW | io.FileIO | None:
        """The text/binary stream of a "null" address, or None when the address is real."""
        if self._address.protocol != "null":
            return None
        return open_devnull() if for_process else self._stream_writer(None, opts.name, opts.stream_type)

    def _null_datagram(self, opts: StreamOptions) -> DW | None:
        """The datagram stream of a "null" address, or None when the address is real."""
        if self._address.protocol != "null":
            return None
        return self._datagram_writer(None, opts.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._address.uri!r}, namespace={self.namespace!r})"
