"""Fixtures for the interop suite; the machinery lives in harness.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .harness import DaemonRun, GoBinaries, Workload, ensure_go_binaries, run_daemon


@pytest.fixture(scope="session")
def go_binaries() -> GoBinaries:
    return ensure_go_binaries()


RunWorkload = Callable[..., Mapping[str, DaemonRun]]


@pytest.fixture
def interop_run(go_binaries: GoBinaries, tmp_path: Path) -> RunWorkload:
    """Play a workload against each daemon kind (at the same time); results by kind."""

    def run(workload: Workload, kinds: Sequence[str] = ("go", "butlerd")) -> Mapping[str, DaemonRun]:
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            futures = {
                kind: pool.submit(run_daemon, kind, go_binaries, workload, tmp_path / kind)
                for kind in kinds
            }
            return {kind: future.result() for kind, future in futures.items()}

    return run
