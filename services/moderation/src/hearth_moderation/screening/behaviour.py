"""Behaviour rules: what a text alone cannot tell, from the member and their recent screenings.

- flood: more than N posts and comments by one member in a community within M seconds;
- duplicates: the same normalized text screened in another community within a window (one
  message spread across communities), by its SHA-256 digest stored on each screening;
- newcomers: members who joined less than N days ago or whose tier is listed get extra
  detectors, and every milder hit is raised to the rule's action.

Each adds ordinary hits (`kind` flood, duplicate, or the detector's), so verdicts, reasons and
the dry run's explanations work as for words and regexes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections import OrderedDict
from datetime import UTC, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import col, select

from hearth_moderation.matcher import Hit, Matcher, Result
from hearth_moderation.models import Membership, Screening
from hearth_moderation.normalize import compact, plain
from hearth_moderation.rules import (
    SEVERITY,
    Action,
    DetectorRule,
    DuplicateRule,
    NewcomerRule,
    RuleSetDraft,
)
from servicekit.deps import UnitOfWork
from servicekit.ids import utcnow

_NEWCOMER_MATCHERS: OrderedDict[tuple[Any, ...], Matcher] = OrderedDict()


def digest(text: str) -> str | None:
    """SHA-256 of the text's compact normalized form (None for a text with nothing in it)."""
    key = compact(plain(text))
    return hashlib.sha256(key.encode()).hexdigest() if key else None


def is_newcomer(member: Membership | None, rule: NewcomerRule) -> bool:
    """Whether the stricter rules apply to this member."""
    if member is None:
        return False
    if member.tier is not None and member.tier in rule.tiers:
        return True
    if rule.joined_within_days is None or member.joined_at is None:
        return False
    joined = member.joined_at if member.joined_at.tzinfo else member.joined_at.replace(tzinfo=UTC)
    return utcnow() - joined < timedelta(days=rule.joined_within_days)


def _newcomer_matcher(
    key: tuple[Any, ...] | None, draft: RuleSetDraft, rule: NewcomerRule
) -> Matcher:
    """The newcomer detectors compiled (cached per rule-set version; a draft's is not cached)."""
    found = _NEWCOMER_MATCHERS.get(key) if key is not None else None
    if found is None:
        extra = RuleSetDraft(
            detectors=[
                DetectorRule(detector=d, action=rule.action, reason=rule.reason or f"newcomer:{d}")
                for d in rule.detectors
            ],
            allowed_domains=draft.allowed_domains,
            include_platform_defaults=False,
        )
        found = Matcher(extra)
        if key is not None:
            _NEWCOMER_MATCHERS[key] = found
            if len(_NEWCOMER_MATCHERS) > 256:
                _NEWCOMER_MATCHERS.popitem(last=False)
    return found


class SampleAuthor(BaseModel):
    """A made-up author for the dry run: how the behaviour rules would treat such a member."""

    model_config = ConfigDict(extra="forbid")

    joined_days: int | None = Field(default=None, ge=0, le=36500)  # days since they joined
    tier: str | None = Field(default=None, max_length=60)
    # Their posts and comments in this community within the flood rule's window.
    recent_items: int = Field(default=0, ge=0, le=100000)
    # Whether the same text was screened in another community within the duplicates window.
    duplicate_elsewhere: bool = False

    def facts(self, draft: RuleSetDraft) -> AuthorFacts:
        """The facts this sample author stands for under the draft's rules."""
        rule = draft.newcomers
        newcomer = rule is not None and (
            (self.tier is not None and self.tier in rule.tiers)
            or (
                rule.joined_within_days is not None
                and self.joined_days is not None
                and self.joined_days < rule.joined_within_days
            )
        )
        return AuthorFacts(
            newcomer=newcomer,
            recent_items=self.recent_items,
            duplicate_elsewhere=self.duplicate_elsewhere,
        )


@dataclasses.dataclass(frozen=True)
class AuthorFacts:
    """What the behaviour rules need to know about the author and their recent screenings."""

    newcomer: bool = False
    recent_items: int = 0  # their screenings in this community within the flood window
    duplicate_elsewhere: bool = False  # the same text screened in another community lately


def _at_least(hit: Hit, action: Action) -> Hit:
    if SEVERITY.index(hit.action) > SEVERITY.index(action):
        return dataclasses.replace(hit, action=action)
    return hit


def _recompose(hits: list[Hit], result: Result) -> Result:
    actions = {h.action for h in hits}
    verdict = next(str(a) for a in SEVERITY if a in actions)
    tags = sorted({h.tag for h in hits if h.tag and h.action == Action.tag} | set(result.tags))
    return Result(verdict=verdict, hits=hits, tags=tags, censored=result.censored)


async def apply(
    uow: UnitOfWork,
    *,
    draft: RuleSetDraft,
    result: Result,
    text: str,
    digest: str | None,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
    key: tuple[Any, ...],
) -> Result:
    """The matcher's result with the behaviour rules' hits added (unchanged if none hit)."""
    facts = await author_facts(
        uow, draft=draft, text=text, digest=digest, community_id=community_id, author_id=author_id
    )
    return add_hits(draft=draft, result=result, text=text, facts=facts, key=key)


async def author_facts(
    uow: UnitOfWork,
    *,
    draft: RuleSetDraft,
    text: str,
    digest: str | None,
    community_id: uuid.UUID,
    author_id: uuid.UUID | None,
) -> AuthorFacts:
    """The facts the draft's behaviour rules ask for, from the read model and past screenings."""
    now = utcnow()
    newcomer, recent, elsewhere = False, 0, False
    if author_id is not None and draft.newcomers is not None:
        member = await uow.session.get(Membership, (community_id, author_id))
        newcomer = is_newcomer(member, draft.newcomers)
    if author_id is not None and draft.flood is not None:
        recent = (
            await uow.session.exec(
                select(func.count()).where(
                    Screening.community_id == community_id,
                    Screening.author_id == author_id,
                    col(Screening.screened_at) >= now - timedelta(seconds=draft.flood.per_seconds),
                )
            )
        ).one()
    duplicates = draft.duplicates
    if duplicates is not None and digest is not None and _long_enough(text, duplicates):
        found = (
            await uow.session.exec(
                select(Screening.community_id)
                .where(
                    Screening.text_digest == digest,
                    Screening.community_id != community_id,
                    col(Screening.screened_at)
                    >= now - timedelta(seconds=duplicates.window_seconds),
                )
                .limit(1)
            )
        ).first()
        elsewhere = found is not None
    return AuthorFacts(newcomer=newcomer, recent_items=int(recent), duplicate_elsewhere=elsewhere)


def _long_enough(text: str, rule: DuplicateRule) -> bool:
    return len(compact(plain(text))) >= rule.min_length


def add_hits(
    *,
    draft: RuleSetDraft,
    result: Result,
    text: str,
    facts: AuthorFacts,
    key: tuple[Any, ...] | None,
) -> Result:
    """The result with the hits of the draft's behaviour rules for these facts (pure)."""
    hits = list(result.hits)
    if facts.newcomer and draft.newcomers is not None:
        rule = draft.newcomers
        if rule.detectors:
            hits += _newcomer_matcher(key, draft, rule).screen(text).hits
        hits = [_at_least(h, rule.action) for h in hits]
    flood = draft.flood
    if flood is not None and facts.recent_items + 1 > flood.max_items:
        hits.append(
            Hit(
                rule="community:flood",
                kind="flood",
                action=flood.action,
                start=0,
                end=0,
                text="",
                reason=flood.reason or "flood",
                tag=flood.tag,
            )
        )
    duplicates = draft.duplicates
    if duplicates is not None and facts.duplicate_elsewhere and _long_enough(text, duplicates):
        hits.append(
            Hit(
                rule="community:duplicate",
                kind="duplicate",
                action=duplicates.action,
                start=0,
                end=len(text),
                text="",
                reason=duplicates.reason or "duplicate",
                tag=duplicates.tag,
            )
        )
    if hits == result.hits:
        return result
    hits.sort(key=lambda h: (h.start, h.rule))
    return _recompose(hits, result)
