"""A tiny service used only to test the kernel: notes, a note event and a consumer of it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.consumer import EventConsumer
from servicekit.deps import UnitOfWorkDep
from servicekit.events import Envelope, Event, event_type
from servicekit.identity import CurrentPrincipal
from servicekit.runtime import ServiceDefinition
from servicekit.settings import ServiceSettings
from servicekit.tables import KitTables


class KitModel(SQLModel, registry=registry()):
    """Own metadata, as every service has."""


metadata = KitModel.metadata
kit = KitTables(metadata)


class Note(KitModel, table=True):
    """State changed by a write."""

    __tablename__ = "notes"
    id: uuid.UUID = Field(primary_key=True)
    text: str


class NoteSeen(KitModel, table=True):
    """The consumer's effect: one row per handled event (duplicates would show here)."""

    __tablename__ = "notes_seen"
    id: int | None = Field(default=None, primary_key=True)
    note_id: uuid.UUID = Field(index=True)


@event_type("kittest.note.written.v1")
class NoteWritten(Event):
    """A note was written."""

    note_id: uuid.UUID
    text: str
    poison: bool = False
    pause_seconds: float = 0.0  # a slow handler, for ack_wait tests


class KitSettings(ServiceSettings):
    """Settings of the kernel's test service."""

    service_name: str = "kittest"


consumer = EventConsumer("kittest__notes", batch=20)


@consumer.handles("hearth.kittest.note.written.v1")
async def on_note_written(session: AsyncSession, envelope: Envelope) -> None:
    """Record the effect; a poison note always fails."""
    if envelope.data.get("poison"):
        raise ValueError("poison note")
    if envelope.data.get("pause_seconds"):
        await asyncio.sleep(envelope.data["pause_seconds"])
    session.add(NoteSeen(note_id=uuid.UUID(envelope.data["note_id"])))


router = APIRouter()


class NoteCreate(BaseModel):
    """Body of POST /notes."""

    text: str


@router.post("/notes", status_code=201)
async def write_note(body: NoteCreate, uow: UnitOfWorkDep, _: CurrentPrincipal) -> dict[str, str]:
    """Write a note and its event in one transaction."""
    note = Note(id=uuid.uuid4(), text=body.text)
    uow.session.add(note)
    await uow.record(NoteWritten(note_id=note.id, text=note.text), subject=str(note.id))
    await uow.commit()
    return {"id": str(note.id), "text": note.text}


definition = ServiceDefinition(
    context="kittest",
    title="kernel test service",
    settings_cls=KitSettings,
    metadata=metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "no-migrations",
    app_factory="kitapp:create_app",
    routers=[router],
    consumers=[consumer],
)


async def seen_count(session: AsyncSession, note_id: uuid.UUID | None = None) -> int:
    """How many effects the consumer applied (for one note, or all)."""
    stmt = select(func.count()).select_from(NoteSeen)
    if note_id is not None:
        stmt = stmt.where(NoteSeen.note_id == note_id)
    return int((await session.execute(stmt)).scalar_one())
