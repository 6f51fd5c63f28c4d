"""A service's running parts, wired in one place: database, NATS, outbox, relay, consumers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from fastapi import APIRouter
from sqlalchemy import MetaData
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.consumer import ConsumerRuntime, EventConsumer
from servicekit.db import Database
from servicekit.migrations import Revisions, revisions
from servicekit.settings import ServiceSettings
from servicekit.tables import KitTables
from servicekit.wiring import EventWiring

log = logging.getLogger(__name__)

RUNTIME_INFO_KEY = "servicekit.runtime"


@dataclass
class ServiceDefinition:
    """What makes a service: its context name, tables, migrations, routes and subscriptions."""

    context: str
    title: str
    settings_cls: type[ServiceSettings]
    metadata: MetaData
    tables: KitTables
    migrations_dir: Path
    app_factory: str  # "package.module:create_app", for uvicorn --factory
    routers: list[APIRouter] = field(default_factory=list)
    consumers: list[EventConsumer] = field(default_factory=list)
    default_port: int = 8000
    # Long-running loops of the service (e.g. schedulers), each `async def loop(runtime)`:
    # started after the relay and consumers, cancelled first on shutdown. A loop that must run
    # on one replica only guards itself (servicekit.lease.Lease or SKIP LOCKED row claims).
    background: list[Callable[[ServiceRuntime], Awaitable[None]]] = field(default_factory=list)
    # The service's own Prometheus collectors, added to its /metrics registry next to the
    # kernel's: each factory gets the context name and a getter of the runtime (None until
    # the lifespan has started it) and returns a `prometheus_client` Collector.
    collectors: list[Callable[[str, Callable[[], ServiceRuntime | None]], Any]] = field(
        default_factory=list
    )
    # Called once with each Database the runtime opens, before any session: where a service
    # installs its session hooks (`db.listen(...)`), e.g. members' snapshot writer.
    on_database: list[Callable[[Database], None]] = field(default_factory=list)


class ServiceRuntime:
    """Owns the long-lived resources of one service process."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.db = Database(settings.database_url, pool_size=settings.database_pool_size)
        self.db.session_info[RUNTIME_INFO_KEY] = self
        for install in definition.on_database:
            install(self.db)
        self.wiring = EventWiring(self.db, definition.tables, settings, context=definition.context)
        self.nats = self.wiring.nats
        self.outbox = self.wiring.outbox
        self.relay = self.wiring.relay
        # What /readyz compares the database with, read once: a pod of this release is ready
        # only on a schema migrated this far. None for a service without Alembic migrations.
        self.revisions: Revisions | None = (
            revisions(definition.migrations_dir) if definition.migrations_dir.exists() else None
        )
        # Imported here: servicekit.idempotency builds on this module (periodic, lease).
        from servicekit import idempotency

        self.idempotency_keyring = idempotency.keyring_from(settings)
        self._kernel_background = [idempotency.sweep_loop]
        self._background: list[asyncio.Task[None]] = []
        self.consumers: list[ConsumerRuntime] = self.wiring.consumers

    @property
    def tables(self) -> KitTables:
        """The kernel tables in this service's database."""
        return self.definition.tables

    async def start(self) -> None:
        """Connect in the background and start the relay and every consumer."""
        self.wiring.start()
        for consumer in self.definition.consumers:
            self.wiring.start_consumer(consumer)
        for loop in [*self._kernel_background, *self.definition.background]:
            name = getattr(loop, "__name__", "background")
            self._background.append(asyncio.create_task(self._guarded(loop), name=name))

    async def _guarded(self, loop: Callable[[ServiceRuntime], Awaitable[None]]) -> None:
        try:
            await loop(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background loop %s stopped", getattr(loop, "__name__", loop))

    async def stop(self) -> None:
        """Drain consumers and the relay, then close connections."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.wiring.stop()
        await self.db.dispose()


def runtime_of(session: AsyncSession) -> ServiceRuntime:
    """The runtime whose database opened this session (for consumer handlers: outbox, settings)."""
    runtime = session.sync_session.info.get(RUNTIME_INFO_KEY)
    if runtime is None:
        raise RuntimeError("this session was not opened by a service runtime's database")
    return runtime


# --- Typed settings -------------------------------------------------------------------------
# A service reads its own settings through its class, so a misspelt name is a mypy error and a
# wrong runtime a TypeError, never a silent fallback to a default.
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def settings_of(runtime: ServiceRuntime, cls: type[SettingsT]) -> SettingsT:
    """The runtime's settings as the service's own settings class (TypeError if they are not)."""
    settings = runtime.settings
    if not isinstance(settings, cls):
        raise TypeError(f"runtime settings are {type(settings).__name__}, not {cls.__name__}")
    return settings


# --- Per-runtime extensions -----------------------------------------------------------------
# A package that keeps process-wide state per runtime (a keyring, a sender's counters) asks for
# it by a typed key instead of setting private attributes on the runtime.
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Key(Generic[T]):
    """A typed name for one per-runtime extension (compared by identity)."""

    name: str


_EXTENSIONS: WeakKeyDictionary[ServiceRuntime, dict[Key[Any], Any]] = WeakKeyDictionary()


def extension(runtime: ServiceRuntime, key: Key[T], factory: Callable[[], T]) -> T:
    """The runtime's value for `key`, made by `factory` on first use."""
    values = _EXTENSIONS.setdefault(runtime, {})
    if key not in values:
        values[key] = factory()
    return values[key]  # type: ignore[no-any-return]
