"""Capturing evidence: an observer of the audit chain, so every audited action that concerns an
item (its event carries `item_type`/`item_id`, or `target_type`/`target_id`) snapshots it in the
same transaction, without the action having to ask.

Runs inside the commit's flush hook (sync Core on the transaction's connection).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from hearth_moderation.evidence.models import Evidence
from hearth_moderation.items.models import Item
from servicekit.ids import utcnow, uuid7

# Reading a case is audited, but it does not change the item: no new snapshot.
NOT_CAPTURED = frozenset({"hearth.moderation.case.exported.v1"})

_evidence = Evidence.__table__  # type: ignore[attr-defined]
_items = Item.__table__  # type: ignore[attr-defined]


def canonical(fields: Mapping[str, Any]) -> str:
    """The canonical JSON of a snapshot: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    """The SHA-256 (hex) of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def snapshot_of(
    item: Any | None,
    *,
    item_type: str,
    item_id: str,
    record: Mapping[str, Any],
    captured_at: datetime,
) -> dict[str, Any]:
    """The snapshot's fields: the item as the read model holds it, and the action that took it."""
    data = record.get("data") or {}
    base = {
        "item_type": item_type,
        "item_id": item_id,
        "action": record["event_type"],
        "event_id": record["event_id"],
        "audit_seq": record.get("seq"),
        "captured_at": captured_at.isoformat(),
    }
    if item is None:  # not announced (yet): keep what the action's event says about it
        return base | {
            "item_known": False,
            "community_id": record.get("community_id"),
            "author_id": _str(data.get("author_id")),
            "title": None,
            "text": data.get("text") or data.get("body"),
            "attachments": [],
            "created_at": None,
            "edited_at": None,
            "revision": None,
            "deleted_at": None,
        }
    return base | {
        "item_known": bool(item.known),
        "community_id": _str(item.community_id),
        "author_id": _str(item.author_id),
        "post_id": _str(item.post_id),
        "title": item.title,
        "text": item.text,
        "attachments": list(item.attachments or []),
        "created_at": _iso(item.created_at),
        "edited_at": _iso(item.edited_at),
        "revision": item.revision,
        "deleted_at": _iso(item.deleted_at),
    }


def capture(conn: Connection, record: Mapping[str, Any]) -> None:
    """Snapshot the item an audited action concerns (an audit-chain observer)."""
    item_type, item_id = record.get("item_type"), record.get("item_id")
    if not item_type or not item_id or record["event_type"] in NOT_CAPTURED:
        return
    item = conn.execute(
        select(_items).where(
            _items.c.item_type == item_type, _items.c.item_id == uuid.UUID(item_id)
        )
    ).first()
    now = utcnow()
    fields = snapshot_of(item, item_type=item_type, item_id=item_id, record=record, captured_at=now)
    body = canonical(fields)
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(_evidence)
        .values(
            id=uuid7(),
            item_type=item_type,
            item_id=uuid.UUID(item_id),
            community_id=_uuid(fields.get("community_id")),
            author_id=_uuid(fields.get("author_id")),
            action=record["event_type"],
            event_id=uuid.UUID(record["event_id"]),
            audit_seq=record.get("seq"),
            item_known=fields["item_known"],
            captured_at=now,
            sha256=sha256(body),
            snapshot=body,
        )
        .on_conflict_do_nothing()
    )


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
