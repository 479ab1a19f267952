"""The Go nested-option syntax of ``-output``, ``-stdout``, ``-stderr``, ``-stream``.

Goal: accept exactly what ``logdog_butler`` accepts, set the same values, and
fail with the same messages. The Go code reaches this in three steps and so do
we, because each step has its own quirks that users may (unknowingly) rely on:

1. ``split_option``: the option name is everything before the FIRST comma
   (no quoting or escaping there), the rest is the parameter string.
2. ``tokenize`` / ``split_token``: the parameter string is cut at unquoted,
   unescaped commas; ``"`` toggles quoting and is dropped; ``\\`` takes the
   next character literally (a trailing lone ``\\`` vanishes). Each token is
   ``name[=value]`` split at the first ``=``.
3. ``FlagSet.parse``: every token becomes the Go argument ``-name`` followed by
   ``value`` only when the value is non-empty, and those arguments go through a
   replica of Go's ``flag.FlagSet.Parse``. Hence ``k=`` equals ``k``; an empty
   token (``a,,b``) becomes ``-``, which ends parsing silently; a string flag
   without a value swallows the next token (``path,x=1`` sets path to ``-x``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from wire.goquote import go_quote

__all__ = [
    "NestedFlagError",
    "NestedFlagHelp",
    "split_option",
    "tokenize",
    "split_token",
    "parse",
    "to_go_args",
    "FlagSet",
    "go_parse_int",
]


class NestedFlagError(ValueError):
    """A nested option the Go flag package would reject (message as in Go)."""


class NestedFlagHelp(NestedFlagError):
    """``-help``/``-h`` was given to a flag set that does not define it."""

    def __init__(self) -> None:
        super().__init__("flag: help requested")


def split_option(value: str) -> tuple[str, str]:
    """Go multiflag: ``"name,params..."`` -> (``"name"``, ``"params..."``)."""
    name, _, params = value.partition(",")
    return name, params


def tokenize(params: str, delim: str = ",") -> list[str]:
    """Go nestedflagset lexer: split at unquoted, unescaped ``delim``."""
    tokens: list[str] = []
    buf: list[str] = []
    escaped = quoted = False
    at_end_of_token = False
    for c in params:
        at_end_of_token = False
        if escaped:
            escaped = False
            buf.append(c)
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == delim and not quoted:
            tokens.append("".join(buf))
            buf = []
            at_end_of_token = True
        else:
            buf.append(c)
    # Go emits a last token unless the string ended right after a delimiter.
    if params and not at_end_of_token:
        tokens.append("".join(buf))
    return tokens


def split_token(token: str) -> tuple[str, str | None]:
    """``"k=v=w"`` -> (``"k"``, ``"v=w"``); ``"k"`` -> (``"k"``, None)."""
    name, eq, value = token.partition("=")
    return name, (value if eq else None)


def parse(value: str) -> tuple[str, list[tuple[str, str | None]]]:
    """Split a whole option string: ``"directory,path=/x"`` ->
    (``"directory"``, ``[("path", "/x")]``). Values are None without ``=``.
    (Go does not tell ``k=`` from ``k``; use ``FlagSet`` for Go semantics.)"""
    name, params = split_option(value)
    return name, [split_token(t) for t in tokenize(params)]


def to_go_args(items: list[tuple[str, str | None]]) -> list[str]:
    """The argument list Go's nestedflagset hands to ``flag.FlagSet.Parse``."""
    args: list[str] = []
    for name, value in items:
        args.append("-" + name)
        if value:
            args.append(value)
    return args


@dataclass(slots=True)
class _Flag:
    name: str
    set: Callable[[str], None]
    is_bool: bool


@dataclass
class FlagSet:
    """A replica of the parts of Go's ``flag.FlagSet`` that nested options use.

    Define flags, then ``parse(params)``; results land in ``values`` (or go to
    the setter given to ``var``). A setter signals a bad value by raising
    ``ValueError`` whose text is Go's error text for that value type.
    """

    values: dict[str, Any] = field(default_factory=dict)
    _flags: dict[str, _Flag] = field(default_factory=dict)

    def var(self, name: str, setter: Callable[[str], None], *, is_bool: bool = False) -> None:
        self._flags[name] = _Flag(name, setter, is_bool)

    def string(self, name: str, default: str = "") -> None:
        self.values[name] = default
        self.var(name, lambda v: self.values.__setitem__(name, v))

    def integer(self, name: str, default: int = 0) -> None:
        self.values[name] = default
        self.var(name, lambda v: self.values.__setitem__(name, go_parse_int(v)))

    def boolean(self, name: str, default: bool = False) -> None:
        self.values[name] = default
        self.var(name, lambda v: self.values.__setitem__(name, _go_parse_bool(v)), is_bool=True)

    def parse(self, params: str) -> dict[str, Any]:
        """Parse a parameter string (the part after the option name)."""
        self.parse_args(to_go_args([split_token(t) for t in tokenize(params)]))
        return self.values

    def parse_args(self, args: list[str]) -> None:
        """Go ``FlagSet.Parse``: stops quietly at the first non-flag argument."""
        args = list(args)
        while args:
            s = args[0]
            if len(s) < 2 or s[0] != "-":
                return
            minuses = 1
            if s[1] == "-":
                minuses = 2
                if len(s) == 2:  # "--" ends the flags
                    return
            name = s[minuses:]
            if not name or name[0] in "-=":
                raise NestedFlagError(f"bad flag syntax: {s}")
            del args[0]
            value: str | None = None
            eq = name.find("=", 1)
            if eq > 0:
                name, value = name[:eq], name[eq + 1 :]
            flag = self._flags.get(name)
            if flag is None:
                if name in ("help", "h"):
                    raise NestedFlagHelp()
                raise NestedFlagError(f"flag provided but not defined: -{name}")
            if flag.is_bool:
                try:
                    flag.set("true" if value is None else value)
                except ValueError as e:
                    if value is None:
                        raise NestedFlagError(f"invalid boolean flag {name}: {e}") from None
                    raise NestedFlagError(
                        f"invalid boolean value {go_quote(value)} for -{name}: {e}"
                    ) from None
                continue
            if value is None:
                if not args:
                    raise NestedFlagError(f"flag needs an argument: -{name}")
                value = args.pop(0)
            try:
                flag.set(value)
            except ValueError as e:
                raise NestedFlagError(
                    f"invalid value {go_quote(value)} for flag -{name}: {e}"
                ) from None


def go_parse_int(s: str) -> int:
    """Go ``strconv.ParseInt(s, 0, 64)``; errors carry the flag package's text."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body:
        raise ValueError("parse error")
    base, digits = 10, body
    if body[0] == "0":
        if len(body) >= 3 and body[1].lower() in "box":
            base, digits = {"b": 2, "o": 8, "x": 16}[body[1].lower()], body[2:]
        else:
            base, digits = 8, body[1:]
    n = 0
    underscores = False
    for c in digits:
        if c == "_":
            underscores = True
            continue
        d = int(c, 36) if c.isascii() and c.isalnum() else 99
        if d >= base:
            raise ValueError("parse error")
        n = n * base + d
        if n >= 1 << 64:
            raise ValueError("value out of range")
    if underscores and not _underscores_ok(body):
        raise ValueError("parse error")
    if s[:1] == "-":
        if n > 1 << 63:
            raise ValueError("value out of range")
        return -n
    if n >= 1 << 63:
        raise ValueError("value out of range")
    return n


def _underscores_ok(body: str) -> bool:
    # Go strconv.underscoreOK: each "_" must sit between digits (a base
    # prefix counts as a digit).
    saw = "^"
    i = 0
    hexa = False
    if len(body) >= 2 and body[0] == "0" and body[1].lower() in "box":
        i, saw, hexa = 2, "0", body[1].lower() == "x"
    for c in body[i:]:
        if c.isdigit() and c.isascii() or hexa and c.lower() in "abcdef":
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _go_parse_bool(s: str) -> bool:
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")
