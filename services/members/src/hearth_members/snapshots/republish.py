"""`hearth-members republish-snapshots`: the current snapshot of everything, through the outbox.

For a new context, or a read model rebuilt from scratch, to start from members' current state
without replaying history. Versions are not bumped: a consumer that already holds a row ignores
its snapshot; one that does not, takes it. Runs in batches, one transaction each; the service's
relay (running or started later) publishes them.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from sqlalchemy.orm import Session
from sqlmodel import col, select

from hearth_members.communities.models import Community
from hearth_members.membership.models import Membership
from hearth_members.snapshots.build import community_snapshot, membership_snapshots
from hearth_members.snapshots.events import CommunitySnapshot, MembershipSnapshot
from servicekit.cli import CliCommand
from servicekit.runtime import ServiceRuntime


async def republish(runtime: ServiceRuntime, *, batch: int = 500) -> dict[str, int]:
    """Record the current snapshot of every community and membership; returns the counts."""
    counts = {"communities": 0, "memberships": 0}
    for model, key in ((Community, "communities"), (Membership, "memberships")):
        after: uuid.UUID | None = None
        while True:
            async with runtime.db.session() as session:
                stmt = select(model).order_by(col(model.id)).limit(batch)
                if after is not None:
                    stmt = stmt.where(col(model.id) > after)
                rows: list[Any] = list((await session.exec(stmt)).all())
                if not rows:
                    break
                snapshots: list[CommunitySnapshot] | list[MembershipSnapshot]
                if model is Community:
                    snapshots = [community_snapshot(c) for c in rows]
                else:
                    snapshots = await session.run_sync(_membership_snapshots, rows)
                for snapshot in snapshots:
                    await runtime.outbox.record(
                        session, snapshot, subject=str(snapshot.community_id)
                    )
                await session.commit()
            counts[key] += len(rows)
            after = rows[-1].id
    return counts


def _membership_snapshots(session: Session, rows: list[Membership]) -> list[MembershipSnapshot]:
    return membership_snapshots(session.connection(), rows)


async def _run(runtime: ServiceRuntime, args: argparse.Namespace) -> None:
    counts = await republish(runtime, batch=args.batch)
    print(
        f"recorded {counts['communities']} community and {counts['memberships']} membership "
        "snapshots in the outbox; the relay publishes them"
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=500, help="rows per transaction")


command = CliCommand(
    name="republish-snapshots",
    help="record the current snapshot of every community and membership (bootstrap consumers)",
    run=_run,
    arguments=_arguments,
)
