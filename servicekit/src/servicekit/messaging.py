"""NATS connection that survives outages, and JetStream stream setup by convention."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from servicekit.events import stream_name

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 120.0


class NatsConnection:
    """One client per process: connects in the background and reconnects forever.

    The service starts and serves HTTP even while NATS is down; the outbox holds events until
    the connection returns, which is the point of having an outbox. `url` may list several
    servers of one cluster, comma-separated: the client connects to any and fails over to the
    others when its server goes away.
    """

    def __init__(self, url: str, *, name: str) -> None:
        self.url = url
        self.name = name
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []

    @property
    def connected(self) -> bool:
        """True while the client has a live connection."""
        return self.nc is not None and self.nc.is_connected

    def start(self) -> None:
        """Begin connecting in the background."""
        self._task = asyncio.create_task(self._connect_loop(), name=f"nats-connect-{self.name}")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the first connection is made."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _connect_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                self.nc = await nats.connect(
                    servers(self.url),
                    name=self.name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    reconnected_cb=self._reconnected,
                    disconnected_cb=self._disconnected,
                    error_cb=self._error,
                )
                self.js = self.nc.jetstream(timeout=5)
                self._connected.set()
                log.info("connected to NATS at %s", self.url)
                return
            except Exception as exc:
                log.warning("NATS not reachable at %s (%s); retrying", self.url, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)  # bounded: a broker coming back is found quickly

    async def _reconnected(self) -> None:
        log.info("reconnected to NATS")
        for callback in self.on_reconnect:
            await callback()

    async def _disconnected(self) -> None:
        log.warning("disconnected from NATS")

    async def _error(self, exc: Exception) -> None:
        log.debug("NATS client error: %s", exc)

    async def close(self) -> None:
        """Stop connecting and drain the client."""
        if self._task and not self._task.done():
            self._task.cancel()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:
                await self.nc.close()


def servers(url: str) -> list[str]:
    """The server URLs of a NATS setting: one URL, or a cluster's URLs comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


def stream_config(prefix: str, context: str, *, max_age_days: float, replicas: int) -> StreamConfig:
    """One context's stream: file storage, an explicit dedupe window and retention."""
    return StreamConfig(
        name=stream_name(prefix, context),
        subjects=[f"{prefix}.{context}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=max_age_days * 86400,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one to this configuration."""
    try:
        await js.stream_info(config.name)  # type: ignore[arg-type]
    except NotFoundError:
        try:
            await js.add_stream(config)
            return
        except BadRequestError:  # created concurrently by another process
            pass
    try:
        await js.update_stream(config)
    except BadRequestError as exc:  # e.g. replicas cannot change on a single node
        log.warning("stream %s not updated: %s", config.name, exc)
