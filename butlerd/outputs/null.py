"""The ``null`` output: discards everything, counts like the Go one.

The Go CLI cannot select it (the luciexe host uses it when no output is
given); here it is ``-output null``, handy for benchmarks and dry runs.
Stats follow Go: ``sent_messages`` counts bundle *entries* (streams per
bundle), ``sent_bytes`` the serialized bundle size, computed arithmetically
(``butlerd._sizer.bundle_size``) so no protobuf message is built.
"""

from __future__ import annotations

from typing import Any

from butlerd._events import Bundle
from butlerd._sizer import bundle_size
from butlerd.outputs import OutputFactory
from butlerd.outputs.base import Output, OutputConfig, OutputStats

__all__ = ["NullOutput", "NullFactory"]


class NullOutput(Output):
    max_size = 1 << 30  # Go: "a large number instead of 0 because butler has bugs"
    max_send_bundles = 1

    def __init__(self) -> None:
        self._stats = OutputStats()

    async def send_bundle(self, bundle: Bundle) -> None:
        self._stats.sent_messages += len(bundle.entries)
        self._stats.sent_bytes += bundle_size(bundle)

    def stats(self) -> OutputStats:
        s = self._stats
        return OutputStats(s.sent_bytes, s.sent_messages, s.discarded_messages, s.errors)

    def url_env(self) -> dict[str, str]:
        return {"LOGDOG_STREAM_PROJECT": "null", "LOGDOG_STREAM_PREFIX": "null"}


class NullFactory(OutputFactory):
    description = "Output that discards all data (statistics only)."

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        return NullOutput()
