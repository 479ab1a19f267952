"""Go's ``strconv.Quote`` (``%q``), for error and log messages worded as Go words them.

A ``str`` is quoted as the Go string holding the same bytes (``go_bytes``), so
bytes that were invalid UTF-8 on the wire come out as ``\\xNN`` as in Go.
"""

from __future__ import annotations

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
