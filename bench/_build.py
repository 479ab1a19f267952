"""Build the Go side of the benchmark (loadgen and the reference logdog_butler) into bench/bin/.

Both come from the bench/ Go module, which pins luci-go to the same version as
tests/interop, so the reference daemon is the one the interop suite compares against.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
BIN_DIR = BENCH_DIR / "bin"
LOADGEN = BIN_DIR / "loadgen"
LOGDOG_BUTLER = BIN_DIR / "logdog_butler"
LOGDOG_BUTLER_PKG = "go.chromium.org/luci/logdog/client/cmd/logdog_butler"


def build() -> None:
    """`go build` is incremental, so this is cheap when nothing changed."""
    go = shutil.which("go")
    if go is None:
        raise SystemExit("bench: the `go` toolchain is needed to build loadgen and logdog_butler")
    BIN_DIR.mkdir(exist_ok=True)
    subprocess.run(
        [go, "build", "-buildvcs=false", "-o", f"{BIN_DIR}/", "./cmd/loadgen", LOGDOG_BUTLER_PKG],
        cwd=BENCH_DIR, check=True,
    )
