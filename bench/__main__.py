"""``python -m bench``: butlerd against the reference logdog_butler, side by side.

Every (workload, output) cell is run --runs times per daemon, the daemons
alternating so that a change in machine load hits both; the table shows
medians with [min-max]. Directory-output runs are checked for completeness
(see bench._workloads); a run that lost data aborts the benchmark.

Quick run:   python -m bench --runs 1 --size 64M
Full run:    python -m bench            (5 runs, 1 GiB streams; see bench/RESULTS.md)
Profile:     python -m bench --profile text   (butlerd under cProfile, top functions)
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench._build import build
from bench._measure import BenchError, RunResult, run_once
from bench._workloads import Workload, workloads

OUTPUTS = ("directory", "log", "null")
#: The Go Butler has no `null` output.
GO_OUTPUTS = ("directory", "log")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def machine() -> dict[str, str]:
    info: dict[str, str] = {}
    with open("/proc/cpuinfo") as f:
        models = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    info["cpus"] = f"{len(models)} x {models[0] if models else '?'}"
    with open("/proc/meminfo") as f:
        mem = next(ln for ln in f if ln.startswith("MemTotal"))
    info["memory"] = f"{int(mem.split()[1]) // 1024} MiB"
    info["kernel"] = os.uname().release
    info["python"] = sys.version.split()[0]
    info["loadavg"] = open("/proc/loadavg").read().strip()
    return info


def _fmt(values: Sequence[float], digits: int = 1) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def _throughput(r: RunResult) -> float:
    return r.sent["bytes"] / r.wall_sec / 1e6


def _units(w: Workload, r: RunResult) -> float:
    n = {"lines": r.sent["lines"], "datagrams": r.sent["datagrams"],
         "streams": r.sent["streams"], "writes": r.sent["bytes"] / (64 * 1024)}[w.unit]
    return n / r.wall_sec


def table(cells: dict[tuple[str, str], dict[str, list[RunResult]]], wl: dict[str, Workload]) -> str:
    rows = ["| workload | output | data | daemon | MB/s | per second | CPU s/GB | peak RSS MB | "
            "butlerd / Go |",
            "|---|---|---|---|---|---|---|---|---|"]
    lat_rows = ["| output | daemon | p50 ms | p90 ms | p99 ms | max ms | lost | "
                "p99 butlerd / Go |",
                "|---|---|---|---|---|---|---|---|"]
    for (wkey, output), by_daemon in cells.items():
        w = wl[wkey]
        if w.latency:
            p99 = {d: statistics.median(r.sent["latency"]["p99_us"] for r in rs)
                   for d, rs in by_daemon.items() if rs}
            for daemon, rs in by_daemon.items():
                lat = [r.sent["latency"] for r in rs]
                ratio = (f"{p99['butlerd'] / p99['go']:.2f}× (lower is better)"
                         if daemon == "butlerd" and "go" in p99 and p99["go"] else "")
                lat_rows.append(
                    f"| {output} | {daemon} | {_fmt([x['p50_us'] / 1e3 for x in lat], 2)} | "
                    f"{_fmt([x['p90_us'] / 1e3 for x in lat], 2)} | "
                    f"{_fmt([x['p99_us'] / 1e3 for x in lat], 2)} | "
                    f"{_fmt([x['max_us'] / 1e3 for x in lat], 2)} | "
                    f"{max(x['missing'] for x in lat)} | {ratio} |")
            continue
        med = {d: statistics.median(_throughput(r) for r in rs) for d, rs in by_daemon.items() if rs}
        for daemon, rs in by_daemon.items():
            gb = [r.sent["bytes"] / 1e9 for r in rs]
            ratio = (f"**{med['butlerd'] / med['go']:.2f}×**"
                     if daemon == "butlerd" and "go" in med else "")
            rows.append(
                f"| {w.title} | {output} | {rs[0].sent['bytes'] / 2**20:.0f} MiB | {daemon} | "
                f"{_fmt([_throughput(r) for r in rs])} | "
                f"{_fmt([_units(w, r) for r in rs], 0)} {w.unit}/s | "
                f"{_fmt([r.cpu_sec / g for r, g in zip(rs, gb)], 2)} | "
                f"{_fmt([r.peak_rss_kib / 1024 for r in rs])} | {ratio} |")
    out = "\n".join(rows)
    if len(lat_rows) > 2:
        out += "\n\nLatency (client Write → line in the output file):\n\n" + "\n".join(lat_rows)
    return out


def report(path: Path) -> str:
    """The table again, from runs recorded with --json (e.g. after an interrupted run)."""
    cells: dict[tuple[str, str], dict[str, list[RunResult]]] = {}
    wl: dict[str, Workload] = {}
    for line in path.read_text().splitlines():
        d = json.loads(line)
        title, unit, latency = d.pop("title"), d.pop("unit"), d.pop("latency")
        r = RunResult(**d)
        wl[r.workload] = Workload(r.workload, title, (), unit, latency=latency)
        cells.setdefault((r.workload, r.output), {}).setdefault(r.daemon, []).append(r)
    return table(cells, wl)


def profile(w: Workload, output: str, args: argparse.Namespace) -> None:
    prof = Path(args.profile_out or tempfile.mktemp(prefix=f"butlerd-{w.key}-", suffix=".prof"))
    r = run_once("butlerd", w, output, daemon_cpu=args.daemon_cpu, loadgen_cpu=args.loadgen_cpu,
                 profile=prof)
    print(f"# butlerd under cProfile, {w.title}, -output {output}: "
          f"{_throughput(r):.1f} MB/s (cProfile slows it), output {r.verified}; stats in {prof}")
    stats = pstats.Stats(str(prof))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--size", type=parse_size, default=1 << 30,
                   help="bytes per text/binary workload (default 1G)")
    p.add_argument("--log-size", type=parse_size, default=16 << 20,
                   help="bytes per text/binary/datagram workload for -output log (default 16M: "
                        "logdog_butler's log output runs one stream at 1-3 MB/s)")
    p.add_argument("--dgram-size", type=parse_size, default=128 << 20,
                   help="bytes of 1 KiB datagrams (one output file each; default 128M)")
    p.add_argument("--small-streams", type=int, default=1000)
    p.add_argument("--latency-sec", type=float, default=10.0)
    p.add_argument("--latency-rate", type=float, default=1000.0, help="lines per second")
    p.add_argument("--workloads", default="text,multi,binary,datagram,streams,latency")
    p.add_argument("--outputs", default=",".join(OUTPUTS))
    p.add_argument("--daemons", default="go,butlerd")
    p.add_argument("--daemon-cpu", type=int, default=1)
    p.add_argument("--loadgen-cpu", type=int, default=0)
    p.add_argument("--json", type=Path,
                   help="append every run's measurements here (JSON lines) as they are taken")
    p.add_argument("--report", type=Path, metavar="JSONL",
                   help="only print the table for runs recorded by --json")
    p.add_argument("--profile", metavar="WORKLOAD",
                   help="run butlerd once under cProfile on this workload and print the top")
    p.add_argument("--profile-output", default="directory")
    p.add_argument("--profile-out", help="where to keep the .prof file")
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args(argv)

    if args.report:
        print(report(args.report))
        return 0
    if not args.no_build:
        build()
    os.sched_setaffinity(0, {args.loadgen_cpu})  # keep the runner off the daemon's CPU
    wl = {w.key: w for w in workloads(args.size, args.dgram_size, args.small_streams,
                                      args.latency_sec, args.latency_rate)}
    wl_log = {w.key: w for w in workloads(args.log_size, min(args.log_size, args.dgram_size), args.small_streams,
                                          args.latency_sec, args.latency_rate)}
    if args.profile:
        profile(wl[args.profile], args.profile_output, args)
        return 0

    daemons = args.daemons.split(",")
    start_info = machine()
    print(f"# machine: {start_info}", file=sys.stderr)
    cells: dict[tuple[str, str], dict[str, list[RunResult]]] = {}
    for wkey in args.workloads.split(","):
        for output in args.outputs.split(","):
            w = (wl_log if output == "log" else wl)[wkey]
            if w.outputs is not None and output not in w.outputs:
                continue
            ds = [d for d in daemons if d != "go" or output in GO_OUTPUTS]
            cell = cells.setdefault((wkey, output), {d: [] for d in ds})
            for i in range(args.runs):
                for daemon in (ds if i % 2 == 0 else ds[::-1]):
                    try:
                        r = run_once(daemon, w, output, daemon_cpu=args.daemon_cpu,
                                     loadgen_cpu=args.loadgen_cpu)
                    except BenchError as e:
                        print(f"bench: {e}", file=sys.stderr)
                        return 1
                    cell[daemon].append(r)
                    if args.json:
                        with open(args.json, "a") as f:
                            f.write(json.dumps({"title": w.title, "unit": w.unit,
                                                "latency": w.latency, **r.__dict__}) + "\n")
                    lat = r.sent.get("latency")
                    print(f"# {wkey:8} {output:9} {daemon:7} run {i + 1}: "
                          + (f"p50 {lat['p50_us'] / 1e3:.2f} ms p99 {lat['p99_us'] / 1e3:.2f} ms"
                             if lat else f"{_throughput(r):8.1f} MB/s")
                          + f" wall {r.wall_sec:.2f}s (client {r.client_sec:.2f}s, "
                          f"drain {r.extra['drain_sec']:.2f}s, stop {r.extra['stop_sec']:.2f}s) "
                          f"cpu {r.cpu_sec:.2f}s rss {r.peak_rss_kib // 1024} MB; {r.verified}",
                          file=sys.stderr, flush=True)
    end_info = machine()
    print(table(cells, wl))
    print(f"\nloadavg at start: {start_info['loadavg']}; at end: {end_info['loadavg']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
