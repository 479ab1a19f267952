"""wire.timefmt: Go's RFC 3339 parsing and formatting, on integer nanoseconds."""

from __future__ import annotations

import datetime as dt

import pytest

from wire.timefmt import (
    GO_ZERO_TIME_NS,
    TimeFormatError,
    civil_from_days,
    days_from_civil,
    format_proto_json_timestamp,
    format_rfc3339nano,
    parse_rfc3339,
    split_ns,
)

E9 = 10**9


def ns_of(text: str) -> int:
    """Reference value via datetime (microsecond inputs only)."""
    d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    delta = d - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * E9 + delta.microseconds * 1000


def test_go_zero_time() -> None:
    assert GO_ZERO_TIME_NS == -62135596800 * E9
    assert parse_rfc3339("0001-01-01T00:00:00Z") == GO_ZERO_TIME_NS
    assert parse_rfc3339("0001-01-01T01:00:00+01:00") == GO_ZERO_TIME_NS
    assert format_rfc3339nano(GO_ZERO_TIME_NS) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-01-02T03:04:05.123456789Z", 1704164645123456789),
        ("2024-01-02T03:04:05.5Z", 1704164645500000000),
        ("2024-01-02T05:04:05.5+02:00", 1704164645500000000),
        ("2024-01-02T01:04:05.5-02:00", 1704164645500000000),
        ("2015-05-07T01:29:51+00:00", ns_of("2015-05-07T01:29:51+00:00")),
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("2000-02-29T12:00:00Z", ns_of("2000-02-29T12:00:00+00:00")),
        # Go's fallback parser: comma fraction, 1-digit hour, >9 fraction digits
        # (truncated), and offsets up to 24:00 / xx:60.
        ("2024-01-02T03:04:05,25Z", 1704164645250000000),
        ("2024-01-02T3:04:05Z", 1704164645 * E9),
        ("2024-01-02T03:04:05.1234567891999Z", 1704164645123456789),
        ("2024-01-02T03:04:05+24:00", (1704164645 - 86400) * E9),
        ("2024-01-02T03:04:05-00:60", (1704164645 + 3600) * E9),
        ("0000-01-01T00:00:00Z", days_from_civil(0, 1, 1) * 86400 * E9),
        ("9999-12-31T23:59:59.999999999Z", ns_of("9999-12-31T23:59:59+00:00") + 999999999),
    ],
)
def test_parse_accepts_what_go_accepts(text: str, ns: int) -> None:
    assert parse_rfc3339(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "",
        "text-for-some-reason",
        "2024-01-02T03:04:05",  # no zone
        "2024-01-02 03:04:05Z",
        "2024-01-02t03:04:05Z",
        "2024-01-02T03:04:05z",
        "2024-01-02T03:04:05.Z",
        "2024-01-02T03:04:05.123",
        "2024-1-02T03:04:05Z",
        "2024-01-2T03:04:05Z",
        "24-01-02T03:04:05Z",
        "+2024-01-02T03:04:05Z",
        "2024-01-02T03:4:05Z",
        "2024-01-02T03:04:5Z",
        "2024-01-02T003:04:05Z",
        "2024-13-02T03:04:05Z",
        "2024-00-02T03:04:05Z",
        "2024-01-00T03:04:05Z",
        "2023-02-29T03:04:05Z",
        "1900-02-29T03:04:05Z",
        "2024-04-31T03:04:05Z",
        "2024-01-02T24:00:00Z",
        "2024-01-02T03:60:05Z",
        "2024-01-02T03:04:60Z",
        "2024-01-02T03:04:05+25:00",
        "2024-01-02T03:04:05+01:61",
        "2024-01-02T03:04:05+0100",
        "2024-01-02T03:04:05+01",
        "2024-01-02T03:04:05Z ",
        " 2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05ZZ",
        "２０２４-01-02T03:04:05Z",
        "2024-01-02T03:04:05.１Z",
        "2024\\u002d01-02T03:04:05Z",
    ],
)
def test_parse_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_rfc3339(text)
    assert issubclass(TimeFormatError, ValueError)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1704164645123456789, "2024-01-02T03:04:05.123456789Z"),
        (1704164645120000000, "2024-01-02T03:04:05.12Z"),
        (1704164645000000000, "2024-01-02T03:04:05Z"),
        (1704164645000000001, "2024-01-02T03:04:05.000000001Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
    ],
)
def test_format_rfc3339nano(ns: int, text: str) -> None:
    assert format_rfc3339nano(ns) == text
    assert parse_rfc3339(text) == ns


def test_format_rfc3339nano_refuses_years_go_cannot_marshal() -> None:
    with pytest.raises(ValueError):
        format_rfc3339nano(parse_rfc3339("0000-01-01T00:00:00Z") - 1)
    with pytest.raises(ValueError):
        format_rfc3339nano(parse_rfc3339("9999-12-31T23:59:59.999999999Z") + 1)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (1704164645000000000, "2024-01-02T03:04:05Z"),
        (1704164645100000000, "2024-01-02T03:04:05.100Z"),
        (1704164645123000000, "2024-01-02T03:04:05.123Z"),
        (1704164645123400000, "2024-01-02T03:04:05.123400Z"),
        (1704164645000001000, "2024-01-02T03:04:05.000001Z"),
        (1704164645000000010, "2024-01-02T03:04:05.000000010Z"),
        (1704164645123456789, "2024-01-02T03:04:05.123456789Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (GO_ZERO_TIME_NS, "0001-01-01T00:00:00Z"),
    ],
)
def test_format_proto_json_timestamp_uses_0_3_6_or_9_digits(ns: int, text: str) -> None:
    assert format_proto_json_timestamp(ns) == text


def test_split_ns_floors_seconds_and_keeps_nanos_non_negative() -> None:
    assert split_ns(1_500_000_000) == (1, 500_000_000)
    assert split_ns(-1) == (-1, 999_999_999)
    assert split_ns(-1_000_000_000) == (-1, 0)


@pytest.mark.parametrize("days", [-719468 - 400 * 366, -719162, -1, 0, 1, 59, 365 * 30 + 7, 2932896])
def test_civil_round_trip(days: int) -> None:
    assert days_from_civil(*civil_from_days(days)) == days


def test_civil_matches_datetime() -> None:
    base = dt.date(1970, 1, 1)
    for days in range(-719_162, 2_932_897, 997):
        d = base + dt.timedelta(days=days)
        assert civil_from_days(days) == (d.year, d.month, d.day)
        assert days_from_civil(d.year, d.month, d.day) == days
