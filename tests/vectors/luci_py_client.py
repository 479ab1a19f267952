"""Bytes the legacy luci-py LogDog stream client sends, with its exact send() sizes.

Source: ../shared/vectors/luci-py-client.md ("Bytes sent by the luci-py LogDog
stream client (client/libs/logdog, 2026-08)"), captured from the real client
writing to a recording Unix socket with LOGDOG_NAMESPACE=u/step. The hex is
copied verbatim from there; the expected fields are what the Go butler reads
from each handshake.

Use: ``from tests.vectors.luci_py_client import VECTORS``. Each vector's
``handshake + body`` is the whole connection; ``send_sizes`` (when recorded)
splits that connection into the client's individual send() calls, including a
0-byte send for the empty datagram. Vectors 4 and 5 were recorded without send
sizes; ``chunks()`` then uses the client's usual pattern (magic, one send per
varint byte, the JSON, then the body in one piece).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.types import StreamType


@dataclass(frozen=True)
class LuciPyVector:
    name: str
    json_text: str
    handshake: bytes
    body: bytes
    send_sizes: tuple[int, ...] | None
    # Expected decoded handshake fields.
    stream_name: str
    stream_type: StreamType
    content_type: str | None  # None: the client sent no contentType
    tags: dict[str, str] = field(default_factory=dict)
    timestamp_ns: int | None = None  # luci-py never sends a timestamp
    # Body meaning: text lines, raw bytes, or the datagram payloads.
    datagrams: tuple[bytes, ...] | None = None

    @property
    def connection(self) -> bytes:
        return self.handshake + self.body

    def chunks(self) -> list[bytes]:
        """The connection split as the client sent it."""
        sizes = self.send_sizes
        if sizes is None:
            varint_len = len(self.handshake) - 6 - len(self.json_text.encode())
            sizes = (6,) + (1,) * varint_len + (len(self.json_text.encode()),)
            if self.body:
                sizes += (len(self.body),)
        data = self.connection
        assert sum(sizes) == len(data), (self.name, sum(sizes), len(data))
        out, pos = [], 0
        for n in sizes:
            out.append(data[pos : pos + n])
            pos += n
        return out


VECTORS: list[LuciPyVector] = [
    LuciPyVector(
        name="text, tags",
        json_text='{"name": "u/step/stdout", "tags": {"k": "v"}, "type": "text"}',
        handshake=bytes.fromhex(
            "42544c52311e3d7b226e616d65223a2022752f737465702f7374646f7574222c202274616773223a207b"
            "226b223a202276227d2c202274797065223a202274657874227d"
        ),
        body=bytes.fromhex("68656c6c6f0a77c3b6726c6420f09f98840a"),  # "hello\n", "wörld 😄\n"
        send_sizes=(6, 1, 61, 6, 12),
        stream_name="u/step/stdout",
        stream_type=StreamType.TEXT,
        content_type=None,
        tags={"k": "v"},
    ),
    LuciPyVector(
        name="binary, content type",
        json_text='{"contentType": "application/octet-stream", "name": "u/step/blob", "type": "binary"}',
        handshake=bytes.fromhex(
            "42544c52311e547b22636f6e74656e7454797065223a20226170706c69636174696f6e2f6f637465742d"
            "73747265616d222c20226e616d65223a2022752f737465702f626c6f62222c202274797065223a202262"
            "696e617279227d"
        ),
        body=bytes.fromhex("000102ff"),
        send_sizes=(6, 1, 84, 4),
        stream_name="u/step/blob",
        stream_type=StreamType.BINARY,
        content_type="application/octet-stream",
    ),
    LuciPyVector(
        name="datagram (the recipe engine's build.proto stream), two-byte length",
        json_text=(
            '{"contentType": "application/luci+proto; message=buildbucket.v2.Build; encoding=zlib", '
            '"name": "u/step/build.proto", "type": "datagram"}'
        ),
        handshake=bytes.fromhex(
            "42544c52311e88017b22636f6e74656e7454797065223a20226170706c69636174696f6e2f6c7563692b"
            "70726f746f3b206d6573736167653d6275696c646275636b65742e76322e4275696c643b20656e636f64"
            "696e673d7a6c6962222c20226e616d65223a2022752f737465702f6275696c642e70726f746f222c2022"
            "74797065223a2022646174616772616d227d"
        ),
        body=bytes.fromhex("0364673000c801") + b"\x78" * 200,
        send_sizes=(6, 1, 1, 136, 1, 3, 1, 0, 1, 1, 200),
        stream_name="u/step/build.proto",
        stream_type=StreamType.DATAGRAM,
        content_type="application/luci+proto; message=buildbucket.v2.Build; encoding=zlib",
        datagrams=(b"dg0", b"", b"x" * 200),
    ),
    LuciPyVector(
        name="text stream whose socket was given to a child process as stdout",
        json_text='{"name": "u/step/child", "type": "text"}',
        handshake=bytes.fromhex(
            "42544c52311e287b226e616d65223a2022752f737465702f6368696c64222c202274797065223a202274"
            "657874227d"
        ),
        body=bytes.fromhex("66726f6d206368696c640a"),  # "from child\n", written by the child
        send_sizes=None,
        stream_name="u/step/child",
        stream_type=StreamType.TEXT,
        content_type=None,
    ),
    LuciPyVector(
        name="minimal",
        json_text='{"name": "u/step/urltest", "type": "text"}',
        handshake=bytes.fromhex(
            "42544c52311e2a7b226e616d65223a2022752f737465702f75726c74657374222c202274797065223a20"
            "2274657874227d"
        ),
        body=b"",
        send_sizes=None,
        stream_name="u/step/urltest",
        stream_type=StreamType.TEXT,
        content_type=None,
    ),
]
