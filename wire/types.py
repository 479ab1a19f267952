"""Stream names, tags, project names, content types and size limits.

Rules and error messages are those of luci-go ``logdog/common/types`` and
``config.ValidateProjectName``: a stream the Go Butler refuses must be refused
here with the same words, and one it accepts must be accepted.

Names are Python ``str``. Go works on UTF-8 bytes and walks runes with
``range``, where each invalid byte is one U+FFFD rune of width 1. Byte lengths
and byte indexes in messages are therefore computed on the UTF-8 form; a
surrogate-escaped byte (U+DC80..U+DCFF, as ``os.fsdecode`` produces) stands
for that raw byte. Valid names are plain ASCII, so the common path is a
single regular expression match; the rune walk only runs to explain a failure.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import unquote, urlsplit

MAX_STREAM_NAME_LENGTH = 4096
MAX_TAG_KEY_SIZE = 64
MAX_TAG_VALUE_SIZE = 4096
MAX_LOG_ENTRY_DATA_SIZE = 10 * 1024 * 1024
MAX_DATAGRAM_SIZE = MAX_LOG_ENTRY_DATA_SIZE
MAX_BUTLER_LOG_BUNDLE_SIZE = 10 * 1024 * 1024
PREFIX_SECRET_LENGTH = 36
OP_NONCE_LENGTH = 32

STREAM_NAME_SEP = "/"
STREAM_PATH_SEP = "+"

CONTENT_TYPE_TEXT = "text/plain; charset=utf-8"
CONTENT_TYPE_BINARY = "application/octet-stream"
CONTENT_TYPE_LOGDOG_DATAGRAM = "application/x-logdog-datagram"
CONTENT_TYPE_LOGDOG_LOG = "application/x-logdog-logs"
CONTENT_TYPE_LOGDOG_INDEX = "application/x-logdog-log-index"


class StreamType(IntEnum):
    """logpb.StreamType; the numbers are the protobuf enum values."""

    TEXT = 0
    BINARY = 1
    DATAGRAM = 2


def default_content_type(stream_type: int) -> str:
    """Content type a stream gets when its client named none (Go's Flags.Descriptor)."""
    if stream_type == StreamType.TEXT:
        return CONTENT_TYPE_TEXT
    if stream_type == StreamType.DATAGRAM:
        return CONTENT_TYPE_LOGDOG_DATAGRAM
    return CONTENT_TYPE_BINARY


class InvalidStreamNameError(ValueError):
    """A stream name the Go ``StreamName.Validate`` rejects; str() is Go's message."""


class InvalidTagError(ValueError):
    """A tag the Go ``ValidateTag`` rejects; str() is Go's message."""


class InvalidProjectNameError(ValueError):
    """A project name the Go ``ValidateProjectName`` rejects; str() is Go's message."""


class InvalidStreamPathError(ValueError):
    """A stream path (``prefix/+/name``) that does not validate."""


# --- Go string helpers --------------------------------------------------------


def _go_surrogates(err: UnicodeError) -> tuple[bytes, int]:
    # Escaped raw bytes go back to themselves; any other lone surrogate gets
    # its 3-byte form, which Go, like us, sees as three invalid bytes.
    assert isinstance(err, UnicodeEncodeError)
    out = bytearray()
    for ch in err.object[err.start : err.end]:
        c = ord(ch)
        if 0xDC80 <= c <= 0xDCFF:
            out.append(c - 0xDC00)
        else:
            out += bytes((0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)))
    return bytes(out), err.end


codecs.register_error("wire.go_bytes", _go_surrogates)


def go_bytes(s: str) -> bytes:
    """The bytes a Go string holding ``s`` would have."""
    return s.encode("utf-8", "wire.go_bytes")


def go_len(s: str) -> int:
    """Go ``len(s)``: the length in bytes."""
    return len(s) if s.isascii() else len(go_bytes(s))


def _go_rune_at(b: bytes, i: int) -> tuple[str, int]:
    """Go ``utf8.DecodeRune(b[i:])`` as (character, width); invalid → (U+FFFD, 1)."""
    c = b[i]
    if c < 0x80:
        return chr(c), 1
    n = 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
    if n:
        try:
            return b[i : i + n].decode("utf-8"), n
        except UnicodeDecodeError:
            pass
    return "\ufffd", 1


def _is_alnum_ascii(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9")


# --- stream names ---------------------------------------------------------------

_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.\-]*(?:/[A-Za-z0-9][A-Za-z0-9:_.\-]*)*\Z", re.ASCII)


def stream_name_error(name: str) -> str | None:
    """Go's ``StreamName.Validate`` message for ``name``, or None if it is valid."""
    if _VALID_NAME.match(name) is not None and len(name) <= MAX_STREAM_NAME_LENGTH:
        return None
    if not name:
        return "must contain at least one character"
    b = go_bytes(name)
    if len(b) > MAX_STREAM_NAME_LENGTH:
        return f"stream name is too long ({len(b)} > {MAX_STREAM_NAME_LENGTH})"
    seg_start = 0
    last = ""
    i = 0
    n = len(b)
    while i < n:
        ch, width = _go_rune_at(b, i)
        if not _is_alnum_ascii(ch):
            if i == seg_start:
                return f"segment (at {seg_start}) must begin with alphanumeric character"
            if ch == "/":
                seg_start = i + 1
            elif ch not in ".-_:":
                return f"illegal character ({ch}) at index {i}"
        last = ch
        i += width
    if last == "/":
        return "name may not end with a separator"
    return None  # pragma: no cover - the regular expression accepts every valid name


def validate_stream_name(name: str) -> None:
    """Raise InvalidStreamNameError (Go's message) unless ``name`` is a valid stream name."""
    err = stream_name_error(name)
    if err is not None:
        raise InvalidStreamNameError(err)


def is_valid_stream_name(name: str) -> bool:
    return stream_name_error(name) is None


def trim(name: str) -> str:
    """Strip leading and trailing separators (Go ``StreamName.Trim``)."""
    return name.strip(STREAM_NAME_SEP)


def construct(*parts: str) -> str:
    """Join the non-empty parts with ``/`` after trimming each (Go ``types.Construct``)."""
    return STREAM_NAME_SEP.join(trim(p) for p in parts if p)


def split(name: str) -> tuple[str, str]:
    """Split at the last separator: ``("a/b", "c")`` for ``a/b/c``; ``("", name)`` without one."""
    idx = name.rfind(STREAM_NAME_SEP)
    if idx < 0:
        return "", name
    return name[:idx], name[idx + 1 :]


def segments(name: str) -> list[str]:
    """The ``/``-separated segments; none for the empty name."""
    return name.split(STREAM_NAME_SEP) if name else []


def join(prefix: str, name: str) -> str:
    """The stream path ``<prefix>/+/<name>`` of both trimmed (Go ``StreamName.Join``)."""
    return f"{trim(prefix)}/+/{trim(name)}"


def namespaces(name: str) -> list[str]:
    """Every enclosing namespace, innermost first, ending with ``""``.

    ``a/b/c`` → ``["a/b/", "a/", ""]``. A stream is refused when any of these
    has been drained, so the order matters only for reporting.
    """
    out: list[str] = []
    s = name
    while True:
        idx = s.rfind(STREAM_NAME_SEP)
        if idx < 0:
            out.append("")
            return out
        out.append(s[: idx + 1])
        s = s[:idx]


def as_namespace(name: str) -> str:
    """``name`` with a trailing ``/`` (unless empty or already there)."""
    if not name or name.endswith(STREAM_NAME_SEP):
        return name
    return name + STREAM_NAME_SEP


_MAKE_NAME_BAD = re.compile(r"[^A-Za-z0-9._\-:]", re.ASCII)


def make_stream_name(fill: str, *segs: str) -> str:
    """Build a valid stream name from arbitrary segments (Go ``MakeStreamName``).

    Each disallowed character becomes ``_`` (``/`` included, so a segment stays
    one segment); a segment not starting with an alphanumeric gets ``fill``
    in front. ``fill`` is validated once, and only when it is needed.
    Raises InvalidStreamNameError.
    """
    if not segs:
        raise InvalidStreamNameError("at least one segment must be provided")
    fill_ok = False
    out: list[str] = []
    for seg in segs:
        v = _MAKE_NAME_BAD.sub("_", seg)
        if not v or not _is_alnum_ascii(v[0]):
            if not fill_ok:
                err = stream_name_error(fill)
                if err is not None:
                    raise InvalidStreamNameError(f"fill string must be a valid stream name: {err}")
                fill_ok = True
            v = fill + v
        out.append(v)
    result = construct(*out)
    validate_stream_name(result)
    return result


# --- stream paths (prefix/+/name) ---------------------------------------------------


def split_stream_path(path: str) -> tuple[str, bool, str]:
    """Go ``StreamPath.SplitParts``: (prefix, separator seen, name).

    The split is at the first component that is exactly ``+`` and is followed
    by ``/``; components such as ``+foo`` or ``bar+`` are ordinary text.
    """
    inside = False
    sep = False
    seg_idx = 0
    prefix: str | None = None
    for i, ch in enumerate(path):
        if prefix is not None:
            return prefix, sep, path[i:]
        if ch == STREAM_PATH_SEP:
            sep = not inside
            inside = True
        elif ch == STREAM_NAME_SEP:
            if sep:
                prefix = path[:seg_idx]
            inside = False
            seg_idx = i
        else:
            sep = False
            inside = True
    if prefix is not None:
        return prefix, sep, ""
    return (path[:seg_idx] if sep else path), sep, ""


def validate_stream_path(path: str, complete: bool = True) -> None:
    """Both halves of ``prefix/+/name`` must be valid stream names.

    With ``complete=False`` (Go ``ValidatePartial``) an empty half is allowed.
    Raises InvalidStreamPathError carrying the stream-name message.
    """
    prefix, _, name = split_stream_path(path)
    for part in (prefix, name):
        if complete or part:
            err = stream_name_error(part)
            if err is not None:
                raise InvalidStreamPathError(err)


def split_last(path: str) -> tuple[str, str]:
    """Go ``StreamPath.SplitLast``: split at the last ``/`` unless it is at index 0."""
    idx = path.rfind(STREAM_NAME_SEP)
    if idx > 0:
        return path[:idx], path[idx + 1 :]
    return "", path


# --- tags and project names ------------------------------------------------------------


def tag_error(key: str, value: str) -> str | None:
    """Go's ``ValidateTag`` message, or None if the tag is valid."""
    err = stream_name_error(key)
    if err is not None:
        return f"invalid tag key: {err}"
    if len(key) > MAX_TAG_KEY_SIZE:  # a valid key is ASCII, so chars == bytes
        return f"tag key exceeds maximum size ({len(key)} > {MAX_TAG_KEY_SIZE})"
    vlen = go_len(value)
    if vlen > MAX_TAG_VALUE_SIZE:
        return f"tag value exceeds maximum size ({vlen} > {MAX_TAG_VALUE_SIZE})"
    return None


def validate_tag(key: str, value: str) -> None:
    """Raise InvalidTagError (Go's message) unless ``key``/``value`` form a valid tag."""
    err = tag_error(key, value)
    if err is not None:
        raise InvalidTagError(err)


def validate_project_name(name: str) -> None:
    """LUCI project names: ``[a-z][a-z0-9_-]*`` (Go ``config.ValidateProjectName``)."""
    if not name:
        raise InvalidProjectNameError("cannot have empty name")
    b = go_bytes(name)
    i = 0
    while i < len(b):
        ch, width = _go_rune_at(b, i)
        if "a" <= ch <= "z":
            pass
        elif ("0" <= ch <= "9") or ch in "-_":
            if i == 0:
                raise InvalidProjectNameError("must begin with a letter")
        else:
            raise InvalidProjectNameError(f"invalid character at {i} ({ch})")
        i += width


# --- logdog:// addresses ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamAddr:
    """A ``logdog://host/project/prefix/+/name`` address."""

    host: str
    project: str
    path: str

    def url(self) -> str:
        return f"logdog://{self.host}/{self.project}/{self.path}"


def parse_stream_addr(url: str) -> StreamAddr:
    """Parse a ``logdog://`` URL (Go ``types.ParseURL``); raise ValueError naming the fault."""
    if url.startswith(":"):
        raise ValueError(f"failed to parse URL: missing protocol scheme: {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise ValueError(f"failed to parse URL: {e}") from None
    if parts.scheme != "logdog":
        raise ValueError(f'URL scheme "{parts.scheme}" is not logdog')
    path = unquote(parts.path)
    pieces = path.split("/", 2)
    if len(pieces) != 3 or pieces[0]:
        raise ValueError(f"URL path does not include both project and path components: {path}")
    project, spath = pieces[1], pieces[2]
    try:
        validate_project_name(project)
    except InvalidProjectNameError as e:
        raise ValueError(f'invalid project name: "{project}": {e}') from None
    try:
        validate_stream_path(spath)
    except InvalidStreamPathError as e:
        raise ValueError(f'invalid stream path: "{spath}": {e}') from None
    return StreamAddr(parts.netloc, project, spath)
