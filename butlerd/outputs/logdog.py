"""The ``logdog`` output: register the prefix with the Coordinator, then publish.

Goal: the same conversation with the LogDog Coordinator as the Go Butler
(luci-go ``logdog/client/butler/output/logdog``), then the Pub/Sub output
(``butlerd.outputs.pubsub``) on the topic and with the secret it returns.

``start()`` calls ``logdog.Registration/RegisterPrefix`` over pRPC
(``butlerd._prpc``) with the request Go builds:

* project, prefix, no realm (butlerd is never realm-aware);
* source_info ``["LogDog Butler", "GOARCH=<arch>", "GOOS=<os>"]`` where arch
  and os are the names Go would report on this machine (``amd64``,
  ``arm64``, ``linux``, ``darwin``, ...), mapped from ``platform.machine()``
  and ``sys.platform``;
* op_nonce: 32 random bytes made once and sent again on every retry, so the
  Coordinator can recognise a retry of a registration that did succeed;
* expiration: always present, zero unless ``prefix-expiration`` is given.

Retries are Go's two layers: the pRPC client retries transient codes and
attempt deadlines (1 s doubling, 5 retries; 30 s per attempt as the Go CLI
sets), and around it the registration retries transient codes again (Go
``retry.Default``: 200 ms doubling to 10 s, 10 retries). A prefix registers
only once; ALREADY_EXISTS and other permanent errors fail at once.

Credentials: none when the Coordinator is a loopback host with a port (a
test or local Coordinator); otherwise Google application default
credentials (google-auth), scoped like Go's (userinfo.email for the RPC;
the Pub/Sub client uses ADC with its own scopes, or the emulator when
PUBSUB_EMULATOR_HOST is set).

One deliberate difference: a returned secret that is not 36 bytes fails the
registration here (the collector would refuse every bundle anyway, and Go
would only find out there).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
from typing import Any

from butlerd._events import Bundle
from butlerd._goflags import FlagError, parse_duration
from butlerd._nestedflags import FlagSet
from butlerd._proto_registration import RegisterPrefixRequest, RegisterPrefixResponse
from butlerd._prpc import Credentials, PrpcClient, PrpcError, RetrySchedule, is_local_host
from butlerd.outputs import OutputConfigError, OutputFactory
from butlerd.outputs.base import Output, OutputConfig, OutputStats, logdog_env
from butlerd.outputs.pubsub import (
    MAX_SEND_BUNDLES,
    MAX_SIZE,
    SECRET_LENGTH,
    PubSubOutput,
    Publisher,
    flush_timeout,
    validate_topic,
)
from wire.goquote import go_quote
from wire.types import OP_NONCE_LENGTH

__all__ = [
    "LogDogFactory",
    "LogDogOutput",
    "RegistrationError",
    "build_source_info",
    "go_arch",
    "go_os",
]

log = logging.getLogger(__name__)

#: 32 random bytes per registration (Go types.OpNonceLength).
#: Go CLI: ``RPCTimeout: 30 * time.Second`` (registration attempts and publishes).
RPC_TIMEOUT = 30.0
#: Go ``retry.Default`` around the registration call.
REGISTER_RETRY = RetrySchedule(delay=0.2, retries=10, max_delay=10.0)
#: OAuth scopes for the Coordinator RPC (Go scopes.DefaultScopeSet()).
RPC_SCOPES = ["https://www.googleapis.com/auth/userinfo.email"]

_GOARCH = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "386", "i486": "386", "i586": "386",
    "i686": "386", "x86": "386", "aarch64": "arm64", "arm64": "arm64", "armv6l": "arm",
    "armv7l": "arm", "armv8l": "arm", "arm": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64",
    "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64",
}


def go_arch(machine: str | None = None) -> str:
    """Go's ``runtime.GOARCH`` name for this machine (or the raw name if unknown)."""
    m = (machine if machine is not None else platform.machine()).lower()
    return _GOARCH.get(m, m)


def go_os(plat: str | None = None) -> str:
    """Go's ``runtime.GOOS`` name for this OS."""
    p = plat if plat is not None else sys.platform
    if p.startswith("win") or p == "cygwin":
        return "windows"
    for name in ("linux", "darwin", "freebsd", "openbsd", "netbsd", "aix", "dragonfly"):
        if p.startswith(name):
            return name
    if p.startswith("sunos"):
        return "solaris"
    return p


def build_source_info(extra: list[str] | None = None) -> list[str]:
    """``SourceInfo`` + ``GOARCH=`` + ``GOOS=``, as Go registers it."""
    return [*(extra if extra is not None else ["LogDog Butler"]),
            f"GOARCH={go_arch()}", f"GOOS={go_os()}"]


class RegistrationError(OutputConfigError):
    """RegisterPrefix failed, or its answer cannot be used."""


def default_credentials() -> Credentials:
    """Google application default credentials for the Coordinator RPC (blocking)."""
    import google.auth

    creds, _ = google.auth.default(scopes=RPC_SCOPES)
    return creds  # type: ignore[no-any-return]


class LogDogOutput(Output):
    """Registers in ``start()``, then delegates everything to a PubSubOutput."""

    max_size = MAX_SIZE
    max_send_bundles = MAX_SEND_BUNDLES

    def __init__(
        self,
        host: str,
        *,
        project: str,
        prefix: str,
        prefix_expiration_ns: int = 0,
        source_info: list[str] | None = None,
        rpc_timeout: float | None = RPC_TIMEOUT,
        flush_timeout: float = 30.0,
        credentials: Credentials | None = None,
        register_retry: RetrySchedule = REGISTER_RETRY,
        client_retry: RetrySchedule | None = None,
        publisher: Publisher | None = None,
        pubsub_options: dict[str, Any] | None = None,
    ) -> None:
        if not host:
            raise OutputConfigError("logdog output requires a Coordinator host (-coordinator-host)")
        self.host = host
        self.project = project
        self.prefix = prefix
        self.prefix_expiration_ns = prefix_expiration_ns
        self.source_info = build_source_info(source_info)
        self.rpc_timeout = rpc_timeout
        self.flush_timeout = flush_timeout
        self.credentials = credentials
        self.register_retry = register_retry
        self.client_retry = client_retry
        self.op_nonce = os.urandom(OP_NONCE_LENGTH)
        self._publisher = publisher
        self._pubsub_options = pubsub_options or {}
        self.pubsub: PubSubOutput | None = None
        self.registration: RegisterPrefixResponse | None = None

    def __repr__(self) -> str:
        return f"logdog({self.host}, {self.project}/{self.prefix})"

    def request(self) -> RegisterPrefixRequest:
        req = RegisterPrefixRequest(
            project=self.project,
            prefix=self.prefix,
            source_info=self.source_info,
            op_nonce=self.op_nonce,
        )
        # Go durationpb.New: both parts truncated toward zero, same sign.
        sign = -1 if self.prefix_expiration_ns < 0 else 1
        seconds, nanos = divmod(abs(self.prefix_expiration_ns), 10**9)
        req.expiration.seconds, req.expiration.nanos = sign * seconds, sign * nanos
        req.expiration.SetInParent()  # Go always sends it, zero included
        return req

    async def register(self) -> RegisterPrefixResponse:
        """RegisterPrefix with Go's two retry layers; the same nonce every time."""
        credentials = self.credentials
        if credentials is None and not is_local_host(self.host):
            try:
                credentials = await asyncio.to_thread(default_credentials)
            except Exception as e:
                raise RegistrationError(f"failed to get credentials: {e}") from None
        kwargs: dict[str, Any] = {}
        if self.client_retry is not None:
            kwargs["retry"] = self.client_retry
        with PrpcClient(self.host, credentials=credentials,
                        per_rpc_timeout=self.rpc_timeout, **kwargs) as client:
            if client.insecure:
                log.info("Detected localhost; enabling insecure RPC connection.")
            req = self.request()
            delays = self.register_retry.delays()
            while True:
                try:
                    return await client.call("logdog.Registration", "RegisterPrefix", req,
                                             RegisterPrefixResponse())
                except PrpcError as e:
                    delay = next(delays, None) if e.transient else None
                    if delay is None:
                        log.error("Failed to register prefix with Coordinator service: %s", e)
                        raise RegistrationError(str(e)) from None
                    log.warning("RegisterPrefix failed transiently (retry in %gs): %s",
                                delay, e)
                    await asyncio.sleep(delay)

    async def start(self) -> None:
        resp = await self.register()
        try:
            validate_topic(resp.log_bundle_topic)
        except ValueError as e:
            raise RegistrationError(
                f"Coordinator returned invalid Pub/Sub topic {resp.log_bundle_topic!r}: {e}"
            ) from None
        if len(resp.secret) != SECRET_LENGTH:
            raise RegistrationError(
                f"Coordinator returned a {len(resp.secret)}-byte prefix secret"
                f" (want {SECRET_LENGTH})"
            )
        log.debug("Successfully registered log stream prefix %s; topic %s",
                  self.prefix, resp.log_bundle_topic)
        self.registration = resp
        self.pubsub = PubSubOutput(
            resp.log_bundle_topic,
            host=self.host,
            project=self.project,
            prefix=self.prefix,
            secret=resp.secret,
            publisher=self._publisher,
            flush_timeout=self.flush_timeout,
            rpc_timeout=self.rpc_timeout,
            **self._pubsub_options,
        )
        await self.pubsub.start()

    def _started(self) -> PubSubOutput:
        if self.pubsub is None:
            raise RuntimeError("logdog output used before start() registered the prefix")
        return self.pubsub

    async def send_bundle(self, bundle: Bundle) -> None:
        await self._started().send_bundle(bundle)

    def stats(self) -> OutputStats:
        return self.pubsub.stats() if self.pubsub is not None else OutputStats()

    @property
    def undelivered(self) -> int:
        return self.pubsub.undelivered if self.pubsub is not None else 0

    def begin_close(self) -> None:
        if self.pubsub is not None:
            self.pubsub.begin_close()

    async def close(self) -> None:
        if self.pubsub is not None:
            await self.pubsub.close()

    def url_env(self) -> dict[str, str]:
        return logdog_env(self.host, self.project, self.prefix)


class LogDogFactory(OutputFactory):
    description = "Output to a LogDog Coordinator instance."

    def add_flags(self, flags: FlagSet) -> None:
        flags.string("service", "")
        flags.values["prefix-expiration"] = 0

        def set_expiration(value: str) -> None:
            try:
                flags.values["prefix-expiration"] = parse_duration(value)
            except FlagError:
                raise ValueError(f"time: invalid duration {go_quote(value)}") from None

        flags.var("prefix-expiration", set_expiration)

    def create(self, options: dict[str, Any], config: OutputConfig) -> Output:
        host = config.coordinator_host
        if not host:
            raise OutputConfigError(
                "logdog output requires a Coordinator host (-coordinator-host)"
            )
        if options["service"]:
            host = f"{options['service']}-dot-{host}"
        return LogDogOutput(
            host,
            project=config.project,
            prefix=config.prefix,
            prefix_expiration_ns=options["prefix-expiration"],
            flush_timeout=flush_timeout(config),
        )
