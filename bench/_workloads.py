"""The benchmark workloads, and the check that a daemon's directory output holds all of them.

Each workload is a set of loadgen flags plus a way to verify the output: a daemon
that drops data must not look fast, so every directory-output run is checked
against what loadgen reports it sent. The directory output writes each text line
as its value plus "\\n" (a line split in two by the bundler gains one "\\n"), so
text is checked on its bytes other than newlines; binary on exact size; datagrams
on the number and size of their one-file-per-datagram files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    #: What loadgen is told (besides -server and -workload).
    loadgen_flags: tuple[str, ...]
    #: What one "unit" is, for the per-second column.
    unit: str
    #: Extra daemon flags (the latency workload turns buffering off).
    daemon_flags: tuple[str, ...] = ()
    #: Latency rows report percentiles, not throughput; directory output only.
    latency: bool = False
    #: Outputs this workload runs against (None = all).
    outputs: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def workloads(size: int, dgram_size: int, small_streams: int, latency_sec: float,
              latency_rate: float) -> list[Workload]:
    return [
        Workload("text", "(a) 1 text stream, 100-byte lines", ("-size", str(size)), "lines"),
        Workload("multi", "(b) 64 text streams, 100-byte lines",
                 ("-size", str(size), "-streams", "64"), "lines"),
        Workload("binary", "(c) 1 binary stream, 64 KiB writes",
                 ("-size", str(size), "-write", str(64 * 1024)), "writes"),
        Workload("datagram", "(d) 1 datagram stream, 1 KiB datagrams",
                 ("-size", str(dgram_size), "-dgram", "1024"), "datagrams"),
        Workload("streams", f"(e) {small_streams} concurrent small streams (10 lines)",
                 ("-streams", str(small_streams), "-lines", "10"), "streams"),
        Workload("latency", f"(f) latency, {latency_rate:g} lines/s, -output-no-buffer",
                 ("-rate", str(latency_rate), "-duration", f"{latency_sec}s"), "lines",
                 daemon_flags=("-output-no-buffer",), latency=True, outputs=("directory",)),
    ]


class IncompleteOutput(Exception):
    """The output does not hold everything loadgen wrote."""


def _non_newline_bytes(path: Path) -> int:
    total = newlines = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(8 * MiB):
            total += len(chunk)
            newlines += chunk.count(b"\n")
    return total - newlines


def _text_files(out: Path, sub: str, n: int) -> list[Path]:
    files = [out / "bench" / sub / str(i) for i in range(n)]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise IncompleteOutput(f"{len(missing)} stream files missing, e.g. {missing[0]}")
    return files


def verify(workload: Workload, out: Path, sent: dict[str, Any]) -> str:
    """Check the directory output against loadgen's report; return a one-line summary."""
    key = workload.key
    if key in ("text", "multi", "streams", "latency"):
        if key == "latency":
            files = [out / "latency"]
        else:
            files = _text_files(out, "small" if key == "streams" else "text", sent["streams"])
        want = sent["bytes"] - sent["lines"]
        got = sum(_non_newline_bytes(p) for p in files)
        if got != want:
            raise IncompleteOutput(f"{key}: {got} non-newline bytes in the output, {want} sent")
        return f"{len(files)} files, {got} bytes of text"
    if key == "binary":
        got = (out / "bench" / "binary").stat().st_size
        if got != sent["bytes"]:
            raise IncompleteOutput(f"binary: {got} bytes in the output, {sent['bytes']} sent")
        return f"{got} bytes"
    if key == "datagram":
        base = out / "bench"
        sizes = [e.stat().st_size for e in os.scandir(base)
                 if e.name.startswith("_") and e.name.endswith(".dgram")]
        if len(sizes) != sent["datagrams"] or sum(sizes) != sent["bytes"]:
            raise IncompleteOutput(f"datagram: {len(sizes)} files / {sum(sizes)} bytes in the "
                                   f"output, {sent['datagrams']} / {sent['bytes']} sent")
        return f"{len(sizes)} datagram files"
    raise ValueError(key)
