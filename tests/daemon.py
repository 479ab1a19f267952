"""Start ``butlerd serve`` as a real subprocess and talk to it over its socket.

Shared by the end-to-end tests: a test opens streams exactly as a client
would (raw bytes on a Unix socket), stops the daemon with a signal and reads
what the directory output wrote.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from wire.varint import encode_uvarint

MAGIC = b"BTLR1\x1e"


def handshake(name: str, type_: str = "text", **extra: object) -> bytes:
    flags: dict[str, object] = {"name": name, "type": type_, **extra}
    body = json.dumps(flags, separators=(",", ":")).encode()
    return MAGIC + encode_uvarint(len(body)) + body


class Butlerd:
    """A running ``butlerd ... serve`` with a directory output under ``tmp``."""

    def __init__(self, tmp: Path, *global_flags: str, serve_flags: tuple[str, ...] = (),
                 output: str | None = None, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.out = tmp / "out"
        self.sock = str(tmp / "butler.sock")
        args = [sys.executable, "-m", "butlerd", "-log-level", "info", *global_flags]
        args += ["-output", output or f"directory,path={self.out}"]
        args += ["serve", "-streamserver-uri", f"unix:{self.sock}", *serve_flags]
        self.stderr_path = tmp / "butlerd.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"butlerd did not start: {self.stderr()}")
            time.sleep(0.02)
        assert self.proc.stdout is not None
        self.announce = self.proc.stdout.readline().decode()
        if not self.announce:  # it bound the socket, then failed (e.g. the output did)
            self.proc.wait(20)
            raise RuntimeError(f"butlerd did not start: {self.stderr()}")

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        return s

    def stream(self, name: str, body: bytes = b"", type_: str = "text", **extra: object) -> None:
        """Open a stream, write ``body``, close it."""
        with self.connect() as s:
            s.sendall(handshake(name, type_, **extra) + body)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._stderr.close()

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def read(self, rel: str) -> bytes:
        return (self.out / rel).read_bytes()

    def meta(self, name: str) -> dict:
        d, _, leaf = name.rpartition("/")
        return json.loads((self.out / d / f".meta.{leaf}").read_text())

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()
