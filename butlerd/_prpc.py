"""A small pRPC client: unary calls, binary protobuf over HTTP POST.

Goal: a request a LUCI pRPC server treats exactly like one from luci-go's
``grpc/prpc`` client, and the same reading of its answer. Only what the
Coordinator registration needs is here.

The request (as Go's client builds it)::

    POST {https|http}://HOST/prpc/SERVICE/METHOD
    Content-Type: application/prpc; encoding=binary
    Accept: application/prpc; encoding=binary
    User-Agent: pRPC Client 1.5
    X-Prpc-Max-Response-Size: 33521664
    X-Prpc-Grpc-Timeout: <the attempt timeout, e.g. 30000000u>     (with a timeout)
    Authorization: Bearer <token>                                   (with credentials)

Plain http only for a loopback host with an explicit port (Go
``lhttp.IsLocalHost``). The status is the ``X-Prpc-Grpc-Code`` header; when it
is missing, HTTP 401/403/5xx map to gRPC codes and anything else is
INTERNAL. Each call retries transient codes (INTERNAL, UNKNOWN, UNAVAILABLE)
and attempt deadlines with Go's default client schedule: 1 s doubling, 5
retries.

HTTP runs in a worker thread (``http.client``): a registration happens
once at startup, so a thread is simpler than an async HTTP stack. The event
loop holds each attempt to its deadline and shuts the socket down when it
passes, so a trickling server cannot stretch an attempt.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import itertools
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol, TypeVar

from google.protobuf.message import DecodeError, Message

__all__ = [
    "Code",
    "PrpcClient",
    "PrpcError",
    "RetrySchedule",
    "encode_timeout",
    "is_local_host",
]

log = logging.getLogger(__name__)

USER_AGENT = "pRPC Client 1.5"
MEDIA_TYPE_BINARY = "application/prpc; encoding=binary"
#: Go DefaultMaxResponseSize: 32 MiB - 32 KiB.
MAX_RESPONSE_SIZE = 32 * 1024 * 1024 - 32 * 1024
#: Error bodies are cut to this many bytes (Go ErrBodySize default).
_ERR_BODY_SIZE = 4096

M = TypeVar("M", bound=Message)


class Code(IntEnum):
    """gRPC status codes."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


#: Go ``grpcutil.IsTransientCode``.
TRANSIENT_CODES = frozenset({Code.INTERNAL, Code.UNKNOWN, Code.UNAVAILABLE})


class PrpcError(Exception):
    """A failed call: a gRPC code and message, like Go's status errors."""

    def __init__(self, code: int, message: str) -> None:
        try:
            self.code: Code | int = Code(code)
        except ValueError:
            self.code = code
        self.message = message
        name = self.code.name if isinstance(self.code, Code) else f"Code({code})"
        super().__init__(f"rpc error: code = {_go_code_name(name)} desc = {message}")

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES


def _go_code_name(name: str) -> str:
    """INVALID_ARGUMENT -> InvalidArgument (Go's codes.Code String)."""
    if name == "OK":
        return "OK"
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Go ``retry.ExponentialBackoff`` (no jitter): waits of ``delay`` doubling
    up to ``max_delay`` (0 = no cap); ``retries`` of them, or forever when None
    (Go's negative ``Retries``)."""

    delay: float
    retries: int | None
    max_delay: float = 0.0

    def delays(self) -> Iterator[float]:
        d = self.delay
        count = itertools.count() if self.retries is None else range(self.retries)
        for _ in count:
            if self.max_delay and d > self.max_delay:
                yield self.max_delay
            else:
                yield d
                d *= 2


#: Go ``prpc.DefaultOptions().Retry``.
DEFAULT_CLIENT_RETRY = RetrySchedule(delay=1.0, retries=5)


def encode_timeout(seconds: float) -> str:
    """Go ``prpc.EncodeTimeout``: at most 8 digits, the finest unit that fits,
    rounded up."""
    ns = max(0, round(seconds * 1e9))
    for unit, size in (("n", 1), ("u", 1_000), ("m", 1_000_000), ("S", 1_000_000_000),
                       ("M", 60_000_000_000)):
        value = -(-ns // size)
        if value <= 99_999_999:
            return f"{value}{unit}"
    return f"{-(-ns // 3_600_000_000_000)}H"


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go ``net.SplitHostPort``, returning None where Go returns an error."""
    i = hostport.rfind(":")
    if i < 0:
        return None
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return None
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return None
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return None
    return host, hostport[i + 1 :]


def is_local_host(hostport: str) -> bool:
    """Go ``lhttp.IsLocalHost``: an explicit port and a loopback host
    (``localhost``, empty, or a loopback IP)."""
    parts = _split_host_port(hostport)
    if parts is None:
        return False
    host = parts[0]
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class Credentials(Protocol):
    """What we use of ``google.auth.credentials.Credentials``."""

    def before_request(self, request: Any, method: str, url: str, headers: dict[str, str]) -> None: ...


@dataclass(slots=True)
class _Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class PrpcClient:
    """Calls methods on one pRPC host.

    ``close()`` (or leaving a ``with`` block) releases the HTTP session that
    credentials refresh their tokens through: one per client, not one per
    attempt.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool | None = None,
        per_rpc_timeout: float | None = None,
        retry: RetrySchedule = DEFAULT_CLIENT_RETRY,
    ) -> None:
        self.host = host
        self.credentials = credentials
        self.insecure = is_local_host(host) if insecure is None else insecure
        self.per_rpc_timeout = per_rpc_timeout
        self.retry = retry
        self._auth_request: Any = None  # google.auth transport, made on first use
        self._auth_lock = threading.Lock()  # attempts run in worker threads

    def __enter__(self) -> PrpcClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._auth_lock:
            request, self._auth_request = self._auth_request, None
        if request is not None:
            request.session.close()

    @property
    def scheme(self) -> str:
        return "http" if self.insecure else "https"

    def url(self, service: str, method: str) -> str:
        return f"{self.scheme}://{self.host}/prpc/{service}/{method}"

    async def call(self, service: str, method: str, request: Message, response: M) -> M:
        """Call ``service/method``; fill and return ``response`` or raise PrpcError."""
        body = request.SerializeToString()
        delays = self.retry.delays()
        while True:
            try:
                reply = await self._attempt(service, method, body)
                self._check_status(reply)
                break
            except PrpcError as e:
                if not (e.transient or e.code == Code.DEADLINE_EXCEEDED):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise
                log.warning("RPC failed transiently (retry in %gs): %s", delay, e)
                await asyncio.sleep(delay)
        content_type = reply.headers.get("Content-Type", "")
        if not _is_binary_media_type(content_type):
            raise PrpcError(Code.INTERNAL, f"prpc: bad response content type {content_type!r}")
        try:
            response.ParseFromString(reply.body)
        except DecodeError as e:
            raise PrpcError(Code.INTERNAL, f"prpc: failed to unmarshal the response: {e}") from None
        return response

    def headers(self, timeout: float | None) -> dict[str, str]:
        headers = {
            "Content-Type": MEDIA_TYPE_BINARY,
            "Accept": MEDIA_TYPE_BINARY,
            "User-Agent": USER_AGENT,
            "X-Prpc-Max-Response-Size": str(MAX_RESPONSE_SIZE),
        }
        if timeout is not None:
            headers["X-Prpc-Grpc-Timeout"] = encode_timeout(timeout)
        return headers

    async def _attempt(self, service: str, method: str, body: bytes) -> _Reply:
        """One attempt, bounded as a whole by ``per_rpc_timeout`` like Go's
        attempt context (credentials included): a socket timeout alone bounds
        each read, not the exchange."""
        timeout = self.per_rpc_timeout
        # Go sets the header from the whole per-RPC timeout, before credentials.
        exchange = _Exchange(self, service, method, body, self.headers(timeout))
        work = asyncio.to_thread(exchange.run)
        if timeout is None:
            return await work
        try:
            return await asyncio.wait_for(work, timeout)
        except TimeoutError:
            exchange.abort()  # so the worker thread ends now too
            raise PrpcError(
                Code.DEADLINE_EXCEEDED, "prpc: attempt deadline exceeded: context deadline exceeded"
            ) from None

    def _auth_transport(self) -> Any:
        """The google.auth transport credentials refresh through (worker thread)."""
        with self._auth_lock:
            if self._auth_request is None:
                import google.auth.transport.requests

                self._auth_request = google.auth.transport.requests.Request()
            return self._auth_request

    @staticmethod
    def _check_status(reply: _Reply) -> None:
        if len(reply.body) > MAX_RESPONSE_SIZE:
            raise PrpcError(Code.UNAVAILABLE, "prpc: response too big")
        code_header = reply.headers.get("X-Prpc-Grpc-Code")
        message = reply.body[:_ERR_BODY_SIZE].decode("utf-8", "replace")
        if len(reply.body) > _ERR_BODY_SIZE:
            message += "..."
        if code_header is None:
            status = reply.status
            if status >= 500 or status in (401, 403):
                code = {401: Code.UNAUTHENTICATED, 403: Code.PERMISSION_DENIED,
                        503: Code.UNAVAILABLE}.get(status, Code.INTERNAL)
                raise PrpcError(code, message)
            raise PrpcError(
                Code.INTERNAL,
                f"prpc: no X-Prpc-Grpc-Code header, HTTP status {status}, body: {message!r}",
            )
        try:
            code = int(code_header)
        except ValueError:
            raise PrpcError(
                Code.INTERNAL, f"prpc: invalid X-Prpc-Grpc-Code header value {code_header!r}"
            ) from None
        if code != Code.OK:
            raise PrpcError(code, message.removesuffix("\n"))


class _Exchange:
    """One HTTP exchange in a worker thread, which the event loop can cut
    short at the attempt deadline."""

    def __init__(
        self, client: PrpcClient, service: str, method: str, body: bytes,
        headers: dict[str, str],
    ) -> None:
        self.client = client
        self.path = f"/prpc/{service}/{method}"
        self.url = client.url(service, method)
        self.body = body
        self.headers = headers
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._aborted = False

    def abort(self) -> None:
        """Wake the worker thread from whatever socket call it is blocked in."""
        with self._lock:
            self._aborted = True
            sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            try:
                # The plain socket method: SSLSocket.shutdown would also drop
                # its TLS state under the reading thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self) -> _Reply:
        client = self.client
        if client.credentials is not None:
            try:
                client.credentials.before_request(
                    client._auth_transport(), "POST", self.url, self.headers
                )
            except Exception as e:
                raise PrpcError(Code.INTERNAL, f"prpc: getting per-RPC credentials: {e}") from None
        conn_type = http.client.HTTPConnection if client.insecure else http.client.HTTPSConnection
        conn = conn_type(client.host, timeout=client.per_rpc_timeout)
        try:
            with self._lock:
                self._conn = conn
            conn.connect()
            with self._lock:  # an abort() during connect may have missed the socket
                if self._aborted:
                    raise TimeoutError("aborted at the attempt deadline")
            conn.request("POST", self.path, body=self.body, headers=self.headers)
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_SIZE + 1)
            return _Reply(resp.status, resp.headers, data)
        except (socket.timeout, TimeoutError) as e:
            raise PrpcError(Code.DEADLINE_EXCEEDED, f"prpc: attempt deadline exceeded: {e}") from None
        except (OSError, http.client.HTTPException) as e:
            raise PrpcError(Code.INTERNAL, f"prpc: sending request: {e}") from None
        finally:
            conn.close()


def _is_binary_media_type(value: str) -> bool:
    """Go ``FormatFromContentType(v) == FormatBinary``."""
    if not value:
        return True
    media, *raw_params = (part.strip() for part in value.split(";"))
    params: dict[str, str] = {}
    for p in raw_params:
        if p:
            key, _, val = p.partition("=")
            params[key.strip().lower()] = val.strip().strip('"')
    media = media.lower()
    if media == "application/prpc":
        return set(params) <= {"encoding"} and params.get("encoding", "") in ("", "binary")
    return media in ("", "*/*", "application/*", "application/grpc")
