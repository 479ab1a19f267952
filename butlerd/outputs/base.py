"""What the daemon needs from an output, and nothing more.

The bundler sizes bundles to ``max_size``; the pump runs at most
``max_send_bundles`` ``send_bundle`` calls at once. ``send_bundle`` owns the
bundle once called; a raised exception is logged by the pump (as the Go Butler
does, it does not stop the daemon). ``close`` is awaited once, after the last
bundle was handed over: an output that buffers or retries must deliver or
account for everything before it returns.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, fields

from butlerd._events import Bundle


@dataclass(slots=True)
class OutputStats:
    """The Go output stats, plus what only a retrying output has."""

    sent_bytes: int = 0
    sent_messages: int = 0
    discarded_messages: int = 0
    errors: int = 0
    retries: int = 0

    def __str__(self) -> str:
        # Go renders its stats struct with %+v.
        return (
            f"{{SentBytes:{self.sent_bytes} SentMessages:{self.sent_messages} "
            f"DiscardedMessages:{self.discarded_messages} Errors:{self.errors}}}"
        )


@dataclass(slots=True)
class OutputConfig:
    """The global flags an output may use (``-project``, ``-prefix``, ...)."""

    project: str = ""
    prefix: str = ""
    coordinator_host: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Output(abc.ABC):
    """Base class of every output (directory, log, null, pubsub, logdog)."""

    #: Bundle byte budget the bundler fills to (Go ``Output.MaxSize``).
    max_size: int = 1 << 30
    #: Concurrent ``send_bundle`` calls allowed (Go ``MaxSendBundles``).
    max_send_bundles: int = 1

    async def start(self) -> None:
        """Called once before any bundle is sent (e.g. to register a prefix)."""

    @abc.abstractmethod
    async def send_bundle(self, bundle: Bundle) -> None: ...

    @abc.abstractmethod
    def stats(self) -> OutputStats: ...

    def begin_close(self) -> None:
        """Shutdown has started: the flush timeout may start counting now.

        Called once the streams are drained, before the last bundles are
        handed over, so an output that waits for capacity can stop waiting.
        """

    async def close(self) -> None:
        """Flush and release; called once, after the last ``send_bundle``."""

    @property
    def undelivered(self) -> int:
        """Bundles accepted but never delivered; the daemon exits non-zero if any."""
        return 0

    def url_env(self) -> dict[str, str]:
        """LOGDOG_* variables a child of ``run`` gets (Go ``URLConstructionEnv``).

        Keys are the variable names; only non-empty values are exported.
        """
        return {}


def logdog_env(coordinator_host: str, project: str, prefix: str) -> dict[str, str]:
    """The LOGDOG_* variables a LogDog output gives ``run`` children (non-empty only)."""
    env = {
        "LOGDOG_COORDINATOR_HOST": coordinator_host,
        "LOGDOG_STREAM_PROJECT": project,
        "LOGDOG_STREAM_PREFIX": prefix,
    }
    return {k: v for k, v in env.items() if v}
