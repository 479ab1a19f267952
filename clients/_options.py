"""Turning a caller's stream options into the handshake the butler receives.

Shared by the blocking and the asyncio clients. It mirrors Go ``mkOptions``:
the namespace is joined to the name, the timestamp and content type get their
defaults, and the result is validated *here*, before any socket exists, so a
bad name or tag fails fast in the caller instead of as a silently closed
connection (the butler never writes back).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from wire.handshake import StreamFlags, encode_handshake
from wire.goquote import go_quote
from wire.types import StreamType, construct, default_content_type, validate_stream_name, validate_tag

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
