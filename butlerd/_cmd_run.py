"""``butlerd run`` (wrap a command) and ``butlerd stream`` (upload one file).

Goals, in order: a script written for ``logdog_butler run`` / ``stream``
works unchanged (same flags, same environment for the child, same exit codes,
same ``-result-path`` bytes); nothing the child wrote is lost, even when
butlerd is asked to stop.

Plan for ``run``:

1. Validate everything that can fail before anything is created: the command
   (resolved on PATH as Go's ``exec.LookPath`` does), ``-chdir``, the output.
   A command that cannot be found therefore leaves no socket behind.
2. Listen on a private socket (a fresh 0700 directory under $TMPDIR holding
   ``sock``), and start the child with ``LOGDOG_STREAM_SERVER_PATH`` and the
   output's LOGDOG_* variables. A named ``-stdout``/``-stderr`` is an
   ``os.pipe()`` whose read end is fed into a butler stream with the same
   backpressure a socket connection gets; an unnamed one is inherited.
3. Wait for the child to exit AND its pipes to reach EOF (a grandchild that
   holds them keeps us waiting, as in Go), then for every client of the
   socket to finish; then close the socket, flush and close the output.
4. First SIGTERM/SIGINT (this is where we differ from Go, which SIGKILLs the
   child and drops unread data): forward it to the child, SIGKILL it after
   ``-kill-grace``, give pipes and socket clients ``-drain-timeout`` to
   finish, flush what was read. A second signal exits 1 at once.

The exit code is the child's (255 when a signal killed it: Go reports -1);
2 for usage errors, 250 when the command could not be run.

Unlike logdog_butler, ``-output`` is optional for ``run`` and ``stream``:
without it they use serve's embedded default, ``directory,path=./butlerd-logs``
(relative to butlerd's working directory, not ``-chdir``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from butlerd import _app
from butlerd._app import GlobalOptions
from butlerd._butler import Butler, StreamRejected, StreamWriter
from butlerd._goflags import FlagSet, parse_map_item
from butlerd._nestedflags import FlagSet as NestedFlagSet
from butlerd._server import MAX_SOCKET_PATH, StreamServer, bind_unix_socket
from wire.descriptor import StreamDescriptor
from wire.goquote import go_json_string
from wire.types import CONTENT_TYPE_TEXT, StreamType, make_stream_name, validate_stream_name

log = logging.getLogger("butlerd.run")

#: Process exit status of ``run`` when the child was killed by a signal
#: (Go's ExitStatus() is -1, and os.Exit(-1) exits 255).
EXIT_SIGNALED = 255
DEFAULT_KILL_GRACE_NS = 10_000_000_000

_STREAM_TYPES = {"binary": StreamType.BINARY, "datagram": StreamType.DATAGRAM, "text": StreamType.TEXT}


# --- -stdout / -stderr / -stream ------------------------------------------------------------


class StreamOptions:
    """One nested ``name=N,type=T,content-type=C,tag=k=v`` option.

    Repeating the flag adds to the same options, as Go's nested flag set
    does (``-stdout name=x -stdout tag=a=b``). As in Go, the content type is
    ``text/plain; charset=utf-8`` whatever the type unless given.
    """

    def __init__(self) -> None:
        self.name = ""
        self.stream_type = StreamType.TEXT
        self.content_type = CONTENT_TYPE_TEXT
        self.tags: dict[str, str] = {}

    def set(self, value: str) -> StreamOptions:
        """The flag setter; raises ValueError with Go's message."""
        fs = NestedFlagSet()
        fs.var("name", self._set_name)
        fs.var("type", self._set_type)
        fs.var("content-type", self._set_content_type)
        fs.var("tag", self._set_tag)
        fs.parse(value)
        return self

    def _set_name(self, v: str) -> None:
        validate_stream_name(v)
        self.name = v

    def _set_type(self, v: str) -> None:
        t = _STREAM_TYPES.get(v)
        if t is None:
            raise ValueError("flagenum: Invalid value; must be one of [binary, datagram, text]")
        self.stream_type = t

    def _set_content_type(self, v: str) -> None:
        self.content_type = v

    def _set_tag(self, v: str) -> None:
        key, value = parse_map_item(v)  # Go stringmapflag; keys must be new
        if key in self.tags:
            raise ValueError(f"a value for key '{key}' has already been defined")
        self.tags[key] = value

    def descriptor(self, name: str | None = None) -> StreamDescriptor:
        return StreamDescriptor(
            name=name if name is not None else self.name,
            stream_type=self.stream_type,
            content_type=self.content_type,
            timestamp_ns=None,  # the butler stamps it when the stream is added
            tags=dict(self.tags),
        )


# --- command line helpers ---------------------------------------------------------------------


class LookPathError(Exception):
    """The command could not be resolved; str() is Go's exec.Error text."""


def _find_executable(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError as e:
        return e.strerror or str(e)
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not os.access(path, os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        return "permission denied"
    return None


def look_path(file: str, path_env: str | None = None) -> str:
    """Go ``exec.LookPath``: a name with a slash is used as is; otherwise the
    first executable ``dir/file`` on PATH. A relative result (PATH holding
    ``.`` or an empty entry) is refused, as Go refuses it (ErrDot)."""
    if "/" in file:
        err = _find_executable(file)
        if err is None:
            return file
        raise LookPathError(f'exec: "{file}": {err}')
    if path_env is None:
        path_env = os.environ.get("PATH", "")
    for d in path_env.split(os.pathsep) if path_env else []:
        candidate = os.path.normpath(os.path.join(d or ".", file))
        if _find_executable(candidate) is None:
            if not os.path.isabs(candidate):
                raise LookPathError(
                    f'exec: "{file}": cannot run executable found relative to current directory'
                )
            return candidate
    raise LookPathError(f'exec: "{file}": executable file not found in $PATH')


def load_json_args(path: str) -> list[str]:
    """The command from a ``-json-args-path`` file: one JSON array of strings
    (``null`` means none). As Go's json.Decoder, only the first value is read."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    text = text.lstrip(" \t\r\n")
    if not text:
        raise ValueError("EOF")
    value, _ = json.JSONDecoder().raw_decode(text)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError("cannot unmarshal into a list of strings")
    return value


def format_result(return_code: int, command: list[str]) -> str:
    """The ``-result-path`` document, byte for byte as Go's json.Encoder writes it."""

    parts = f'{{"return_code":{return_code}'
    if command:
        parts += ',"command":[' + ",".join(go_json_string(a) for a in command) + "]"
    return parts + "}\n"


def private_socket_path() -> tuple[str, str]:
    """(directory, socket path): a fresh 0700 directory only we can enter."""
    for base in (tempfile.gettempdir(), "/tmp"):
        d = tempfile.mkdtemp(prefix="butlerd-run.", dir=base)
        path = os.path.join(d, "sock")
        if len(path) <= MAX_SOCKET_PATH:
            return d, path
        os.rmdir(d)
    raise ValueError(f"no temporary directory gives a socket path of at most {MAX_SOCKET_PATH} bytes")


# --- pipes into streams -----------------------------------------------------------------------


class PipeStream(asyncio.Protocol):
    """Feeds one pipe (a child's stdout, or stdin) into a butler stream.

    It pauses the pipe while the stream's buffer is full, exactly as a socket
    connection does, so a fast writer blocks instead of growing our memory.
    """

    def __init__(self, writer: StreamWriter) -> None:
        self.writer = writer
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._transport: asyncio.ReadTransport | None = None
        self._paused = False
        self.reads = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.writer.set_on_consumed(self._maybe_resume)

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.writer.feed(data)
        self._check()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.warning("stream %r: read error: %s", self.writer.name, exc)
        self.writer.set_on_consumed(None)
        self.writer.close()
        if not self.done.done():
            self.done.set_result(None)

    def _check(self) -> None:
        t = self._transport
        if t is None:
            return
        if self.writer.failed:
            log.warning("stream %r ended: %s", self.writer.name, self.writer.stream.error)
            t.close()
        elif self.writer.full() and not self._paused:
            self._paused = True
            t.pause_reading()

    def _maybe_resume(self) -> None:
        t = self._transport
        if t is None:
            return
        if self.writer.failed:
            self._check()
        elif self._paused and not self.writer.full():
            self._paused = False
            t.resume_reading()

    def close(self) -> None:
        """Stop reading; what was read is kept and flushed."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    async def settle_and_close(self, limit: float = 0.5) -> None:
        """Read what the writer already put in the pipe (until it is quiet
        for a moment, at most ``limit`` seconds), then stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while not self.done.done() and loop.time() < deadline:
            seen = self.reads
            await asyncio.sleep(0.05)
            if self.reads == seen:
                break
        self.close()
        await self.done


async def attach_pipe(fd: int, writer: StreamWriter) -> PipeStream:
    """Read ``fd`` (which we now own) into ``writer`` until EOF."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    pipe = open(fd, "rb", buffering=0, closefd=True)
    _, protocol = await loop.connect_read_pipe(lambda: PipeStream(writer), pipe)
    return protocol


# --- run --------------------------------------------------------------------------------------


def run_flags() -> FlagSet:
    fs = FlagSet("run")
    fs.string("result-path", "", "If set, a JSON file {\"return_code\":N,\"command\":[...]} is "
              "written here once the command ran.", metavar="path")
    fs.string("json-args-path", "", "A JSON file holding the full command as an array of strings "
              "(instead of positional arguments).", metavar="path")
    fs.string("chdir", "", "Run the command in this directory.", metavar="dir")
    fs.boolean("attach", True, "Connect the command's stdout and stderr (to streams when named, "
               "else to ours); with -attach=false they go to /dev/null.")
    fs.boolean("forward-stdin", False, "Give the command our stdin (else /dev/null).")
    fs.custom("stdout", None, StreamOptions().set, "Make the command's stdout a stream: "
              "name=N[,type=text|binary|datagram][,content-type=CT][,tag=k=v...].",
              metavar="name=N,...")
    fs.custom("stderr", None, StreamOptions().set, "Same as -stdout, for stderr.",
              metavar="name=N,...")
    fs.duration("kill-grace", DEFAULT_KILL_GRACE_NS, "After forwarding SIGTERM/SIGINT to the "
                "command, how long it may take to exit before it is SIGKILLed.")
    return fs


def _check_chdir(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise _app.CommandError(_app.EXIT_RUNTIME, f"failed to stat -chdir directory {path}: {e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise _app.CommandError(_app.EXIT_RUNTIME, f"-chdir {path} is not a directory")


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: v for k, v in extra.items() if v})
    return dict(sorted(env.items()))  # Go hands the child a sorted environment


async def run(opts: GlobalOptions, values: dict[str, Any]) -> int:
    """``butlerd run``: see the module docstring."""
    args: list[str] = list(values["args"])
    json_path = values["json-args-path"]
    if json_path:
        if args:
            raise _app.CommandError(_app.EXIT_CONFIG, "cannot supply both JSON and command-line arguments")
        try:
            args = load_json_args(json_path)
        except (OSError, ValueError) as e:
            raise _app.CommandError(_app.EXIT_CONFIG,
                                   f"failed to load JSON arguments from {json_path}: {e}") from None
    if not args:
        raise _app.CommandError(_app.EXIT_CONFIG, "a command must be specified")
    try:
        command = [look_path(args[0]), *args[1:]]
    except LookPathError as e:
        raise _app.CommandError(_app.EXIT_RUNTIME, f"cannot run {args[0]!r}: {e}") from None
    if values["chdir"]:
        _check_chdir(values["chdir"])

    output = _app.make_output(opts, _app.DEFAULT_OUTPUT)
    try:
        await output.start()
    except Exception as e:
        raise _app.CommandError(_app.EXIT_RUNTIME, f"failed to start the output: {e}") from None
    try:
        sock_dir, sock_path = private_socket_path()
    except (OSError, ValueError) as e:
        await output.close()
        raise _app.CommandError(_app.EXIT_RUNTIME, f"cannot create the stream server socket: {e}") from None
    try:
        return await _Runner(opts, values, command, output, sock_path).execute()
    finally:
        try:
            os.unlink(sock_path)
        except FileNotFoundError:
            pass
        os.rmdir(sock_dir)


class _Runner:
    """One ``run``: the socket, the butler, the child, its pipes."""

    def __init__(self, opts: GlobalOptions, values: dict[str, Any], command: list[str],
                 output: Any, sock_path: str) -> None:
        self.opts = opts
        self.values = values
        self.command = command
        self.output = output
        self.sock_path = sock_path
        self.kill_grace_s = values["kill-grace"] / 1e9
        self.pipes: list[PipeStream] = []

    async def execute(self) -> int:
        opts = self.opts
        try:
            sock = bind_unix_socket(self.sock_path)
        except (OSError, ValueError) as e:
            await self.output.close()
            raise _app.CommandError(_app.EXIT_RUNTIME, f"cannot listen on {self.sock_path}: {e}") from None
        signals = _app.Signals()
        signals.install()
        butler = Butler(self.output, max_buffer_delay_ns=opts.max_buffer_delay_ns, global_tags=opts.tags)
        butler.start()
        server = StreamServer(butler, handshake_timeout=opts.handshake_timeout_s)
        await server.listen(sock, remove_on_close=self.sock_path)
        env = _child_env({**self.output.url_env(), "LOGDOG_STREAM_SERVER_PATH": f"unix:{self.sock_path}"})

        rc: int | None = None
        try:
            proc = await self._start_child(butler, env)
            rc = await self._supervise(proc, server, signals)
        finally:
            for p in self.pipes:
                p.close()
            await _app.shutdown(opts, butler, server, self.output)
        result_path = self.values["result-path"]
        if result_path:
            try:
                with open(result_path, "w", encoding="utf-8", errors="surrogateescape") as f:
                    # Go's WaitStatus.ExitStatus() is -1 for a signaled child.
                    f.write(format_result(rc if rc >= 0 else -1, self.command))
            except OSError as e:
                log.error("failed to write the result to %s: %s", result_path, e)
        if rc < 0:
            log.warning("command was killed by %s", _signal_name(-rc))
        elif rc != 0:
            log.warning("command exited with status %d", rc)
        return rc if rc >= 0 else EXIT_SIGNALED

    async def _start_child(self, butler: Butler, env: dict[str, str]) -> asyncio.subprocess.Process:
        attach = self.values["attach"]
        fds: dict[str, Any] = {}
        read_ends: list[tuple[int, StreamWriter]] = []
        to_close: list[int] = []
        try:
            for which in ("stdout", "stderr"):
                cfg: StreamOptions | None = self.values[which]
                if not attach:
                    fds[which] = subprocess.DEVNULL
                elif cfg is not None and cfg.name:
                    try:
                        writer = butler.add_stream(cfg.descriptor())
                    except StreamRejected as e:
                        raise _app.CommandError(_app.EXIT_RUNTIME, f"cannot add the {which} stream: {e}") from None
                    r, w = os.pipe()
                    to_close.append(w)
                    read_ends.append((r, writer))
                    fds[which] = w
                else:
                    fds[which] = None  # inherit ours
            try:
                proc = await asyncio.create_subprocess_exec(
                    self.command[0], *self.command[1:],
                    stdin=None if self.values["forward-stdin"] else subprocess.DEVNULL,
                    stdout=fds["stdout"], stderr=fds["stderr"],
                    cwd=self.values["chdir"] or None, env=env,
                )
            except OSError as e:
                raise _app.CommandError(_app.EXIT_RUNTIME, f"failed to start {self.command[0]}: {e}") from None
        except BaseException:
            for r, writer in read_ends:
                os.close(r)
                writer.close()
            raise
        finally:
            for w in to_close:
                os.close(w)  # the child has its copy; EOF comes when it and its children close theirs
        for r, writer in read_ends:
            self.pipes.append(await attach_pipe(r, writer))
        log.info("started %s (pid %d) with LOGDOG_STREAM_SERVER_PATH=unix:%s",
                 self.command[0], proc.pid, self.sock_path)
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process, server: StreamServer,
                         signals: Any) -> int:
        """Wait for the child, its pipes and the socket's clients; returns the child's status."""
        child = asyncio.ensure_future(proc.wait())
        pipes = asyncio.gather(*(p.done for p in self.pipes))
        normal = asyncio.gather(child, pipes)
        stop = asyncio.ensure_future(signals.event.wait())
        try:
            await asyncio.wait({normal, stop}, return_when=asyncio.FIRST_COMPLETED)
            if normal.done():
                idle = asyncio.ensure_future(server.wait_idle())
                await asyncio.wait({idle, stop}, return_when=asyncio.FIRST_COMPLETED)
                idle.cancel()
            else:
                await self._stop_child(proc, child, pipes, signals.received)
            return await child
        finally:
            stop.cancel()
            if not normal.done():
                normal.cancel()

    async def _stop_child(self, proc: asyncio.subprocess.Process, child: asyncio.Future[int],
                          pipes: asyncio.Future[Any], sig: int) -> None:
        if not child.done():
            log.warning("forwarding %s to pid %d; SIGKILL in %gs", signal.Signals(sig).name,
                        proc.pid, self.kill_grace_s)
            _signal(proc, sig)
            try:
                await asyncio.wait_for(asyncio.shield(child), self.kill_grace_s)
            except asyncio.TimeoutError:
                log.warning("pid %d still running after %gs; killing it", proc.pid, self.kill_grace_s)
                _signal(proc, signal.SIGKILL)
                await child
        if not pipes.done():
            drain = self.opts.drain_timeout_s
            try:
                await asyncio.wait_for(asyncio.shield(pipes), drain)
            except asyncio.TimeoutError:
                log.warning("the command's output pipes are still open after %gs; closing them", drain)
                for p in self.pipes:
                    p.close()
                await pipes


def _signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


# --- stream -----------------------------------------------------------------------------------


def stream_flags() -> FlagSet:
    fs = FlagSet("stream")
    fs.string("source", "-", "The file to upload; - for stdin.", metavar="path")
    fs.custom("stream", None, StreamOptions().set, "The stream: name=N[,type=text|binary|datagram]"
              "[,content-type=CT][,tag=k=v...] (default name: stdin, or the file's path made "
              "a valid name).", metavar="name=N,...")
    return fs


async def _read_file(f: Any, writer: StreamWriter, stopped: Callable[[], bool]) -> None:
    """Feed a regular file (which epoll cannot watch) with the same backpressure."""
    consumed = asyncio.Event()
    writer.set_on_consumed(consumed.set)
    try:
        while not stopped():
            data = f.read(1 << 16)
            if not data:
                return
            if not await _feed(writer, data, consumed, stopped):
                return
            await asyncio.sleep(0)
    finally:
        writer.set_on_consumed(None)


async def _feed(writer: StreamWriter, data: bytes, consumed: asyncio.Event,
                stopped: Callable[[], bool]) -> bool:
    """Feed ``data``, then wait while the stream's buffer is full; False if it failed."""
    writer.feed(data)
    if writer.failed:
        log.warning("stream %r ended: %s", writer.name, writer.stream.error)
        return False
    while writer.full() and not stopped():
        consumed.clear()
        await consumed.wait()
    return True


async def _read_in_thread(f: Any, writer: StreamWriter, stopped: Callable[[], bool]) -> None:
    """Feed a terminal or other device: blocking reads in a daemon thread (an
    interrupted ``stream`` must not wait for a read that may never return)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)

    def worker() -> None:
        while True:
            try:
                data = f.read(1 << 16)
            except OSError as e:
                log.error("read error on %s: %s", writer.name, e)
                data = b""
            try:
                asyncio.run_coroutine_threadsafe(queue.put(data or b""), loop).result()
            except Exception:
                return  # the loop is gone
            if not data:
                return

    threading.Thread(target=worker, name="stream-reader", daemon=True).start()
    consumed = asyncio.Event()
    writer.set_on_consumed(consumed.set)
    try:
        while not stopped():
            data = await queue.get()
            if not data:
                return
            if not await _feed(writer, data, consumed, stopped):
                return
    finally:
        writer.set_on_consumed(None)


async def _start_reader(f: Any, writer: StreamWriter, stopped: Callable[[], bool]
                        ) -> tuple[asyncio.Future[Any], PipeStream | None]:
    """A future that completes when ``f`` reached EOF and all of it was fed
    (and the PipeStream doing it, when ``f`` is a pipe or socket)."""
    mode = os.fstat(f.fileno()).st_mode
    if stat.S_ISREG(mode):
        return asyncio.ensure_future(_read_file(f, writer, stopped)), None
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        # O_NONBLOCK belongs to the open file, shared with whoever gave it to
        # us: put it back as we found it.
        fd = f.fileno()
        was_blocking = os.get_blocking(fd)
        pipe = await attach_pipe(os.dup(fd), writer)
        pipe.done.add_done_callback(lambda _: os.set_blocking(fd, was_blocking))
        return pipe.done, pipe
    # Terminals and other devices (epoll refuses /dev/null outright).
    return asyncio.ensure_future(_read_in_thread(f, writer, stopped)), None


async def stream(opts: GlobalOptions, values: dict[str, Any]) -> int:
    """``butlerd stream``: one file or stdin as one stream, exit 0 at EOF."""
    cfg: StreamOptions = values["stream"] or StreamOptions()
    source = values["source"]
    if source == "-":
        default_name = "stdin"
        f = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    else:
        try:
            default_name = make_stream_name("file:", source)
        except ValueError as e:
            raise _app.CommandError(_app.EXIT_RUNTIME, f"failed to generate a stream name: {e}") from None
        try:
            f = open(source, "rb", buffering=0)
        except OSError as e:
            raise _app.CommandError(_app.EXIT_RUNTIME, f"failed to open {source}: {e}") from None
    if values["args"]:
        log.warning("ignoring arguments %r", values["args"])
    try:
        output = _app.make_output(opts, _app.DEFAULT_OUTPUT)
        try:
            await output.start()
        except Exception as e:
            raise _app.CommandError(_app.EXIT_RUNTIME, f"failed to start the output: {e}") from None
        return await _stream_file(opts, cfg.descriptor(cfg.name or default_name), f, output)
    finally:
        f.close()


async def _stream_file(opts: GlobalOptions, desc: StreamDescriptor, f: Any, output: Any) -> int:
    signals = _app.Signals()
    signals.install()
    butler = Butler(output, max_buffer_delay_ns=opts.max_buffer_delay_ns, global_tags=opts.tags)
    butler.start()
    code = 0
    try:
        writer = butler.add_stream(desc)
    except StreamRejected as e:
        print(f"butlerd stream: cannot add stream {desc.name!r}: {e}", file=sys.stderr)
        writer = None
        code = _app.EXIT_RUNTIME
    if writer is not None:
        stop = asyncio.ensure_future(signals.event.wait())
        reader, pipe = await _start_reader(f, writer, signals.event.is_set)
        log.info("streaming %s as %r", getattr(f, "name", "stdin"), desc.name)
        try:
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                code = _app.EXIT_RUNTIME  # interrupted, as Go; what was sent is still flushed
                if pipe is not None:
                    await pipe.settle_and_close()
                else:
                    reader.cancel()
                    await asyncio.wait({reader})
            elif reader.exception() is not None:
                log.error("reading %s failed: %s", desc.name, reader.exception())
                code = _app.EXIT_RUNTIME
        finally:
            stop.cancel()
            writer.close()
    return await _app.flush_and_close(butler, output) or code


__all__ = [
    "EXIT_SIGNALED",
    "LookPathError",
    "PipeStream",
    "StreamOptions",
    "attach_pipe",
    "format_result",
    "load_json_args",
    "look_path",
    "private_socket_path",
    "run",
    "run_flags",
    "stream",
    "stream_flags",
]
