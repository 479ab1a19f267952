"""``butlerd``: the command line, flag-compatible with logdog_butler.

``butlerd [global flags] serve [-streamserver-uri unix:PATH]`` runs the stream
server until SIGTERM/SIGINT, then drains and flushes and exits 0. With no
flags at all it serves on an embedded default (socket under
$XDG_RUNTIME_DIR, directory output ./butlerd-logs) and prints the
``export LOGDOG_STREAM_SERVER_PATH=...`` line a shell needs.

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

from butlerd import _cmd_run
from butlerd import _cmd_session, _sessions, _systemd
from butlerd._butler import DEFAULT_MAX_BUFFER_AGE_NS, Butler
from butlerd._goflags import FlagError, FlagSet
from butlerd._server import StreamServer, bind_unix_socket, check_socket_path
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


def _parse_tag(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key:
        raise FlagError("tag key must not be empty")
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
    fs.custom("tag", [], _parse_tag, "Global tag key[=value] for every stream; repeatable.",
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
            raise FlagError(f"tag {key!r} has already been defined")
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
    from butlerd.outputs import OutputConfigError, parse_output_flag

    spec = opts.output or default
    if not spec:
        raise CommandError(EXIT_RUNTIME, "No output is configured.")
    config = OutputConfig(
        project=opts.project,
        prefix=opts.prefix,
        coordinator_host=opts.coordinator_host,
        extra={"flush_timeout": str(opts.flush_timeout_s)},
    )
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


# --- serve ------------------------------------------------------------------------------------


def serve_flags() -> FlagSet:
    fs = FlagSet("serve")
    fs.string("streamserver-uri", "", "The stream server to listen on: unix:PATH "
              "(default: $XDG_RUNTIME_DIR/butlerd/butler.sock or /tmp/butlerd-$UID/butler.sock).")
    fs.custom("socket-mode", 0o600, lambda s: int(s, 8), "Permissions of the socket file (octal).",
              metavar="mode")
    _sessions.add_serve_flags(fs)
    return fs


class _Signals:
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


async def serve(opts: GlobalOptions, values: dict[str, Any]) -> int:
    service = _sessions.Service(opts, values)  # systemd's sockets, sd_notify, sessions
    uri = values["streamserver-uri"]
    if uri:
        proto, _, path = uri.partition(":")
        if proto != "unix" or not path:
            raise CommandError(EXIT_RUNTIME, f"unsupported stream server URI {uri!r} (want unix:PATH)")
    else:
        path = default_socket_path()
    inherited = service.stream_sockets(path if uri else None)
    sockets: list[tuple[Any, str | None]] = [(s, None) for s, _ in inherited]
    if inherited:
        path = inherited[0][1] or path
    else:
        if not uri:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            path = check_socket_path(path)
            sockets = [(bind_unix_socket(path, values["socket-mode"]), path)]
        except (ValueError, OSError) as e:
            service.close()
            raise CommandError(EXIT_RUNTIME, f"cannot listen on {path}: {e}") from None
    try:
        output = make_output(opts, DEFAULT_OUTPUT)
        await output.start()
    except BaseException:
        for sock, remove in sockets:
            sock.close()
            if remove:
                os.unlink(remove)
        service.close()
        raise
    return await run_server(opts, output, sockets, announce=f"unix:{path}", service=service)


async def run_server(opts: GlobalOptions, output: Any, sockets: list[tuple[Any, str | None]],
                     announce: str | None = None, service: Any = None) -> int:
    """Serve streams on ``sockets`` until a signal, then drain, flush and close."""
    signals = _Signals()
    signals.install()
    butler = Butler(output, max_buffer_delay_ns=opts.max_buffer_delay_ns, global_tags=opts.tags)
    butler.start()
    server = StreamServer(butler, handshake_timeout=opts.handshake_timeout_s)
    for sock, remove in sockets:
        await server.listen(sock, remove_on_close=remove)
    if announce:
        print(f"export LOGDOG_STREAM_SERVER_PATH={announce}", flush=True)
        log.info("serving streams on %s", announce)
    if service is not None:  # sessions, READY=1, watchdog; then drain them with ours
        await service.start(butler, server)
        await signals.event.wait()
        return await service.stop(shutdown(opts, butler, server, output))
    await signals.event.wait()
    return await shutdown(opts, butler, server, output)


async def shutdown(opts: GlobalOptions, butler: Butler, server: StreamServer, output: Any) -> int:
    await server.shutdown(opts.drain_timeout_s)
    await butler.flush()
    await output.close()
    stats = output.stats()
    log.info("output closed; stats %s", stats)
    undelivered = getattr(output, "undelivered", 0)
    if undelivered:
        log.error("%d bundle(s) were not delivered", undelivered)
        print(f"butlerd: {undelivered} bundle(s) were not delivered", file=sys.stderr)
        return EXIT_RUNTIME
    return 0


# --- entry point ----------------------------------------------------------------------------

SUBCOMMANDS: dict[str, tuple[Any, Any, str]] = {
    "serve": (serve_flags, serve, "Run a stream server until SIGTERM/SIGINT."),
    "session": (_cmd_session.session_flags, _cmd_session.session_command,
                "Open, close or list per-build sessions of a running daemon."),
    "systemd-units": (_systemd.systemd_units_flags, _systemd.systemd_units,
                      "Write the systemd unit files into DIR."),
    "run": (_cmd_run.run_flags, _cmd_run.run,
            "Run a command with a private stream server; its stdout/stderr may be streams."),
    "stream": (_cmd_run.stream_flags, _cmd_run.stream, "Upload one file (or stdin) as one stream."),
}


def usage() -> str:
    cmds = "\n".join(f"  {name:<10} {doc}" for name, (_, _, doc) in SUBCOMMANDS.items())
    return (
        "usage: butlerd [global flags] <command> [command flags] [args]\n\n"
        f"Commands:\n{cmds}\n  help       Show this help.\n\nGlobal flags:\n"
        + global_flags().usage()
    )


def _configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _run_async(coro: Any) -> int:
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        values, rest = global_flags().parse(args)
        opts = parse_globals(values)
    except (FlagError, ValueError) as e:
        print(f"butlerd: {e}\n\n{usage()}", file=sys.stderr)
        return EXIT_CONFIG
    if not rest:
        # No subcommand: with no flags at all, serve on the embedded default.
        if not args:
            rest = ["serve"]
        else:
            print(usage(), file=sys.stderr)
            return EXIT_CONFIG
    if opts.output.partition(",")[0] == "help":
        print(output_help(opts.output.partition(",")[2] or None))
        return 0
    name, sub_args = rest[0], rest[1:]
    if name == "help":
        print(usage())
        return 0
    if name not in SUBCOMMANDS:
        print(f"butlerd: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_CONFIG
    make_flags, command, _ = SUBCOMMANDS[name]
    try:
        sub_values, sub_rest = make_flags().parse(sub_args)
    except FlagError as e:
        print(f"butlerd {name}: {e}\n\n{make_flags().usage()}", file=sys.stderr)
        return EXIT_CONFIG
    sub_values["args"] = sub_rest
    _configure_logging(opts.log_level)
    raise_open_file_limit()
    try:
        return _run_async(command(opts, sub_values))
    except CommandError as e:
        print(f"butlerd {name}: {e}", file=sys.stderr)
        return e.code


if __name__ == "__main__":
    sys.exit(main())
