"""One measured run: start a daemon, play a workload through loadgen, stop it, read its costs.

Goals: the same conditions for both daemons, and a clock that a daemon cannot
cheat by reading fast and writing late.

Plan:
- The daemon runs pinned to one CPU (taskset), loadgen to the other, so the two
  do not share a core and the Go runtime sees one CPU (GOMAXPROCS=1) as Python
  has one thread of interpretation.
- The daemon is started, waited on until it listens and has gone idle (Python's
  imports are start-up, not work), and its CPU time so far is noted.
- The clock starts when loadgen is started and stops when the daemon has EXITED
  after SIGTERM: everything was read, bundled, and flushed to the output.
  SIGTERM is sent as soon as the daemon has closed every client connection
  (seen in /proc/net/unix), because logdog_butler drops what it has not read
  yet when it is stopped.
- CPU time comes from wait4()'s rusage of the daemon process (all its threads),
  counted from the idle point. Peak RSS is the kernel's high-water mark VmHWM
  from /proc/PID/status, read every few milliseconds until the process is gone
  (it only grows, so the last read is the peak up to a few ms before exit).
  wait4()'s ru_maxrss cannot be used: it keeps the high-water mark of the
  forked runner from before exec(), a floor of the runner's own ~30 MB.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._build import LOADGEN, LOGDOG_BUTLER
from bench._workloads import IncompleteOutput, Workload, verify

REPO_ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
_SO_ACCEPTCON = 0x10000

#: A clean stop after SIGTERM: the Go `serve` reports "context canceled" (250).
EXIT_OK = {"go": 250, "butlerd": 0}


@dataclass
class RunResult:
    daemon: str
    workload: str
    output: str
    wall_sec: float  # loadgen start -> daemon exited
    client_sec: float  # loadgen start -> loadgen exited
    cpu_sec: float  # daemon user+system CPU during the run
    peak_rss_kib: int
    sent: dict[str, Any]
    verified: str
    extra: dict[str, Any] = field(default_factory=dict)


class BenchError(Exception):
    pass


def _unix_flags(sock: Path) -> list[int]:
    flags = []
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(sock):
                flags.append(int(fields[3], 16))
    return flags


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _wait_quiet(pid: int, settle: float = 0.3, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    last, since = _cpu_ticks(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        ticks = _cpu_ticks(pid)
        if ticks != last:
            last, since = ticks, time.monotonic()
        elif time.monotonic() - since >= settle:
            return


class HighWaterSampler:
    """Follows /proc/PID/status VmHWM in a thread until the process has exited."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                        return True
        except OSError:
            pass
        return False  # gone, or a zombie (no memory left to report)

    def _run(self) -> None:
        while not self._stop.is_set() and self.read():
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kib


def output_flag(output: str, out_dir: Path) -> str:
    return f"directory,path={out_dir}" if output == "directory" else output


def daemon_command(daemon: str, output: str, out_dir: Path, sock: Path,
                   extra: Sequence[str], profile: Path | None = None) -> list[str]:
    flags = ["-project", "bench", "-prefix", "bench/prefix",
             "-output", output_flag(output, out_dir), *extra,
             "serve", "-streamserver-uri", f"unix:{sock}"]
    if daemon == "go":
        return [str(LOGDOG_BUTLER), *flags]
    py = [sys.executable]
    if profile is not None:
        py += ["-m", "cProfile", "-o", str(profile)]
    return [*py, "-m", "butlerd", *flags]


def run_once(daemon: str, workload: Workload, output: str, *, daemon_cpu: int,
             loadgen_cpu: int, profile: Path | None = None, keep: bool = False) -> RunResult:
    work = Path(tempfile.mkdtemp(prefix="butlerd-bench.", dir="/dev/shm"))
    out_dir, sock = work / "out", work / "s"
    if workload.latency:
        out_dir.mkdir()  # so loadgen can watch it before the first bundle
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = ["taskset", "-c", str(daemon_cpu),
           *daemon_command(daemon, output, out_dir, sock, workload.daemon_flags, profile)]
    log_path = work / "daemon.log"
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, cwd=work)
        try:
            return _measure(proc, daemon, workload, output, work, out_dir, sock, log_path,
                            loadgen_cpu)
        finally:
            if proc.returncode is None and proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _measure(proc: subprocess.Popen[bytes], daemon: str, workload: Workload, output: str,
             work: Path, out_dir: Path, sock: Path, log_path: Path, loadgen_cpu: int) -> RunResult:
    deadline = time.monotonic() + 30
    while not (sock.exists() and any(f & _SO_ACCEPTCON for f in _unix_flags(sock))):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{daemon} did not listen (exit {proc.poll()}):\n"
                             + log_path.read_text(errors="replace")[-2000:])
        time.sleep(0.01)
    _wait_quiet(proc.pid)
    hwm = HighWaterSampler(proc.pid)
    idle_ticks = _cpu_ticks(proc.pid)

    lg = ["taskset", "-c", str(loadgen_cpu), str(LOADGEN), "-server", f"unix:{sock}",
          "-workload", workload.key, *workload.loadgen_flags]
    if workload.latency:
        lg += ["-watch-dir", str(out_dir)]
    t0 = time.monotonic()
    client = subprocess.run(lg, capture_output=True, text=True, check=False, timeout=1800)
    t_client = time.monotonic()
    if client.returncode != 0:
        raise BenchError(f"loadgen failed against {daemon}/{output} "
                         f"(exit {client.returncode}):\n{client.stderr[-2000:]}")
    sent = json.loads(client.stdout)

    # Every connection is made by now (loadgen exited); wait until the daemon has
    # read each to EOF and closed it, then stop it.
    deadline = time.monotonic() + 600
    while any(not f & _SO_ACCEPTCON for f in _unix_flags(sock)):
        if proc.poll() is not None:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"{daemon} still holds client connections after 600 s")
        time.sleep(0.002)
    t_drained = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    # Reap only once the sampler has seen the process go (a zombie has no VmHWM).
    while hwm.read():
        time.sleep(0.001)
    _, status, usage = os.wait4(proc.pid, 0)
    t_end = time.monotonic()
    peak_kib = hwm.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != EXIT_OK[daemon]:
        raise BenchError(f"{daemon} exited {proc.returncode}:\n"
                         + log_path.read_text(errors="replace")[-2000:])
    cpu = usage.ru_utime + usage.ru_stime - idle_ticks / CLK_TCK

    if output == "directory":
        try:
            verified = verify(workload, out_dir, sent)
        except IncompleteOutput as e:
            raise BenchError(f"{daemon}/{output}/{workload.key}: OUTPUT INCOMPLETE: {e}") from None
    else:
        verified = "not checkable (prints nothing)"
    return RunResult(
        daemon=daemon, workload=workload.key, output=output,
        wall_sec=t_end - t0, client_sec=t_client - t0, cpu_sec=cpu,
        peak_rss_kib=peak_kib, sent=sent, verified=verified,
        extra={"drain_sec": t_drained - t_client, "stop_sec": t_end - t_drained},
    )
