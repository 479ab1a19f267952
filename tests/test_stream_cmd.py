"""End to end: ``butlerd stream`` uploads one file or stdin as one stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


class Stream:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.out = tmp / "out"
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}

    def args(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "butlerd", "-output", f"directory,path={self.out}", "stream",
                *args]

    def __call__(self, *args: str, input: bytes | None = None, stdin=None,
                 cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.args(*args), input=input, stdin=stdin, capture_output=True,
                              timeout=60, env=self.env, cwd=cwd or self.tmp)

    def read(self, name: str) -> bytes:
        return (self.out / name).read_bytes()

    def meta(self, name: str) -> dict:
        d, _, leaf = name.rpartition("/")
        return json.loads((self.out / d / f".meta.{leaf}").read_text())


@pytest.fixture
def stream(tmp_path: Path) -> Stream:
    return Stream(tmp_path)


def test_file_gets_its_path_as_the_default_name(stream):
    src = stream.tmp / "build.log"
    src.write_bytes(b"first\nsecond\r\nthird")
    p = stream("-source", str(src))
    assert p.returncode == 0, p.stderr
    # Go MakeStreamName("file:", path): "/" becomes "_", then "file:" is put in front.
    name = "file:" + str(src).replace("/", "_")
    assert stream.read(name) == b"first\nsecond\nthird\n"
    assert stream.meta(name)["content_type"] == "text/plain; charset=utf-8"


def test_relative_file_name_starting_with_a_letter_is_kept(stream):
    (stream.tmp / "x.log").write_bytes(b"relative\n")
    p = stream("-source", "x.log")
    assert p.returncode == 0, p.stderr
    assert stream.read("x.log") == b"relative\n"


def test_stdin_is_the_default_source_named_stdin(stream):
    p = stream(input=b"from stdin\n")
    assert p.returncode == 0, p.stderr
    assert stream.read("stdin") == b"from stdin\n"
    p = stream("-source", "-", "-stream", "name=again", input=b"explicit\n")
    assert stream.read("again") == b"explicit\n"


def test_stdin_redirected_from_a_file_and_from_dev_null(stream):
    src = stream.tmp / "in.bin"
    src.write_bytes(bytes(range(256)) * 1000)
    with open(src, "rb") as f:
        p = stream("-stream", "name=redirected,type=binary", stdin=f)
    assert p.returncode == 0, p.stderr
    assert stream.read("redirected") == bytes(range(256)) * 1000
    with open(os.devnull, "rb") as f:
        p = stream("-stream", "name=empty", stdin=f)
    assert p.returncode == 0, p.stderr
    assert not (stream.out / "empty").exists()


def test_stream_options(stream):
    p = stream("-stream", "name=data/blob,type=binary,content-type=application/x-foo,tag=a=b,tag=c",
               input=b"\x00\x01\x02")
    assert p.returncode == 0, p.stderr
    assert stream.read("data/blob") == b"\x00\x01\x02"
    meta = stream.meta("data/blob")
    assert meta["stream_type"] == "BINARY"
    assert meta["content_type"] == "application/x-foo"
    assert meta["tags"] == {"a": "b", "c": ""}


def test_datagram_stream(stream):
    from wire.varint import encode_uvarint

    grams = [b"one", b"", b"three" * 100]
    body = b"".join(encode_uvarint(len(g)) + g for g in grams)
    p = stream("-stream", "name=dg,type=datagram", input=body)
    assert p.returncode == 0, p.stderr
    assert [stream.read(f"_{i:05d}.dg") for i in range(3)] == grams
    # Go's quirk: the content type stays text unless given.
    assert stream.meta("dg")["content_type"] == "text/plain; charset=utf-8"


def test_large_file_is_complete(stream):
    src = stream.tmp / "big"
    data = os.urandom(1 << 20) * 12  # more than a stream buffers
    src.write_bytes(data)
    p = stream("-source", str(src), "-stream", "name=big,type=binary")
    assert p.returncode == 0, p.stderr
    assert stream.read("big") == data


def test_open_error_exits_250(stream):
    p = stream("-source", str(stream.tmp / "missing"))
    assert p.returncode == 250
    assert b"missing" in p.stderr


def test_bad_stream_flag_exits_2(stream):
    assert stream("-stream", "name=/bad", input=b"").returncode == 2
    assert stream("-stream", "type=nope", input=b"").returncode == 2


def test_interrupt_flushes_what_was_read_and_exits_250(stream):
    r, w = os.pipe()
    args = stream.args("-stream", "name=live")
    args.insert(3, "-log-level=info")
    p = subprocess.Popen(args, stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=stream.env, cwd=stream.tmp)
    os.close(r)
    try:
        os.write(w, b"before the signal\n")
        assert p.stderr is not None
        while b"streaming" not in p.stderr.readline():  # it is reading: signals are handled
            assert p.poll() is None
        os.write(w, b"right before it\n")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        os.close(w)
    assert p.returncode == 250, err
    assert stream.read("live") == b"before the signal\nright before it\n"
