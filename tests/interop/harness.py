"""Machinery for the interop suite: real Go clients against butlerd and the reference Butler.

Goals: every workload is played by the real LUCI Go stream client (tests/interop/cmd/driver)
once against `butlerd serve` and once against the reference `logdog_butler serve`, with the
same flags, and the two `directory` outputs must be byte-identical.

Plan:
- `ensure_go_binaries` (behind the session fixture `go_binaries`) builds the driver and logdog_butler once into tests/interop/bin/.
  pytest-xdist workers each run the fixture, so the build is serialised by an fcntl lock and
  skipped when a stamp of the Go sources matches. No `go`, or a failed build (an unreachable
  module proxy), skips the suite, unless BUTLERD_REQUIRE_INTEROP=1 turns that into a failure.
- `run_daemon` starts one daemon, plays the workload, then waits until the daemon has closed
  every client connection (seen in /proc/net/unix): the reference force-closes open streams
  on SIGTERM and loses what it has not read yet, so SIGTERM must come only after it has read
  every byte. It closes a connection only after handing its last bytes to the bundler, and
  SIGTERM flushes the bundler.
"""

from __future__ import annotations

import difflib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

INTEROP_DIR = Path(__file__).resolve().parent
REPO_ROOT = INTEROP_DIR.parent.parent
BIN_DIR = INTEROP_DIR / "bin"
DRIVER = BIN_DIR / "driver"
LOGDOG_BUTLER = BIN_DIR / "logdog_butler"
LOGDOG_BUTLER_PKG = "go.chromium.org/luci/logdog/client/cmd/logdog_butler"

REQUIRE_ENV = "BUTLERD_REQUIRE_INTEROP"

# Exit statuses after SIGTERM: the reference `serve` reports "context canceled" as a
# runtime error (250); butlerd treats a requested stop as success.
EXIT_AFTER_SIGTERM = {"go": 250, "butlerd": 0}

STARTUP_TIMEOUT = 30.0
DRIVER_TIMEOUT = 120.0
DRAIN_TIMEOUT = 60.0
# How long the daemon must hold no client connection before it is stopped (a short margin;
# /proc/net/unix already shows connections that are still waiting to be accepted).
IDLE_SETTLE = 0.1
SHUTDOWN_TIMEOUT = 60.0


def _unavailable(reason: str) -> None:
    """Skip, or fail when CI demands the interop suite (a skip there would hide a broken setup)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def _source_stamp(go: str) -> str:
    """A digest of everything the two binaries are built from, to know when to rebuild."""
    h = hashlib.sha256()
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=False)
    h.update(version.stdout.encode())
    for rel in ["go.mod", "go.sum", *sorted(
        str(p.relative_to(INTEROP_DIR)) for p in (INTEROP_DIR / "cmd" / "driver").rglob("*.go")
    )]:
        h.update(rel.encode() + b"\0")
        h.update((INTEROP_DIR / rel).read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class GoBinaries:
    driver: Path
    logdog_butler: Path


_SO_ACCEPTCON = 0x10000


def _unix_table(sock: Path) -> list[int]:
    """Flags of every kernel socket bound to this path: the listener, plus the server end of
    each connection, from connect() (still queued for accept) until the daemon closes it."""
    flags = []
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(sock):
                flags.append(int(fields[3], 16))
    return flags


def _is_listening(sock: Path) -> bool:
    """The file appears at bind(), before listen(); a connect in between would be refused."""
    return any(f & _SO_ACCEPTCON for f in _unix_table(sock))


def _open_connections(sock: Path) -> int:
    """Client connections the daemon has not yet accepted, read to the end and closed."""
    return sum(1 for f in _unix_table(sock) if not f & _SO_ACCEPTCON)


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _wait_quiet(pid: int, settle: float = 0.3, limit: float = 10.0) -> None:
    """Wait until the process uses no CPU for `settle` seconds: done starting up, idle."""
    deadline = time.monotonic() + limit
    last, since = _cpu_ticks(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        ticks = _cpu_ticks(pid)
        if ticks != last:
            last, since = ticks, time.monotonic()
        elif time.monotonic() - since >= settle:
            return


def _wait_idle(proc: subprocess.Popen[bytes], sock: Path) -> None:
    """Wait until the daemon has accepted, read and closed every client connection."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    idle_since: float | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        now = time.monotonic()
        if _open_connections(sock) == 0:
            if idle_since is None:
                idle_since = now
            elif now - idle_since >= IDLE_SETTLE:
                return
        else:
            idle_since = None
        time.sleep(0.05)
    # Still holding connections: stop it anyway; the output comparison will show what is lost.


@dataclass
class Workload:
    """A driver script plus the daemon flags and environment it needs."""

    streams: list[dict[str, object]]
    concurrent: bool = False
    namespace: str | None = None
    # Extra global flags placed before `serve`, e.g. ["-tag", "k=v"].
    daemon_flags: Sequence[str] = ()
    # Stop the daemon (SIGSTOP) while the driver plays, as a busy or paused daemon would be:
    # every connection then waits in the listen backlog, and the data in socket buffers.
    pause_daemon: bool = False
    # Some stream leaves its descriptor timestamp to the client's clock, so the `.meta.*`
    # timestamps of the two runs cannot match and are left out of the comparison.
    ignore_meta_timestamps: bool = False
    # Give `-output directory,path=out` relative to the daemon's working directory.
    relative_output: bool = False

    def to_json(self) -> str:
        return json.dumps({"concurrent": self.concurrent, "streams": self.streams})


@dataclass
class DaemonRun:
    kind: str
    out_dir: Path
    returncode: int
    stderr: str


def daemon_command(kind: str, binaries: GoBinaries, out_path: str, sock: Path,
                   extra_flags: Sequence[str]) -> list[str]:
    flags = [
        "-project", "test",
        "-prefix", "test/prefix",
        "-output", f"directory,path={out_path}",
        *extra_flags,
        "serve", "-streamserver-uri", f"unix:{sock}",
    ]
    if kind == "go":
        return [str(binaries.logdog_butler), *flags]
    return [sys.executable, "-m", "butlerd", *flags]


def run_daemon(kind: str, binaries: GoBinaries, workload: Workload, work_dir: Path) -> DaemonRun:
    """Start one daemon, play the workload through the Go driver, stop it, return its output."""
    work_dir.mkdir(parents=True, exist_ok=True)
    script = work_dir / "workload.json"
    script.write_text(workload.to_json())
    out_dir = work_dir / "out"
    # Socket paths are limited to 104 bytes; pytest's tmp dirs can be longer.
    sock_dir = Path(tempfile.mkdtemp(prefix="bi", dir="/tmp"))
    sock = sock_dir / "s"
    stderr_path = work_dir / "daemon.stderr"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    try:
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                daemon_command(kind, binaries, "out" if workload.relative_output else str(out_dir),
                               sock, workload.daemon_flags),
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env, cwd=work_dir,
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not (sock.exists() and _is_listening(sock)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"{kind} daemon did not create its socket (exit {proc.poll()}):\n"
                        + stderr_path.read_text(errors="replace")[-4000:],
                        pytrace=False,
                    )
                time.sleep(0.02)

            driver_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGDOG_")}
            driver_env["LOGDOG_STREAM_SERVER_PATH"] = f"unix:{sock}"
            if workload.namespace is not None:
                driver_env["LOGDOG_NAMESPACE"] = workload.namespace
            if workload.pause_daemon:
                # Pause it idle, not half-way through starting up.
                _wait_quiet(proc.pid)
                proc.send_signal(signal.SIGSTOP)
            try:
                driver = subprocess.run(
                    [str(binaries.driver), "play", str(script)],
                    env=driver_env, capture_output=True, text=True, timeout=DRIVER_TIMEOUT,
                    check=False,
                )
            finally:
                if workload.pause_daemon:
                    proc.send_signal(signal.SIGCONT)
            if driver.returncode != 0:
                pytest.fail(
                    f"driver failed against {kind} (exit {driver.returncode}):\n{driver.stderr}",
                    pytrace=False,
                )

            _wait_idle(proc, sock)
            proc.send_signal(signal.SIGTERM)
            try:
                returncode = proc.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"{kind} daemon did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM",
                            pytrace=False)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
    return DaemonRun(kind=kind, out_dir=out_dir, returncode=returncode,
                     stderr=stderr_path.read_text(errors="replace"))


# --- output comparison ---------------------------------------------------------------------


def _tree(root: Path) -> dict[str, Path]:
    """Every file and directory under root, by relative path (directories end in '/')."""
    if not root.exists():
        return {}
    entries: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for d in dirnames:
            entries[str((base / d).relative_to(root)) + "/"] = base / d
        for f in filenames:
            entries[str((base / f).relative_to(root))] = base / f
    return entries


def _without_timestamp(meta: bytes) -> bytes:
    lines = meta.decode("utf-8", errors="surrogateescape").splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.lstrip().startswith('"timestamp":')]
    return "".join(kept).encode("utf-8", errors="surrogateescape")


def _describe_difference(rel: str, expected: bytes, actual: bytes) -> str:
    """A unified diff for text, or the first differing offset with hex context for binary."""
    try:
        a = expected.decode("utf-8").splitlines(keepends=True)
        b = actual.decode("utf-8").splitlines(keepends=True)
        if max(len(expected), len(actual)) <= 2_000_000:
            diff = list(difflib.unified_diff(a, b, f"logdog_butler/{rel}", f"butlerd/{rel}", n=2))
            text = "".join(line if len(line) < 400 else line[:400] + "...[cut]\n" for line in diff[:80])
            if text:
                return text
    except UnicodeDecodeError:
        pass
    n = min(len(expected), len(actual))
    at = next((i for i in range(n) if expected[i] != actual[i]), n)
    lo = max(0, at - 16)
    return (
        f"{rel}: sizes logdog_butler={len(expected)} butlerd={len(actual)}; first difference at "
        f"byte {at}\n  logdog_butler[{lo}:{at + 32}] = {expected[lo:at + 32].hex(' ')}\n"
        f"  butlerd[{lo}:{at + 32}]       = {actual[lo:at + 32].hex(' ')}"
    )


def compare_outputs(reference: Path, candidate: Path, *, ignore_meta_timestamps: bool = False) -> None:
    """Assert the two directory outputs are identical: tree, names, modes and bytes."""
    if reference.exists() != candidate.exists():
        pytest.fail(f"output directory exists: logdog_butler={reference.exists()} "
                    f"butlerd={candidate.exists()}", pytrace=False)
    ref, cand = _tree(reference), _tree(candidate)
    if reference.exists():
        ref["./"], cand["./"] = reference, candidate
    missing = sorted(set(ref) - set(cand))
    extra = sorted(set(cand) - set(ref))
    if missing or extra:
        pytest.fail(
            f"output trees differ:\n  only in logdog_butler: {missing[:20]}\n"
            f"  only in butlerd: {extra[:20]}",
            pytrace=False,
        )
    for rel in sorted(ref):
        r, c = ref[rel], cand[rel]
        r_mode, c_mode = r.stat().st_mode & 0o7777, c.stat().st_mode & 0o7777
        if rel.endswith("/"):
            if r_mode != c_mode:
                pytest.fail(f"{rel}: mode {oct(r_mode)} (logdog_butler) != {oct(c_mode)} (butlerd)",
                            pytrace=False)
            continue
        r_bytes, c_bytes = r.read_bytes(), c.read_bytes()
        if ignore_meta_timestamps and Path(rel).name.startswith(".meta."):
            r_bytes, c_bytes = _without_timestamp(r_bytes), _without_timestamp(c_bytes)
        if r_bytes != c_bytes:
            pytest.fail("output file differs:\n" + _describe_difference(rel, r_bytes, c_bytes),
                        pytrace=False)
        if r_mode != c_mode:
            pytest.fail(f"{rel}: mode {oct(r_mode)} (logdog_butler) != {oct(c_mode)} (butlerd)",
                        pytrace=False)


def ensure_go_binaries() -> GoBinaries:
    """Build the driver and logdog_butler once per checkout state; safe across xdist workers."""
    go = shutil.which("go")
    if go is None:
        _unavailable("the interop tests need the `go` toolchain on PATH")
    assert go is not None
    BIN_DIR.mkdir(exist_ok=True)
    stamp_file = BIN_DIR / ".stamp-driver"
    with open(BIN_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            stamp = _source_stamp(go)
            fresh = (
                stamp_file.exists()
                and stamp_file.read_text() == stamp
                and DRIVER.exists()
                and LOGDOG_BUTLER.exists()
            )
            if not fresh:
                stamp_file.unlink(missing_ok=True)
                try:
                    build = subprocess.run(
                        [go, "build", "-buildvcs=false", "-o", str(BIN_DIR) + os.sep, "./cmd/driver",
                         LOGDOG_BUTLER_PKG],
                        cwd=INTEROP_DIR,
                        capture_output=True,
                        text=True,
                        timeout=900,
                        check=False,
                    )
                except subprocess.TimeoutExpired:
                    _unavailable("building the Go interop binaries timed out (module proxy unreachable?)")
                if build.returncode != 0:
                    _unavailable(
                        "building the Go interop binaries failed (module proxy unreachable?):\n"
                        + build.stderr[-4000:]
                    )
                stamp_file.write_text(stamp)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return GoBinaries(driver=DRIVER, logdog_butler=LOGDOG_BUTLER)
