"""The Cloud Pub/Sub output: bundles become LogDog collector messages on a topic.

Goals, in order: lose nothing while the daemon runs; publish exactly what
the Go Butler publishes (``wire.butlerproto`` builds the bytes); never block
the event loop on the network.

Plan. ``send_bundle`` stamps project/prefix/secret into the bundle, encodes
it (compressing big ones in a worker thread), waits for one of 16 publish
slots and returns; a background task per bundle then publishes through
google-cloud-pubsub (whose futures are ``concurrent.futures`` futures,
bridged with ``asyncio.wrap_future``) until it succeeds. Because
``send_bundle`` returns once the bundle holds a slot, the pump keeps going
while publishes are in flight, and with 16 in flight the 17th
``send_bundle`` waits: that wait is the backpressure that makes streams
stop being read during an outage, instead of memory growing.

Retries: the client library's own retry is turned off so that the schedule is
the Go Butler's: 500 ms, doubling, capped at 30 s, for as long as the daemon
runs, with a per-attempt timeout (Go's CLI uses 30 s). Retried like Go:
UNAVAILABLE, INTERNAL, UNKNOWN and an attempt's DEADLINE_EXCEEDED. Also
retried here, where Go would drop the bundle: RESOURCE_EXHAUSTED and ABORTED
(both mean "try later"), NOT_FOUND (a topic being re-created, e.g. an
emulator or test project restarting, would otherwise lose data; a topic
that never appears is bounded by the flush timeout like any outage) and
credential-refresh transport errors. Anything else drops the bundle and is
counted as discarded + error, as in Go.

Shutdown: ``begin_close()`` (optional; the daemon calls it when it starts
draining) starts the flush timeout and lets ``send_bundle`` stop waiting for
slots, so the last bundles are handed over at once. ``close()`` waits until
everything is delivered or the flush timeout has passed since
``begin_close()``, then gives up on the rest. ``undelivered`` (also counted
in ``stats().discarded_messages``) is every bundle that did not reach
Pub/Sub; the CLI exits non-zero when it is not 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections import deque
from typing import Any, Protocol

from butlerd._events import Bundle
from butlerd._nestedflags import FlagSet
from butlerd._proto import bundle_to_proto
from butlerd._prpc import RetrySchedule
from butlerd.outputs import OutputConfigError, OutputFactory
from butlerd.outputs.base import Output, OutputConfig, OutputStats, logdog_env
from wire import butlerproto
from wire.types import PREFIX_SECRET_LENGTH as SECRET_LENGTH

__all__ = [
    "PUBLISH_RETRY",
    "PubSubFactory",
    "PubSubOutput",
    "SECRET_LENGTH",
    "UndeliveredError",
    "is_transient",
    "random_secret",
    "read_secret_file",
    "validate_topic",
]

log = logging.getLogger(__name__)

#: The collector rejects any other secret length (Go types.PrefixSecretLength).
#: Go ``gcps.MaxPublishRequestBytes / 2``: the bundler's byte budget.
MAX_SIZE = 5_000_000
#: Go ``MaxSendBundles``.
MAX_SEND_BUNDLES = 16
#: Bundles at least this big are compressed in a worker thread.
_OFFLOAD_BYTES = 64 * 1024


class UndeliveredError(RuntimeError):
    """The output gave up on a bundle at shutdown."""


#: Go's publish retry: 500 ms doubling to 30 s, for as long as the daemon runs.
PUBLISH_RETRY = RetrySchedule(delay=0.5, retries=None, max_delay=30.0)


class Publisher(Protocol):
    """What we use of ``google.cloud.pubsub_v1.PublisherClient``."""

    def publish(self, topic: str, data: bytes, **kwargs: Any) -> Any: ...

    def stop(self) -> None: ...


def validate_topic(topic: str) -> tuple[str, str]:
    """Go ``gcloud/pubsub.Topic.Validate`` then ``Split``: ``(project, topic_id)``."""
    parts = topic.split("/")
    missing = {
        1: "missing project name",
        2: "missing collection type",
        3: "missing resource name",
    }
    if len(parts) in missing:
        raise ValueError(missing[len(parts)])
    if len(parts) > 4:
        raise ValueError(f"too many components ({len(parts)}) in resource name")
    if parts[0] != "projects":
        raise ValueError("first resource component must be 'projects'")
    if parts[2] != "topics":
        raise ValueError("third resource component must be 'topics'")
    name = parts[3]
    if not 3 <= len(name) <= 255:
        raise ValueError(f"length ({len(name)}) must be between 3 and 255")
    if name.startswith("goog"):
        raise ValueError("resource cannot begin with 'goog'")
    for i, c in enumerate(name):
        if ord(c) >= 0x7F:
            raise ValueError(f"non-ASCII character found at index #{i}")
        if not c.isascii() or not c.isalpha():
            if i == 0:
                raise ValueError("pubsub: resource names must begin with a letter")
            if not (c.isdigit() or c in "-_.~+%"):
                raise ValueError(f"pubsub: invalid resource rune at {i}: {c}")
    return parts[1], name


def random_secret() -> bytes:
    return os.urandom(SECRET_LENGTH)


def read_secret_file(path: str) -> bytes:
    """The secret is the file's raw bytes: exactly 36 of them."""
    with open(path, "rb") as f:
        secret = f.read(SECRET_LENGTH + 1)
    if len(secret) != SECRET_LENGTH:
        raise ValueError(
            f"secret file {path!r} must hold exactly {SECRET_LENGTH} bytes"
            f" (got {len(secret) if len(secret) <= SECRET_LENGTH else 'more'})"
        )
    return secret


def _transient_types() -> tuple[type[BaseException], ...]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as aexc

    return (
        gexc.ServiceUnavailable,
        gexc.InternalServerError,
        gexc.Unknown,
        gexc.DeadlineExceeded,
        gexc.ResourceExhausted,
        gexc.Aborted,
        gexc.NotFound,
        aexc.TransportError,
        TimeoutError,
    )


_TRANSIENT: tuple[type[BaseException], ...] | None = None


def is_transient(err: BaseException) -> bool:
    """Whether a failed publish is retried (see the module docstring)."""
    global _TRANSIENT
    if _TRANSIENT is None:
        _TRANSIENT = _transient_types()
    return isinstance(err, _TRANSIENT)


def default_publisher() -> Publisher:
    """A PublisherClient: the emulator when PUBSUB_EMULATOR_HOST is set, else
    Google application default credentials. May block (credential lookup):
    call it off the event loop."""
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


class PubSubOutput(Output):
    max_size = MAX_SIZE
    max_send_bundles = MAX_SEND_BUNDLES

    def __init__(
        self,
        topic: str,
        *,
        project: str,
        prefix: str,
        secret: bytes,
        host: str = "",
        publisher: Publisher | None = None,
        flush_timeout: float = 30.0,
        rpc_timeout: float | None = 30.0,
        retry: RetrySchedule = PUBLISH_RETRY,
        compress: bool = True,
    ) -> None:
        validate_topic(topic)
        if len(secret) != SECRET_LENGTH:
            raise ValueError(f"prefix secret must be {SECRET_LENGTH} bytes, got {len(secret)}")
        self.topic = topic
        self.host = host
        self.project = project
        self.prefix = prefix
        self.secret = secret
        self.flush_timeout = flush_timeout
        self.rpc_timeout = rpc_timeout
        self.retry = retry
        self.compress = compress
        self._publisher = publisher
        self._own_publisher = publisher is None
        self._stats = OutputStats()
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._handing_over = 0  # send_bundle calls that have not returned
        self._settled = asyncio.Event()  # nothing in flight, nothing being handed over
        self._settled.set()
        self._deadline: float | None = None  # loop time when we give up
        self._gave_up = False
        self._closed = False

    def __repr__(self) -> str:
        return f"pubsub({self.topic})"

    @property
    def undelivered(self) -> int:
        """Bundles that did not reach Pub/Sub (refused, failed, or cut off at close)."""
        return self._stats.discarded_messages

    def stats(self) -> OutputStats:
        return dataclasses.replace(self._stats)

    def url_env(self) -> dict[str, str]:
        return logdog_env(self.host, self.project, self.prefix)

    async def start(self) -> None:
        if self._publisher is None:
            try:
                self._publisher = await asyncio.to_thread(default_publisher)
            except ImportError as e:
                raise OutputConfigError(
                    f"the Pub/Sub outputs need google-cloud-pubsub"
                    f" (pip install 'butlerd[pubsub]'): {e}"
                ) from None
            except Exception as e:  # e.g. google.auth DefaultCredentialsError
                raise OutputConfigError(f"failed to create Pub/Sub client: {e}") from None

    # -- sending ------------------------------------------------------------------

    async def send_bundle(self, bundle: Bundle) -> None:
        if self._closed:
            self._discard()
            raise UndeliveredError("pubsub output is closed")
        self._handing_over += 1
        self._settled.clear()
        try:
            try:
                data = await self._encode(bundle)
            except butlerproto.ButlerProtoError as e:
                log.error("Failed to build PubSub Message from bundle: %s", e)
                self._discard()
                raise
            if self._publisher is None:
                await self.start()
            got_slot = await self._acquire_slot()
        except BaseException:
            self._handing_over -= 1
            self._check_settled()  # close() must not wait out its timeout for us
            raise
        self._handing_over -= 1
        if not got_slot:
            self._discard()
            self._check_settled()
            raise UndeliveredError("pubsub output gave up at shutdown before publishing")
        task = asyncio.get_running_loop().create_task(self._deliver(data))
        self._deliveries.add(task)
        task.add_done_callback(self._delivery_done)

    async def _encode(self, bundle: Bundle) -> bytes:
        raw = bundle_to_proto(bundle, self.project, self.prefix, self.secret).SerializeToString(
            deterministic=True
        )
        if self.compress and len(raw) >= _OFFLOAD_BYTES:
            # zlib releases the GIL: a 5 MB bundle takes tens of ms to compress.
            return await asyncio.to_thread(butlerproto.encode_serialized, raw)
        return butlerproto.encode_serialized(raw, compress=self.compress)

    async def _acquire_slot(self) -> bool:
        """Wait for a publish slot; False if we gave up (shutdown deadline).

        After ``begin_close`` nobody waits: the bundler can hand over all it
        holds at once, and the flush timeout bounds the publishing instead.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._gave_up:
                return False
            if self._deadline is not None or len(self._deliveries) < MAX_SEND_BUNDLES:
                return True  # the caller creates the delivery task without awaiting
            waiter = loop.create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)

    def _wake_waiters(self, everyone: bool) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._wake_waiters(everyone=False)
        self._check_settled()

    def _check_settled(self) -> None:
        if not self._deliveries and not self._handing_over:
            self._settled.set()

    def _discard(self) -> None:
        self._stats.discarded_messages += 1
        self._stats.errors += 1

    async def _deliver(self, data: bytes) -> None:
        """Publish until it succeeds, a permanent error, or cancellation at close."""
        assert self._publisher is not None
        delays = self.retry.delays()
        transient_errors = 0
        try:
            while True:
                try:
                    future = self._publisher.publish(
                        self.topic, data, retry=None, timeout=self.rpc_timeout
                    )
                    message_id = await asyncio.wrap_future(future)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if not is_transient(e):
                        log.error("Failed to send PubSub message: %s", e)
                        self._discard()
                        return
                    delay = next(delays)
                    transient_errors += 1
                    self._stats.retries += 1
                    log.warning(
                        "TRANSIENT error publishing messages; retrying in %.1fs: %s", delay, e
                    )
                    await asyncio.sleep(delay)
                    continue
                self._stats.sent_bytes += len(data)
                self._stats.sent_messages += 1
                if transient_errors:
                    log.warning(
                        "Successfully published messages after transient errors "
                        "(messageId=%s, transientErrors=%d).",
                        message_id,
                        transient_errors,
                    )
                return
        except asyncio.CancelledError:
            self._discard()
            raise

    # -- shutdown -----------------------------------------------------------------

    def begin_close(self) -> None:
        """Start the flush timeout now; from here on ``send_bundle`` never waits."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self.flush_timeout
            self._wake_waiters(everyone=True)

    async def close(self) -> None:
        self.begin_close()
        assert self._deadline is not None
        remaining = self._deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._settled.wait(), max(0.0, remaining))
        except TimeoutError:
            pass
        self._closed = True
        self._gave_up = True
        self._wake_waiters(everyone=True)
        stuck = list(self._deliveries)
        for task in stuck:
            task.cancel()
        if stuck:
            await asyncio.gather(*stuck, return_exceptions=True)
        # Senders still waiting for a slot wake up, see _gave_up and count themselves.
        while self._handing_over:
            await self._settled.wait()  # set by the last sender to give up
        if self._publisher is not None and self._own_publisher:
            try:
                self._publisher.stop()  # non-blocking: it only flags the client
                self._publisher.transport.close()  # type: ignore[attr-defined]
            except Exception as e:
                log.debug("closing the publisher: %s", e)
        log.info("Message output has closed: %s (retries %d)", self._stats, self._stats.retries)
        if self.undelivered:
            log.error("%d bundle(s) were not delivered to %s", self.undelivered, self.topic)


class PubSubFactory(OutputFactory):
    description = "Output to a Cloud Pub/Sub topic (LogDog collector format)."

    def add_flags(self, flags: FlagSet) -> None:
        flags.string("topic", "")
        flags.string("secret-file", "")

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        topic = options["topic"]
        if not topic:
            raise OutputConfigError("pubsub output requires a topic (topic=projects/P/topics/T)")
        try:
            validate_topic(topic)
        except ValueError as e:
            raise OutputConfigError(f"invalid Pub/Sub topic {topic!r}: {e}") from None
        try:
            secret = (
                read_secret_file(options["secret-file"])
                if options["secret-file"]
                else random_secret()
            )
        except OSError as e:
            raise OutputConfigError(f"reading the secret file: {e}") from None
        except ValueError as e:
            raise OutputConfigError(str(e)) from None
        return PubSubOutput(
            topic,
            host=config.coordinator_host,
            project=config.project,
            prefix=config.prefix,
            secret=secret,
            flush_timeout=flush_timeout(config),
        )


def flush_timeout(config: OutputConfig, default: float = 30.0) -> float:
    """``-output-flush-timeout`` as the CLI passes it (seconds, in ``extra``)."""
    value = config.extra.get("flush_timeout")
    return float(value) if value else default

