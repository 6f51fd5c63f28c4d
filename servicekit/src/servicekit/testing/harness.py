"""Run a real service in-process (real database, real NATS) and talk to it over ASGI."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import nats.errors
import nats.js.errors
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from servicekit.app import create_service_app
from servicekit.events import Envelope, context_of, nats_subject
from servicekit.identity import AssertionSigner, Principal
from servicekit.ids import utcnow, uuid7
from servicekit.messaging import ensure_stream, stream_config
from servicekit.runtime import ServiceDefinition, ServiceRuntime
from servicekit.testing.templates import migrate_fresh

T = TypeVar("T")


@dataclass
class RunningService:
    """A started service: its app, an HTTP client and its runtime."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: ServiceRuntime


class Identities:
    """Signs identity assertions as the gateway would, for tests that call services directly."""

    def __init__(self, private_pem: str, public_pem: str) -> None:
        self.signer = AssertionSigner(private_pem)
        self.public_pem = public_pem

    def headers(
        self, subject: uuid.UUID | None = None, *roles: str, scopes: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """Request headers carrying a signed assertion for this subject and platform roles."""
        principal = Principal(
            subject=subject or uuid.uuid4(),
            roles=frozenset(roles or ("member",)),
            scopes=frozenset(scopes),
            request_id=uuid.uuid4().hex,
        )
        return {"x-hearth-identity": self.signer.sign(principal)}


def test_settings(definition: ServiceDefinition, **values: Any) -> Any:
    """Settings for a service under test: fast retries, quick polling."""
    defaults: dict[str, Any] = {
        "environment": "test",
        "relay_poll_seconds": 0.2,
        "consumer_backoff_seconds": [0.1, 0.2, 0.4],
        "consumer_max_deliver": 3,
        "consumer_ack_wait_seconds": 5.0,
        "stream_max_age_days": 1.0,
    }
    defaults.update(values)
    return definition.settings_cls(**defaults)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@asynccontextmanager
async def running_service(
    definition: ServiceDefinition, settings: Any
) -> AsyncIterator[RunningService]:
    """Migrate, start and serve one service until the block ends."""
    if definition.migrations_dir.exists():
        await migrate_fresh(definition.migrations_dir, settings.database_url)
    else:  # the kernel's own test service has no migrations
        from servicekit.db import Database

        db = Database(settings.database_url)
        async with db.engine.begin() as conn:
            await conn.run_sync(definition.metadata.create_all)
        await db.dispose()
    app = create_service_app(definition, settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        runtime: ServiceRuntime = app.state.runtime
        await runtime.nats.wait_connected(15)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield RunningService(app, client, runtime)


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll an async check until it returns a truthy value or raises no AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


def relay_envelope(ce_type: str, *, subject: str | None = None, **data: Any) -> Envelope:
    """An envelope as another context's relay would publish it (for consumers under test)."""
    return Envelope(
        id=uuid7(),
        source=f"/hearth/{context_of(ce_type)}",
        type=ce_type,
        time=utcnow(),
        subject=subject,
        data=data,
    )


class Broker:
    """Publishes envelopes to JetStream exactly as a relay does (binary-mode CloudEvents)."""

    def __init__(self, nats_client: Any, prefix: str) -> None:
        self.js = nats_client.jetstream()
        self.prefix = prefix
        self._streams: set[str] = set()

    async def publish(self, envelope: Envelope, *, msg_id: str | None = None) -> None:
        """Publish one envelope; `msg_id` overrides Nats-Msg-Id (to get past JetStream dedupe)."""
        context = context_of(envelope.type)
        if context not in self._streams:
            config = stream_config(self.prefix, context, max_age_days=1, replicas=1)
            await ensure_stream(self.js, config)
            self._streams.add(context)
        headers = envelope.headers()
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        subject = nats_subject(self.prefix, envelope.type)
        await self.js.publish(subject, envelope.body(), headers=headers)

    async def read(self, subject: str) -> list[Envelope]:
        """Every event on a subject so far (empty when its stream does not exist yet)."""
        try:
            sub = await self.js.subscribe(subject, ordered_consumer=True)
        except nats.js.errors.NotFoundError:
            return []
        found: list[Envelope] = []
        try:
            while True:
                msg = await sub.next_msg(timeout=0.3)
                found.append(Envelope.from_message(msg.headers, msg.data))
        except nats.errors.TimeoutError:
            pass
        finally:
            await sub.unsubscribe()
        return found
