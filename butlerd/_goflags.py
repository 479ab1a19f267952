"""Command-line flags parsed the way Go's ``flag`` package parses them.

Scripts written for logdog_butler pass ``-flag value``, ``-flag=value``,
``--flag value`` and booleans as ``-flag`` or ``-flag=false``; parsing stops
at the first non-flag argument or ``--``. argparse does not do all of that, so
this is a small parser of our own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class FlagError(ValueError):
    """A usage error; the CLI exits 2 with this message."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
            "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_duration(text: str) -> int:
    """Go ``time.ParseDuration``: returns nanoseconds ("1m30s", "250ms", "0")."""
    s = text
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise FlagError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise FlagError(f"invalid duration {text!r}")
        number, unit = m.groups()
        whole, _, frac = number.partition(".")
        ns = int(whole or "0") * _UNIT_NS[unit]
        if frac:
            ns += int(frac) * _UNIT_NS[unit] // 10 ** len(frac)
        total += ns
        pos = m.end()
    return sign * total


def go_duration(ns: int) -> str:
    """Go ``time.Duration.String``: ``0s``, ``1.5µs``, ``250ms``, ``1h2m3.5s``."""
    u = abs(ns)
    if u < 1_000_000_000:
        if u == 0:
            return "0s"
        if u < 1_000:
            s = f"{u}ns"
        elif u < 1_000_000:
            s = _frac(u, 3) + "\u00b5s"
        else:
            s = _frac(u, 6) + "ms"
    else:
        secs, rest = divmod(u, 1_000_000_000)
        s = _frac(secs % 60 * 1_000_000_000 + rest, 9) + "s"
        minutes = secs // 60
        if minutes:
            s = f"{minutes % 60}m{s}"
            if minutes // 60:
                s = f"{minutes // 60}h{s}"
    return "-" + s if ns < 0 else s


def _frac(v: int, prec: int) -> str:
    whole, part = divmod(v, 10**prec)
    digits = f"{part:0{prec}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def parse_map_item(text: str) -> tuple[str, str]:
    """One ``key[=value]`` item of a Go ``stringmapflag`` (``-tag``): trimmed first."""
    text = text.strip()
    if not text:
        raise FlagError("cannot specify an empty k=v pair")
    key, _, value = text.partition("=")
    if not key:
        raise FlagError("cannot have a k=v pair with empty key")
    return key, value


@dataclass
class Flag:
    name: str
    help: str
    default: Any
    parse: Callable[[str], Any] | None  # None: a boolean flag
    repeated: bool = False
    metavar: str = "value"


@dataclass
class FlagSet:
    """A set of Go-style flags; ``parse`` returns (values, remaining args)."""

    name: str
    flags: dict[str, Flag] = field(default_factory=dict)

    def string(self, name: str, default: str, help: str, metavar: str = "string") -> None:
        self.flags[name] = Flag(name, help, default, str, metavar=metavar)

    def boolean(self, name: str, default: bool, help: str) -> None:
        self.flags[name] = Flag(name, help, default, None)

    def duration(self, name: str, default_ns: int, help: str) -> None:
        self.flags[name] = Flag(name, help, default_ns, parse_duration, metavar="duration")

    def custom(self, name: str, default: Any, parse: Callable[[str], Any], help: str,
               repeated: bool = False, metavar: str = "value") -> None:
        self.flags[name] = Flag(name, help, default, parse, repeated, metavar)

    def parse(self, args: list[str]) -> tuple[dict[str, Any], list[str]]:
        values: dict[str, Any] = {
            f.name: (list(f.default) if f.repeated else f.default) for f in self.flags.values()
        }
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if not arg.startswith("-") or arg == "-":
                break
            body = arg[2:] if arg.startswith("--") else arg[1:]
            if not body or body.startswith("-") or body.startswith("="):
                raise FlagError(f"bad flag syntax: {arg}")
            name, eq, inline = body.partition("=")
            if name in ("h", "help"):
                raise FlagError("help requested")
            flag = self.flags.get(name)
            if flag is None:
                raise FlagError(f"flag provided but not defined: -{name}")
            if flag.parse is None:
                if not eq:
                    value: Any = True
                elif inline in ("1", "t", "T", "TRUE", "true", "True"):  # Go strconv.ParseBool
                    value = True
                elif inline in ("0", "f", "F", "FALSE", "false", "False"):
                    value = False
                else:
                    raise FlagError(f"invalid boolean value {inline!r} for -{name}")
            else:
                if eq:
                    raw = inline
                else:
                    i += 1
                    if i >= len(args):
                        raise FlagError(f"flag needs an argument: -{name}")
                    raw = args[i]
                try:
                    value = flag.parse(raw)
                except FlagError as e:
                    raise FlagError(f"invalid value {raw!r} for flag -{name}: {e}") from None
                except ValueError as e:
                    raise FlagError(f"invalid value {raw!r} for flag -{name}: {e}") from None
            if flag.repeated:
                values[name].append(value)
            else:
                values[name] = value
            i += 1
        return values, args[i:]

    def usage(self) -> str:
        lines = []
        for f in self.flags.values():
            kind = "" if f.parse is None else f" {f.metavar}"
            default = ""
            if f.parse is parse_duration:
                default = f" (default {go_duration(f.default)})"
            elif f.default is True:
                default = " (default true)"
            elif f.default not in (None, "", False, []):
                default = f" (default {f.default!r})"
            lines.append(f"  -{f.name}{kind}\n        {f.help}{default}")
        return "\n".join(lines)
