"""The ``log`` output: every bundle as INFO log records, in the Go wording.

Debug only. Like Go (whose default log level is warning) it prints nothing
unless INFO is enabled for ``butlerd.outputs.log``; in that case nothing is
formatted either, so the output costs only its statistics. Records follow the
Go messages ("Received stream logs.", "Received message.", ``Line <i>)``,
``Binary)``, ``Datagram (...)``) with the LUCI logger's field suffix (padded
to column 44, keys sorted, strings quoted, unsigned integers as ``0x..`` as
Go's ``%#v`` prints them). The descriptor text is protobuf text format, which
Go itself renders with deliberately unstable spacing.
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf import text_format

from butlerd._events import BinaryContent, Bundle, DatagramContent, TextContent
from butlerd._goflags import go_duration
from butlerd._nestedflags import FlagSet
from wire.goquote import go_quote
from butlerd._sizer import bundle_size
from butlerd.outputs import OutputFactory
from butlerd.outputs.base import Output, OutputConfig, OutputStats

__all__ = ["LogOutput", "LogFactory", "DEFAULT_BUNDLE_SIZE"]

DEFAULT_BUNDLE_SIZE = 1024 * 1024

logger = logging.getLogger("butlerd.outputs.log")


def _with_fields(message: str, fields: dict[str, str]) -> str:
    """The LUCI gologger layout: message, padding to column 44, then fields."""
    rendered = ", ".join(f"{go_quote(k)}:{fields[k]}" for k in sorted(fields))
    return f"{message}{' ' * max(1, 44 - len(message))}{{{rendered}}}"


class LogOutput(Output):
    max_send_bundles = 1

    def __init__(self, bundle_size_limit: int = DEFAULT_BUNDLE_SIZE) -> None:
        self.max_size = bundle_size_limit
        self._stats = OutputStats()

    def __str__(self) -> str:
        return "log"

    async def send_bundle(self, bundle: Bundle) -> None:
        if logger.isEnabledFor(logging.INFO):
            self._log_bundle(bundle)
        self._stats.sent_messages += sum(len(be.logs) for be in bundle.entries)
        self._stats.sent_bytes += bundle_size(bundle)

    def _log_bundle(self, bundle: Bundle) -> None:
        info = logger.info
        for be in bundle.entries:
            base = {"output": '"log"', "streamPath": go_quote(f"/+/{be.desc.name}")}
            desc_text = text_format.MessageToString(be.desc.to_proto(), as_one_line=True)
            info(
                "%s",
                _with_fields(
                    "Received stream logs.",
                    {**base, "count": str(len(be.logs)), "descriptor": go_quote(desc_text)},
                ),
            )
            for le in be.logs:
                info(
                    "%s",
                    _with_fields(
                        "Received message.",
                        {
                            **base,
                            "timeOffset": go_quote(go_duration(le.time_offset_ns)),
                            "prefixIndex": hex(le.prefix_index),
                            "streamIndex": hex(le.stream_index),
                            "sequence": hex(le.sequence),
                        },
                    ),
                )
                c = le.content
                if isinstance(c, TextContent):
                    for i, line in enumerate(c.lines()):
                        value = line.value.decode("utf-8", "backslashreplace")
                        info("%s", _with_fields(f"Line {i}) {value} ({go_quote(line.delimiter)})", base))
                elif isinstance(c, BinaryContent):
                    info("%s", _with_fields(f"Binary) {c.data.hex()}", base))
                elif isinstance(c, DatagramContent):
                    if c.partial is not None:
                        p = c.partial
                        shown = (
                            f"&logpb.Datagram_Partial{{Index:{hex(p.index)}, Size:{hex(p.size)}, "
                            f"Last:{'true' if p.last else 'false'}}}"
                        )
                        msg = f"Datagram ({shown}) ({p.size} bytes): {c.data.hex()}"
                    else:
                        msg = f"Datagram ({len(c.data)} bytes): {c.data.hex()}"
                    info("%s", _with_fields(msg, base))

    def stats(self) -> OutputStats:
        s = self._stats
        return OutputStats(s.sent_bytes, s.sent_messages, s.discarded_messages, s.errors)


class LogFactory(OutputFactory):
    description = "Debug output that writes to STDOUT."  # sic: Go logs to stderr

    def add_flags(self, flags: FlagSet) -> None:
        flags.integer("bundle-size", DEFAULT_BUNDLE_SIZE)

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        return LogOutput(options["bundle-size"])
