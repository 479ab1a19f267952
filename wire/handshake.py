"""The stream-server handshake: ``BTLR1\\x1e``, uvarint length, JSON flags.

Goals: accept exactly what the Go Butler's ``streamproto.Flags.FromHandshake``
accepts, read the same values from it, and produce byte-for-byte what the Go
``streamclient`` sends.

Plan:

* The layout is declared once with ``construct`` (``HANDSHAKE``) and used to
  build handshakes. Decoding is incremental instead (``HandshakeDecoder``):
  clients such as luci-py send the varint one byte per ``send()``, and the
  decoder must stop exactly at the end of the frame so body bytes that came in
  the same read are handed on untouched (``.remainder``).
* The JSON is read the way Go's ``encoding/json`` fills ``Flags``: the whole
  value is syntax-checked first, then the top-level members are applied in
  order. Keys match case-insensitively (an exact match wins), unknown keys are
  ignored, a repeated key overwrites, and ``null`` does what it does in Go
  (reset for name/type/timestamp/tags, no-op for contentType). Strings get
  Go's repairs: each invalid UTF-8 byte and each unpaired ``\\uD8xx`` escape
  becomes U+FFFD. The timestamp is parsed from its raw JSON text, as Go's
  ``time.Time.UnmarshalJSON`` does (so an escaped timestamp is refused).
* Differences from Go, both on input Go handles badly: any non-whitespace
  after the object inside the frame is refused (Go only notices it when its
  reader had not already buffered it), and a top-level ``null`` is refused
  (Go accepts it as empty flags, which the butler then refuses for the
  empty name). The outcome for the client is the same: the connection closes.
"""

from __future__ import annotations

import codecs
import json
import re
import time
from dataclasses import dataclass, field

import construct

from wire.descriptor import StreamDescriptor
from wire.goquote import go_json_string
from wire.timefmt import GO_ZERO_TIME_NS, TimeFormatError, format_rfc3339nano, parse_rfc3339
from wire.types import StreamType, default_content_type, stream_name_error, tag_error
from wire.varint import VarintOverflowError, decode_uvarint

MAGIC = b"BTLR1\x1e"
MAX_HANDSHAKE_SIZE = 1024 * 1024  # largest JSON frame; exactly this size is allowed

HANDSHAKE = construct.Struct(
    "magic" / construct.Const(MAGIC),
    "flags" / construct.Prefixed(construct.VarInt, construct.GreedyBytes),
)
"""Declaration of a whole handshake: the magic, then one recordio frame of JSON."""

_TYPE_NAMES = {"text": StreamType.TEXT, "binary": StreamType.BINARY, "datagram": StreamType.DATAGRAM}
_TYPE_KEYS = {v: k for k, v in _TYPE_NAMES.items()}


class HandshakeError(ValueError):
    """The handshake is refused; the message names the reason."""


@dataclass(slots=True)
class StreamFlags:
    """What a client asked for in its handshake (Go ``streamproto.Flags``).

    ``name`` is "" when the client sent none; it is checked with the rest of
    the descriptor, as in Go. ``content_type`` is None when absent or empty
    (the type's default applies); ``timestamp_ns`` is None when absent, null
    or Go's zero time (the butler stamps the stream).
    """

    name: str = ""
    content_type: str | None = None
    stream_type: StreamType = StreamType.TEXT
    timestamp_ns: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def descriptor(self) -> StreamDescriptor:
        """The stream's descriptor (Go ``Flags.Descriptor``); not yet validated."""
        return StreamDescriptor(
            name=self.name,
            stream_type=self.stream_type,
            content_type=self.content_type or default_content_type(self.stream_type),
            timestamp_ns=self.timestamp_ns,
            tags=dict(self.tags),
        )


# --- decoding ---------------------------------------------------------------------

_MAGIC_LEN = len(MAGIC)
_PHASE_MAGIC, _PHASE_LENGTH, _PHASE_BODY, _PHASE_DONE, _PHASE_FAILED = range(5)


class HandshakeDecoder:
    """Incremental handshake reader: ``feed()`` bytes as they arrive.

    ``feed`` returns None until the frame is complete, then the StreamFlags;
    bytes past the frame are in ``.remainder`` (the start of the body). A bad
    handshake raises HandshakeError, at once if the fault is already visible
    (a wrong magic byte, an oversized length) so the connection can be closed
    early. At EOF, ``incomplete_reason()`` says whether the handshake was cut.
    """

    __slots__ = ("_phase", "_buf", "_length", "bytes_received", "remainder", "flags")

    def __init__(self) -> None:
        self._phase = _PHASE_MAGIC
        self._buf = bytearray()
        self._length = 0
        self.bytes_received = 0
        self.remainder = b""
        self.flags: StreamFlags | None = None

    @property
    def done(self) -> bool:
        return self._phase == _PHASE_DONE

    def feed(self, data: bytes | bytearray | memoryview) -> StreamFlags | None:
        if self._phase == _PHASE_DONE:
            raise RuntimeError("handshake already decoded; body bytes belong to the stream")
        if self._phase == _PHASE_FAILED:
            raise HandshakeError("handshake already failed")
        self.bytes_received += len(data)
        buf = self._buf
        buf += data
        try:
            if self._phase == _PHASE_MAGIC:
                have = buf[:_MAGIC_LEN]
                if have != MAGIC[: len(have)]:
                    raise HandshakeError(f"magic number mismatch: got({bytes(have)!r}) expected({MAGIC!r})")
                if len(buf) < _MAGIC_LEN:
                    return None
                del buf[:_MAGIC_LEN]
                self._phase = _PHASE_LENGTH
            if self._phase == _PHASE_LENGTH:
                try:
                    got = decode_uvarint(buf)
                except VarintOverflowError as e:
                    raise HandshakeError(f"reading property frame: {e}") from None
                if got is None:
                    return None
                length, end = got
                if length > MAX_HANDSHAKE_SIZE:
                    raise HandshakeError(
                        f"reading property frame: frame size exceeds maximum ({length} > {MAX_HANDSHAKE_SIZE})"
                    )
                del buf[:end]
                self._length = length
                self._phase = _PHASE_BODY
            if len(buf) < self._length:
                return None
            payload = bytes(buf[: self._length])
            self.remainder = bytes(buf[self._length :])
            self._buf = bytearray()
            self.flags = decode_flags(payload)
            self._phase = _PHASE_DONE
            return self.flags
        except HandshakeError:
            self._phase = _PHASE_FAILED
            self._buf = bytearray()
            raise

    def incomplete_reason(self) -> str | None:
        """Why the handshake is unfinished if the peer closed now; None once decoded."""
        if self._phase == _PHASE_DONE:
            return None
        if self._phase == _PHASE_FAILED:
            return "handshake failed"
        return f"connection closed during handshake ({self.bytes_received} bytes received)"


def decode_handshake(data: bytes) -> tuple[StreamFlags, bytes]:
    """Decode a complete handshake from ``data``: (flags, body bytes after it)."""
    dec = HandshakeDecoder()
    flags = dec.feed(data)
    if flags is None:
        raise HandshakeError(dec.incomplete_reason() or "incomplete handshake")
    return flags, dec.remainder


# --- the JSON object ---------------------------------------------------------------------


def _go_replace(err: UnicodeError) -> tuple[str, int]:
    # Go's decoder turns every invalid byte into its own U+FFFD.
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd" * (err.end - err.start), err.end


codecs.register_error("wire.go_replace", _go_replace)

_WS = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


class _Object(list):
    """A JSON object as its (key, value) pairs: Go sees repeated keys, dict() would not."""


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_Object)
_scan_once = _DECODER.scan_once
_scanstring = json.decoder.scanstring


def _go_str(s: str) -> str:
    """Go's repair of a decoded JSON string: unpaired surrogate escapes → U+FFFD."""
    return _SURROGATE.sub("\ufffd", s) if not s.isascii() else s


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Object):
        return "object"
    return "array"


def _syntax_error(msg: str) -> HandshakeError:
    return HandshakeError(f"parsing flag JSON: {msg}")


def _members(text: str) -> tuple[list[tuple[str, object, int, int]], int]:
    """Syntax-check one JSON object; return its members (key, value, raw start, raw end) and its end."""
    n = len(text)
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    try:
        if pos >= n or text[pos] != "{":
            try:
                value, _ = _scan_once(text, pos)
            except StopIteration:
                raise _syntax_error("invalid JSON (expected an object)") from None
            raise _syntax_error(f"cannot unmarshal {_json_kind(value)} into Go value of type streamproto.Flags")
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        members: list[tuple[str, object, int, int]] = []
        if text.startswith("}", pos):
            return members, pos + 1
        while True:
            if not text.startswith('"', pos):
                raise _syntax_error(f"invalid JSON: expected a string key at offset {pos}")
            key, pos = _scanstring(text, pos + 1, True)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if not text.startswith(":", pos):
                raise _syntax_error(f"invalid JSON: expected ':' at offset {pos}")
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
            try:
                value, end = _scan_once(text, pos)
            except StopIteration:
                raise _syntax_error(f"invalid JSON: expected a value at offset {pos}") from None
            members.append((key, value, pos, end))
            pos = _WS.match(text, end).end()  # type: ignore[union-attr]
            if text.startswith(",", pos):
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if text.startswith("}", pos):
                return members, pos + 1
            raise _syntax_error(f"invalid JSON: expected ',' or '}}' at offset {pos}")
    except HandshakeError:
        raise
    except RecursionError:
        raise _syntax_error("invalid JSON: nesting too deep") from None
    except ValueError as e:  # JSONDecodeError and NaN/Infinity
        raise _syntax_error(f"invalid JSON: {e}") from None


# Go's encoding/json folds keys for its case-insensitive match: ASCII letters
# to upper case, plus the two non-ASCII runes whose fold is an ASCII letter.
_FOLD_SPECIAL = {"\u017f": "S", "\u212a": "K"}
_FIELDS = {"name": "name", "contentType": "contentType", "type": "type", "timestamp": "timestamp", "tags": "tags"}
_FOLDED_FIELDS = {k.upper(): k for k in _FIELDS}


def _field_for(key: str) -> str | None:
    exact = _FIELDS.get(key)
    if exact is not None:
        return exact
    if key.isascii():
        return _FOLDED_FIELDS.get(key.upper())
    folded = "".join(_FOLD_SPECIAL.get(c, c.upper() if c.isascii() else c) for c in key)
    return _FOLDED_FIELDS.get(folded)


def _type_error(kind: str, go_type: str, field_name: str) -> HandshakeError:
    return HandshakeError(
        f"parsing flag JSON: json: cannot unmarshal {kind} into Go struct field Flags.{field_name} of type {go_type}"
    )


def decode_flags(payload: bytes) -> StreamFlags:
    """Decode the handshake's JSON frame into StreamFlags, or raise HandshakeError."""
    text = payload.decode("utf-8", "wire.go_replace")
    members, end = _members(text)
    rest = text[_WS.match(text, end).end() :]  # type: ignore[union-attr]
    if rest:
        raise HandshakeError(f"handshake had trailing data after the JSON object: {rest[:20]!r}")

    flags = StreamFlags()
    saved: HandshakeError | None = None  # Go keeps decoding after a type mismatch
    for key, value, start, stop in members:
        fname = _field_for(key)
        if fname is None:
            continue
        if fname == "name":
            if value is None:
                value = ""
            elif not isinstance(value, str):
                raise _type_error(_json_kind(value), "string", "name")
            name = _go_str(value)
            err = stream_name_error(name)
            if err is not None:
                raise HandshakeError(f"parsing flag JSON: invalid stream name {name!r}: {err}")
            flags.name = name
        elif fname == "contentType":
            if value is None:
                continue
            if not isinstance(value, str):
                if saved is None:
                    saved = _type_error(_json_kind(value), "string", "contentType")
                continue
            flags.content_type = _go_str(value) or None
        elif fname == "type":
            if value is not None and not isinstance(value, str):
                raise _type_error(_json_kind(value), "string", "type")
            stype = _TYPE_NAMES.get(value or "")
            if stype is None:
                raise HandshakeError(
                    f"parsing flag JSON: unknown stream type {value!r}; must be one of [binary, datagram, text]"
                )
            flags.stream_type = stype
        elif fname == "timestamp":
            flags.timestamp_ns = _timestamp(text[start:stop])
        else:
            flags.tags = _tags(value)
    if saved is not None:
        raise saved
    return flags


def _timestamp(raw: str) -> int | None:
    """Go ``time.Time.UnmarshalJSON`` on the raw JSON text; zero time → None."""
    if raw == "null":
        return None
    if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
        raise HandshakeError("parsing flag JSON: Time.UnmarshalJSON: input is not a JSON string")
    try:
        ns = parse_rfc3339(raw[1:-1])
    except TimeFormatError as e:
        raise HandshakeError(f"parsing flag JSON: bad timestamp: {e}") from None
    return None if ns == GO_ZERO_TIME_NS else ns


def _tags(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, _Object):
        raise _type_error(_json_kind(value), "map[string]string", "tags")
    tags: dict[str, str] = {}
    for k, v in value:
        if v is None:
            v = ""
        elif not isinstance(v, str):
            raise _type_error(_json_kind(v), "string", "tags")
        tags[_go_str(k)] = _go_str(v)
    for k in sorted(tags):
        err = tag_error(k, tags[k])
        if err is not None:
            raise HandshakeError(f"parsing flag JSON: invalid tag {k!r}: {err}")
    return tags


# --- encoding -------------------------------------------------------------------------


def encode_flags(flags: StreamFlags) -> bytes:
    """The JSON the Go client sends for ``flags`` (compact, Go key order and escaping).

    Like the Go client (``streamclient.mkOptions``), an absent content type is
    replaced by the type's default and an absent timestamp by the current time.
    """
    parts = []
    if flags.name:
        parts.append('"name":' + go_json_string(flags.name))
    content_type = flags.content_type or default_content_type(flags.stream_type)
    parts.append('"contentType":' + go_json_string(content_type))
    if flags.stream_type != StreamType.TEXT:
        try:
            parts.append(f'"type":"{_TYPE_KEYS[StreamType(flags.stream_type)]}"')
        except (KeyError, ValueError):
            raise ValueError(f"unknown stream type: {flags.stream_type!r}") from None
    ts = flags.timestamp_ns if flags.timestamp_ns is not None else time.time_ns()
    parts.append(f'"timestamp":"{format_rfc3339nano(ts)}"')
    if flags.tags:
        tags = ",".join(go_json_string(k) + ":" + go_json_string(flags.tags[k]) for k in sorted(flags.tags))
        parts.append('"tags":{' + tags + "}")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def encode_handshake(flags: StreamFlags) -> bytes:
    """The whole handshake the Go client writes: magic, uvarint length, JSON."""
    payload = encode_flags(flags)
    if len(payload) > MAX_HANDSHAKE_SIZE:
        raise ValueError(f"handshake JSON too large ({len(payload)} > {MAX_HANDSHAKE_SIZE})")
    return HANDSHAKE.build({"flags": payload})
