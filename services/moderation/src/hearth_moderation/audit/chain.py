"""Appending to the chain, inside the transaction that records the events.

`install` adds one session hook (`before_commit`) on moderation's database: a transaction that
wrote outbox rows appends one audit record per row before it commits, so no moderation action
can be recorded without being audited, and none is audited that did not commit.

Concurrency: the append locks the chain-head row first (`SELECT ... FOR UPDATE` on PostgreSQL),
then reads its transaction's outbox rows not yet audited; two transactions appending at once
take turns, and the second one sees the first one's records and head. On SQLite the outbox
INSERT already took the database's write lock, so appends are serialized there too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hearth_moderation.audit.models import GENESIS, HEAD_ID, AuditChainHead, AuditRecord
from servicekit.db import Database
from servicekit.ids import utcnow
from servicekit.outbox import OUTBOX_DIRTY
from servicekit.tables import KitTables

# The chain head's own announcement is about the log, not a moderation action: auditing it
# would move the head each time it is published.
NOT_AUDITED = frozenset({"hearth.moderation.audit.chain_head.v1"})

_records = AuditRecord.__table__  # type: ignore[attr-defined]
_head = AuditChainHead.__table__  # type: ignore[attr-defined]


def canonical(fields: Mapping[str, Any]) -> str:
    """The canonical JSON of a record's fields: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(body: str) -> str:
    """The SHA-256 (hex) of a record's canonical JSON."""
    return hashlib.sha256(body.encode()).hexdigest()


def _uuid(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def references(data: Mapping[str, Any]) -> dict[str, str | None]:
    """What an event's payload is about: community, item (type and id), member, actor."""
    item_type = data.get("item_type") or data.get("target_type")
    item_id = data.get("item_id") or data.get("target_id")
    return {
        "community_id": _uuid(data.get("community_id")),
        "item_type": str(item_type) if item_type else None,
        "item_id": _uuid(item_id),
        "user_id": _uuid(data.get("user_id") or data.get("author_id")),
        "actor_id": _uuid(data.get("actor_id")),
    }


def record_fields(
    *,
    seq: int,
    prev_hash: str,
    event_id: Any,
    event_type: str,
    subject: str | None,
    occurred_at: datetime,
    recorded_at: datetime,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Every field a record's hash covers."""
    return {
        "seq": seq,
        "prev_hash": prev_hash,
        "event_id": str(event_id),
        "event_type": event_type,
        "subject": subject,
        "occurred_at": occurred_at.isoformat(),
        "recorded_at": recorded_at.isoformat(),
        "data": dict(data),
        **references(data),
    }


Observer = Callable[[Connection, Mapping[str, Any]], None]
"""Called with each appended record's fields, in the same transaction (e.g. evidence capture)."""


def install(kit: KitTables, *, observers: Sequence[Observer] = ()) -> Any:
    """The `on_database` installer: audit every outbox row in the transaction that wrote it."""

    def installer(db: Database) -> None:
        def append(session: Session) -> None:
            if session.info.get(OUTBOX_DIRTY):
                session.flush()  # outbox rows written by flush hooks are in the chain too
                append_pending(session.connection(), kit, observers=observers)

        db.listen("before_commit", append)

    return installer


def lock_head(conn: Connection) -> Any:
    """The chain-head row, created if missing, locked until this transaction ends."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(_head)
        .values(id=HEAD_ID, seq=0, hash=GENESIS, published_seq=0)
        .on_conflict_do_nothing()
    )
    return conn.execute(select(_head).where(_head.c.id == HEAD_ID).with_for_update()).one()


def append_pending(conn: Connection, kit: KitTables, *, observers: Sequence[Observer] = ()) -> int:
    """Append a record for each outbox row of this transaction not audited yet; how many."""
    head = lock_head(conn)
    outbox = kit.outbox
    rows = conn.execute(
        select(
            outbox.c.event_id,
            outbox.c.event_type,
            outbox.c.ce_subject,
            outbox.c.occurred_at,
            outbox.c.data,
        )
        .where(
            outbox.c.published_at.is_(None),
            outbox.c.event_type.not_in(sorted(NOT_AUDITED)),
            ~exists().where(_records.c.event_id == outbox.c.event_id),
        )
        .order_by(outbox.c.seq)
    ).all()
    if not rows:
        return 0
    seq, prev = head.seq, head.hash
    now = utcnow()
    values = []
    appended = []
    for row in rows:
        seq += 1
        fields = record_fields(
            seq=seq,
            prev_hash=prev,
            event_id=row.event_id,
            event_type=row.event_type,
            subject=row.ce_subject,
            occurred_at=row.occurred_at,
            recorded_at=now,
            data=row.data or {},
        )
        body = canonical(fields)
        own = digest(body)
        values.append(
            {
                "seq": seq,
                "event_id": row.event_id,
                "event_type": row.event_type,
                "community_id": _as_uuid(fields["community_id"]),
                "item_type": fields["item_type"],
                "item_id": _as_uuid(fields["item_id"]),
                "recorded_at": now,
                "prev_hash": prev,
                "hash": own,
                "body": body,
            }
        )
        prev = own
        appended.append(fields)
    conn.execute(_records.insert(), values)
    conn.execute(
        update(_head).where(_head.c.id == HEAD_ID).values(seq=seq, hash=prev, updated_at=now)
    )
    for fields in appended:
        for observe in observers:
            observe(conn, fields)
    return len(values)


def _as_uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)
