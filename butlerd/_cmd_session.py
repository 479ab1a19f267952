"""``butlerd session open|close|list``: the build runner's side of the control socket.

A runner opens a session before a build, exports what ``open`` prints into
the build's environment, and after the build runs ``close``, whose exit
status says whether every byte the session received was delivered:

    eval "$(butlerd session open --project chromium --prefix buildbucket/x/123)"
    ./run-build
    butlerd session close "$BUTLERD_SESSION_ID"

Exit codes: 0 success (for ``close``: everything delivered, no stream cut);
1 ``close`` finished but something was cut, dropped or not delivered (the
counts are printed); 2 usage error; 250 the daemon could not be reached or
refused the request.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from typing import Any

from butlerd._app import parse_tag
from butlerd._goflags import FlagError, FlagSet
from butlerd._sessions import DEFAULT_CONTROL_SOCKET

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_CONFIG = 2
EXIT_RUNTIME = 250

USAGE = """usage:
  butlerd session open [--project P] [--prefix PFX] [--output SPEC] [--tag k=v ...]
                       [--coordinator-host H] [--json]
  butlerd session close ID [--drain-timeout 30s] [--json]
  butlerd session list [--json]
Every form also takes --control-socket PATH (default $BUTLERD_CONTROL_SOCKET or
""" + DEFAULT_CONTROL_SOCKET + ")."


class SessionCommandError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def default_control_socket() -> str:
    return os.environ.get("BUTLERD_CONTROL_SOCKET") or DEFAULT_CONTROL_SOCKET


def _common(fs: FlagSet, default_socket: str = "") -> FlagSet:
    fs.string("control-socket", default_socket, "The daemon's control socket "
              f"(default $BUTLERD_CONTROL_SOCKET or {DEFAULT_CONTROL_SOCKET}).", metavar="path")
    fs.boolean("json", False, "Print JSON instead of text.")
    return fs


def open_flags() -> FlagSet:
    fs = _common(FlagSet("session open"))
    fs.string("project", "", "The session's LogDog project (default: global -project).")
    fs.string("prefix", "", "The session's stream prefix (default: global -prefix, or generated).")
    fs.string("output", "", "The session's output (default: the daemon's -session-output).",
              metavar="spec")
    fs.string("coordinator-host", "", "The LogDog Coordinator host (default: global flag).")
    fs.custom("tag", [], parse_tag, "Tag key=value for every stream of the session; repeatable.",
              repeated=True, metavar="key=value")
    return fs


def close_flags() -> FlagSet:
    fs = _common(FlagSet("session close"))
    fs.duration("drain-timeout", 30_000_000_000,
                "How long open streams may take to finish before they are cut.")
    return fs


def list_flags() -> FlagSet:
    return _common(FlagSet("session list"))


def session_flags() -> FlagSet:
    """Flags before the action word (``butlerd session -control-socket P list``)."""
    return _common(FlagSet("session"), default_control_socket())


def request(path: str, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """One JSON-lines request/response on the control socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(json.dumps(message).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
    except OSError as e:
        raise SessionCommandError(EXIT_RUNTIME, f"cannot talk to butlerd at {path}: {e}") from None
    if not buf:
        raise SessionCommandError(EXIT_RUNTIME, f"butlerd at {path} closed the connection")
    try:
        response = json.loads(buf)
    except json.JSONDecodeError as e:
        raise SessionCommandError(EXIT_RUNTIME, f"bad response from butlerd: {e}") from None
    if not response.get("ok"):
        raise SessionCommandError(EXIT_RUNTIME, str(response.get("error", "request failed")))
    return response


def _parse(fs: FlagSet, args: list[str], positional: int) -> tuple[dict[str, Any], list[str]]:
    """Go-style flags with positionals allowed before or between them."""
    values, rest = fs.parse(args)
    taken: list[str] = []
    while rest and len(taken) < positional:
        taken.append(rest[0])
        more, rest = fs.parse(rest[1:])
        for name, flag in fs.flags.items():
            if flag.repeated:
                values[name] += more[name]
            elif more[name] != flag.default:
                values[name] = more[name]
    if rest or len(taken) != positional:
        raise FlagError("wrong number of arguments")
    return values, taken


def _open(opts: Any, common: dict[str, Any], args: list[str]) -> int:
    values, _ = _parse(open_flags(), args, 0)
    tags = dict(values["tag"])
    if len(tags) != len(values["tag"]):
        raise FlagError("a tag key is given twice")
    message = {
        "op": "open",
        "project": values["project"] or opts.project,
        "prefix": values["prefix"] or opts.prefix,
        "coordinator_host": values["coordinator-host"] or opts.coordinator_host,
        "output": values["output"] or opts.output,
        "tags": {**opts.tags, **tags},
    }
    path = values["control-socket"] or common["control-socket"]
    session = request(path, message, timeout=120)["session"]
    if values["json"] or common["json"]:
        print(json.dumps({"id": session["id"], "socket": session["socket"],
                          "env": session["env"], **session["env"]}, indent=2, sort_keys=True))
    else:
        print(f"export BUTLERD_SESSION_ID={shlex.quote(session['id'])}")
        for key in sorted(session["env"]):
            print(f"export {key}={shlex.quote(session['env'][key])}")
    return EXIT_OK


def _close(common: dict[str, Any], args: list[str]) -> int:
    values, (sid,) = _parse(close_flags(), args, 1)
    path = values["control-socket"] or common["control-socket"]
    drain = values["drain-timeout"] / 1e9
    result = request(path, {"op": "close", "session": sid, "drain_timeout": drain},
                     timeout=None)["result"]
    if values["json"] or common["json"]:
        print(json.dumps(result, indent=2, sort_keys=True))
    summary = (f"session {sid}: {result['streams']} stream(s), {result['bytes']} byte(s) received, "
               f"{result['bundles_sent']} bundle(s) sent")
    if result["complete"]:
        if not (values["json"] or common["json"]):
            print(summary + "; everything delivered")
        return EXIT_OK
    problems = [f"{result[k]} {label}" for k, label in (
        ("streams_cut", "stream(s) cut at the drain timeout"),
        ("streams_refused", "stream(s) refused (bad/duplicate name or session closing)"),
        ("dropped_bytes", "byte(s) dropped"),
        ("send_errors", "bundle send error(s)"),
        ("undelivered_bundles", "bundle(s) not delivered"),
    ) if result.get(k)]
    if result.get("output_close_error"):
        problems.append(f"output close failed: {result['output_close_error']}")
    print(f"butlerd session close: {summary}; NOT complete: {', '.join(problems)}",
          file=sys.stderr)
    return EXIT_INCOMPLETE


def _list(common: dict[str, Any], args: list[str]) -> int:
    values, _ = _parse(list_flags(), args, 0)
    path = values["control-socket"] or common["control-socket"]
    sessions = request(path, {"op": "list"}, timeout=30)["sessions"]
    if values["json"] or common["json"]:
        print(json.dumps(sessions, indent=2, sort_keys=True))
        return EXIT_OK
    print(f"{'ID':<20}  {'STATE':<7}  {'STREAMS':>7}  {'OPEN':>4}  {'BYTES':>12}  PROJECT/PREFIX")
    for s in sessions:
        print(f"{s['id']:<20}  {s['state']:<7}  {s['streams']:>7}  {s['open_streams']:>4}  "
              f"{s['bytes']:>12}  {s['project']}/{s['prefix']}")
    return EXIT_OK


async def session_command(opts: Any, values: dict[str, Any]) -> int:
    """``butlerd [global flags] session [-control-socket P] open|close|list ...``."""
    args: list[str] = values["args"]
    try:
        if not args:
            raise FlagError("missing action: open, close or list")
        action, rest = args[0], args[1:]
        if action == "open":
            return _open(opts, values, rest)
        if action == "close":
            return _close(values, rest)
        if action == "list":
            return _list(values, rest)
        raise FlagError(f"unknown action {action!r}")
    except FlagError as e:
        print(f"butlerd session: {e}\n\n{USAGE}", file=sys.stderr)
        return EXIT_CONFIG
    except SessionCommandError as e:
        print(f"butlerd session: {e}", file=sys.stderr)
        return e.code
