"""Choosing and configuring an output from ``-output NAME[,key=value,...]``.

Like the Go CLI, this happens in two steps with different failure classes:

* ``parse_output_flag(spec)`` checks the flag itself (known output name,
  known and well-formed options). A failure is an ``OutputFlagError``; Go
  reports it while parsing flags (exit 2).
* ``ParsedOutput.create(config)`` builds the output from the options and the
  global flags (``-project``, ``-prefix``, ...). A failure is an
  ``OutputConfigError``; Go reports it when it builds the output (exit 250),
  e.g. "missing required output path".

``create_output(spec, config)`` does both. An output kind is an
``OutputFactory``; the built-in kinds are listed in ``_BUILTIN`` as
"module:attribute" and imported only when chosen, so that e.g. the Pub/Sub
client libraries are never loaded for a directory output. Adding a kind is one
line there, or one ``register_output(name, factory)`` call at run time.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import Any

from butlerd._nestedflags import FlagSet, NestedFlagError, split_option
from butlerd.outputs.base import Output, OutputConfig, OutputStats

__all__ = [
    "Output",
    "OutputConfig",
    "OutputStats",
    "OutputConfigError",
    "OutputFlagError",
    "OutputFactory",
    "ParsedOutput",
    "register_output",
    "output_names",
    "get_factory",
    "parse_output_flag",
    "create_output",
]


class OutputConfigError(ValueError):
    """The output cannot be built as configured; str() is Go's message."""


class OutputFlagError(OutputConfigError):
    """The ``-output`` value itself is malformed (Go rejects it at flag parsing)."""


class OutputFactory(abc.ABC):
    """One selectable output kind: its options and how to build it."""

    #: One-line help, as Go's ``-output help`` lists it.
    description: str = ""

    def add_flags(self, flags: FlagSet) -> None:
        """Declare the ``key=value`` options (defaults included) on ``flags``."""

    @abc.abstractmethod
    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        """Build the output; raise ``OutputConfigError`` with Go's message."""


# name -> "module:attribute" of an OutputFactory class or instance.
_BUILTIN: dict[str, str] = {
    "directory": "butlerd.outputs.directory:DirectoryFactory",
    "log": "butlerd.outputs.log:LogFactory",
    "null": "butlerd.outputs.null:NullFactory",
    "logdog": "butlerd.outputs.logdog:LogDogFactory",
    "pubsub": "butlerd.outputs.pubsub:PubSubFactory",
}

_registered: dict[str, OutputFactory] = {}


def register_output(name: str, factory: OutputFactory | type[OutputFactory]) -> None:
    """Make ``-output name,...`` select ``factory`` (replaces a built-in)."""
    _registered[name] = factory() if isinstance(factory, type) else factory


def output_names() -> list[str]:
    """Every selectable output name, sorted."""
    return sorted(set(_BUILTIN) | set(_registered))


def get_factory(name: str) -> OutputFactory | None:
    """The factory for ``name``, or None when no such output exists."""
    factory = _registered.get(name)
    if factory is not None:
        return factory
    target = _BUILTIN.get(name)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        return None  # listed but not installed in this tree
    obj = getattr(module, attr)
    factory = obj() if isinstance(obj, type) else obj
    _registered[name] = factory
    return factory


@dataclass(slots=True)
class ParsedOutput:
    """A syntactically valid ``-output`` value, ready to be built."""

    name: str
    factory: OutputFactory
    options: dict[str, Any]

    def create(self, config: OutputConfig) -> Output:
        return self.factory.create(self.options, config)


def parse_output_flag(spec: str) -> ParsedOutput:
    """Check an ``-output`` value as Go's multiflag does (messages included)."""
    name, params = split_option(spec)
    if not name:
        raise OutputFlagError("option cannot be empty")
    factory = get_factory(name)
    if factory is None:
        raise OutputFlagError(f"invalid option: {name}")
    flags = FlagSet()
    factory.add_flags(flags)
    try:
        options = flags.parse(params)
    except NestedFlagError as e:
        raise OutputFlagError(str(e)) from None
    return ParsedOutput(name, factory, options)


def create_output(spec: str, config: OutputConfig) -> Output:
    """``-output`` value + global flags -> a ready (not yet started) output."""
    return parse_output_flag(spec).create(config)
