"""The Butler's Pub/Sub message: what LogDog's collector reads off the topic.

Goal: a message the collector accepts exactly as it accepts the Go Butler's
(luci-go ``logdog/client/pubsubprotocol``). One message carries one bundle::

    uvarint(len(M)) M uvarint(len(D)) D

``M`` is a serialized ``ButlerMetadata`` (type ButlerLogBundle, compression,
proto_version "1"); ``D`` is the serialized ``ButlerLogBundle``, zlib
compressed when the serialized bundle is at least 860 bytes long (even if
compression makes it bigger, as Go does).

What is and is not byte-identical to the Go Butler:

* ``M`` and both frame headers: identical (proto3 field order 1, 2, 3; the
  NONE compression is omitted as Go omits zero values).
* An uncompressed ``D`` (< 860 bytes): identical to Go's whenever the bundle
  itself serializes identically. Maps (descriptor tags) are serialized with
  sorted keys here; Go's ``proto.Marshal`` orders map entries randomly, so
  sorted order is one of the orders Go itself produces.
* A compressed ``D``: NOT byte-identical. Go's ``compress/zlib`` runs Go's own
  deflate implementation; Python runs C zlib. Both use level 6 and both emit
  the same two header bytes (78 9c) and Adler-32 trailer, but the deflate
  blocks differ (measured: Go's output is typically a few bytes longer). What
  the collector sees after decompressing is identical, and the collector only
  decompresses, so this does not change what LogDog stores.

Size limits and error messages follow the reference: a serialized bundle
above 10 MiB is refused before compression ("serialized size exceeds soft
cap"), and a whole message above Pub/Sub's 10,000,000-byte publish limit is
refused ("bundle contents violate Pub/Sub size limit").
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from wire import logpb
from wire.types import MAX_BUTLER_LOG_BUNDLE_SIZE
from wire.varint import decode_uvarint, encode_uvarint

#: Compress when the serialized bundle is at least this long (Go DefaultCompressThreshold).
COMPRESS_THRESHOLD = 860
#: Largest serialized bundle, before compression (Go types.MaxButlerLogBundleSize).
MAX_BUNDLE_SIZE = MAX_BUTLER_LOG_BUNDLE_SIZE
#: Largest Pub/Sub message data (Go gcps.MaxPublishRequestBytes).
MAX_PUBSUB_MESSAGE_SIZE = 10_000_000
#: ButlerMetadata.proto_version (Go logpb.Version).
PROTO_VERSION = "1"
#: Go's zlib.DefaultCompression maps to level 6.
ZLIB_LEVEL = 6


class ButlerProtoError(ValueError):
    """A message cannot be built or read."""


class BundleTooLargeError(ButlerProtoError):
    def __init__(self, size: int, limit: int = MAX_BUNDLE_SIZE) -> None:
        super().__init__(f"butlerproto: serialized size exceeds soft cap ({size} > {limit})")
        self.size = size
        self.limit = limit


class MessageTooLargeError(ButlerProtoError):
    def __init__(self, size: int, limit: int = MAX_PUBSUB_MESSAGE_SIZE) -> None:
        super().__init__("pubsub: bundle contents violate Pub/Sub size limit")
        self.size = size
        self.limit = limit


def encode_serialized(
    data: bytes, *, compress: bool = True, max_size: int = MAX_BUNDLE_SIZE
) -> bytes:
    """Build a message from an already serialized ``ButlerLogBundle``.

    Raises BundleTooLargeError (``data`` above ``max_size``) or
    MessageTooLargeError (result above the Pub/Sub limit).
    """
    if len(data) > max_size:
        raise BundleTooLargeError(len(data), max_size)
    if compress and len(data) >= COMPRESS_THRESHOLD:
        data = zlib.compress(data, ZLIB_LEVEL)
        md = _METADATA_ZLIB
    else:
        md = _METADATA_NONE
    message = md + encode_uvarint(len(data)) + data
    if len(message) > MAX_PUBSUB_MESSAGE_SIZE:
        raise MessageTooLargeError(len(message))
    return message


def encode(
    bundle: logpb.ButlerLogBundle, *, compress: bool = True, max_size: int = MAX_BUNDLE_SIZE
) -> bytes:
    """Serialize ``bundle`` (map keys sorted) and build its message."""
    return encode_serialized(
        bundle.SerializeToString(deterministic=True), compress=compress, max_size=max_size
    )


@dataclass(slots=True)
class Message:
    """A decoded message. ``bundle`` is None when the metadata names a
    protocol version other than "1" (the Go reader then returns no bundle and
    no error)."""

    metadata: logpb.ButlerMetadata
    bundle: logpb.ButlerLogBundle | None
    #: The serialized bundle after decompression.
    raw_bundle: bytes


def decode(data: bytes, *, max_size: int = MAX_BUNDLE_SIZE) -> Message:
    """Read one message as the collector does; raise ButlerProtoError if it would refuse it.

    Stricter than Go in one place: a frame that claims more bytes than the
    message holds is an error here, where Go would try to parse the short
    remainder.
    """
    md_bytes, pos = _read_frame(data, 0, max_size)
    md = logpb.ButlerMetadata()
    try:
        md.ParseFromString(md_bytes)
    except Exception as e:  # protobuf raises DecodeError (a plain Exception)
        raise ButlerProtoError(f"butlerproto: failed to unmarshal Metadata frame: {e}") from e
    if md.type != logpb.ButlerMetadata.ButlerLogBundle:
        raise ButlerProtoError(
            f"butlerproto: unknown data type: {_enum_name(logpb.ButlerMetadata.ContentType, md.type)}"
        )
    try:
        payload, _ = _read_frame(data, pos, max_size)
    except ButlerProtoError as e:
        raise ButlerProtoError(
            f"butlerproto: failed to read Bundle data: failed to read bundle frame: {e}"
        ) from e
    if md.compression == logpb.ButlerMetadata.ZLIB:
        payload = _inflate(payload, max_size)
    elif md.compression != logpb.ButlerMetadata.NONE:
        raise ButlerProtoError(
            "butlerproto: failed to read Bundle data: unknown compression type: "
            + _enum_name(logpb.ButlerMetadata.Compression, md.compression)
        )
    if md.proto_version != PROTO_VERSION:
        return Message(md, None, payload)
    bundle = logpb.ButlerLogBundle()
    try:
        bundle.ParseFromString(payload)
    except Exception as e:
        raise ButlerProtoError(f"butlerproto: failed to unmarshal Bundle frame: {e}") from e
    return Message(md, bundle, payload)


def _enum_name(enum: object, value: int) -> str:
    """Go's String() of a proto enum: its name, or the number if unknown."""
    try:
        return enum.Name(value)  # type: ignore[attr-defined]
    except ValueError:
        return str(value)


def _metadata(compression: int) -> bytes:
    md = logpb.ButlerMetadata(
        type=logpb.ButlerMetadata.ButlerLogBundle,
        compression=compression,
        proto_version=PROTO_VERSION,
    )
    raw = md.SerializeToString()
    return encode_uvarint(len(raw)) + raw


_METADATA_NONE = _metadata(logpb.ButlerMetadata.NONE)
_METADATA_ZLIB = _metadata(logpb.ButlerMetadata.ZLIB)


def _read_frame(data: bytes, pos: int, max_size: int) -> tuple[bytes, int]:
    try:
        header = decode_uvarint(data, pos)
    except ValueError as e:
        raise ButlerProtoError(str(e)) from e
    if header is None:
        raise ButlerProtoError("EOF" if pos >= len(data) else "unexpected EOF")
    size, start = header
    if size > max_size:
        raise ButlerProtoError("frame: frame size exceeds maximum")
    end = start + size
    if end > len(data):
        raise ButlerProtoError("unexpected EOF")
    return data[start:end], end


def _inflate(payload: bytes, max_size: int) -> bytes:
    prefix = "butlerproto: failed to read Bundle data: butlerproto: failed to buffer bundle frame: "
    d = zlib.decompressobj()
    try:
        # One byte past the limit tells "too big" from "exactly the limit".
        out = d.decompress(payload, max_size + 1)
    except zlib.error as e:
        raise ButlerProtoError(prefix + str(e)) from e
    if len(out) > max_size:
        raise ButlerProtoError(prefix + "limit exceeded")
    if not d.eof:
        raise ButlerProtoError(prefix + "unexpected EOF")
    return out
