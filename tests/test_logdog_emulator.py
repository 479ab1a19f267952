"""``-output logdog`` end to end: a fake Coordinator answers RegisterPrefix with
an emulator topic and a secret; butlerd publishes there with that secret."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.daemon import Butlerd
from tests.emulator import skip_without_emulator
from tests.test_logdog import SECRET, FakeCoordinator, ok
from tests.test_pubsub_serve import Collected, check_streams, write_stream

pytestmark = [pytest.mark.emulator, skip_without_emulator()]


@pytest.fixture
def coordinator():
    c = FakeCoordinator()
    yield c
    c.close()


def test_serve_registers_then_publishes_with_the_answer(emulator, coordinator, tmp_path: Path):
    topic, sub = emulator.create_topic_and_subscription(f"ld-{uuid.uuid4().hex[:8]}")
    coordinator.answers = [ok(topic=topic)]
    d = Butlerd(tmp_path, "-project", "chromium", "-prefix", "buildbucket/x/1",
                "-coordinator-host", coordinator.host,
                "-output-max-buffer-age", "100ms", output="logdog,prefix-expiration=2h",
                env=emulator.env())
    try:
        write_stream(d, "u/stdout", "text", b"hello logdog\n" * 10)
        write_stream(d, "u/blob", "binary", bytes(range(256)) * 40)
        assert d.stop() == 0, d.stderr()
    finally:
        d.kill()

    req = coordinator.parsed(0)
    assert (req.project, req.prefix, req.expiration.seconds) == ("chromium", "buildbucket/x/1", 7200)
    got = Collected(emulator.pull(sub, idle=2))
    assert got.bundles
    for b in got.bundles:
        assert (b.project, b.prefix, b.secret) == ("chromium", "buildbucket/x/1", SECRET)
    check_streams(got, {"u/stdout": b"hello logdog\n" * 10, "u/blob": bytes(range(256)) * 40}, {})


def test_run_exports_coordinator_project_prefix(emulator, coordinator, tmp_path: Path):
    topic, _ = emulator.create_topic_and_subscription(f"ld-{uuid.uuid4().hex[:8]}")
    coordinator.answers = [ok(topic=topic)]
    out = subprocess.run(
        [sys.executable, "-m", "butlerd", "-project", "chromium", "-prefix", "p/q",
         "-coordinator-host", coordinator.host, "-output", "logdog", "run", "--",
         "sh", "-c", "echo $LOGDOG_COORDINATOR_HOST $LOGDOG_STREAM_PROJECT $LOGDOG_STREAM_PREFIX"],
        capture_output=True, env={**os.environ, **emulator.env()}, timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == [coordinator.host, "chromium", "p/q"]
    assert len(coordinator.requests) == 1
