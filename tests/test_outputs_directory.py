"""The directory output writes what the Go Butler's directory output writes."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    DatagramContent,
    LogEntry,
    Partial,
    TextContent,
)
from butlerd.outputs import OutputConfig, OutputConfigError, OutputFlagError, create_output
from butlerd.outputs.directory import DirectoryOutput, descriptor_json
from wire.goquote import go_json_string
from wire.descriptor import StreamDescriptor
from wire.types import StreamType

BASE_NS = 1704164645 * 10**9  # 2024-01-02T03:04:05Z

# Expected strings below were printed by a throwaway Go program (not in the
# repo) that calls, as the Go directory output does,
#   (&jsonpb.Marshaler{Indent: "  ", OrigName: true}).Marshal(w, desc)
# with github.com/golang/protobuf v1.5.4 and the luci logpb package at
# go.chromium.org/luci v0.0.0-20260822014153-22eba00a8fe4 (go1.26.8).
GO_JSONPB = [
    (
        StreamDescriptor("stdout", StreamType.TEXT, "text/plain; charset=utf-8", BASE_NS),
        '{\n  "name": "stdout",\n  "content_type": "text/plain; charset=utf-8",\n'
        '  "timestamp": "2024-01-02T03:04:05Z"\n}',
    ),
    (
        StreamDescriptor(
            "u/step/0/log/0",
            StreamType.BINARY,
            "application/octet-stream",
            BASE_NS + 123_000_000,
            {"logdog.viewer_url": "https://ci.example.com/build/1", "buildbucket.bucket": "ci"},
        ),
        '{\n  "name": "u/step/0/log/0",\n  "stream_type": "BINARY",\n'
        '  "content_type": "application/octet-stream",\n'
        '  "timestamp": "2024-01-02T03:04:05.123Z",\n  "tags": {\n'
        '    "buildbucket.bucket": "ci",\n'
        '    "logdog.viewer_url": "https://ci.example.com/build/1"\n  }\n}',
    ),
    (
        StreamDescriptor(
            "u/build.proto",
            StreamType.DATAGRAM,
            "application/luci+proto; message=buildbucket.v2.Build; encoding=zlib",
            BASE_NS + 123_456_000,
            {
                "html": '<a href="x">&amp;</a>',
                "ctl": "\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f",
                "uni": "\u00e9 \u00fc \u0142 \u65e5\u672c \u2028 \u2029 \U0001f600 \u00a0 "
                "\u200b \ufeff \ufffd",
                "slash": "a/b\\c'd",
                "empty": "",
                "B.upper": "1",
                "a.lower": "2",
                "0digit": "3",
            },
        ),
        '{\n  "name": "u/build.proto",\n  "stream_type": "DATAGRAM",\n'
        '  "content_type": "application/luci+proto; message=buildbucket.v2.Build; encoding=zlib",\n'
        '  "timestamp": "2024-01-02T03:04:05.123456Z",\n  "tags": {\n'
        '    "0digit": "3",\n    "B.upper": "1",\n    "a.lower": "2",\n'
        '    "ctl": "\\u0000\\u0001\\u0007\\b\\t\\n\\u000b\\f\\r\\u001b\\u001f\x7f",\n'
        '    "empty": "",\n'
        '    "html": "\\u003ca href=\\"x\\"\\u003e\\u0026amp;\\u003c/a\\u003e",\n'
        '    "slash": "a/b\\\\c\'d",\n'
        '    "uni": "\u00e9 \u00fc \u0142 \u65e5\u672c \\u2028 \\u2029 \U0001f600 \u00a0 '
        '\u200b \ufeff \ufffd"\n  }\n}',
    ),
    (
        StreamDescriptor(
            "a/b/c",
            StreamType.TEXT,
            "text/x-<weird>&",
            BASE_NS + 123_456_789,
            prefix="some/prefix",
            binary_file_ext="txt",
        ),
        '{\n  "prefix": "some/prefix",\n  "name": "a/b/c",\n'
        '  "content_type": "text/x-\\u003cweird\\u003e\\u0026",\n'
        '  "timestamp": "2024-01-02T03:04:05.123456789Z",\n  "binary_file_ext": "txt"\n}',
    ),
    (StreamDescriptor("x", 0, "", None), '{\n  "name": "x"\n}'),
    (
        StreamDescriptor("x", 0, "", BASE_NS + 100),
        '{\n  "name": "x",\n  "timestamp": "2024-01-02T03:04:05.000000100Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", BASE_NS + 1000),
        '{\n  "name": "x",\n  "timestamp": "2024-01-02T03:04:05.000001Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", BASE_NS + 1_000_000),
        '{\n  "name": "x",\n  "timestamp": "2024-01-02T03:04:05.001Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", BASE_NS + 120_000_000),
        '{\n  "name": "x",\n  "timestamp": "2024-01-02T03:04:05.120Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", BASE_NS + 999_999_999),
        '{\n  "name": "x",\n  "timestamp": "2024-01-02T03:04:05.999999999Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", 0),
        '{\n  "name": "x",\n  "timestamp": "1970-01-01T00:00:00Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", -500_000_000),
        '{\n  "name": "x",\n  "timestamp": "1969-12-31T23:59:59.500Z"\n}',
    ),
    (
        StreamDescriptor("x", 0, "", 253402300799 * 10**9),
        '{\n  "name": "x",\n  "timestamp": "9999-12-31T23:59:59Z"\n}',
    ),
    (
        StreamDescriptor("x", StreamType.BINARY, "", None, {"k": "v"}),
        '{\n  "name": "x",\n  "stream_type": "BINARY",\n  "tags": {\n    "k": "v"\n  }\n}',
    ),
    (StreamDescriptor("x", 7, "", None), '{\n  "name": "x",\n  "stream_type": 7\n}'),
]


@pytest.mark.parametrize("desc,expected", GO_JSONPB, ids=range(len(GO_JSONPB)))
def test_meta_json_matches_go_jsonpb(desc: StreamDescriptor, expected: str) -> None:
    assert descriptor_json(desc) == expected


def test_go_json_string_escapes_like_encoding_json() -> None:
    assert go_json_string("a<b>&\"\\/") == '"a\\u003cb\\u003e\\u0026\\"\\\\/"'
    assert go_json_string("\x00\x1f\x7f") == '"\\u0000\\u001f\x7f"'
    # A lone surrogate (undecodable input) becomes U+FFFD, as Go does for invalid UTF-8.
    assert go_json_string("a\udcff") == '"a\\ufffd"'


# --- the files -------------------------------------------------------------------


def text_desc(name: str, **kw) -> StreamDescriptor:
    return StreamDescriptor(name, StreamType.TEXT, "text/plain; charset=utf-8", BASE_NS, **kw)


def entry(i: int, content, seq: int = 0) -> LogEntry:
    return LogEntry(time_offset_ns=0, prefix_index=i, stream_index=i, sequence=seq, content=content)


def send(out: DirectoryOutput, *entries: BundleEntry) -> None:
    asyncio.run(out.send_bundle(Bundle(BASE_NS, list(entries))))


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def tree(root) -> dict[str, bytes]:
    found = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            found[os.path.relpath(p, root)] = read(p)
    return found


def test_text_lines_get_newline_whatever_the_delimiter(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    desc = text_desc("u/step/0/stdout")
    send(
        out,
        BundleEntry(desc, [entry(0, TextContent(b"foo\nbar\r\nbaz\r\r\n")), entry(1, TextContent(b"par"))]),
    )
    # The partial "par" already got its "\n" (Go quirk); its continuation follows.
    send(out, BundleEntry(desc, [entry(2, TextContent(b"tial\nend\r"))], terminal=True, terminal_index=2))
    asyncio.run(out.close())
    assert tree(tmp_path) == {
        "u/step/0/.meta.stdout": descriptor_json(desc).encode(),
        "u/step/0/stdout": b"foo\nbar\nbaz\r\npar\ntial\nend\r\n",
    }


def test_text_fast_path_equals_per_line_rule(tmp_path) -> None:
    """Go writes value + "\\n" for every Text.Line; check the bulk rewrite against it."""
    samples = [b"", b"\n", b"\r\n", b"a", b"a\r", b"\r\r\n\n", b"x\ry\r\nz", b"\n\n\r\nlast\r\r"]
    out = DirectoryOutput(str(tmp_path))
    for i, data in enumerate(samples):
        desc = text_desc(f"s{i}")
        send(out, BundleEntry(desc, [entry(0, TextContent(data))], terminal=True))
        expected = b"".join(line.value + b"\n" for line in TextContent(data).lines())
        assert read(tmp_path / f"s{i}") == expected, data


def test_binary_appended_and_meta_written_on_first_entry(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    desc = StreamDescriptor("bin", StreamType.BINARY, "application/octet-stream", BASE_NS)
    # A first entry with no logs still creates the (empty) data file.
    send(out, BundleEntry(desc, []))
    assert read(tmp_path / "bin") == b""
    assert read(tmp_path / ".meta.bin") == descriptor_json(desc).encode()
    send(out, BundleEntry(desc, [entry(0, BinaryContent(b"\x00\x01")), entry(1, BinaryContent(b"\xff"))]))
    send(out, BundleEntry(desc, [entry(2, BinaryContent(b"\r\n"))], terminal=True, terminal_index=2))
    assert read(tmp_path / "bin") == b"\x00\x01\xff\r\n"


def test_datagrams_one_file_each_fragments_joined(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    desc = StreamDescriptor("a/dg", StreamType.DATAGRAM, "application/x-logdog-datagram", BASE_NS)
    send(
        out,
        BundleEntry(
            desc,
            [
                entry(0, DatagramContent(b"first"), 0),
                entry(1, DatagramContent(b""), 1),
                entry(2, DatagramContent(b"he", Partial(0, 5, False)), 2),
            ],
        ),
    )
    assert not (tmp_path / "a" / "dg").exists()  # datagram streams have no data file
    send(out, BundleEntry(desc, [entry(3, DatagramContent(b"l", Partial(1, 5, False)), 2)]))
    send(
        out,
        BundleEntry(
            desc,
            [entry(4, DatagramContent(b"lo", Partial(2, 5, True)), 2), entry(5, DatagramContent(b"x"), 3)],
            terminal=True,
            terminal_index=5,
        ),
    )
    assert tree(tmp_path) == {
        "a/.meta.dg": descriptor_json(desc).encode(),
        "a/_00000.dg": b"first",
        "a/_00001.dg": b"",
        "a/_00002.dg": b"hello",
        "a/_00003.dg": b"x",
    }


def test_unfinished_datagram_left_as_is_at_close(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    desc = StreamDescriptor("dg", StreamType.DATAGRAM, "application/x-logdog-datagram", BASE_NS)
    send(out, BundleEntry(desc, [entry(0, DatagramContent(b"ab", Partial(0, 9, False)))]))
    asyncio.run(out.close())
    assert read(tmp_path / "_00000.dg") == b"ab"


def test_datagram_counter_grows_past_five_digits(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    desc = StreamDescriptor("dg", StreamType.DATAGRAM, "application/x-logdog-datagram", BASE_NS)
    send(out, BundleEntry(desc, []))
    out._streams["/+/dg"].datagram_count = 100000
    send(out, BundleEntry(desc, [entry(0, DatagramContent(b"z"))]))
    assert read(tmp_path / "_100000.dg") == b"z"


def test_terminal_forgets_stream_so_a_new_entry_starts_over(tmp_path) -> None:
    # The butler never reuses a name; but if it did, Go would truncate and
    # start again, because the stream was forgotten at its terminal entry.
    out = DirectoryOutput(str(tmp_path))
    desc = text_desc("t")
    send(out, BundleEntry(desc, [entry(0, TextContent(b"one\n"))], terminal=True))
    send(out, BundleEntry(desc, [entry(0, TextContent(b"two\n"))]))
    assert read(tmp_path / "t") == b"two\n"


def test_file_error_aborts_rest_of_bundle(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    ok = text_desc("a")
    clash = text_desc("a/b")  # "a" is a file, so "a/" cannot be a directory
    later = text_desc("c")
    send(out, BundleEntry(ok, [entry(0, TextContent(b"x\n"))]))
    with pytest.raises(OSError):
        send(
            out,
            BundleEntry(clash, [entry(1, TextContent(b"y\n"))]),
            BundleEntry(later, [entry(2, TextContent(b"z\n"))]),
        )
    assert not (tmp_path / "c").exists()
    assert not (tmp_path / ".meta.c").exists()
    # The output keeps working for the next bundle.
    send(out, BundleEntry(later, [entry(3, TextContent(b"z\n"))]))
    assert read(tmp_path / "c") == b"z\n"


def test_directories_are_0750(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        out = DirectoryOutput(str(tmp_path / "root"))
        send(out, BundleEntry(text_desc("p/q/r"), [entry(0, TextContent(b"x\n"))]))
    finally:
        os.umask(old)
    for d in ("root", "root/p", "root/p/q"):
        assert stat.S_IMODE(os.stat(tmp_path / d).st_mode) == 0o750, d
    assert stat.S_IMODE(os.stat(tmp_path / "root/p/q/r").st_mode) == 0o644


def test_close_closes_every_file(tmp_path) -> None:
    out = DirectoryOutput(str(tmp_path))
    send(out, BundleEntry(text_desc("a"), [entry(0, TextContent(b"x"))]))
    fd = out._streams["/+/a"].fd
    asyncio.run(out.close())
    with pytest.raises(OSError):
        os.fstat(fd)
    asyncio.run(out.close())  # a second close is harmless


def test_factory_options_and_env(tmp_path) -> None:
    out = create_output(f"directory,path={tmp_path}", OutputConfig(project="p"))
    assert isinstance(out, DirectoryOutput)
    assert (out.max_size, out.max_send_bundles) == (1 << 30, 1)
    assert out.url_env() == {"LOGDOG_COORDINATOR_HOST": f"file://{tmp_path}"}
    assert str(out.stats()) == "{SentBytes:0 SentMessages:0 DiscardedMessages:0 Errors:0}"
    rel = create_output('directory,path="rel,dir"', OutputConfig())
    assert rel.url_env() == {"LOGDOG_COORDINATOR_HOST": "file://rel,dir"}


def test_missing_path_is_a_config_error() -> None:
    with pytest.raises(OutputConfigError) as e:
        create_output("directory", OutputConfig())
    assert not isinstance(e.value, OutputFlagError)
    assert str(e.value) == "missing required output path"


@pytest.mark.parametrize("spec", ["directory,path", "directory,path="])
def test_path_without_value_is_a_flag_error(spec: str) -> None:
    # Go passes "-path" with no value to its flag package ("k=" is like "k").
    with pytest.raises(OutputFlagError, match="^flag needs an argument: -path$"):
        create_output(spec, OutputConfig())


def test_unknown_option_is_a_flag_error() -> None:
    with pytest.raises(OutputFlagError, match="flag provided but not defined: -bogus"):
        create_output("directory,path=x,bogus=1", OutputConfig())


def test_write_many_survives_short_writes(tmp_path, monkeypatch):
    """A short writev() (allowed by POSIX) must not lose or reorder bytes."""
    from butlerd.outputs import directory

    real_writev = os.writev

    def short_writev(fd, buffers):
        joined = b"".join(buffers)
        return real_writev(fd, [joined[: max(1, len(joined) // 3)]])

    monkeypatch.setattr(directory.os, "writev", short_writev)
    monkeypatch.setattr(directory, "_IOV_MAX", 3)
    pieces = [b"alpha-", b"", b"beta-", b"gamma-" * 100, b"delta"]
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        directory._write_many(fd, pieces)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(pieces)
