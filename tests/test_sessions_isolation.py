"""Sessions are isolated: a session whose output is stuck does not delay another
session's delivery or close, and its own close reports what it could not deliver."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from typing import Any

import pytest

from butlerd._events import Bundle
from butlerd._sessions import SessionManager
from butlerd.outputs import OutputFactory, register_output
from butlerd.outputs.base import Output, OutputConfig, OutputStats
from tests.daemon import handshake


class GateOutput(Output):
    """Records bundles; ``send_bundle`` waits while the gate is closed, and fails when told."""

    gate: asyncio.Event
    fail = False

    def __init__(self) -> None:
        self.bundles: list[Bundle] = []
        self._stats = OutputStats()

    async def send_bundle(self, bundle: Bundle) -> None:
        await self.gate.wait()
        if self.fail:
            raise OSError("output is broken")
        self.bundles.append(bundle)
        self._stats.sent_messages += 1

    def stats(self) -> OutputStats:
        return self._stats


class GateFactory(OutputFactory):
    def __init__(self) -> None:
        self.created: dict[str, GateOutput] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.failing: set[str] = set()

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        out = GateOutput()
        out.gate = self.gates.setdefault(config.prefix, asyncio.Event())
        out.fail = config.prefix in self.failing
        self.created[config.prefix] = out
        return out


@pytest.fixture
def factory():
    f = GateFactory()
    register_output("gate", f)
    return f


@pytest.fixture
def session_dir():
    d = tempfile.mkdtemp(prefix="bdi-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _manager(session_dir: str) -> SessionManager:
    return SessionManager(session_dir=session_dir, socket_mode=0o600, default_output="gate",
                          global_tags={}, max_buffer_delay_ns=0, handshake_timeout=10,
                          flush_timeout=5, drain_timeout=5)


async def _write(path: str, name: str, body: bytes) -> None:
    _, writer = await asyncio.open_unix_connection(path)
    writer.write(handshake(name) + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def _text(out: GateOutput) -> bytes:
    lines = []
    for bundle in out.bundles:
        for entry in bundle.entries:
            for log in entry.logs:
                lines.append(log.content.data)
    return b"".join(lines)  # the raw text as written


def test_a_stuck_output_does_not_stall_another_session(factory, session_dir):
    async def main() -> None:
        manager = _manager(session_dir)
        stuck = await manager.open(project="", prefix="build/stuck")
        fine = await manager.open(project="", prefix="build/fine")
        factory.gates["build/fine"].set()  # only the stuck session's output blocks
        await _write(stuck.socket_path, "log", b"waiting\n")
        await _write(fine.socket_path, "log", b"hello\n")
        result = await asyncio.wait_for(manager.close(fine.id, 5), 10)
        assert result["complete"] and result["bundles_sent"] >= 1
        assert _text(factory.created["build/fine"]) == b"hello\n"
        assert factory.created["build/stuck"].bundles == []
        factory.gates["build/stuck"].set()
        result = await asyncio.wait_for(manager.close(stuck.id, 5), 10)
        assert result["complete"]
        assert _text(factory.created["build/stuck"]) == b"waiting\n"

    asyncio.run(main())


def test_close_reports_bundles_the_output_failed_to_send(factory, session_dir):
    async def main() -> None:
        manager = _manager(session_dir)
        factory.failing.add("build/bad")
        factory.gates["build/bad"] = asyncio.Event()
        factory.gates["build/bad"].set()
        bad = await manager.open(project="", prefix="build/bad")
        await _write(bad.socket_path, "log", b"lost\n")
        result = await asyncio.wait_for(manager.close(bad.id, 5), 10)
        assert not result["complete"]
        assert result["send_errors"] >= 1 and result["streams"] == 1 and result["bytes"] == 5

    asyncio.run(main())
