"""Nested options (``-output dir,path=x``) parse exactly as Go's nestedflagset."""

from __future__ import annotations

import pytest

from butlerd._nestedflags import (
    FlagSet,
    NestedFlagError,
    NestedFlagHelp,
    go_parse_int,
    go_quote,
    parse,
    split_option,
    tokenize,
)

# (params, path, n, b, error) as printed by a throwaway Go program (not in the
# repo) calling nestedflagset.FlagSet.Parse(params) on a FlagSet with
# String("path"), Int("n"), Bool("b") (go.chromium.org/luci
# v0.0.0-20260822014153-22eba00a8fe4, go1.26.8). Values after an error are
# whatever Go had set; only the error is compared then.
GO_CASES = [
    ('', '', 0, False, ''),
    ('path=a', 'a', 0, False, ''),
    ('path=a,n=5', 'a', 5, False, ''),
    ('path="a,b",n=0x10', 'a,b', 16, False, ''),
    ('path=a\\,b', 'a,b', 0, False, ''),
    ('path=a=b=c', 'a=b=c', 0, False, ''),
    ('path', '', 0, False, 'flag needs an argument: -path'),
    ('path=', '', 0, False, 'flag needs an argument: -path'),
    ('path,n=1', '-n', 0, False, ''),
    ('path=x,,n=3', 'x', 0, False, ''),
    ('n=abc', '', 0, False, 'invalid value "abc" for flag -n: parse error'),
    ('n=', '', 0, False, 'flag needs an argument: -n'),
    ('n=99999999999999999999', '', 9223372036854775807, False, 'invalid value "99999999999999999999" for flag -n: value out of range'),
    ('n=-9223372036854775808', '', -9223372036854775808, False, ''),
    ('n=9223372036854775808', '', 9223372036854775807, False, 'invalid value "9223372036854775808" for flag -n: value out of range'),
    ('n=1_000', '', 1000, False, ''),
    ('n=0x_1F', '', 31, False, ''),
    ('n=_1', '', 0, False, 'invalid value "_1" for flag -n: parse error'),
    ('n=017', '', 15, False, ''),
    ('n=0b101', '', 5, False, ''),
    ('n=0o17', '', 15, False, ''),
    ('n=08', '', 0, False, 'invalid value "08" for flag -n: parse error'),
    ('n=+5', '', 5, False, ''),
    ('bogus=1', '', 0, False, 'flag provided but not defined: -bogus'),
    ('help', '', 0, False, 'flag: help requested'),
    ('h', '', 0, False, 'flag: help requested'),
    ('b', '', 0, True, ''),
    ('b=false,path=x', '', 0, True, ''),
    ('-path=y', 'y', 0, False, ''),
    ('--path=y', '', 0, False, 'bad flag syntax: ---path'),
    ('=x', '', 0, False, ''),
    ('path="quoted', 'quoted', 0, False, ''),
    ('path=tr\\', 'tr', 0, False, ''),
    ('path=a,', 'a', 0, False, ''),
    (',path=a', '', 0, False, ''),
    ('path="a"b"c"', 'abc', 0, False, ''),
    ('path=\\"', '"', 0, False, ''),
    ('n=1,n=2', '', 2, False, ''),
    ('path=é,n=1', 'é', 1, False, ''),
    ('path=-n,n=4', '-n', 4, False, ''),
    ('path=a b', 'a b', 0, False, ''),
    ('path=x=1,n', 'x=1', 0, False, 'flag needs an argument: -n'),
    ('---path=x', '', 0, False, 'bad flag syntax: ----path'),
    ('b=1', '', 0, True, ''),
]


@pytest.mark.parametrize("params,path,n,b,err", GO_CASES)
def test_flagset_matches_go(params: str, path: str, n: int, b: bool, err: str) -> None:
    fs = FlagSet()
    fs.string("path")
    fs.integer("n")
    fs.boolean("b")
    if err:
        with pytest.raises(NestedFlagError) as e:
            fs.parse(params)
        assert str(e.value) == err
    else:
        assert fs.parse(params) == {"path": path, "n": n, "b": b}


def test_help_is_its_own_error() -> None:
    with pytest.raises(NestedFlagHelp):
        FlagSet().parse("help")


def test_lexer_cases_from_go_tests() -> None:
    # nestedflagset/lexer_test.go, with ':' as the delimiter.
    s = 'a: b c:d":e:\u0142:f":g:\u00fc:h\\"i:j\\":k'
    assert tokenize(s, ":") == ["a", " b c", "d:e:\u0142:f", "g", "\u00fc", 'h"i', 'j"', "k"]
    assert tokenize("", ":") == []
    assert tokenize("a:b:c", ":") == ["a", "b", "c"]


def test_tokens_keep_empty_ones_but_not_a_trailing_one() -> None:
    assert tokenize("a,,b") == ["a", "", "b"]
    assert tokenize(",") == [""]
    assert tokenize("a,") == ["a"]
    assert tokenize("a\\") == ["a"]


def test_option_name_is_before_the_first_comma_unquoted() -> None:
    assert split_option("directory") == ("directory", "")
    assert split_option('log,bundle-size=5,x="a,b"') == ("log", 'bundle-size=5,x="a,b"')
    assert split_option('"dir,x",y') == ('"dir', 'x",y')


def test_parse_returns_items_with_none_for_bare_names() -> None:
    assert parse('directory,path="/a,b",tag=k=v,flag,empty=') == (
        "directory",
        [("path", "/a,b"), ("tag", "k=v"), ("flag", None), ("empty", "")],
    )
    assert parse("null") == ("null", [])


def test_custom_setter_for_repeated_flags() -> None:
    tags: list[str] = []
    fs = FlagSet()
    fs.string("name")
    fs.var("tag", tags.append)
    fs.parse('name=s,tag=a=1,tag="b=2,3"')
    assert fs.values == {"name": "s"}
    assert tags == ["a=1", "b=2,3"]


def test_setter_value_error_becomes_go_message() -> None:
    def reject(value: str) -> None:
        raise ValueError("nope")

    fs = FlagSet()
    fs.var("type", reject)
    with pytest.raises(NestedFlagError, match=r'^invalid value "x\\ty" for flag -type: nope$'):
        fs.parse('type="x\ty"')


@pytest.mark.parametrize(
    "s,expected",
    [("0", 0), ("-0x10", -16), ("0_7", 7), ("1__0", None), ("1_", None), ("0x", None), ("", None), (" 1", None)],
)
def test_go_parse_int(s: str, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="parse error"):
            go_parse_int(s)
    else:
        assert go_parse_int(s) == expected


def test_go_quote() -> None:
    assert go_quote("\n") == '"\\n"'
    assert go_quote("\r\n") == '"\\r\\n"'
    assert go_quote("") == '""'
    assert go_quote('a"\\\x00\x7f\u00e9\u200b\U0001f600') == '"a\\"\\\\\\x00\\x7f\u00e9\\u200b\U0001f600"'
    assert go_quote(b"\xff\xc3\xa9") == '"\\xff\u00e9"'
