"""Choosing an output by name, as ``-output NAME,...`` does."""

from __future__ import annotations

from typing import Any

import pytest

from butlerd import outputs
from butlerd._events import Bundle
from butlerd._nestedflags import FlagSet
from butlerd.outputs import (
    OutputConfig,
    OutputConfigError,
    OutputFactory,
    OutputFlagError,
    create_output,
    output_names,
    parse_output_flag,
    register_output,
)
from butlerd.outputs.base import Output, OutputStats


@pytest.mark.parametrize(
    "spec,message",
    [("", "option cannot be empty"), (",path=x", "option cannot be empty"), ("nope,a=1", "invalid option: nope")],
)
def test_bad_output_names_use_go_messages(spec: str, message: str) -> None:
    with pytest.raises(OutputFlagError) as e:
        parse_output_flag(spec)
    assert str(e.value) == message


def test_builtins_are_listed() -> None:
    assert {"directory", "log", "null"} <= set(output_names())


class _Recorder(Output):
    def __init__(self, options: dict[str, Any], config: OutputConfig) -> None:
        self.options, self.config = options, config

    async def send_bundle(self, bundle: Bundle) -> None:
        pass

    def stats(self) -> OutputStats:
        return OutputStats()


class _Factory(OutputFactory):
    def add_flags(self, flags: FlagSet) -> None:
        flags.string("topic", "default-topic")

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        if options["topic"] == "bad":
            raise OutputConfigError("bad topic")
        return _Recorder(options, config)


def test_register_output_is_one_call(monkeypatch) -> None:
    monkeypatch.setattr(outputs, "_registered", dict(outputs._registered))
    register_output("recorder", _Factory)
    config = OutputConfig(project="proj", prefix="pre")
    out = create_output("recorder,topic=t", config)
    assert isinstance(out, _Recorder)
    assert out.options == {"topic": "t"} and out.config is config
    assert create_output("recorder", config).options == {"topic": "default-topic"}
    parsed = parse_output_flag("recorder,topic=bad")  # flags are fine...
    with pytest.raises(OutputConfigError, match="bad topic"):  # ...building is not
        parsed.create(config)
    assert "recorder" in output_names()
