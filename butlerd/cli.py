"""``butlerd``: the command line, flag-compatible with logdog_butler.

``butlerd [global flags] serve [-streamserver-uri unix:PATH]`` runs the stream
server until SIGTERM/SIGINT, then drains and flushes and exits 0. With no
flags at all it serves on an embedded default (socket under
$XDG_RUNTIME_DIR, directory output ./butlerd-logs) and prints the
``export LOGDOG_STREAM_SERVER_PATH=...`` line a shell needs.

Subcommands live in their own modules and share ``butlerd._app``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from butlerd import _cmd_run, _cmd_session, _sessions, _systemd
from butlerd._app import (
    DEFAULT_OUTPUT,
    EXIT_CONFIG,
    EXIT_RUNTIME,
    CommandError,
    GlobalOptions,
    Signals,
    default_socket_path,
    global_flags,
    make_output,
    output_help,
    parse_globals,
    raise_open_file_limit,
    tune_garbage_collector,
    shutdown,
)
from butlerd._butler import Butler
from butlerd._goflags import FlagError, FlagSet
from butlerd._server import StreamServer, bind_unix_socket, check_socket_path
from butlerd.outputs.base import Output

log = logging.getLogger("butlerd")

# --- serve ------------------------------------------------------------------------------------


def serve_flags() -> FlagSet:
    fs = FlagSet("serve")
    fs.string("streamserver-uri", "", "The stream server to listen on: unix:PATH "
              "(default: $XDG_RUNTIME_DIR/butlerd/butler.sock or /tmp/butlerd-$UID/butler.sock).")
    fs.custom("socket-mode", 0o600, lambda s: int(s, 8), "Permissions of the socket file (octal).",
              metavar="mode")
    _sessions.add_serve_flags(fs)
    return fs


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
        try:
            await output.start()
        except Exception as e:
            raise CommandError(EXIT_RUNTIME, f"failed to start the output: {e}") from None
    except BaseException:
        for sock, remove in sockets:
            sock.close()
            if remove:
                os.unlink(remove)
        service.close()
        raise
    return await run_server(opts, output, sockets, announce=f"unix:{path}", service=service)


async def run_server(opts: GlobalOptions, output: Output, sockets: list[tuple[Any, str | None]],
                     announce: str, service: _sessions.Service) -> int:
    """Serve streams on ``sockets`` until a signal, then drain, flush and close."""
    signals = Signals()
    signals.install()
    butler = Butler(output, max_buffer_delay_ns=opts.max_buffer_delay_ns, global_tags=opts.tags)
    butler.start()
    server = StreamServer(butler, handshake_timeout=opts.handshake_timeout_s)
    for sock, remove in sockets:
        await server.listen(sock, remove_on_close=remove)
    try:
        await service.start(butler, server)  # sessions, READY=1, watchdog
    except BaseException:
        await shutdown(opts, butler, server, output)  # release the socket and the output
        raise
    print(f"export LOGDOG_STREAM_SERVER_PATH={announce}", flush=True)
    log.info("serving streams on %s", announce)
    await signals.event.wait()
    return await service.stop(shutdown(opts, butler, server, output))


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
    width = max(map(len, [*SUBCOMMANDS, "help"]))
    cmds = "\n".join(f"  {name:<{width}} {doc}" for name, (_, _, doc) in SUBCOMMANDS.items())
    return (
        "usage: butlerd [global flags] <command> [command flags] [args]\n\n"
        f"Commands:\n{cmds}\n  {'help':<{width}} Show this help.\n\nGlobal flags:\n"
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
    tune_garbage_collector()
    try:
        return _run_async(command(opts, sub_values))
    except CommandError as e:
        print(f"butlerd {name}: {e}", file=sys.stderr)
        return e.code


if __name__ == "__main__":
    sys.exit(main())
