"""Go's ways of quoting a string: ``strconv.Quote`` and ``json.Marshal``.

``go_quote`` words error and log messages as Go words them; a ``str`` is quoted
as the Go string holding the same bytes (``go_bytes``), so bytes that were
invalid UTF-8 on the wire come out as ``\\xNN`` as in Go. ``go_json_string``
writes JSON string literals byte for byte as Go's encoding/json does (the
handshake the Go client sends, the directory output's descriptors).
"""

from __future__ import annotations

import re

from wire.types import go_bytes

_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(s: str | bytes) -> str:
    """Printable runes stay as they are; everything else is escaped as Go escapes it."""
    raw = s if isinstance(s, bytes) else go_bytes(s)
    out = ['"']
    for c in raw.decode("utf-8", "surrogateescape"):
        o = ord(c)
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")  # an invalid UTF-8 byte
        elif c == " " or c.isprintable():
            out.append(c)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_JSON_ESCAPE_RE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _json_escape(m: re.Match[str]) -> str:
    c = m.group()
    esc = _JSON_ESCAPES.get(c)
    if esc is not None:
        return esc
    if c >= "\ud800":
        # A surrogate-escaped byte is one invalid byte to Go; any other lone
        # surrogate is three (its UTF-8-like encoding). Each becomes U+FFFD.
        return "\\ufffd" if "\udc80" <= c <= "\udcff" else "\\ufffd" * 3
    return f"\\u{ord(c):04x}"


def go_json_string(s: str) -> str:
    """Go ``json.Marshal(string)``: HTML-safe escapes, other non-ASCII raw."""
    return '"' + _JSON_ESCAPE_RE.sub(_json_escape, s) + '"'
