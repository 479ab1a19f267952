"""The log stream descriptor: what a stream is, as the butler registers it.

``StreamDescriptor`` is the plain-Python form of ``logpb.LogStreamDescriptor``.
``validate`` reproduces Go's ``LogStreamDescriptor.Validate`` (checks and
messages in the same order); ``to_proto`` is what goes into every bundle entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from wire import logpb
from wire.goquote import go_quote
from wire.timefmt import NS_PER_SECOND
from wire.types import StreamType, stream_name_error, tag_error


class InvalidDescriptorError(ValueError):
    """A descriptor the Go butler would refuse; str() is Go's message."""


@dataclass(slots=True)
class StreamDescriptor:
    """One log stream's identity and metadata.

    ``timestamp_ns`` is nanoseconds since the Unix epoch (UTC); None means
    "not given", and the butler stamps the stream itself at registration.
    ``prefix`` is always "" in what the butler emits.
    """

    name: str
    stream_type: StreamType | int
    content_type: str
    timestamp_ns: int | None
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    binary_file_ext: str = ""

    def validation_error(self, check_prefix: bool = False) -> str | None:
        """Go's ``Validate`` message, or None when the descriptor is valid."""
        if check_prefix:
            err = stream_name_error(self.prefix)
            if err is not None:
                return f"invalid prefix: {err}"
        err = stream_name_error(self.name)
        if err is not None:
            return f"invalid name: {err}"
        if self.stream_type not in (StreamType.TEXT, StreamType.BINARY, StreamType.DATAGRAM):
            return f"invalid stream type: {int(self.stream_type)}"
        if not self.content_type:
            return "missing content type"
        if self.timestamp_ns is None:
            return "missing timestamp"
        # Go walks a map (random order); sorting makes the report deterministic.
        for k in sorted(self.tags):
            err = tag_error(k, self.tags[k])
            if err is not None:
                return f"invalid tag {go_quote(k)}: {err}"
        return None

    def validate(self, check_prefix: bool = False) -> None:
        """Raise InvalidDescriptorError as Go's ``Validate(check_prefix)`` would fail."""
        err = self.validation_error(check_prefix)
        if err is not None:
            raise InvalidDescriptorError(err)

    def to_proto(self) -> logpb.LogStreamDescriptor:
        """The protobuf message; the timestamp is floor seconds + non-negative nanos (Go)."""
        msg = logpb.LogStreamDescriptor(
            prefix=self.prefix,
            name=self.name,
            stream_type=int(self.stream_type),
            content_type=self.content_type,
            tags=self.tags,
            binary_file_ext=self.binary_file_ext,
        )
        if self.timestamp_ns is not None:
            secs, nanos = divmod(self.timestamp_ns, NS_PER_SECOND)
            msg.timestamp.CopyFrom(Timestamp(seconds=secs, nanos=nanos))
        return msg

    @classmethod
    def from_proto(cls, msg: logpb.LogStreamDescriptor) -> StreamDescriptor:
        ts = None
        if msg.HasField("timestamp"):
            ts = msg.timestamp.seconds * NS_PER_SECOND + msg.timestamp.nanos
        try:
            stype: StreamType | int = StreamType(msg.stream_type)
        except ValueError:
            stype = msg.stream_type
        return cls(
            name=msg.name,
            stream_type=stype,
            content_type=msg.content_type,
            timestamp_ns=ts,
            tags=dict(msg.tags),
            prefix=msg.prefix,
            binary_file_ext=msg.binary_file_ext,
        )
