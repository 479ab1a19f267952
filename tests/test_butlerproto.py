"""The Pub/Sub message layout the collector reads (wire.butlerproto)."""

from __future__ import annotations

import os
import zlib

import pytest

from wire import butlerproto, logpb
from wire.varint import decode_uvarint, encode_uvarint

META_NONE = bytes.fromhex("05 08 01 1a 01 31")
META_ZLIB = bytes.fromhex("07 08 01 10 01 1a 01 31")


def text_bundle(line: bytes, tags: dict[str, str] | None = None) -> logpb.ButlerLogBundle:
    b = logpb.ButlerLogBundle(project="proj", prefix="a/b", secret=b"s" * 36)
    b.timestamp.seconds = 1700000000
    e = b.entries.add()
    e.desc.name = "stdout"
    e.desc.content_type = "text/plain; charset=utf-8"
    e.desc.timestamp.seconds = 1700000000
    for k, v in (tags or {}).items():
        e.desc.tags[k] = v
    log = e.logs.add(stream_index=0, sequence=0)
    log.text.lines.add(value=line, delimiter="\n")
    e.terminal = True
    return b


def sized_bundle(size: int) -> logpb.ButlerLogBundle:
    """A bundle whose serialization is exactly ``size`` bytes."""
    n = size - len(text_bundle(b"").SerializeToString())
    while True:
        b = text_bundle(b"x" * n)
        got = len(b.SerializeToString())
        if got == size:
            return b
        n -= got - size


def split(msg: bytes) -> tuple[bytes, bytes]:
    """The two frames, checking nothing trails them."""
    n, pos = decode_uvarint(msg, 0)
    md, pos = msg[pos : pos + n], pos + n
    header = msg[:pos]
    n, pos2 = decode_uvarint(msg, pos)
    assert pos2 + n == len(msg)
    return header, msg[pos2:]


def test_small_bundle_is_plain_and_byte_exact():
    b = text_bundle(b"hello")
    raw = b.SerializeToString()
    assert len(raw) < 860
    msg = butlerproto.encode(b)
    assert msg == META_NONE + encode_uvarint(len(raw)) + raw


@pytest.mark.parametrize("size,compressed", [(859, False), (860, True), (861, True)])
def test_compression_threshold_is_860_inclusive(size, compressed):
    b = sized_bundle(size)
    header, data = split(butlerproto.encode(b))
    assert header == (META_ZLIB if compressed else META_NONE)
    if compressed:
        assert data[:2] == b"\x78\x9c"  # zlib, default level
        assert zlib.decompress(data) == b.SerializeToString()
    else:
        assert data == b.SerializeToString()


def test_incompressible_data_is_still_compressed():
    raw = os.urandom(5000)
    header, data = split(butlerproto.encode_serialized(raw))
    assert header == META_ZLIB
    assert len(data) > len(raw)
    assert zlib.decompress(data) == raw


def test_compress_false_never_compresses():
    raw = b"a" * 10000
    assert butlerproto.encode_serialized(raw, compress=False) == (
        META_NONE + encode_uvarint(10000) + raw
    )


def test_tags_serialize_sorted_so_messages_are_reproducible():
    tags = {f"k{i}": "v" for i in (5, 1, 9, 3, 7)}
    m1 = butlerproto.encode(text_bundle(b"x", tags))
    m2 = butlerproto.encode(text_bundle(b"x", dict(sorted(tags.items()))))
    assert m1 == m2
    assert m1.index(b"k1") < m1.index(b"k3") < m1.index(b"k9")


def test_round_trip():
    for b in (text_bundle(b"short"), sized_bundle(50_000)):
        m = butlerproto.decode(butlerproto.encode(b))
        assert m.bundle == b
        assert m.metadata.proto_version == "1"
        assert m.metadata.type == logpb.ButlerMetadata.ButlerLogBundle


def test_bundle_over_soft_cap_is_refused_with_go_message():
    raw = b"\0" * (butlerproto.MAX_BUNDLE_SIZE + 1)
    with pytest.raises(butlerproto.BundleTooLargeError) as e:
        butlerproto.encode_serialized(raw)
    assert str(e.value) == "butlerproto: serialized size exceeds soft cap (10485761 > 10485760)"
    # Exactly at the cap is allowed (it compresses well below Pub/Sub's limit).
    butlerproto.encode_serialized(raw[:-1])


def test_message_over_pubsub_limit_is_refused_with_go_message():
    raw = os.urandom(butlerproto.MAX_PUBSUB_MESSAGE_SIZE)  # compression cannot save it
    with pytest.raises(butlerproto.MessageTooLargeError) as e:
        butlerproto.encode_serialized(raw)
    assert str(e.value) == "pubsub: bundle contents violate Pub/Sub size limit"


def test_decode_other_proto_version_gives_no_bundle():
    md = logpb.ButlerMetadata(type=1, proto_version="2").SerializeToString()
    m = butlerproto.decode(encode_uvarint(len(md)) + md + b"\x01\x00")
    assert m.bundle is None and m.raw_bundle == b"\x00"


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "EOF"),
        (META_NONE, "failed to read bundle frame: EOF"),
        (META_NONE + b"\x05ab", "unexpected EOF"),
        (META_ZLIB + b"\x03abc", "failed to buffer bundle frame"),
        (META_ZLIB + b"\x02\x78\x9c", "unexpected EOF"),
        (bytes.fromhex("02 08 02") + b"\x00", "unknown data type: 2"),
        (bytes.fromhex("02 10 07") + b"\x00", "unknown data type: Invalid"),
        (bytes.fromhex("04 08 01 10 07") + b"\x00", "unknown compression type: 7"),
    ],
)
def test_decode_rejects_what_the_collector_rejects(data, message):
    with pytest.raises(butlerproto.ButlerProtoError, match=message):
        butlerproto.decode(data)


def test_decode_limits_decompressed_size():
    raw = sized_bundle(2000).SerializeToString()
    msg = butlerproto.encode_serialized(raw)
    assert len(msg) < 200  # it is all "x": a small message that inflates 10x
    with pytest.raises(butlerproto.ButlerProtoError, match="limit exceeded"):
        butlerproto.decode(msg, max_size=1999)
    assert butlerproto.decode(msg, max_size=2000).raw_bundle == raw
