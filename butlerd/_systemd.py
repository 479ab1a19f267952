"""Living under systemd without libsystemd: socket activation, sd_notify, journald.

Goals: a service started by ``butlerd.socket`` takes its listening sockets
from systemd (so restarts lose no connection), tells systemd when it is ready,
what it is doing and that its event loop is alive, and writes logs that
journald files one entry per event with the right priority. Outside systemd
every piece here is a no-op, so ``serve`` behaves the same on a laptop.

Plan:

* ``listen_fds()`` implements the sd_listen_fds(3) contract: honour
  LISTEN_FDS only when LISTEN_PID is this process, fds start at 3, names come
  from LISTEN_FDNAMES; the variables are removed so children do not inherit
  them and the fds are made close-on-exec.
* ``Notifier`` sends sd_notify(3) datagrams to NOTIFY_SOCKET (a path, or an
  abstract socket written ``@name``). Send errors are logged once and
  otherwise ignored: losing a STATUS line must never hurt the daemon.
* ``Watchdog`` is an asyncio task that sends WATCHDOG=1 every half
  WATCHDOG_USEC. It runs on the event loop on purpose: a loop that is stuck
  stops pinging, and systemd kills and restarts the service.
* ``JournalFormatter`` turns a log record into one line (newlines of
  tracebacks escaped) and, when stderr is connected to journald
  (JOURNAL_STREAM names stderr's device and inode), prefixes the ``<N>``
  syslog priority that journald strips and files.
* ``unit_files()``/``write_units()`` give the unit files shipped in the
  package (``butlerd/systemd``), with ExecStart pointing at this install.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from butlerd._goflags import FlagSet

log = logging.getLogger("butlerd.systemd")

#: sd_listen_fds(3): passed descriptors start here.
LISTEN_FDS_START = 3

#: The ExecStart binary written in the canonical unit files; replaced by the
#: real path of this install when the units are written out.
CANONICAL_BINARY = "/usr/local/bin/butlerd"

#: Unit files shipped in the package, in install order.
UNIT_FILES = ("butlerd.socket", "butlerd.service", "butlerd.sysusers")


# --- socket activation -------------------------------------------------------------------------


@dataclass
class ActivatedSocket:
    """A listening socket passed by the service manager."""

    sock: socket.socket
    name: str  # LISTEN_FDNAMES entry ("unknown" when not given)

    @property
    def path(self) -> str | None:
        """The filesystem path of a Unix socket (None for abstract/IP sockets)."""
        if self.sock.family != socket.AF_UNIX:
            return None
        try:
            addr = self.sock.getsockname()
        except OSError:
            return None
        if isinstance(addr, bytes):  # abstract, or an unnamed socket
            return None
        return addr or None


def listen_fds(unset_environment: bool = True) -> list[ActivatedSocket]:
    """The sockets systemd passed to this process, or [] when there are none.

    As sd_listen_fds(3): only when LISTEN_PID names this process (so a child
    that inherited the variables does not steal its parent's sockets).
    """
    env = os.environ
    try:
        pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    names = env.get("LISTEN_FDNAMES", "")
    if unset_environment:
        for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(var, None)
    if pid != os.getpid() or count <= 0:
        return []
    name_list = names.split(":") if names else []
    result: list[ActivatedSocket] = []
    for i in range(count):
        fd = LISTEN_FDS_START + i
        os.set_inheritable(fd, False)
        try:
            sock = socket.socket(fileno=fd)
        except OSError as e:
            log.warning("passed file descriptor %d is not a socket (%s); ignored", fd, e)
            continue
        name = name_list[i] if i < len(name_list) and name_list[i] else "unknown"
        result.append(ActivatedSocket(sock, name))
    return result


def take_socket(activated: list[ActivatedSocket], path: str | None, name: str) -> socket.socket | None:
    """Remove and return the passed socket bound to ``path`` or named ``name``.

    A socket unit may list several ListenStream= lines under one
    FileDescriptorName=, so the bound path is the reliable key; the name is
    the fallback for units that name each socket.
    """
    for key in ("path", "name"):
        for i, a in enumerate(activated):
            if (key == "path" and path and a.path == path) or (key == "name" and a.name == name):
                del activated[i]
                a.sock.setblocking(False)
                return a.sock
    return None


# --- sd_notify --------------------------------------------------------------------------------


def _notify_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not used by systemd for services here


class Notifier:
    """sd_notify(3) over NOTIFY_SOCKET; a no-op when the variable is not set."""

    def __init__(self, address: str | None = None) -> None:
        raw = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        self._address = _notify_address(raw)
        self._sock: socket.socket | None = None
        self._warned = False
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``ready=1`` becomes ``READY=1``)."""
        if self._address is None:
            return False
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message, self._address)
            return True
        except OSError as e:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify the service manager: %s", e)
            return False

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send(ready=1, status=status, mainpid=os.getpid())

    def status(self, status: str) -> None:
        """Send STATUS= only when it changed (it is shown by ``systemctl status``)."""
        if status != self._last_status:
            self._last_status = status
            self.send(status=status)

    def stopping(self, status: str) -> None:
        self._last_status = status
        self.send(stopping=1, status=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half WATCHDOG_USEC), None when disabled."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    if usec <= 0:
        return None
    return usec / 2e6


class Watchdog:
    """Pings the service manager from the event loop, and refreshes STATUS=."""

    def __init__(self, notifier: Notifier, status: Callable[[], str],
                 status_every: float = 2.0) -> None:
        self._notifier = notifier
        self._status = status
        self._interval = watchdog_interval()
        self._status_every = status_every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._notifier.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sd-watchdog")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        step = self._status_every
        if self._interval is not None:
            step = min(step, self._interval)
        next_ping = loop.time()
        while True:
            now = loop.time()
            if self._interval is not None and now >= next_ping:
                self._notifier.send(watchdog=1)
                next_ping = now + self._interval
            try:
                self._notifier.status(self._status())
            except Exception:  # a status text must never stop the pings
                log.exception("building the service status failed")
            await asyncio.sleep(step)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


# --- logging ----------------------------------------------------------------------------------

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


def stderr_is_journal() -> bool:
    """JOURNAL_STREAM is ``dev:inode`` of the journald stream we were given."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not dev or not ino:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return f"{st.st_dev}:{st.st_ino}" == value


class JournalFormatter(logging.Formatter):
    """One line per record; ``<N>`` syslog priorities when writing to journald."""

    def __init__(self, inner: logging.Formatter | None, journal: bool) -> None:
        super().__init__()
        # journald stamps entries itself; keep the message and its logger only.
        self._inner = logging.Formatter("%(name)s: %(message)s") if journal or inner is None else inner
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = self._inner.format(record).rstrip("\n").replace("\n", "\\n")
        if self._journal:
            level = max((lv for lv in _PRIORITY if lv <= record.levelno), default=logging.DEBUG)
            return f"<{_PRIORITY[level]}>{text}"
        return text


def use_journal_logging() -> None:
    """Make every root handler write one line per event (with priorities under journald)."""
    journal = stderr_is_journal()
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JournalFormatter):
            continue
        handler.setFormatter(JournalFormatter(handler.formatter, journal))


# --- unit files -------------------------------------------------------------------------------


def unit_files() -> dict[str, str]:
    """The shipped unit files, by name."""
    base = resources.files("butlerd") / "systemd"
    return {name: (base / name).read_text(encoding="utf-8") for name in UNIT_FILES}


def installed_binary() -> str:
    """The ``butlerd`` script of this install (venv first), for ExecStart=."""
    beside = Path(sys.executable).parent / "butlerd"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("butlerd")
    return os.path.abspath(found) if found else CANONICAL_BINARY


def write_units(directory: str, binary: str | None = None) -> list[str]:
    """Write the unit files into ``directory`` with ExecStart= set to ``binary``."""
    binary = binary or installed_binary()
    if any(c.isspace() for c in binary):
        raise ValueError(f"the butlerd path must not contain whitespace: {binary!r}")
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, text in unit_files().items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(CANONICAL_BINARY, binary))
        written.append(path)
    return written


# --- `butlerd systemd-units DIR` ----------------------------------------------------------------


def systemd_units_flags() -> FlagSet:
    fs = FlagSet("systemd-units")
    fs.string("exec", "", "The butlerd binary ExecStart= runs (default: this install's).",
              metavar="path")
    return fs


async def systemd_units(opts: object, values: dict[str, object]) -> int:
    """Write butlerd.socket, butlerd.service and butlerd.sysusers into DIR."""
    from butlerd._app import EXIT_CONFIG, CommandError

    args = values["args"]
    assert isinstance(args, list)
    if len(args) != 1:
        raise CommandError(EXIT_CONFIG, "usage: butlerd systemd-units [-exec PATH] DIR")
    try:
        for path in write_units(str(args[0]), str(values["exec"]) or None):
            print(path)
    except (OSError, ValueError) as e:
        raise CommandError(EXIT_CONFIG, str(e)) from None
    return 0
