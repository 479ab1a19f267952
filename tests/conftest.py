"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest

from tests.emulator import PubSubEmulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """A real Cloud Pub/Sub emulator on a free loopback port, for one test module."""
    emu = PubSubEmulator(tmp_path_factory.mktemp("emulator"))
    emu.start()
    yield emu
    emu.stop()
