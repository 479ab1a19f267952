"""The log output: Go's messages at INFO, silent and cheap otherwise."""

from __future__ import annotations

import asyncio
import logging

import pytest

from butlerd._events import (
    BinaryContent,
    Bundle,
    BundleEntry,
    DatagramContent,
    LogEntry,
    Partial,
    TextContent,
)
from butlerd._proto import bundle_to_proto
from butlerd.outputs import OutputConfig, OutputFlagError, create_output
from butlerd._goflags import go_duration
from butlerd.outputs.log import LogOutput
from wire.descriptor import StreamDescriptor
from wire.types import StreamType

DESC = StreamDescriptor("u/out", StreamType.TEXT, "text/plain", 1_704_164_645 * 10**9)
BUNDLE = Bundle(
    1_704_164_646 * 10**9,
    [
        BundleEntry(
            DESC,
            [
                LogEntry(1_500_000_000, 5, 0, 0, TextContent(b"hi\r\nthere")),
                LogEntry(0, 6, 1, 1, BinaryContent(b"\x00\xff")),
                LogEntry(0, 7, 2, 2, DatagramContent(b"ab", Partial(1, 5, False))),
                LogEntry(0, 8, 3, 3, DatagramContent(b"\x01")),
            ],
            terminal=True,
            terminal_index=3,
        )
    ],
)


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "butlerd.outputs.log"]


def test_logs_go_messages_at_info(caplog) -> None:
    out = create_output("log", OutputConfig())
    with caplog.at_level(logging.INFO, logger="butlerd.outputs.log"):
        asyncio.run(out.send_bundle(BUNDLE))
    msgs = messages(caplog)
    fields = '{"output":"log", "streamPath":"/+/u/out"}'
    assert msgs[0].startswith("Received stream logs.")
    assert msgs[0].endswith(', "output":"log", "streamPath":"/+/u/out"}')
    assert '{"count":4, "descriptor":"name: \\"u/out\\" ' in msgs[0]
    assert msgs[1] == (
        "Received message.                           "
        '{"output":"log", "prefixIndex":0x5, "sequence":0x0, "streamIndex":0x0, '
        '"streamPath":"/+/u/out", "timeOffset":"1.5s"}'
    )
    assert msgs[2] == 'Line 0) hi ("\\r\\n")                         ' + fields
    assert msgs[3] == 'Line 1) there ("")                          ' + fields
    assert msgs[5] == "Binary) 00ff                                " + fields
    assert msgs[7] == (
        "Datagram (&logpb.Datagram_Partial{Index:0x1, Size:0x5, Last:false}) (5 bytes): 6162 "
        + fields
    )
    assert msgs[9] == "Datagram (1 bytes): 01                      " + fields
    assert len(msgs) == 10


def test_silent_below_info_but_still_counts(caplog) -> None:
    out = LogOutput()
    with caplog.at_level(logging.WARNING, logger="butlerd.outputs.log"):
        asyncio.run(out.send_bundle(BUNDLE))
    assert messages(caplog) == []
    stats = out.stats()
    # Go: SentMessages += one per LogEntry; SentBytes += proto.Size(bundle).
    assert stats.sent_messages == 4
    assert stats.sent_bytes == bundle_to_proto(BUNDLE).ByteSize()


def test_bundle_size_option_is_max_size() -> None:
    assert create_output("log", OutputConfig()).max_size == 1024 * 1024
    out = create_output("log,bundle-size=0x100", OutputConfig())
    assert (out.max_size, out.max_send_bundles, out.url_env()) == (256, 1, {})
    with pytest.raises(OutputFlagError, match='^invalid value "big" for flag -bundle-size: parse error$'):
        create_output("log,bundle-size=big", OutputConfig())


@pytest.mark.parametrize(
    "ns,text",
    [
        (0, "0s"), (999, "999ns"), (1500, "1.5\u00b5s"), (2_000_000, "2ms"), (1_500_000_000, "1.5s"),
        (3_661_000_000_005, "1h1m1.000000005s"), (3_600 * 10**9, "1h0m0s"), (-1_500_000, "-1.5ms"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text
