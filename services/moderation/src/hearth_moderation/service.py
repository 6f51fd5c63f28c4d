"""Moderation's use cases: keyword-only functions over a unit of work.

Route use cases that change state commit; `screen_post` and `apply_membership` are called by
event consumers and never commit, because the kernel commits their changes with the inbox row.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any

from sqlmodel import col, select

from hearth_moderation.events import RuleSetPublished, ScreeningCompleted
from hearth_moderation.matcher import Matcher, Result
from hearth_moderation.models import (
    RULE_MANAGERS,
    Membership,
    RuleSetVersion,
    Screening,
    ScreeningDecision,
    TargetType,
)
from hearth_moderation.normalize import plain
from hearth_moderation.queue.models import EntryKind
from hearth_moderation.queue.service import open_entry
from hearth_moderation.rules import Action, RuleSetDraft
from hearth_moderation.screening import behaviour
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.pagination import PageParams, after_id
from servicekit.problems import forbidden, not_found
from servicekit.readmodel import apply_snapshot

# Compiled matchers by (community, version, platform rules): compiling 10,000 words takes a
# moment, screening with them microseconds. Versions never change, so entries never go stale.
_MATCHERS: OrderedDict[tuple[Any, ...], Matcher] = OrderedDict()
_MATCHER_CACHE_SIZE = 256
_HOLDING = {Action.block, Action.require_approval}


async def screen_post(
    *,
    uow: UnitOfWork,
    post_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    title: str,
    body: str,
    platform: RuleSetDraft,
    source_event_id: uuid.UUID | None = None,
    round: int = 0,
) -> Screening | None:
    """Screen each submission round of a post once and announce the verdict; None if done."""
    return await screen_target(
        uow=uow,
        target_type=TargetType.post,
        target_id=post_id,
        community_id=community_id,
        author_id=author_id,
        text=f"{title}\n{body}",
        platform=platform,
        source_event_id=source_event_id,
        round=round,
    )


async def screen_comment(
    *,
    uow: UnitOfWork,
    comment_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    body: str,
    platform: RuleSetDraft,
    source_event_id: uuid.UUID,
    edited: bool,
) -> Screening | None:
    """Screen a new comment (round 0) or an edit of it (the next round); None if done."""
    round = 0
    if edited:
        existing = await _screening_of(uow, TargetType.comment, comment_id)
        round = (existing.round + 1) if existing is not None else 1
    return await screen_target(
        uow=uow,
        target_type=TargetType.comment,
        target_id=comment_id,
        community_id=community_id,
        author_id=author_id,
        text=body,
        platform=platform,
        source_event_id=source_event_id,
        round=round,
    )


async def screen_target(
    *,
    uow: UnitOfWork,
    target_type: TargetType,
    target_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    text: str,
    platform: RuleSetDraft,
    source_event_id: uuid.UUID | None = None,
    round: int = 0,
) -> Screening | None:
    """Screen one round of a post or comment once and announce the verdict; None if done."""
    existing = await _screening_of(uow, target_type, target_id)
    if existing is not None and existing.round >= round:
        return None  # a redelivered or re-announced submission must not screen (or announce) twice
    if existing is not None:
        # A resubmission after a rejection: the latest round's screening replaces the row (one
        # per target); the earlier verdict stays in the outbox's screening.completed event.
        await uow.session.delete(existing)
        await uow.session.flush()
    current = await current_rule_set(uow=uow, community_id=community_id)
    version = current.version if current is not None else 0
    matcher = matcher_for(community_id, current, platform)
    result = matcher.screen(text)
    draft = RuleSetDraft.model_validate(current.rules) if current is not None else None
    digest = behaviour.digest(text)
    if draft is not None:
        result = await behaviour.apply(
            uow,
            draft=draft,
            result=result,
            text=text,
            digest=digest,
            community_id=community_id,
            author_id=author_id,
            key=(community_id, version),
        )
    held = result.verdict in _HOLDING
    screening = Screening(
        target_type=target_type,
        target_id=target_id,
        community_id=community_id,
        author_id=author_id,
        decision=ScreeningDecision.held if held else ScreeningDecision.approved,
        matched_terms=sorted({plain(h.text) for h in result.hits if h.text}),  # as normalized
        reasons=result.reasons,
        source_event_id=source_event_id,
        round=round,
        rule_set_version=version,
        verdict=result.verdict,
        hits=[h.as_dict() for h in result.hits],
        tags=result.tags,
        text_digest=digest,
    )
    # If a concurrent delivery inserts the same target first, the unique constraint fails this
    # transaction, the message is retried, and the retry finds the screening above.
    uow.session.add(screening)
    if held:
        await open_entry(
            uow,
            community_id=community_id,
            kind=EntryKind.held,
            item_type=str(target_type),
            item_id=target_id,
            user_id=author_id,
            ref_id=screening.id,
            reasons=screening.reasons,
        )
    await uow.record(
        ScreeningCompleted(
            screening_id=screening.id,
            target_type=screening.target_type,
            target_id=target_id,
            community_id=community_id,
            author_id=author_id,
            decision=screening.decision,
            reasons=screening.reasons,
            screened_at=screening.screened_at,
            verdict=result.verdict,
            rule_set_version=version,
            hits=screening.hits,
            tags=result.tags,
            censored_text=result.censored,
        ),
        subject=str(target_id),
    )
    return screening


def matcher_for(
    community_id: uuid.UUID, current: RuleSetVersion | None, platform: RuleSetDraft
) -> Matcher:
    """The compiled matcher of a community's current version on top of the platform's rules."""
    key = (community_id, current.version if current else 0, platform.model_dump_json())
    found = _MATCHERS.get(key)
    if found is None:
        draft = RuleSetDraft.model_validate(current.rules) if current else RuleSetDraft()
        found = _MATCHERS[key] = Matcher(draft, platform)
        if len(_MATCHERS) > _MATCHER_CACHE_SIZE:
            _MATCHERS.popitem(last=False)
    else:
        _MATCHERS.move_to_end(key)
    return found


# --- Rule sets ---------------------------------------------------------------------------------


async def current_rule_set(*, uow: UnitOfWork, community_id: uuid.UUID) -> RuleSetVersion | None:
    """The community's newest rule-set version, if it has one."""
    stmt = (
        select(RuleSetVersion)
        .where(RuleSetVersion.community_id == community_id)
        .order_by(col(RuleSetVersion.version).desc())
        .limit(1)
    )
    return (await uow.session.exec(stmt)).first()


async def get_rule_set(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> RuleSetVersion:
    """The community's current rule set (its team and platform staff)."""
    await require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    current = await current_rule_set(uow=uow, community_id=community_id)
    if current is None:
        raise not_found("rule set", community_id)
    return current


async def list_rule_set_versions(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal, page: PageParams
) -> list[RuleSetVersion]:
    """Every version of the community's rule set, newest first (limit+1 rows)."""
    await require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    stmt = (
        select(RuleSetVersion)
        .where(RuleSetVersion.community_id == community_id)
        .order_by(col(RuleSetVersion.id).desc())
        .limit(page.limit + 1)
    )
    if page.after:
        stmt = stmt.where(col(RuleSetVersion.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def publish_rule_set(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    rules: RuleSetDraft,
    note: str | None,
    actor: Principal,
) -> RuleSetVersion:
    """Store the rules as the community's next version and announce it."""
    await require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    current = await current_rule_set(uow=uow, community_id=community_id)
    # Two concurrent publishes compute the same number; the unique constraint refuses one.
    version = RuleSetVersion(
        community_id=community_id,
        version=(current.version if current else 0) + 1,
        rules=rules.model_dump(mode="json"),
        author_id=actor.subject,
        note=note,
    )
    uow.session.add(version)
    await uow.record(
        RuleSetPublished(
            rule_set_id=version.id,
            community_id=community_id,
            version=version.version,
            author_id=actor.subject,
            words=len(rules.words),
            regexes=len(rules.regexes),
            detectors=[str(d.detector) for d in rules.detectors],
            published_at=version.created_at,
        ),
        subject=str(community_id),
    )
    await uow.commit()
    return version


async def dry_run(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID,
    text: str,
    rules: RuleSetDraft | None,
    platform: RuleSetDraft,
    actor: Principal,
    author: behaviour.SampleAuthor | None = None,
) -> tuple[int | None, Result]:
    """Screen sample text against a draft (or, without one, the current version); stores nothing.

    With a sample author, the behaviour rules (flood, duplicates, newcomers) apply as they would
    to that author. Returns the version screened against (None for a draft) and the result.
    """
    await require_rule_manager(uow=uow, community_id=community_id, actor=actor)
    if rules is not None:
        version, draft, key = None, rules, None
        result = Matcher(rules, platform).screen(text)
    else:
        current = await current_rule_set(uow=uow, community_id=community_id)
        version = current.version if current else 0
        draft = RuleSetDraft.model_validate(current.rules) if current else RuleSetDraft()
        key = (community_id, version)
        result = matcher_for(community_id, current, platform).screen(text)
    if author is not None:
        result = behaviour.add_hits(
            draft=draft, result=result, text=text, facts=author.facts(draft), key=key
        )
    return version, result


async def require_rule_manager(
    *, uow: UnitOfWork, community_id: uuid.UUID, actor: Principal
) -> None:
    """Refuse anyone but platform staff and the community's owner, admins and moderators."""
    if actor.is_staff:
        return
    membership = await uow.session.get(Membership, (community_id, actor.subject))
    if membership is None or membership.status != "active" or membership.role not in RULE_MANAGERS:
        raise forbidden("managing rules needs the community's owner, an admin or a moderator")


async def apply_membership(*, uow: UnitOfWork, values: dict[str, Any]) -> bool:
    """Take a membership snapshot unless the read model holds this version or a newer one."""
    return await apply_snapshot(uow.session, Membership, values, key=["community_id", "user_id"])


async def get_screening(*, uow: UnitOfWork, screening_id: uuid.UUID) -> Screening:
    """One screening."""
    screening = await uow.session.get(Screening, screening_id)
    if screening is None:
        raise not_found("screening", screening_id)
    return screening


async def list_screenings(
    *,
    uow: UnitOfWork,
    community_id: uuid.UUID | None,
    decision: ScreeningDecision | None,
    page: PageParams,
) -> list[Screening]:
    """Screenings, newest first (limit+1 rows), optionally of one community or decision."""
    stmt = select(Screening).order_by(col(Screening.id).desc()).limit(page.limit + 1)
    if community_id is not None:
        stmt = stmt.where(Screening.community_id == community_id)
    if decision is not None:
        stmt = stmt.where(col(Screening.decision) == decision)
    if page.after:
        stmt = stmt.where(col(Screening.id) < after_id(page))
    return list((await uow.session.exec(stmt)).all())


async def _screening_of(
    uow: UnitOfWork, target_type: str, target_id: uuid.UUID
) -> Screening | None:
    stmt = select(Screening).where(
        Screening.target_type == target_type, Screening.target_id == target_id
    )
    return (await uow.session.exec(stmt)).first()
