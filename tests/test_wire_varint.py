"""wire.varint: Go encoding/binary uvarint semantics."""

import pytest

from wire.varint import MAX_VARINT_LEN, VarintOverflowError, decode_uvarint, encode_uvarint, frame, uvarint_size

# Examples from wire-outputs-cli.md §1.2.
KNOWN = [
    (0, "00"),
    (5, "05"),
    (127, "7f"),
    (128, "8001"),
    (186, "ba01"),
    (300, "ac02"),
    (1_048_576, "808040"),
    (1_048_577, "818040"),
    (2**64 - 1, "ffffffffffffffffff01"),
]


@pytest.mark.parametrize(("value", "hexed"), KNOWN)
def test_known_encodings_round_trip(value: int, hexed: str) -> None:
    assert encode_uvarint(value).hex() == hexed
    assert decode_uvarint(bytes.fromhex(hexed)) == (value, len(hexed) // 2)
    assert uvarint_size(value) == len(hexed) // 2


@pytest.mark.parametrize("value", [1 << k for k in range(64)] + [(1 << k) - 1 for k in range(1, 65)])
def test_round_trip_at_every_size_threshold(value: int) -> None:
    enc = encode_uvarint(value)
    assert len(enc) <= MAX_VARINT_LEN
    assert decode_uvarint(b"junk" + enc + b"tail", 4) == (value, 4 + len(enc))


def test_incomplete_returns_none_and_consumes_nothing() -> None:
    assert decode_uvarint(b"") is None
    assert decode_uvarint(b"\x80") is None
    assert decode_uvarint(b"\x80\x80") is None
    assert decode_uvarint(b"\xff" * 9) is None
    assert decode_uvarint(b"\x05", 1) is None


def test_non_minimal_encodings_are_accepted_like_go() -> None:
    assert decode_uvarint(b"\x80\x00") == (0, 2)
    assert decode_uvarint(b"\x81\x80\x80\x00") == (1, 4)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff" * 9 + b"\x02",  # 10th byte > 1
        b"\xff" * 9 + b"\x79",  # the Go handshake test's value
        b"\x80" * 10,  # 10 continuation bytes: more than 10 bytes
        b"\x80" * 10 + b"\x00",
        b"\x80" * 9 + b"\x80\x01",
    ],
)
def test_overflow_raises_instead_of_crashing(data: bytes) -> None:
    with pytest.raises(VarintOverflowError, match="varint overflows a 64-bit integer"):
        decode_uvarint(data)


def test_overflow_error_is_a_value_error() -> None:
    assert issubclass(VarintOverflowError, ValueError)


def test_tenth_byte_of_one_is_the_largest_value() -> None:
    assert decode_uvarint(b"\x80" * 9 + b"\x01") == (1 << 63, 10)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_uvarint(bytearray(b"\xac\x02")) == (300, 2)
    assert decode_uvarint(memoryview(b"\x00\xac\x02"), 1) == (300, 3)


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_encode_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        encode_uvarint(bad)


def test_frame_is_length_then_payload() -> None:
    assert frame(b"hello") == b"\x05hello"
    assert frame(b"") == b"\x00"
    assert frame(b"x" * 200) == b"\xc8\x01" + b"x" * 200


def _go_read_uvarint(data: bytes) -> tuple[int, int] | None | str:
    """Go's binary.ReadUvarint, transcribed: value/length, None on EOF, "overflow"."""
    x = s = 0
    for i in range(MAX_VARINT_LEN):
        if i >= len(data):
            return None
        b = data[i]
        if b < 0x80:
            if i == MAX_VARINT_LEN - 1 and b > 1:
                return "overflow"
            return x | b << s, i + 1
        x |= (b & 0x7F) << s
        s += 7
    return "overflow"


def test_agrees_with_go_read_uvarint_on_random_bytes() -> None:
    import random

    rng = random.Random(7)
    pool = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFF]
    for _ in range(20000):
        data = bytes(rng.choice(pool) if rng.random() < 0.7 else rng.randrange(256) for _ in range(rng.randint(0, 12)))
        want = _go_read_uvarint(data)
        try:
            got: object = decode_uvarint(data)
        except VarintOverflowError:
            got = "overflow"
        assert got == want, data.hex()
