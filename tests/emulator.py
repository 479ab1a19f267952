"""The real Cloud Pub/Sub emulator, started and stopped by tests.

``gcloud beta emulators pubsub start`` runs a Python wrapper that starts
Java; both are put in a new session so that stopping kills the whole process
group (killing only the wrapper leaves Java holding the port). Startup takes
about 1-3 s. The emulator keeps nothing across restarts: after ``restart``
topics and subscriptions must be created again, as the outage test does.

The Python clients read ``PUBSUB_EMULATOR_HOST`` when they are constructed,
so set ``env()`` in ``os.environ`` (or the child's environment) first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

PROJECT = "butlerd-test"


def emulator_missing_reason() -> str | None:
    """Why emulator tests cannot run here, or None."""
    if shutil.which("gcloud") is None:
        return "gcloud is not installed (needed for the Pub/Sub emulator)"
    if shutil.which("java") is None:
        return "java is not installed (needed by the Pub/Sub emulator)"
    return None


#: Set to 1 (as CI should) to fail instead of skipping when the emulator is missing.
REQUIRE_ENV = "BUTLERD_REQUIRE_EMULATOR"


def skip_without_emulator() -> pytest.MarkDecorator:
    reason = emulator_missing_reason()
    if os.environ.get(REQUIRE_ENV) == "1":
        reason = None  # run, and fail loudly when gcloud cannot start
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PubSubEmulator:
    def __init__(self, workdir: Path, port: int | None = None, project: str = PROJECT) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.project = project
        self.proc: subprocess.Popen[bytes] | None = None
        self._starts = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project}

    def start(self, timeout: float = 60) -> None:
        assert self.proc is None, "already running"
        self._starts += 1
        log = open(self.workdir / f"emulator.{self._starts}.log", "wb")
        self.proc = subprocess.Popen(
            ["gcloud", "beta", "emulators", "pubsub", "start",
             f"--host-port={self.host}", "--quiet"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("emulator did not start listening")
                time.sleep(0.05)

    def stop(self) -> None:
        """Kill the wrapper and Java (the whole process group we started)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None
        # Wait until the port is really free so a restart can bind it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
            except OSError:
                return
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return (self.workdir / f"emulator.{self._starts}.log").read_text(errors="replace")

    # -- admin helpers (call with env() in os.environ) --------------------------------

    def topic_path(self, topic_id: str) -> str:
        return f"projects/{self.project}/topics/{topic_id}"

    def subscription_path(self, sub_id: str) -> str:
        return f"projects/{self.project}/subscriptions/{sub_id}"

    def create_topic_and_subscription(self, topic_id: str, sub_id: str | None = None) -> tuple[str, str]:
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry
        from google.cloud import pubsub_v1

        topic = self.topic_path(topic_id)
        sub = self.subscription_path(sub_id or f"{topic_id}-sub")
        retry = Retry(initial=0.05, maximum=0.5, timeout=30,
                      predicate=lambda e: isinstance(e, gexc.ServiceUnavailable))
        with _env(self.env()):
            publisher = pubsub_v1.PublisherClient()
            subscriber = pubsub_v1.SubscriberClient()
        try:
            publisher.create_topic(name=topic, retry=retry)
            subscriber.create_subscription(name=sub, topic=topic, ack_deadline_seconds=60,
                                           retry=retry)
        finally:
            publisher.transport.close()
            subscriber.close()
        return topic, sub

    def _subscriber(self):  # type: ignore[no-untyped-def]
        """A SubscriberClient that accepts messages up to Pub/Sub's 10 MB (the
        emulator-mode default channel stops at gRPC's 4 MiB)."""
        import grpc
        from google.cloud import pubsub_v1
        from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

        channel = grpc.insecure_channel(self.host, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))

    def pull(self, subscription: str, *, count: int | None = None, idle: float = 2.0,
             timeout: float = 60) -> list[bytes]:
        """Pull and ack messages until ``count`` arrived (then ``idle`` s more, to
        catch extras) or, without ``count``, until none came for ``idle`` s."""
        from google.api_core import exceptions as gexc

        subscriber = self._subscriber()
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        try:
            while time.monotonic() < deadline:
                try:
                    resp = subscriber.pull(subscription=subscription, max_messages=1000,
                                           timeout=0.5, retry=None)
                except gexc.DeadlineExceeded:  # nothing to pull right now
                    resp = None
                if resp is not None and resp.received_messages:
                    out += [m.message.data for m in resp.received_messages]
                    subscriber.acknowledge(subscription=subscription,
                                           ack_ids=[m.ack_id for m in resp.received_messages])
                    quiet_since = time.monotonic()
                    continue
                if count is not None and len(out) < count:
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since >= idle:
                    break
        finally:
            subscriber.close()
        return out


class _env:
    """Temporarily set environment variables (the clients read them at construction)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: object) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
