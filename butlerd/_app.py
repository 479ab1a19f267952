"""What every subcommand shares: global flags, exit codes, the output, signals, shutdown.

Exit codes follow logdog_butler: 2 for a usage or configuration error, 250
for a runtime error, 1 for a second interrupt.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from typing import Any

from butlerd._butler import DEFAULT_MAX_BUFFER_AGE_NS, Butler
from butlerd._goflags import FlagError, FlagSet, parse_map_item
from butlerd._server import StreamServer
from butlerd.outputs.base import Output, OutputConfig
from wire.types import make_stream_name, validate_project_name, validate_stream_name, validate_tag

log = logging.getLogger("butlerd")

EXIT_CONFIG = 2
EXIT_RUNTIME = 250
EXIT_SECOND_SIGNAL = 1

DEFAULT_OUTPUT = "directory,path=./butlerd-logs"


class CommandError(Exception):
    """Stops a subcommand with an exit code and a message for stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_tag(text: str) -> tuple[str, str]:
    """One ``-tag`` value, read as Go's stringmapflag reads it, then validated."""
    key, value = parse_map_item(text)
    validate_tag(key, value)
    return key, value


def global_flags() -> FlagSet:
    fs = FlagSet("butlerd")
    fs.string("log-level", "warning", "Logging level: debug, info, warning or error.")
    fs.string("project", "", "The log prefix's project name (e.g. chromium).")
    fs.string("prefix", "", "Prefix to apply to all stream names (default: generated).")
    fs.string("coordinator-host", "", "The LogDog Coordinator host name (logdog output).")
    fs.string("output", "", "Output: directory,path=DIR | log[,bundle-size=N] | null | "
              "pubsub,topic=T | logdog (default for serve: " + DEFAULT_OUTPUT + ").")
    fs.custom("tag", [], parse_tag, "Global tag key[=value] for every stream; repeatable.",
              repeated=True, metavar="key[=value]")
    fs.duration("output-max-buffer-age", DEFAULT_MAX_BUFFER_AGE_NS,
                "Longest a log entry waits in a bundle before it is sent.")
    fs.boolean("output-no-buffer", False, "Send log data as soon as it arrives.")
    fs.duration("output-flush-timeout", 30_000_000_000,
                "At exit, how long the output may take to deliver what it holds.")
    fs.duration("drain-timeout", 30_000_000_000,
                "At SIGTERM/SIGINT, how long open streams may take to finish.")
    fs.duration("handshake-timeout", 60_000_000_000,
                "A connection that has not completed its handshake by then is closed.")
    return fs


@dataclass
class GlobalOptions:
    log_level: int
    project: str
    prefix: str
    coordinator_host: str
    output: str
    tags: dict[str, str]
    max_buffer_age_ns: int
    no_buffer: bool
    flush_timeout_s: float
    drain_timeout_s: float
    handshake_timeout_s: float

    @property
    def max_buffer_delay_ns(self) -> int:
        if self.no_buffer:
            return 0
        return self.max_buffer_age_ns if self.max_buffer_age_ns > 0 else DEFAULT_MAX_BUFFER_AGE_NS


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def _generated_prefix() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "user"
    token = base64.urlsafe_b64encode(secrets.token_bytes(30)).decode()
    return make_stream_name("s_", "butler", "users", user or "user", token)


def parse_globals(values: dict[str, Any]) -> GlobalOptions:
    level = _LEVELS.get(values["log-level"].lower())
    if level is None:
        raise FlagError(f"invalid log level {values['log-level']!r}")
    project = values["project"]
    if project:
        validate_project_name(project)
    prefix = values["prefix"]
    if prefix:
        validate_stream_name(prefix)
    else:
        prefix = _generated_prefix()
    output = values["output"]
    if output:
        from butlerd.outputs import parse_output_flag

        name = output.partition(",")[0]
        if name != "help":
            parse_output_flag(output)  # OutputFlagError is a ValueError: exit 2
    tags: dict[str, str] = {}
    for key, value in values["tag"]:
        if key in tags:
            raise FlagError(f"a value for key '{key}' has already been defined")
        tags[key] = value
    return GlobalOptions(
        log_level=level,
        project=project,
        prefix=prefix,
        coordinator_host=values["coordinator-host"],
        output=values["output"],
        tags=tags,
        max_buffer_age_ns=values["output-max-buffer-age"],
        no_buffer=values["output-no-buffer"],
        flush_timeout_s=values["output-flush-timeout"] / 1e9,
        drain_timeout_s=values["drain-timeout"] / 1e9,
        handshake_timeout_s=values["handshake-timeout"] / 1e9,
    )


def default_socket_path() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "butlerd", "butler.sock")
    return f"/tmp/butlerd-{os.getuid()}/butler.sock"


def make_output(opts: GlobalOptions, default: str | None = None) -> Output:
    """Build the ``-output`` (or ``default``); a bad configuration exits 250 as in Go."""
    spec = opts.output or default
    if not spec:
        raise CommandError(EXIT_RUNTIME, "No output is configured.")
    config = OutputConfig(
        project=opts.project,
        prefix=opts.prefix,
        coordinator_host=opts.coordinator_host,
        extra={"flush_timeout": str(opts.flush_timeout_s)},
    )
    return build_output(spec, config)


def build_output(spec: str, config: OutputConfig) -> Output:
    """An output from its ``NAME,k=v,...`` spec, or CommandError saying why not."""
    from butlerd.outputs import OutputConfigError, parse_output_flag

    try:
        output = parse_output_flag(spec).create(config)
    except OutputConfigError as e:
        raise CommandError(EXIT_RUNTIME, f"failed to create output: {e}") from None
    if output.max_size <= 0:
        # Go hangs with a non-positive bundle size; refuse it instead.
        raise CommandError(EXIT_CONFIG, f"output bundle size must be positive (got {output.max_size})")
    return output


def output_help(name: str | None) -> str:
    from butlerd.outputs import get_factory, output_names

    names = [name] if name else output_names()
    lines = []
    for n in names:
        factory = get_factory(n)
        if factory is None:
            lines.append(f"unknown output {n!r}")
        else:
            lines.append(f"{n}: {factory.description}")
    return "\n".join(lines)


def tune_garbage_collector() -> None:
    """Collect young objects every 50,000 allocations instead of every 700.

    The daemon makes a few small objects per log entry (the entry, its
    content) and keeps them until their bundle is sent; they never form
    cycles, so frequent young collections only walk them again and again
    (about a microsecond per datagram in bench/).
    """
    import gc

    _, older, oldest = gc.get_threshold()
    gc.set_threshold(50_000, older, oldest)


def raise_open_file_limit() -> None:
    """Go raises the soft RLIMIT_NOFILE to the hard limit at start; so do we.

    Every stream holds a socket and, with the directory output, an open file.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


class Signals:
    """First SIGTERM/SIGINT starts a clean shutdown; a second one exits 1 at once."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.received: int | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        if self.received is not None:
            log.error("second signal; exiting now")
            os._exit(EXIT_SECOND_SIGNAL)
        self.received = sig
        log.warning("received %s: draining and flushing", signal.Signals(sig).name)
        self.event.set()


async def shutdown(opts: GlobalOptions, butler: Butler, server: StreamServer, output: Output) -> int:
    """Drain the streams, flush the bundler, close the output; the exit code."""
    await server.shutdown(opts.drain_timeout_s)
    return await flush_and_close(butler, output)


async def flush_and_close(butler: Butler, output: Output) -> int:
    """Flush every (closed) stream to the output and close it: 0, or 250 if
    the output failed to close or did not deliver everything."""
    output.begin_close()
    await butler.flush()
    try:
        await output.close()
    except Exception:
        log.exception("closing the output failed")
        return EXIT_RUNTIME
    log.info("output closed; stats %s", output.stats())
    undelivered = output.undelivered
    if undelivered:
        log.error("%d bundle(s) were not delivered", undelivered)
        print(f"butlerd: {undelivered} bundle(s) were not delivered", file=sys.stderr)
        return EXIT_RUNTIME
    return 0
