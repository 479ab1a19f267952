"""The logdog output: RegisterPrefix over pRPC, then publishing with its answer.

A small in-process HTTP server plays the Coordinator (scripted answers,
recorded requests); the publisher is the scripted double from test_pubsub.
"""

from __future__ import annotations

import asyncio
import http.server
import socketserver
import threading
import time
from dataclasses import dataclass, field

import pytest

from butlerd._proto_registration import RegisterPrefixRequest, RegisterPrefixResponse
from butlerd._prpc import (
    Code,
    PrpcClient,
    PrpcError,
    RetrySchedule,
    encode_timeout,
    is_local_host,
)
from butlerd.outputs import OutputConfigError, create_output
from butlerd.outputs.base import OutputConfig
from butlerd.outputs.logdog import (
    LogDogOutput,
    RegistrationError,
    build_source_info,
    go_arch,
    go_os,
)
from tests.test_pubsub import FakePublisher, bundle
from wire import butlerproto

SECRET = bytes(range(100, 136))
TOPIC = "projects/gcp-proj/topics/logdog-bundles"
NO_WAIT = RetrySchedule(delay=0.001, retries=3)


@dataclass
class Answer:
    code: int | None = 0  # X-Prpc-Grpc-Code; None = header missing
    body: bytes = b""
    status: int = 200
    content_type: str = "application/prpc; encoding=binary"


def ok(secret: bytes = SECRET, topic: str = TOPIC) -> Answer:
    return Answer(body=RegisterPrefixResponse(secret=secret, log_bundle_topic=topic)
                  .SerializeToString())


@dataclass
class FakeCoordinator:
    answers: list[Answer] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        coord = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                coord.requests.append((self.path, dict(self.headers), body))
                a = coord.answers.pop(0) if coord.answers else ok()
                self.send_response(a.status)
                if a.code is not None:
                    self.send_header("X-Prpc-Grpc-Code", str(a.code))
                self.send_header("Content-Type", a.content_type)
                self.send_header("Content-Length", str(len(a.body)))
                self.end_headers()
                self.wfile.write(a.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def parsed(self, i: int = -1) -> RegisterPrefixRequest:
        req = RegisterPrefixRequest()
        req.ParseFromString(self.requests[i][2])
        return req

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def coordinator():
    c = FakeCoordinator()
    yield c
    c.close()


def output(host: str, pub: FakePublisher | None = None, **kw) -> LogDogOutput:
    kw.setdefault("register_retry", NO_WAIT)
    kw.setdefault("client_retry", NO_WAIT)
    return LogDogOutput(host, project="proj", prefix="bb/123", publisher=pub or FakePublisher(),
                        **kw)


def test_register_request_is_what_go_sends(coordinator):
    out = output(coordinator.host)
    asyncio.run(out.start())
    (path, headers, body), = coordinator.requests
    assert path == "/prpc/logdog.Registration/RegisterPrefix"
    assert headers["Content-Type"] == "application/prpc; encoding=binary"
    assert headers["Accept"] == "application/prpc; encoding=binary"
    assert headers["User-Agent"] == "pRPC Client 1.5"
    assert headers["X-Prpc-Grpc-Timeout"] == "30000000u"  # Go: the whole attempt timeout
    assert "Authorization" not in headers  # loopback Coordinator: no credentials
    req = coordinator.parsed()
    assert (req.project, req.prefix, req.realm) == ("proj", "bb/123", "")
    assert list(req.source_info) == ["LogDog Butler", f"GOARCH={go_arch()}", f"GOOS={go_os()}"]
    assert len(req.op_nonce) == 32
    assert req.HasField("expiration") and req.expiration.seconds == 0
    # Field order and the always-present empty Duration: byte-identical to Go.
    expected = RegisterPrefixRequest(project="proj", prefix="bb/123",
                                     source_info=build_source_info(), op_nonce=req.op_nonce)
    expected.expiration.SetInParent()
    assert body == expected.SerializeToString()
    assert body.endswith(b"\x52\x00")


def test_answer_is_used_topic_and_secret(coordinator):
    pub = FakePublisher()
    out = output(coordinator.host, pub)

    async def go() -> None:
        await out.start()
        await out.send_bundle(bundle(3))
        await out.close()

    asyncio.run(go())
    (topic, data, _), = pub.calls
    assert topic == TOPIC
    b = butlerproto.decode(data).bundle
    assert (b.project, b.prefix, b.secret) == ("proj", "bb/123", SECRET)
    assert out.stats().sent_messages == 1 and out.undelivered == 0
    assert out.url_env() == {"LOGDOG_COORDINATOR_HOST": coordinator.host,
                             "LOGDOG_STREAM_PROJECT": "proj", "LOGDOG_STREAM_PREFIX": "bb/123"}


def test_transient_failures_are_retried_with_the_same_nonce(coordinator):
    coordinator.answers = [
        Answer(code=Code.UNAVAILABLE, body=b"busy"),
        Answer(code=None, status=503, body=b"<html>down</html>", content_type="text/html"),
        Answer(code=Code.INTERNAL),
        Answer(code=Code.UNKNOWN),  # 4th failure: the pRPC client gives up, registration retries
        ok(),
    ]
    out = output(coordinator.host)
    asyncio.run(out.start())
    assert len(coordinator.requests) == 5
    assert len({body for _, _, body in coordinator.requests}) == 1
    assert out.registration.secret == SECRET


@pytest.mark.parametrize("answer,message", [
    (Answer(code=Code.ALREADY_EXISTS, body=b"prefix already registered\n"),
     "code = AlreadyExists desc = prefix already registered"),
    (Answer(code=Code.PERMISSION_DENIED, body=b"no"), "PermissionDenied"),
    (Answer(code=None, status=403, body=b"proxy says no"), "PermissionDenied"),
])
def test_permanent_failures_fail_at_once(coordinator, answer, message):
    coordinator.answers = [answer]
    with pytest.raises(RegistrationError, match=message):
        asyncio.run(output(coordinator.host).start())
    assert len(coordinator.requests) == 1


def test_answer_without_grpc_code_is_internal_and_retried_like_go(coordinator):
    coordinator.answers = [Answer(code=None, status=404, body=b"nope")] * 2
    out = output(coordinator.host)
    asyncio.run(out.start())
    assert len(coordinator.requests) == 3 and out.registration.secret == SECRET


def test_retries_are_bounded(coordinator):
    coordinator.answers = [Answer(code=Code.UNAVAILABLE)] * 100
    out = output(coordinator.host, register_retry=RetrySchedule(0.001, 2),
                 client_retry=RetrySchedule(0.001, 1))
    with pytest.raises(RegistrationError, match="Unavailable"):
        asyncio.run(out.start())
    assert len(coordinator.requests) == 3 * 2  # 3 registration attempts x 2 pRPC attempts


@pytest.mark.parametrize("answer,message", [
    (ok(topic="projects/x/subscriptions/y"), "invalid Pub/Sub topic"),
    (ok(topic=""), "invalid Pub/Sub topic"),
    (ok(secret=b"short"), "5-byte prefix secret"),
])
def test_unusable_answers_fail(coordinator, answer, message):
    coordinator.answers = [answer]
    with pytest.raises(OutputConfigError, match=message):
        asyncio.run(output(coordinator.host).start())
    assert len(coordinator.requests) == 1


@pytest.mark.parametrize("answer,message", [
    (Answer(body=b"\xff\xff"), "failed to unmarshal the response"),
    (Answer(body=b"", content_type="application/json"), "bad response content type"),
])
def test_undecodable_answers_are_internal_errors(coordinator, answer, message):
    # Go's client returns INTERNAL after its own retry loop, so only the
    # registration loop retries them.
    coordinator.answers = [answer] * 10
    with pytest.raises(RegistrationError, match=message):
        asyncio.run(output(coordinator.host).start())
    assert len(coordinator.requests) == 4


def test_unreachable_coordinator_is_transient_then_fails():
    out = output("127.0.0.1:1", register_retry=RetrySchedule(0.001, 1),
                 client_retry=RetrySchedule(0.001, 1))
    with pytest.raises(RegistrationError, match="code = Internal desc = prpc: sending request"):
        asyncio.run(out.start())


class FakeCredentials:
    """Records the transport each token refresh would use."""

    def __init__(self) -> None:
        self.transports: list[object] = []
        self.closed: list[bool] = []

    def before_request(self, request, method, url, headers) -> None:
        if not self.transports:
            close = request.session.close
            request.session.close = lambda: (self.closed.append(True), close())
        self.transports.append(request)
        headers["Authorization"] = "Bearer token"


def test_credentials_use_one_http_session_per_client_and_close_it(coordinator):
    coordinator.answers = [Answer(code=Code.UNAVAILABLE), ok()]
    creds = FakeCredentials()
    out = output(coordinator.host, credentials=creds)
    asyncio.run(out.start())
    assert [h["Authorization"] for _, h, _ in coordinator.requests] == ["Bearer token"] * 2
    assert len(creds.transports) == 2 and creds.transports[0] is creds.transports[1]
    assert creds.closed == [True]


def test_attempt_deadline_bounds_the_whole_exchange():
    # A server answering a byte at a time never trips a socket timeout; the
    # attempt deadline (Go's per-RPC context) still ends the call, and the
    # connection is dropped rather than left to a lingering thread.
    body = ok().body
    answer = (b"HTTP/1.1 200 OK\r\nX-Prpc-Grpc-Code: 0\r\n"
              b"Content-Type: application/prpc; encoding=binary\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body)) + body
    hung_up = threading.Event()

    class Trickle(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(65536)
            try:
                for b in answer:
                    self.request.sendall(bytes([b]))
                    time.sleep(0.02)
            except OSError:
                hung_up.set()

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = output(f"127.0.0.1:{server.server_address[1]}", rpc_timeout=0.3,
                     client_retry=RetrySchedule(0.001, 0))
        with pytest.raises(RegistrationError,
                           match="DeadlineExceeded desc = prpc: attempt deadline exceeded"):
            asyncio.run(out.start())
        assert hung_up.wait(10)
    finally:
        server.shutdown()
        server.server_close()


def test_factory_flags(coordinator):
    cfg = OutputConfig(project="proj", prefix="a/b", coordinator_host=coordinator.host,
                       extra={"flush_timeout": "3"})
    out = create_output("logdog,prefix-expiration=1h30m,service=svc", cfg)
    assert isinstance(out, LogDogOutput)
    assert out.host == f"svc-dot-{coordinator.host}"
    assert out.flush_timeout == 3.0
    req = out.request()
    assert (req.expiration.seconds, req.expiration.nanos) == (5400, 0)
    assert out.url_env()["LOGDOG_COORDINATOR_HOST"] == f"svc-dot-{coordinator.host}"
    out = create_output("logdog,prefix-expiration=1.5s", cfg)
    assert (out.request().expiration.seconds, out.request().expiration.nanos) == (1, 500_000_000)

    with pytest.raises(OutputConfigError, match=r"requires a Coordinator host \(-coordinator-host\)"):
        create_output("logdog", OutputConfig(project="proj", prefix="a/b"))
    with pytest.raises(OutputConfigError, match="prefix-expiration"):
        create_output("logdog,prefix-expiration=soon", cfg)


def test_nonce_is_fresh_per_output():
    a, b = output("127.0.0.1:1"), output("127.0.0.1:1")
    assert a.op_nonce != b.op_nonce and len(a.op_nonce) == 32


@pytest.mark.parametrize("host,local", [
    ("localhost:8080", True), ("127.0.0.1:8080", True), ("[::1]:8080", True),
    ("127.1.2.3:9", True), (":8080", True), ("localhost", False), ("127.0.0.1", False),
    ("logs.chromium.org", False), ("example.com:443", False), ("[::1]", False),
    ("10.0.0.1:80", False),
])
def test_plain_http_only_for_loopback_with_port(host, local):
    assert is_local_host(host) is local
    assert PrpcClient(host).url("S", "M") == f"{'http' if local else 'https'}://{host}/prpc/S/M"


@pytest.mark.parametrize("seconds,header", [
    (30, "30000000u"), (29.999812, "29999812u"), (0.099999999, "99999999n"),
    (0.1, "100000u"), (1e-9, "1n"), (99_999.999, "99999999m"), (100_000, "100000S"),
    (1e6, "1000000S"), (5_999_999_940, "99999999M"), (6e9, "1666667H"),
])
def test_timeout_header_encoding(seconds, header):
    assert encode_timeout(seconds) == header


def test_go_platform_names():
    assert go_arch("x86_64") == "amd64" and go_arch("aarch64") == "arm64"
    assert go_arch("i686") == "386" and go_arch("armv7l") == "arm"
    assert go_os("linux") == "linux" and go_os("win32") == "windows"
    assert go_os("darwin") == "darwin" and go_os("freebsd14") == "freebsd"


def test_prpc_error_text_is_go_like():
    e = PrpcError(Code.NOT_FOUND, "missing")
    assert str(e) == "rpc error: code = NotFound desc = missing"
    assert not e.transient and PrpcError(Code.UNAVAILABLE, "").transient
