"""Per-build sessions of a long-running daemon, and the control socket that manages them.

Goals: LUCI runs one Butler per build (one project/prefix, one socket, one
output, stream names unique within it) and waits at the end of the build
until its logs are delivered. A service on a bot gives each build the same
thing as a *session*: its own stream socket, its own ``Butler`` (so stream
names are unique per session, not per daemon) and its own output. Sessions
share nothing but the event loop, so one session's slow output or bad client
cannot stall another's, and closing one drains and flushes exactly its data.

Plan:

* ``Session`` = StreamServer + Butler + Output for one project/prefix. Its
  ``close`` lets already-sent data in, then refuses new streams, waits up to
  the drain timeout for open streams, cuts the rest, flushes the output and
  returns what happened (``complete`` only when nothing was cut, dropped or
  left undelivered).
* ``SessionManager`` creates and closes sessions; a closed session's result
  is kept for a while so a runner whose connection broke can ask again.
* ``ControlServer`` speaks JSON lines on the control socket (one request
  object per line, one response object per line):
  ``{"op": "open", "project", "prefix", "tags", "output", "coordinator_host"}``,
  ``{"op": "close", "session", "drain_timeout"}``, ``{"op": "list"}``,
  ``{"op": "status"}``; responses are ``{"ok": true, ...}`` or
  ``{"ok": false, "error": "..."}``.
* ``Service`` is what ``serve`` plugs in: sockets passed by systemd, the
  control socket, sd_notify readiness/status/watchdog, and the shutdown of
  every session alongside the daemon's own streams.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable
from typing import Any

from butlerd import _systemd
from butlerd._app import EXIT_RUNTIME, CommandError, build_output
from butlerd._butler import Butler
from butlerd._goflags import FlagSet
from butlerd._server import StreamServer, bind_unix_socket, check_socket_path, peer_credentials
from butlerd.outputs.base import Output, OutputConfig
from wire.timefmt import format_rfc3339nano
from wire.types import validate_project_name, validate_stream_name, validate_tag

log = logging.getLogger("butlerd.sessions")

DEFAULT_CONTROL_SOCKET = "/run/butlerd/control.sock"
DEFAULT_SESSION_OUTPUT = "directory,path=./butlerd-sessions/{id}"
#: Longest control request line; an ``open`` with many tags fits easily.
MAX_REQUEST_LINE = 1 << 20
#: Results of closed sessions kept for a repeated ``close``.
KEEP_CLOSED = 256


class SessionError(Exception):
    """A control request that cannot be done; the message goes back to the client."""


async def _close_quietly(output: Output) -> None:
    """Release an output a failed ``open`` created; its error is only logged."""
    try:
        await output.close()
    except Exception:
        log.exception("closing the output of a session that failed to open")


# --- one session ------------------------------------------------------------------------------


class Session:
    """One build's stream socket, Butler and output."""

    def __init__(self, sid: str, *, project: str, prefix: str, coordinator_host: str,
                 tags: dict[str, str], output_spec: str, output: Output, socket_path: str,
                 butler: Butler, server: StreamServer) -> None:
        self.id = sid
        self.project = project
        self.prefix = prefix
        self.coordinator_host = coordinator_host
        self.tags = tags
        self.output_spec = output_spec
        self.output = output
        self.socket_path = socket_path
        self.butler = butler
        self.server = server
        self.created_ns = time.time_ns()
        self.state = "open"
        self._closing: asyncio.Task[dict[str, Any]] | None = None

    @property
    def open_streams(self) -> int:
        return self.butler.reading_streams

    def env(self) -> dict[str, str]:
        """The environment a build's processes need to log into this session."""
        env = {"LOGDOG_STREAM_PROJECT": self.project, "LOGDOG_STREAM_PREFIX": self.prefix,
               "LOGDOG_COORDINATOR_HOST": self.coordinator_host}
        env.update(self.output.url_env())
        env = {k: v for k, v in env.items() if v}
        env["LOGDOG_STREAM_SERVER_PATH"] = f"unix:{self.socket_path}"
        return env

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "project": self.project,
            "prefix": self.prefix,
            "coordinator_host": self.coordinator_host,
            "tags": self.tags,
            "output": self.output_spec,
            "socket": self.socket_path,
            "created": format_rfc3339nano(self.created_ns),
            "streams": self.butler.streams_opened,
            "open_streams": self.open_streams,
            "streams_refused": self.butler.streams_refused,
            "bytes": self.butler.bytes_received,
            "bundles_sent": self.butler.bundles_sent,
            "env": self.env(),
        }

    def close(self, drain_timeout: float) -> asyncio.Task[dict[str, Any]]:
        """Drain and flush once; later calls share the first close."""
        if self._closing is None:
            self.state = "closing"
            self._closing = asyncio.get_running_loop().create_task(
                self._close(drain_timeout), name=f"close session {self.id}")
        return self._closing

    async def _close(self, drain_timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        await self.server.settle()
        self.butler.closing = True  # from now on a handshake is refused
        deadline = loop.time() + drain_timeout
        while self.open_streams and loop.time() < deadline:
            await asyncio.sleep(0.02)
        cut = self.open_streams
        if cut:
            log.warning("session %s: closing %d stream(s) still open after %gs",
                        self.id, cut, drain_timeout)
        await self.server.shutdown(0)
        self.output.begin_close()
        await self.butler.flush()
        try:
            await self.output.close()
            close_error = ""
        except Exception as e:  # counted, reported, and the daemon goes on
            log.exception("session %s: closing the output failed", self.id)
            close_error = str(e) or type(e).__name__
        self.state = "closed"
        stats = self.output.stats()
        undelivered = self.output.undelivered
        dropped = self.butler.bundler.dropped_bytes
        result = {
            "id": self.id,
            "complete": not (cut or undelivered or self.butler.send_errors or dropped
                             or close_error or self.butler.streams_refused),
            "streams": self.butler.streams_opened,
            "streams_refused": self.butler.streams_refused,
            "streams_cut": cut,
            "bytes": self.butler.bytes_received,
            "dropped_bytes": dropped,
            "bundles_sent": self.butler.bundles_sent,
            "send_errors": self.butler.send_errors,
            "undelivered_bundles": undelivered,
            "output_stats": {"sent_bytes": stats.sent_bytes, "sent_messages": stats.sent_messages,
                             "discarded_messages": stats.discarded_messages,
                             "errors": stats.errors},
        }
        if close_error:
            result["output_close_error"] = close_error
        log.info("session %s closed: %s", self.id, json.dumps(result, sort_keys=True))
        return result


# --- all sessions -----------------------------------------------------------------------------


class SessionManager:
    """Opens and closes sessions with the daemon's settings."""

    def __init__(self, *, session_dir: str, socket_mode: int, default_output: str,
                 global_tags: dict[str, str], max_buffer_delay_ns: int,
                 handshake_timeout: float, flush_timeout: float, drain_timeout: float) -> None:
        self.session_dir = session_dir
        self.socket_mode = socket_mode
        self.default_output = default_output
        self.global_tags = dict(global_tags)
        self.max_buffer_delay_ns = max_buffer_delay_ns
        self.handshake_timeout = handshake_timeout
        self.flush_timeout = flush_timeout
        self.drain_timeout = drain_timeout
        self.sessions: dict[str, Session] = {}
        self.closed: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        #: (project, prefix) of sessions being opened, so two opens cannot race.
        self._opening: set[tuple[str, str]] = set()
        #: Set by close_all: the daemon is stopping and refuses new sessions.
        self.stopping = False
        self._dir_ready = False

    def _ensure_dir(self) -> None:
        if not self._dir_ready:
            os.makedirs(self.session_dir, mode=0o710, exist_ok=True)
            self._dir_ready = True

    async def open(self, *, project: str, prefix: str, coordinator_host: str = "",
                   tags: dict[str, str] | None = None, output: str = "") -> Session:
        if self.stopping:
            raise SessionError("the daemon is shutting down")
        if project:
            try:
                validate_project_name(project)
            except ValueError as e:
                raise SessionError(f"invalid project: {e}") from None
        if not prefix:
            raise SessionError("a session needs a prefix")
        try:
            validate_stream_name(prefix)
        except ValueError as e:
            raise SessionError(f"invalid prefix: {e}") from None
        key = (project, prefix)
        for other in self.sessions.values():
            if (other.project, other.prefix) == key:
                raise SessionError(f"session {other.id} already uses project {project!r} "
                                   f"prefix {prefix!r}; stream names must be unique per prefix")
        if key in self._opening:
            raise SessionError(f"a session for project {project!r} prefix {prefix!r} "
                               "is being opened")
        merged = dict(self.global_tags)
        for key_, value in (tags or {}).items():
            try:
                validate_tag(key_, value)
            except ValueError as e:
                raise SessionError(f"invalid tag: {e}") from None
            merged[key_] = value
        self._opening.add(key)
        try:
            return await self._open(project, prefix, coordinator_host, merged, output)
        finally:
            self._opening.discard(key)

    async def _open(self, project: str, prefix: str, coordinator_host: str,
                    tags: dict[str, str], output: str) -> Session:
        sid = secrets.token_hex(8)
        spec = (output or self.default_output).replace("{id}", sid)
        config = OutputConfig(project=project, prefix=prefix, coordinator_host=coordinator_host,
                              extra={"flush_timeout": str(self.flush_timeout)})
        try:
            out = build_output(spec, config)
        except CommandError as e:
            raise SessionError(str(e)) from None
        try:
            await out.start()
        except Exception as e:
            await _close_quietly(out)
            raise SessionError(f"failed to start output: {e}") from None
        path = os.path.join(self.session_dir, f"{sid}.sock")
        try:
            self._ensure_dir()
            path = check_socket_path(path)
            sock = bind_unix_socket(path, self.socket_mode)
        except (OSError, ValueError) as e:
            await _close_quietly(out)
            raise SessionError(f"cannot listen on {path}: {e}") from None
        butler = Butler(out, max_buffer_delay_ns=self.max_buffer_delay_ns, global_tags=tags)
        server = StreamServer(butler, handshake_timeout=self.handshake_timeout)
        session = Session(sid, project=project, prefix=prefix, coordinator_host=coordinator_host,
                          tags=tags, output_spec=spec, output=out, socket_path=path,
                          butler=butler, server=server)
        butler.start()
        await server.listen(sock, remove_on_close=path)
        self.sessions[sid] = session
        log.info("session %s opened: project %r prefix %r output %s socket %s",
                 sid, project, prefix, spec, path)
        return session

    async def close(self, sid: str, drain_timeout: float | None = None) -> dict[str, Any]:
        if sid in self.closed:
            return self.closed[sid]
        session = self.sessions.get(sid)
        if session is None:
            raise SessionError(f"no session {sid!r}")
        timeout = self.drain_timeout if drain_timeout is None else drain_timeout
        result = await asyncio.shield(session.close(timeout))
        if self.sessions.pop(sid, None) is not None:
            self.closed[sid] = result
            while len(self.closed) > KEEP_CLOSED:
                self.closed.popitem(last=False)
        return result

    async def close_all(self, drain_timeout: float) -> list[dict[str, Any]]:
        self.stopping = True
        while self._opening:  # let sessions being opened finish, then close them too
            await asyncio.sleep(0.02)
        ids = list(self.sessions)
        if not ids:
            return []
        log.info("closing %d session(s)", len(ids))
        return list(await asyncio.gather(*(self.close(i, drain_timeout) for i in ids)))

    def counts(self) -> dict[str, int]:
        sessions = list(self.sessions.values())
        return {
            "sessions": len(sessions),
            "open_streams": sum(s.open_streams for s in sessions),
            "streams": sum(s.butler.streams_opened for s in sessions),
            "bytes": sum(s.butler.bytes_received for s in sessions),
            "bundles_sent": sum(s.butler.bundles_sent for s in sessions),
        }


# --- the control socket -----------------------------------------------------------------------


def _peer(writer: asyncio.StreamWriter) -> str:
    creds = peer_credentials(writer.get_extra_info("socket"))
    return "peer" if creds is None else f"pid {creds[0]} uid {creds[1]}"


class ControlServer:
    """JSON-lines requests on the control socket, answered by a SessionManager."""

    def __init__(self, manager: SessionManager, status: Any = None) -> None:
        self.manager = manager
        self._status = status
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._path: str | None = None
        self._busy = 0  # requests being handled or answered
        self._idle = asyncio.Event()
        self._idle.set()

    async def listen(self, sock: socket.socket, remove_on_close: str | None = None) -> None:
        self._server = await asyncio.start_unix_server(self._client, sock=sock,
                                                       limit=MAX_REQUEST_LINE)
        self._path = remove_on_close

    async def close(self) -> None:
        """Stop accepting; requests in progress (e.g. a ``close``) still get their answer."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._path:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None

    async def finish_requests(self, timeout: float) -> None:
        """Wait (up to ``timeout``) until requests in progress have been answered."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("%d control request(s) still unanswered at exit", self._busy)

    def abort(self) -> None:
        """Drop connections still open at exit."""
        for task in list(self._tasks):
            task.cancel()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = _peer(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    await self._reply(writer, {"ok": False, "error": "request line too long"})
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                self._busy += 1
                self._idle.clear()
                try:
                    await self._reply(writer, await self._handle(line, peer))
                finally:
                    self._busy -= 1
                    if not self._busy:
                        self._idle.set()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        writer.write(json.dumps(response, sort_keys=True).encode() + b"\n")
        await writer.drain()

    async def _handle(self, line: bytes, peer: str) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise SessionError("a request is a JSON object")
            op = request.get("op")
            if op == "open":
                tags = request.get("tags") or {}
                if not isinstance(tags, dict) or not all(
                        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
                    raise SessionError("tags must be an object of strings")
                session = await self.manager.open(
                    project=_str(request, "project"), prefix=_str(request, "prefix"),
                    coordinator_host=_str(request, "coordinator_host"), tags=tags,
                    output=_str(request, "output"))
                log.info("session %s opened for %s", session.id, peer)
                return {"ok": True, "session": session.info()}
            if op == "close":
                timeout = request.get("drain_timeout")
                if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
                    raise SessionError("drain_timeout must be a non-negative number of seconds")
                sid = _str(request, "session")
                log.info("session %s: close requested by %s", sid, peer)
                result = await self.manager.close(sid, timeout)
                return {"ok": True, "result": result}
            if op == "list":
                return {"ok": True,
                        "sessions": [s.info() for s in self.manager.sessions.values()]}
            if op == "status":
                return {"ok": True, "status": self._status() if self._status else {}}
            raise SessionError(f"unknown op {op!r}")
        except SessionError as e:
            return {"ok": False, "error": str(e)}
        except json.JSONDecodeError as e:
            return {"ok": False, "error": f"bad JSON: {e}"}
        except Exception as e:
            log.exception("control request failed")
            return {"ok": False, "error": f"internal error: {e}"}


def _str(request: dict[str, Any], key: str) -> str:
    value = request.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SessionError(f"{key} must be a string")
    return value


# --- what `serve` plugs in --------------------------------------------------------------------


def add_serve_flags(fs: FlagSet) -> None:
    """The flags ``serve`` gets for sessions."""
    fs.string("control-socket", "", "Session control socket to listen on (default: the one "
              f"systemd passes, e.g. {DEFAULT_CONTROL_SOCKET}; none otherwise).", metavar="path")
    fs.custom("control-socket-mode", 0o600, lambda s: int(s, 8),
              "Permissions of the control socket file (octal).", metavar="mode")
    fs.string("session-dir", "", "Directory for session sockets (default: 'sessions' next to "
              "the control socket).", metavar="path")
    fs.string("session-output", DEFAULT_SESSION_OUTPUT, "Output of a session opened without "
              "--output; {id} is replaced by the session id.", metavar="spec")


class Service:
    """Sockets from systemd, sd_notify, and sessions, for ``serve``."""

    def __init__(self, opts: Any, values: dict[str, Any]) -> None:
        _systemd.use_journal_logging()
        self.opts = opts
        self.values = values
        self.activated = _systemd.listen_fds()
        if self.activated:
            log.info("socket activation: %s",
                     ", ".join(f"{a.name}={a.path or '?'}" for a in self.activated))
        self.notifier = _systemd.Notifier()
        self.manager: SessionManager | None = None
        self.control: ControlServer | None = None
        self._butler: Butler | None = None
        self._watchdog: _systemd.Watchdog | None = None
        self._control_sock, self._control_path, self._control_owned = self._take_control()

    def _take_control(self) -> tuple[socket.socket | None, str | None, bool]:
        path = self.values.get("control-socket") or ""
        sock = _systemd.take_socket(self.activated, path or DEFAULT_CONTROL_SOCKET, "control")
        if sock is not None:
            actual = sock.getsockname()
            return sock, actual if isinstance(actual, str) and actual else path or None, False
        return None, path or None, True

    def stream_sockets(self, path: str | None) -> list[tuple[socket.socket, str]]:
        """The stream sockets systemd passed: the one bound at ``path``, else all left."""
        if not self.activated:
            return []
        sock = _systemd.take_socket(self.activated, path, "streams") if path else None
        if sock is not None:
            return [(sock, path or "")]
        taken = []
        for a in self.activated:
            a.sock.setblocking(False)
            taken.append((a.sock, a.path or ""))
        self.activated = []
        return taken

    def close(self) -> None:
        """Release what was taken when ``serve`` fails before serving."""
        for a in self.activated:
            a.sock.close()
        if self._control_sock is not None:
            self._control_sock.close()
        self.notifier.close()

    def status(self) -> dict[str, int]:
        counts = self.manager.counts() if self.manager else {
            "sessions": 0, "open_streams": 0, "streams": 0, "bytes": 0, "bundles_sent": 0}
        if self._butler is not None:
            counts["open_streams"] += self._butler.open_streams
            counts["bundles_sent"] += self._butler.bundles_sent
        return counts

    def status_text(self) -> str:
        c = self.status()
        return (f"{c['sessions']} session(s), {c['open_streams']} open stream(s), "
                f"{c['bundles_sent']} bundle(s) sent")

    async def start(self, butler: Butler, server: StreamServer) -> None:
        """Called once the daemon serves: open the control socket, tell systemd."""
        self._butler = butler
        opts, values = self.opts, self.values
        if self._control_path or self._control_sock is not None:
            if self._control_sock is None:
                assert self._control_path is not None
                try:
                    path = check_socket_path(self._control_path)
                    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                    self._control_sock = bind_unix_socket(path, values["control-socket-mode"])
                    self._control_path = path
                except (OSError, ValueError) as e:
                    raise CommandError(EXIT_RUNTIME,
                                       f"cannot listen on {self._control_path}: {e}") from None
            session_dir = values.get("session-dir") or os.path.join(
                os.path.dirname(self._control_path or DEFAULT_CONTROL_SOCKET), "sessions")
            self.manager = SessionManager(
                session_dir=session_dir, socket_mode=values.get("socket-mode", 0o600),
                default_output=values.get("session-output") or DEFAULT_SESSION_OUTPUT,
                global_tags=opts.tags, max_buffer_delay_ns=opts.max_buffer_delay_ns,
                handshake_timeout=opts.handshake_timeout_s, flush_timeout=opts.flush_timeout_s,
                drain_timeout=opts.drain_timeout_s)
            self.control = ControlServer(self.manager, self.status)
            await self.control.listen(self._control_sock,
                                      remove_on_close=self._control_path if self._control_owned
                                      else None)
            log.info("session control socket on %s (sessions under %s)",
                     self._control_path, session_dir)
        for a in self.activated:
            log.warning("passed socket %s (%s) is not used", a.name, a.path or "?")
        self.notifier.ready(self.status_text())
        self._watchdog = _systemd.Watchdog(self.notifier, self.status_text)
        self._watchdog.start()

    async def stop(self, shutdown: Awaitable[int]) -> int:
        """Shut down: the daemon's own streams (``shutdown``) and every session at once."""
        self.notifier.stopping("draining streams and sessions")
        if self.control is not None:
            await self.control.close()
        results: list[dict[str, Any]] = []

        async def close_sessions() -> None:
            if self.manager is not None:
                results.extend(await self.manager.close_all(self.opts.drain_timeout_s))

        try:
            code, _ = await asyncio.gather(shutdown, close_sessions())
            if self.control is not None:  # e.g. a runner's ``close`` gets its result
                await self.control.finish_requests(timeout=5.0)
        finally:
            if self.control is not None:
                self.control.abort()
            if self._watchdog is not None:
                await self._watchdog.stop()
            self.notifier.close()
        lost = [r for r in results if r["undelivered_bundles"] or r["send_errors"]]
        if lost and code == 0:
            log.error("%d session(s) did not deliver everything", len(lost))
            return EXIT_RUNTIME
        return code
