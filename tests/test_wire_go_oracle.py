"""Replay inputs answered by the real Go code (tests/vectors/go_wire_oracle.json).

Each case ran through luci-go at the pinned commit; wire must accept what Go
accepts, refuse what it refuses, read the same values and write the same bytes.
Error texts are compared exactly where wire promises Go's words (names, tags,
project names, MakeStreamName).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wire.handshake import HandshakeError, StreamFlags, decode_handshake, encode_handshake
from wire.timefmt import TimeFormatError, parse_rfc3339
from wire.types import (
    InvalidProjectNameError,
    InvalidStreamNameError,
    StreamType,
    make_stream_name,
    stream_name_error,
    tag_error,
    validate_project_name,
)

CASES = json.loads((Path(__file__).parent / "vectors" / "go_wire_oracle.json").read_text())["cases"]


def by_op(op: str) -> list[dict]:
    return [c for c in CASES if c["in"]["op"] == op]


def text(hexed: str) -> str:
    """A Go string's bytes as the Python str wire receives (raw bytes surrogate-escaped)."""
    return bytes.fromhex(hexed).decode("utf-8", "surrogateescape")


def ids(case: dict) -> str:
    return case["in"].get("hex", "")[:40] or "empty"


@pytest.mark.parametrize("case", by_op("name"), ids=ids)
def test_stream_names(case: dict) -> None:
    assert stream_name_error(text(case["in"]["hex"])) == case["go"]["err"]


@pytest.mark.parametrize("case", by_op("tag"), ids=ids)
def test_tags(case: dict) -> None:
    assert tag_error(text(case["in"]["hex"]), text(case["in"]["hex2"])) == case["go"]["err"]


@pytest.mark.parametrize("case", by_op("project"), ids=ids)
def test_project_names(case: dict) -> None:
    try:
        validate_project_name(text(case["in"]["hex"]))
        got = None
    except InvalidProjectNameError as e:
        got = str(e)
    assert got == case["go"]["err"]


@pytest.mark.parametrize("case", by_op("makename"), ids=ids)
def test_make_stream_name(case: dict) -> None:
    try:
        got = (None, make_stream_name(text(case["in"]["hex"]), *case["in"]["segs"]))
    except InvalidStreamNameError as e:
        got = (str(e), "")
    assert got == (case["go"]["err"], case["go"]["out"])


@pytest.mark.parametrize("case", by_op("time"), ids=ids)
def test_timestamps(case: dict) -> None:
    raw = text(case["in"]["hex"])
    if raw == "null":
        assert case["go"]["err"] is None
        return
    ok = len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"'
    if ok:
        try:
            got = parse_rfc3339(raw[1:-1])
        except TimeFormatError:
            ok = False
    if case["go"]["err"] is not None:
        assert not ok
    else:
        assert ok and str(got) == case["go"]["ts"]


@pytest.mark.parametrize("case", by_op("handshake"), ids=ids)
def test_handshakes(case: dict) -> None:
    data = bytes.fromhex(case["in"]["hex"])
    go = case["go"]
    if go["err"] is not None:
        with pytest.raises(HandshakeError):
            decode_handshake(data)
        return
    flags, rest = decode_handshake(data)
    assert rest == b""
    assert flags.name == text(go["name"])
    assert (flags.content_type or "") == text(go["contentType"])
    assert int(flags.stream_type) == go["type"]
    assert (None if flags.timestamp_ns is None else str(flags.timestamp_ns)) == go["ts"]
    assert flags.tags == {text(k): text(v) for k, v in go["tags"].items()}


@pytest.mark.parametrize("case", by_op("encode"), ids=lambda c: c["in"]["ContentType"][:20])
def test_encoded_handshakes(case: dict) -> None:
    i = case["in"]
    flags = StreamFlags(
        name=i["Name"],
        content_type=i["ContentType"],
        stream_type={"": StreamType.TEXT, "text": StreamType.TEXT, "binary": StreamType.BINARY}.get(
            i["Type"], StreamType.DATAGRAM
        ),
        timestamp_ns=i["Sec"] * 10**9 + i["Nsec"],
        tags=i["Tags"],
    )
    assert encode_handshake(flags).hex() == case["go"]["hex"]
