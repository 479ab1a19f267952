"""RFC 3339 timestamps as Go reads and writes them, on integer nanoseconds.

Times are ``int`` nanoseconds since the Unix epoch, UTC. Python's datetime
cannot hold Go's zero time (year 1 is fine, but offsets push it to year 0)
nor nanoseconds, so the calendar arithmetic is done here on plain integers
(proleptic Gregorian, as Go).

Parsing mirrors Go's ``time.Time.UnmarshalJSON`` at go1.26: the fast RFC 3339
parser, falling back to ``time.Parse(time.RFC3339, ...)`` whose strict checks
are disabled. The union accepts: a 4-digit year; 2-digit month and day; a 1-
or 2-digit hour; 2-digit minutes and seconds; an optional fraction introduced
by ``.`` or ``,`` with any number of digits (only the first 9 count); then
``Z`` or ``±hh:mm`` where the offset may be up to 24 hours and 60 minutes.
Ranges are checked (month, day of month with leap years, hour < 24, minute and
second < 60). Anything else is rejected with ``TimeFormatError``.
"""

from __future__ import annotations

import re

NS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 86_400


class TimeFormatError(ValueError):
    """A timestamp Go would refuse to parse (Go: ``parsing time ... cannot parse``)."""


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


# Go's zero time.Time, 0001-01-01T00:00:00Z. Clients send it to mean "unset".
GO_ZERO_TIME_NS = days_from_civil(1, 1, 1) * _SECONDS_PER_DAY * NS_PER_SECOND

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def parse_rfc3339(s: str) -> int:
    """Parse an RFC 3339 time as Go's JSON decoder does; return UTC nanoseconds.

    The Go zero time parses to ``GO_ZERO_TIME_NS``; deciding that it means
    "unset" is the caller's business.
    """
    m = _RFC3339.match(s)
    if m is None:
        raise TimeFormatError(f"parsing time {s!r} as RFC 3339: cannot parse")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    frac, sign, off_h, off_m = m.group(7, 8, 9, 10)
    if not 1 <= month <= 12:
        raise TimeFormatError(f"parsing time {s!r}: month out of range")
    if hour >= 24:
        raise TimeFormatError(f"parsing time {s!r}: hour out of range")
    if minute >= 60:
        raise TimeFormatError(f"parsing time {s!r}: minute out of range")
    if second >= 60:
        raise TimeFormatError(f"parsing time {s!r}: second out of range")
    offset = 0
    if sign is not None:
        oh, om = int(off_h), int(off_m)
        if oh > 24:
            raise TimeFormatError(f"parsing time {s!r}: time zone offset hour out of range")
        if om > 60:
            raise TimeFormatError(f"parsing time {s!r}: time zone offset minute out of range")
        offset = (oh * 60 + om) * 60
        if sign == "-":
            offset = -offset
    if not 1 <= day <= _days_in(month, year):
        raise TimeFormatError(f"parsing time {s!r}: day out of range")
    nanos = int(frac[:9].ljust(9, "0")) if frac else 0
    secs = days_from_civil(year, month, day) * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset
    return secs * NS_PER_SECOND + nanos


def split_ns(ns: int) -> tuple[int, int]:
    """(seconds, nanos) with nanos in [0, 1e9), as Go's ``Unix()``/``Nanosecond()``."""
    return divmod(ns, NS_PER_SECOND)


def _date_time(secs: int) -> str:
    days, rem = divmod(secs, _SECONDS_PER_DAY)
    year, month, day = civil_from_days(days)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    ystr = f"-{-year:04d}" if year < 0 else f"{year:04d}"
    return f"{ystr}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"


def format_rfc3339nano(ns: int) -> str:
    """Go ``time.Time.UTC().MarshalJSON()`` text (RFC3339Nano), without quotes.

    Trailing zeros of the fraction are dropped, and the ``.`` with them.
    Go refuses to marshal years outside [0, 9999]; so do we (ValueError).
    """
    secs, nanos = divmod(ns, NS_PER_SECOND)
    text = _date_time(secs)
    if not text[:4].isdigit() or len(text) != 19:
        raise ValueError("Time.MarshalJSON: year outside of range [0,9999]")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def format_proto_json_timestamp(ns: int) -> str:
    """A google.protobuf.Timestamp as golang/protobuf v1 jsonpb writes it, without quotes.

    UTC with 0, 3, 6 or 9 fractional digits and ``Z``.
    """
    secs, nanos = divmod(ns, NS_PER_SECOND)
    text = _date_time(secs)
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"
