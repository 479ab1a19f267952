"""Unsigned LEB128 varints and length-prefixed frames, as Go's encoding/binary.

Decoding follows ``binary.Uvarint``: at most 10 bytes; a 10th byte above 1
(or an 11th byte) overflows 64 bits and raises ``VarintOverflowError``.
Non-minimal encodings such as ``80 00`` are accepted, like Go. A buffer that
ends before the last byte returns None so stream parsers can wait for more.
The decoder runs once per datagram, so it is a plain tight loop.
"""

MAX_VARINT_LEN = 10
_MAX_UINT64 = (1 << 64) - 1


class VarintOverflowError(ValueError):
    """The varint does not fit in 64 bits (Go: "varint overflows a 64-bit integer")."""

    def __init__(self) -> None:
        super().__init__("varint overflows a 64-bit integer")


def encode_uvarint(n: int) -> bytes:
    """Minimal encoding of ``n`` (0 <= n < 2**64), as ``binary.PutUvarint``."""
    if n < 0 or n > _MAX_UINT64:
        raise ValueError(f"uvarint out of range: {n}")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_uvarint(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int] | None:
    """Decode the varint at ``buf[pos:]``: ``(value, end)`` or None if incomplete."""
    end = len(buf)
    if pos >= end:
        return None
    b = buf[pos]
    if b < 0x80:  # the common case: a length below 128
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    i = pos + 1
    while i < end:
        b = buf[i]
        i += 1
        if b < 0x80:
            if shift == 63 and b > 1:
                raise VarintOverflowError()
            return value | (b << shift), i
        if shift == 63:
            # A 10th byte with the continuation bit set: more than 10 bytes.
            raise VarintOverflowError()
        value |= (b & 0x7F) << shift
        shift += 7
    return None


def uvarint_size(n: int) -> int:
    """Bytes ``encode_uvarint(n)`` takes (1 for 0)."""
    return max(1, (n.bit_length() + 6) // 7)


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """A recordio frame: uvarint length, then the payload."""
    return encode_uvarint(len(payload)) + bytes(payload)
