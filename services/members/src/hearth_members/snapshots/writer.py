"""Every change to a membership or a community writes its snapshot, in the same transaction.

One pair of session hooks, installed once on members' database (`install`), so no code path
can change a membership without a snapshot:

- `before_flush` collects the memberships and communities this flush inserts or updates. A
  tier change (`member_tiers`) or a change of what tiers grant (`tier_rules`) is a change of the
  membership's state too: those memberships are marked modified, so the ORM bumps their
  `version` like any other UPDATE (the version grows in one place only: the mapper's
  `version_id_col`).
- `after_flush_postexec` reads the versions the flush wrote and adds one snapshot row per
  changed object to the outbox, on the flush's connection (sync hooks run inside the asyncio
  extension's greenlet, where Core statements are allowed).

Core `update(Membership)` / `update(Community)` statements would bypass both the version and
the snapshot: members writes these two tables through the ORM only.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from hearth_members.communities.models import Community
from hearth_members.membership.models import Membership
from hearth_members.snapshots.build import community_snapshot, membership_snapshots
from hearth_members.tiers.models import MemberTier, TierRules
from servicekit.db import Database
from servicekit.runtime import RUNTIME_INFO_KEY

PENDING = "hearth_members.snapshots.pending"


def install(db: Database) -> None:
    """Write snapshots from every session of this database (ServiceDefinition.on_database)."""
    db.listen("before_flush", _collect)
    db.listen("after_flush_postexec", _write)


def _changed(session: Session, obj: Any) -> bool:
    return obj in session.new or session.is_modified(obj)


def _collect(session: Session, _context: Any, _instances: Any) -> None:
    pending: dict[int, Membership | Community] = {}
    pairs: set[tuple[Any, Any]] = set()
    regranted: set[Any] = set()
    for obj in chain(session.new, session.dirty):
        if isinstance(obj, Membership | Community):
            if _changed(session, obj):
                pending[id(obj)] = obj
        elif isinstance(obj, MemberTier):
            if _changed(session, obj):
                pairs.add((obj.community_id, obj.user_id))
        elif isinstance(obj, TierRules) and _changed(session, obj):
            regranted.add(obj.community_id)
    for membership in _affected(session, pairs, regranted):
        if id(membership) not in pending:
            # The row itself did not change, its tier did: make the ORM write (and version) it.
            flag_modified(membership, "role")
            pending[id(membership)] = membership
    session.info[PENDING] = list(pending.values())


def _affected(session: Session, pairs: set[tuple[Any, Any]], communities: set[Any]) -> list[Any]:
    if not pairs and not communities:
        return []
    clauses = []
    if pairs:
        clauses.append(tuple_(Membership.community_id, Membership.user_id).in_(sorted(pairs)))
    if communities:
        clauses.append(Membership.community_id.in_(sorted(communities)))  # type: ignore[attr-defined]
    found: list[Any] = []
    with session.no_autoflush:
        for clause in clauses:
            found.extend(session.execute(select(Membership).where(clause)).scalars())
    return found


def _write(session: Session, _context: Any) -> None:
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    runtime = session.info.get(RUNTIME_INFO_KEY)
    if runtime is None:
        raise RuntimeError("members' session has no runtime: snapshots cannot be recorded")
    communities = [o for o in pending if isinstance(o, Community)]
    memberships = [o for o in pending if isinstance(o, Membership)]
    payloads: list[tuple[Any, str | None]] = [
        (community_snapshot(c), str(c.id)) for c in communities
    ]
    for snapshot in membership_snapshots(session.connection(), memberships):
        payloads.append((snapshot, str(snapshot.community_id)))
    runtime.outbox.record_in_flush(session, payloads)
