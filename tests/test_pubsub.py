"""The Pub/Sub output's delivery rules, against a scripted publisher.

The real emulator is exercised in test_pubsub_emulator.py; here the
publisher is a double whose futures we resolve by hand, so retries,
backpressure and the shutdown deadline can be driven exactly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from butlerd._events import Bundle, BundleEntry, LogEntry, TextContent
from butlerd._proto import bundle_to_proto
from butlerd._prpc import RetrySchedule
from butlerd.outputs import OutputConfigError, create_output
from butlerd.outputs.base import OutputConfig
from butlerd.outputs.pubsub import (
    PUBLISH_RETRY,
    PubSubOutput,
    UndeliveredError,
    validate_topic,
)
from wire import butlerproto
from wire.descriptor import StreamDescriptor
from wire.types import StreamType

TOPIC = "projects/proj/topics/logs"
SECRET = bytes(range(36))
FAST = RetrySchedule(0.001, None, 0.004)


def bundle(i: int = 0, text: bytes = b"hello\n") -> Bundle:
    desc = StreamDescriptor(
        name=f"s{i}", stream_type=StreamType.TEXT, content_type="text/plain; charset=utf-8",
        timestamp_ns=1_700_000_000_000_000_000,
    )
    log = LogEntry(time_offset_ns=0, prefix_index=i, stream_index=0, sequence=0,
                   content=TextContent(text))
    return Bundle(timestamp_ns=1_700_000_001_000_000_000,
                  entries=[BundleEntry(desc, [log], terminal=True, terminal_index=0)])


class FakePublisher:
    """Each publish() gets the next outcome: an exception to fail with, "ok",
    or "hold" (a future the test resolves)."""

    def __init__(self, outcomes: Any = ()) -> None:
        self.outcomes = iter(outcomes)
        self.calls: list[tuple[str, bytes, dict[str, Any]]] = []
        self.held: list[concurrent.futures.Future[str]] = []
        self.delivered: list[bytes] = []
        self.stopped = False

    def publish(self, topic: str, data: bytes, **kwargs: Any) -> concurrent.futures.Future[str]:
        self.calls.append((topic, data, kwargs))
        f: concurrent.futures.Future[str] = concurrent.futures.Future()
        outcome = next(self.outcomes, "ok")
        if outcome == "ok":
            self.delivered.append(data)
            f.set_result(str(len(self.calls)))
        elif outcome == "hold":
            self.held.append(f)
        else:
            f.set_exception(outcome)
        return f

    def stop(self) -> None:
        self.stopped = True


def output(pub: FakePublisher, **kw: Any) -> PubSubOutput:
    kw.setdefault("retry", FAST)
    return PubSubOutput(TOPIC, project="proj", prefix="pre/fix", secret=SECRET,
                        publisher=pub, **kw)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_message_is_the_collector_format_with_project_prefix_secret():
    pub = FakePublisher()
    out = output(pub)

    async def go() -> None:
        await out.send_bundle(bundle(1))
        await out.close()

    asyncio.run(go())
    (topic, data, kwargs), = pub.calls
    assert topic == TOPIC
    assert kwargs["retry"] is None  # our retry loop, not the library's
    assert data == butlerproto.encode(bundle_to_proto(bundle(1), "proj", "pre/fix", SECRET))
    msg = butlerproto.decode(data)
    assert (msg.bundle.project, msg.bundle.prefix, msg.bundle.secret) == ("proj", "pre/fix", SECRET)
    assert out.stats().sent_messages == 1 and out.stats().sent_bytes == len(data)
    assert out.undelivered == 0


def test_big_bundle_is_compressed():
    pub = FakePublisher()
    out = output(pub)

    async def go() -> None:
        await out.send_bundle(bundle(0, b"x" * 200_000 + b"\n"))
        await out.close()

    asyncio.run(go())
    data = pub.calls[0][1]
    assert len(data) < 10_000
    assert butlerproto.decode(data).metadata.compression == 1


def test_go_backoff_schedule():
    # 500 ms doubling to 30 s, and no retry limit.
    delays = PUBLISH_RETRY.delays()
    assert list(itertools.islice(delays, 9)) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert list(itertools.islice(delays, 10_000))[-1] == 30


def test_transient_errors_are_retried_until_delivered():
    errors = [gexc.ServiceUnavailable("down"), gexc.InternalServerError("x"),
              gexc.Unknown("?"), gexc.DeadlineExceeded("slow"), gexc.NotFound("topic gone"),
              gexc.ResourceExhausted("quota")]
    pub = FakePublisher(errors)
    out = output(pub)

    async def go() -> None:
        await out.send_bundle(bundle())
        await out.close()

    asyncio.run(go())
    assert len(pub.calls) == len(errors) + 1
    assert len({c[1] for c in pub.calls}) == 1  # the same bytes every time
    s = out.stats()
    assert (s.sent_messages, s.retries, s.errors, s.discarded_messages) == (1, len(errors), 0, 0)


def test_permanent_error_drops_only_that_bundle():
    pub = FakePublisher([gexc.PermissionDenied("no")])
    out = output(pub)

    async def go() -> None:
        await out.send_bundle(bundle(0))
        await out.send_bundle(bundle(1))
        await out.close()

    asyncio.run(go())
    s = out.stats()
    assert (s.sent_messages, s.discarded_messages, s.errors) == (1, 1, 1)
    assert out.undelivered == 1
    assert butlerproto.decode(pub.delivered[0]).bundle.entries[0].desc.name == "s1"


def test_at_most_16_publishes_in_flight_then_send_bundle_waits():
    pub = FakePublisher(["hold"] * 17)
    out = output(pub)

    async def go() -> None:
        for i in range(16):
            await asyncio.wait_for(out.send_bundle(bundle(i)), 1)
        seventeenth = asyncio.create_task(out.send_bundle(bundle(16)))
        await settle()
        assert len(pub.calls) == 16 and not seventeenth.done()
        pub.held[0].set_result("m0")
        await asyncio.wait_for(seventeenth, 1)
        assert len(pub.calls) == 17
        for f in pub.held[1:]:
            f.set_result("m")
        await out.close()

    asyncio.run(go())
    assert out.stats().sent_messages == 17 and out.undelivered == 0


def test_close_waits_for_publishes_in_flight():
    pub = FakePublisher(["hold"] * 3)
    out = output(pub, flush_timeout=10)

    async def go() -> None:
        for i in range(3):
            await out.send_bundle(bundle(i))
        closing = asyncio.create_task(out.close())
        await settle()
        assert not closing.done()
        for f in pub.held:
            f.set_result("m")
        await asyncio.wait_for(closing, 1)

    asyncio.run(go())
    assert out.stats().sent_messages == 3 and out.undelivered == 0


def test_close_gives_up_after_flush_timeout_and_counts_the_rest():
    # Publishing fails forever (the emulator is down): nothing may be lost
    # silently, and close() must not hang.
    pub = FakePublisher(itertools.repeat(gexc.ServiceUnavailable("down")))
    out = output(pub, flush_timeout=0.3)

    async def go() -> float:
        for i in range(20):  # more than the 16 slots
            out.begin_close() if i == 16 else None
            await asyncio.wait_for(out.send_bundle(bundle(i)), 1)
        loop = asyncio.get_running_loop()
        t = loop.time()
        await out.close()
        return loop.time() - t

    took = asyncio.run(go())
    assert took < 2
    assert out.undelivered == 20
    s = out.stats()
    assert s.sent_messages == 0 and s.discarded_messages == 20 and s.retries > 20


def test_waiting_sender_is_released_by_begin_close():
    pub = FakePublisher(["hold"] * 17)
    out = output(pub)

    async def go() -> None:
        for i in range(16):
            await out.send_bundle(bundle(i))
        seventeenth = asyncio.create_task(out.send_bundle(bundle(16)))
        await settle()
        assert not seventeenth.done()
        out.begin_close()
        await asyncio.wait_for(seventeenth, 1)
        assert len(pub.calls) == 17
        for f in pub.held:
            f.set_result("m")
        await out.close()

    asyncio.run(go())
    assert out.stats().sent_messages == 17


def test_send_after_close_is_refused_and_counted():
    pub = FakePublisher()
    out = output(pub)

    async def go() -> None:
        await out.close()
        with pytest.raises(UndeliveredError):
            await out.send_bundle(bundle())

    asyncio.run(go())
    assert out.undelivered == 1 and pub.calls == []


def test_output_limits_and_env():
    out = output(FakePublisher())
    assert out.max_size == 5_000_000
    assert out.max_send_bundles == 16
    assert out.url_env() == {"LOGDOG_STREAM_PROJECT": "proj", "LOGDOG_STREAM_PREFIX": "pre/fix"}


@pytest.mark.parametrize(
    "topic,error",
    [
        ("projects/p/topics/ab", "length (2) must be between 3 and 255"),
        ("projects/p/topics/googx", "resource cannot begin with 'goog'"),
        ("projects/p/topics/1abc", "resource names must begin with a letter"),
        ("projects/p/topics/ab$c", "invalid resource rune at 2: $"),
        ("projects/p/subs/abc", "third resource component must be 'topics'"),
        ("project/p/topics/abc", "first resource component must be 'projects'"),
        ("projects/p/topics", "missing resource name"),
        ("projects/p/topics/a/b", "too many components (5) in resource name"),
    ],
)
def test_topic_validation_matches_go(topic, error):
    with pytest.raises(ValueError, match=error.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        validate_topic(topic)


def test_valid_topic_splits():
    assert validate_topic("projects/my-proj/topics/Logs-1.x~y+z%") == ("my-proj", "Logs-1.x~y+z%")


def test_factory_options(tmp_path):
    cfg = OutputConfig(project="proj", prefix="a/b", extra={"flush_timeout": "7.5"})
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    out = create_output(f"pubsub,topic={TOPIC},secret-file={secret}", cfg)
    assert isinstance(out, PubSubOutput)
    assert (out.topic, out.secret, out.project, out.prefix) == (TOPIC, SECRET, "proj", "a/b")
    assert out.flush_timeout == 7.5
    random1 = create_output(f"pubsub,topic={TOPIC}", cfg)
    random2 = create_output(f"pubsub,topic={TOPIC}", cfg)
    assert len(random1.secret) == 36 and random1.secret != random2.secret

    with pytest.raises(OutputConfigError, match="requires a topic"):
        create_output("pubsub", cfg)
    with pytest.raises(OutputConfigError, match="invalid Pub/Sub topic"):
        create_output("pubsub,topic=projects/p/topics/x", cfg)
    secret.write_bytes(SECRET + b"\n")
    with pytest.raises(OutputConfigError, match="exactly 36 bytes"):
        create_output(f"pubsub,topic={TOPIC},secret-file={secret}", cfg)
    with pytest.raises(OutputConfigError, match="secret file"):
        create_output(f"pubsub,topic={TOPIC},secret-file={tmp_path}/missing", cfg)


def test_start_without_credentials_is_a_config_error(monkeypatch, tmp_path):
    # No emulator, no application default credentials: a clear error at start.
    for var in ("PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud user credentials either
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:1")  # not on GCE
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:1")
    out = PubSubOutput(TOPIC, project="proj", prefix="p", secret=SECRET)
    with pytest.raises(OutputConfigError, match="failed to create Pub/Sub client"):
        asyncio.run(out.start())


def test_a_bundle_that_cannot_be_encoded_does_not_hold_up_close():
    # A bundle over the 10 MiB soft cap is refused (Go's error); close() must
    # then return at once, not wait out the flush timeout for it.
    pub = FakePublisher()
    out = output(pub, flush_timeout=30)
    huge = bundle(0, text=b"x" * (10 * 1024 * 1024 + 10) + b"\n")

    async def go() -> float:
        with pytest.raises(butlerproto.ButlerProtoError):
            await out.send_bundle(huge)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await out.close()
        return loop.time() - t0

    assert asyncio.run(go()) < 5
    assert out.stats().discarded_messages == 1 and pub.calls == []
