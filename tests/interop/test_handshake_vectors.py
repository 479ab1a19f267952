"""The handshake bytes the real Go stream client sends, kept as vectors in tests/vectors/.

The driver opens one stream per option set against a socket that only records, and the bytes
must equal the committed vectors (which the Python client helper must reproduce byte for
byte). To regenerate after changing CASES: BUTLERD_REGEN_VECTORS=1 pytest -m interop -k vectors.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .harness import REPO_ROOT, GoBinaries

pytestmark = pytest.mark.interop

VECTORS = REPO_ROOT / "tests" / "vectors" / "go_client_handshakes.json"
LUCI_MODULE = "go.chromium.org/luci v0.0.0-20260822014153-22eba00a8fe4"
MAGIC = b"BTLR1\x1e"

# Option keys: name, namespace, type (text|binary|datagram; absent = text), content_type,
# timestamp (RFC 3339, given to WithTimestamp), tags (WithTagMap), for_process.
CASES: list[dict[str, object]] = [
    {"id": "text_defaults", "name": "stdout", "timestamp": "2024-01-02T03:04:05.123456789Z"},
    {"id": "timestamp_whole_second", "name": "stdout", "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "timestamp_trailing_zeros_trimmed", "name": "stdout",
     "timestamp": "2024-01-02T03:04:05.120000Z"},
    {"id": "timestamp_offset_converted_to_utc", "name": "stdout",
     "timestamp": "2024-01-02T05:04:05.5+02:00"},
    {"id": "timestamp_unix_epoch", "name": "stdout", "timestamp": "1970-01-01T00:00:00Z"},
    {"id": "binary", "name": "out.bin", "type": "binary", "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "binary_content_type", "name": "x/y.tar", "type": "binary",
     "content_type": "application/x-tar", "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "datagram_build_proto", "name": "u/build.proto", "type": "datagram",
     "content_type": "application/luci+proto; message=buildbucket.v2.Build; encoding=zlib",
     "timestamp": "2024-01-02T02:04:05Z", "tags": {"b": "2", "a": "x"}},
    {"id": "text_content_type", "name": "log", "content_type": "text/x-custom",
     "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "tags_sorted_and_html_escaped", "name": "tagged",
     "timestamp": "2024-01-02T03:04:05Z",
     "tags": {"z": "<&>", "a": "unicode é ✓", "m": "", "k.e_y-1:x": "line\u2028sep\u2029"}},
    {"id": "content_type_escaped", "name": "ct", "content_type": "text/html; q=<a&b>; ü",
     "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "empty_tag_map_omitted", "name": "notags", "timestamp": "2024-01-02T03:04:05Z",
     "tags": {}},
    {"id": "namespace", "namespace": "ns/sub", "name": "log",
     "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "namespace_slashes_trimmed", "namespace": "/ns/", "name": "log",
     "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "for_process_text", "name": "proc/stdout", "for_process": True,
     "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "for_process_binary", "name": "proc/stderr", "type": "binary", "for_process": True,
     "timestamp": "2024-01-02T03:04:05Z", "tags": {"t": "v"}},
    {"id": "two_byte_length", "name": "a/" + "b" * 120, "timestamp": "2024-01-02T03:04:05Z"},
    {"id": "three_byte_length", "name": "big", "timestamp": "2024-01-02T03:04:05Z",
     "tags": {f"t{i}": "v" * 4096 for i in range(5)}},
]


def _decode(raw: bytes) -> tuple[int, bytes, bytes]:
    """(frame length, JSON bytes, anything after the frame)."""
    assert raw[:6] == MAGIC
    length = shift = 0
    pos = 6
    while True:
        byte = raw[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return length, raw[pos:pos + length], raw[pos + length:]


def _capture(go_binaries: GoBinaries, tmp_path: Path) -> list[dict[str, object]]:
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(CASES))
    proc = subprocess.run(
        [str(go_binaries.driver), "capture", str(cases_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    captured = {c["id"]: bytes.fromhex(c["handshake_hex"]) for c in json.loads(proc.stdout)}
    vectors = []
    for case in CASES:
        raw = captured[case["id"]]
        length, frame, rest = _decode(raw)
        assert len(frame) == length and rest == b"", f"{case['id']}: not exactly one frame"
        vectors.append({
            "id": case["id"],
            "options": {k: v for k, v in case.items() if k != "id"},
            "handshake_hex": raw.hex(),
            "json": frame.decode("utf-8"),
        })
    return vectors


def test_go_client_handshakes_match_vectors(go_binaries: GoBinaries, tmp_path: Path) -> None:
    vectors = _capture(go_binaries, tmp_path)
    # The decoded frames say what each option set is about, independent of the file.
    by_id = {v["id"]: json.loads(v["json"]) for v in vectors}
    assert by_id["text_defaults"] == {
        "name": "stdout", "contentType": "text/plain; charset=utf-8",
        "timestamp": "2024-01-02T03:04:05.123456789Z"}
    assert by_id["timestamp_offset_converted_to_utc"]["timestamp"] == "2024-01-02T03:04:05.5Z"
    assert by_id["namespace_slashes_trimmed"]["name"] == "ns/log"
    assert by_id["datagram_build_proto"]["type"] == "datagram"

    document = {
        "about": "Exact bytes (magic, uvarint length, JSON) that the Go butlerlib/streamclient "
                 "sends when opening a stream with these options; captured by "
                 "tests/interop/test_handshake_vectors.py.",
        "luci": LUCI_MODULE,
        "client": "go.chromium.org/luci/logdog/client/butlerlib/streamclient",
        "vectors": vectors,
    }
    if os.environ.get("BUTLERD_REGEN_VECTORS") == "1":
        VECTORS.parent.mkdir(exist_ok=True)
        VECTORS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    committed = json.loads(VECTORS.read_text())
    assert committed["luci"] == LUCI_MODULE
    assert [v["id"] for v in committed["vectors"]] == [v["id"] for v in vectors]
    for old, new in zip(committed["vectors"], vectors):
        assert old == new, f"vector {new['id']} changed"


def test_vectors_pin_the_built_module() -> None:
    """The vectors name the luci version that go.mod pins; a bump must regenerate them."""
    go_mod = (REPO_ROOT / "tests" / "interop" / "go.mod").read_text()
    assert LUCI_MODULE in go_mod
