"""The client helper end to end: streams opened with clients/ land in butlerd's directory output."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clients import AsyncStreamClient, Bootstrap, StreamClient

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Butler:
    sock: str
    out: Path
    proc: subprocess.Popen

    @property
    def address(self) -> str:
        return f"unix:{self.sock}"

    def wait_for(self, *names: str) -> None:
        """Wait until butlerd has written something for each file (so it accepted the stream)."""
        deadline = time.monotonic() + 10
        while not all((self.out / n).exists() for n in names):
            assert self.proc.poll() is None, self.proc.communicate()[1]
            assert time.monotonic() < deadline, f"butlerd wrote none of {names}: {sorted(self.out.rglob('*'))}"
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: butlerd drains every open stream and flushes the output."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert not os.path.exists(self.sock), err

    def meta(self, name: str) -> dict:
        parent, _, leaf = name.rpartition("/")
        return json.loads((self.out / parent / f".meta.{leaf}").read_text())


def _listening(path: str) -> bool:
    # The socket file exists between bind() and listen(); only a connection proves it serves.
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


@pytest.fixture
def butler() -> Iterator[Butler]:
    tmp = tempfile.mkdtemp(prefix="cle", dir="/tmp")  # short: AF_UNIX path limit
    sock, out = os.path.join(tmp, "sock"), Path(tmp, "out")
    proc = subprocess.Popen(
        [sys.executable, "-m", "butlerd", "-project", "test", "-output-no-buffer",
         "-output", f"directory,path={out}", "serve", "-streamserver-uri", f"unix:{sock}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 15
    while not _listening(sock):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "butlerd did not start listening"
        time.sleep(0.02)
    yield Butler(sock, out, proc)
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
    shutil.rmtree(tmp, ignore_errors=True)


def test_each_stream_kind_lands_in_the_directory_output(butler: Butler) -> None:
    client = StreamClient(butler.address, namespace="u")
    when = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    with client.text("stdout", timestamp=when, tags={"k": "v"}) as w:
        w.write("hello\n")
        w.write("wörld\n")  # whole lines: see test_for_process_streams_carry_a_childs_output
    with client.binary("blob", content_type="application/x-thing") as b:
        b.write(b"\x00\x01\xff")
    with client.datagram("build.proto") as dg:
        dg.write_datagram(b"one")
        dg.write_datagram(b"")
    butler.wait_for("u/.meta.stdout", "u/.meta.blob", "u/_00001.build.proto")
    butler.stop()

    assert (butler.out / "u/stdout").read_bytes() == "hello\nwörld\n".encode()
    assert butler.meta("u/stdout") == {
        "name": "u/stdout",
        "content_type": "text/plain; charset=utf-8",
        "timestamp": "2024-01-02T03:04:05.123456Z",
        "tags": {"k": "v"},
    }
    assert (butler.out / "u/blob").read_bytes() == b"\x00\x01\xff"
    meta = butler.meta("u/blob")
    assert (meta["stream_type"], meta["content_type"]) == ("BINARY", "application/x-thing")
    assert (butler.out / "u/_00000.build.proto").read_bytes() == b"one"
    assert (butler.out / "u/_00001.build.proto").read_bytes() == b""
    assert butler.meta("u/build.proto")["stream_type"] == "DATAGRAM"


def test_for_process_streams_carry_a_childs_output(butler: Butler) -> None:
    client = StreamClient(butler.address)
    # One write per stream: with -output-no-buffer a line split across writes would reach the
    # directory output as a partial line, which (like Go's) it ends with an extra newline.
    script = "import os; os.write(1, b'out 1\\nout 2\\n'); os.write(2, b'\\x00err')"
    with client.text("child/stdout", for_process=True) as out, client.binary("child/stderr", for_process=True) as err:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=err)
    assert child.wait() == 0
    butler.wait_for("child/.meta.stdout", "child/.meta.stderr")
    butler.stop()
    assert (butler.out / "child/stdout").read_bytes() == b"out 1\nout 2\n"
    assert (butler.out / "child/stderr").read_bytes() == b"\x00err"


def test_a_bootstrapped_child_finds_butlerd_through_its_environment(butler: Butler) -> None:
    env = dict(os.environ, LOGDOG_STREAM_SERVER_PATH=butler.address, LOGDOG_NAMESPACE="u/step",
               LOGDOG_COORDINATOR_HOST=f"file://{butler.out}")
    script = (
        "from clients import Bootstrap\n"
        "bs = Bootstrap.from_env()\n"
        "with bs.client.text('stdout') as w:\n"
        "    w.write('bootstrapped\\n')\n"
        "print(bs.stream_viewer_url('stdout'))\n"
    )
    child = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    url = child.stdout.strip()
    assert url == f"file://{butler.out}/u/step/stdout"
    assert Bootstrap.from_env(env).stream_path("stdout") == "+/u/step/stdout"
    butler.wait_for("u/step/.meta.stdout")
    butler.stop()
    # The file:// viewer URL names the very file the directory output wrote.
    assert Path(url.removeprefix("file://")).read_text() == "bootstrapped\n"


def test_async_client_streams_through_butlerd(butler: Butler) -> None:
    async def run() -> None:
        client = AsyncStreamClient(butler.address, namespace="aio")
        async with client.text("log", tags={"via": "asyncio"}) as w, client.datagram("dg") as dg:
            await asyncio.gather(w.write("a\n"), dg.write_datagram(b"x" * 100_000))
            await w.write("b\n")
        async with client.binary("child", for_process=True) as f:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('from child')", stdout=f)
        assert await proc.wait() == 0

    asyncio.run(run())
    butler.wait_for("aio/.meta.log", "aio/_00000.dg", "aio/.meta.child")
    butler.stop()
    assert (butler.out / "aio/log").read_text() == "a\nb\n"
    assert butler.meta("aio/log")["tags"] == {"via": "asyncio"}
    assert (butler.out / "aio/_00000.dg").read_bytes() == b"x" * 100_000
    assert (butler.out / "aio/child").read_bytes() == b"from child\n"
