"""Finding the butler from the LOGDOG_* environment, and building viewer URLs.

Mirrors Go ``butlerlib/bootstrap``: only LOGDOG_STREAM_SERVER_PATH is needed
to open streams; the others (coordinator host, project, prefix) exist so a
process can tell a human where its logs will appear. ``LOGDOG_NAMESPACE`` is
prepended to every stream name the client opens.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from wire.types import construct, validate_project_name, validate_stream_name

from wire.goquote import go_quote
from .aio import AsyncStreamClient
from .errors import BootstrapError, NotBootstrapped, StreamClientError
from .streamclient import StreamClient

ENV_STREAM_SERVER_PATH = "LOGDOG_STREAM_SERVER_PATH"
ENV_STREAM_PROJECT = "LOGDOG_STREAM_PROJECT"
ENV_STREAM_PREFIX = "LOGDOG_STREAM_PREFIX"
ENV_COORDINATOR_HOST = "LOGDOG_COORDINATOR_HOST"
ENV_NAMESPACE = "LOGDOG_NAMESPACE"

# A coordinator host of file://DIR is the butler's directory output: logs are
# files under DIR, not pages on a LogDog server.
_FILE_HOST = "file://"


@dataclass(frozen=True)
class Bootstrap:
    """What a butler told this process through its environment."""

    stream_server_path: str
    coordinator_host: str = ""
    project: str = ""
    prefix: str = ""
    namespace: str = ""
    client: StreamClient = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            client = StreamClient(self.stream_server_path, self.namespace)
        except StreamClientError as e:
            raise BootstrapError(f"bootstrap: failed to create stream client [{self.stream_server_path}]: {e}") from e
        object.__setattr__(self, "client", client)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Bootstrap:
        """Read and validate the LOGDOG_* variables of ``env`` (default ``os.environ``).

        Raises `NotBootstrapped` if LOGDOG_STREAM_SERVER_PATH is absent, and
        `BootstrapError` (Go's message) if any variable is invalid.
        """
        env = os.environ if env is None else env
        if ENV_STREAM_SERVER_PATH not in env:
            raise NotBootstrapped()
        bs = cls(
            stream_server_path=env[ENV_STREAM_SERVER_PATH],
            coordinator_host=env.get(ENV_COORDINATOR_HOST, ""),
            project=env.get(ENV_STREAM_PROJECT, ""),
            prefix=env.get(ENV_STREAM_PREFIX, ""),
            namespace=env.get(ENV_NAMESPACE, ""),
        )
        _check("prefix", bs.prefix, validate_stream_name)
        _check("project", bs.project, validate_project_name)
        _check("namespace", bs.namespace, validate_stream_name)
        return bs

    @property
    def async_client(self) -> AsyncStreamClient:
        """An asyncio client for the same stream server and namespace."""
        return AsyncStreamClient(self.stream_server_path, self.namespace)

    def stream_path(self, name: str) -> str:
        """The full LogDog path (``prefix/+/namespace/name``) of a stream this process opens as ``name``."""
        return construct(self.prefix, "+", self.namespace, name)

    def viewer_url(self, *paths: str) -> str:
        """Go ``GetViewerURL``: where a human can read the streams at ``paths`` (full stream paths).

        One path gives ``https://<host>/logs/<project>/<path>``; several give
        ``https://<host>/v/?s=<project>/<path>&...``. With a ``file://DIR``
        host (the directory output) the result is the stream's file under DIR.
        """
        if self.coordinator_host.startswith(_FILE_HOST):
            return self._file_url(paths)
        if not self.project:
            raise BootstrapError("no project is configured")
        if not self.coordinator_host:
            raise BootstrapError("no coordinator host is configured")
        values = [f"{self.project}/{p}" for p in paths]
        base = f"https://{self.coordinator_host}/"
        if len(values) == 1:
            return base + quote("logs/" + values[0], safe="$&+,/:;=@")
        query = "&".join("s=" + quote_plus(v, safe="") for v in values)
        return base + "v/" + (f"?{query}" if query else "")

    def stream_viewer_url(self, name: str) -> str:
        """`viewer_url` for the stream this process opens as ``name`` (namespace applied)."""
        return self.viewer_url(self.stream_path(name))

    def _file_url(self, paths: tuple[str, ...]) -> str:
        if len(paths) != 1:
            raise BootstrapError("a file:// coordinator host can only show one stream at a time")
        host = self.coordinator_host if self.coordinator_host.endswith("/") else self.coordinator_host + "/"
        # The directory output lays files out by stream name; the prefix is always empty there.
        _, sep, name = paths[0].partition("+/")
        return host + (name if sep else paths[0])


def _check(what: str, value: str, validate: Callable[[str], object]) -> None:
    if not value:
        return
    try:
        validate(value)
    except ValueError as e:
        raise BootstrapError(f"bootstrap: failed to validate {what} {go_quote(value)}: {e}") from None

