"""FastAPI dependencies every service uses: the runtime, a session, a unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.events import Envelope, Event
from servicekit.runtime import ServiceRuntime, runtime_of


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per request for nothing.
async def get_runtime(request: Request) -> ServiceRuntime:
    """The service runtime installed by the app's lifespan."""
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A session for one request; uncommitted work is rolled back."""
    async with runtime.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


class UnitOfWork:
    """State changes and their events in one transaction: `record()` then `commit()`."""

    def __init__(self, session: AsyncSession, runtime: ServiceRuntime) -> None:
        self.session = session
        self._outbox = runtime.outbox

    async def record(self, payload: Event, *, subject: str | None = None) -> Envelope:
        """Add an event to this transaction's outbox."""
        return await self._outbox.record(self.session, payload, subject=subject)

    async def commit(self) -> None:
        """Commit state and events together."""
        await self.session.commit()


async def get_uow(session: SessionDep, runtime: RuntimeDep) -> UnitOfWork:
    """A unit of work over the request's session."""
    return UnitOfWork(session, runtime)


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_uow)]


def handler_uow(session: AsyncSession) -> UnitOfWork:
    """A unit of work over a handler's session; the kernel commits it with the inbox row."""
    return UnitOfWork(session, runtime_of(session))
