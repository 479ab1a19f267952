"""The exceptions the client helper raises.

Messages follow the Go ``streamclient``/``bootstrap`` packages word for word, so
a log line from a Python tool reads the same as one from a Go tool.
"""

from __future__ import annotations


class StreamClientError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidStreamError(StreamClientError, ValueError):
    """The stream's name, tags or options are invalid.

    Always raised before any connection is made, so nothing reaches the butler.
    """


class StreamServerError(StreamClientError, OSError):
    """The stream server address cannot be used, or connecting to it failed."""


class BootstrapError(StreamClientError, ValueError):
    """The LOGDOG_* environment is present but invalid."""


class NotBootstrapped(StreamClientError):
    """LOGDOG_STREAM_SERVER_PATH is not set: no butler is serving this process."""

    def __init__(self, message: str = "not bootstrapped") -> None:
        super().__init__(message)
