"""Moderation screens Q&A questions like comments; events acts on its verdicts and decisions.

Its own consumer (`events__moderation`), parsed with this service's own tolerant models:

- `screening.completed.v1` with `target_type` question: block/require_approval hold the
  question (out of the public list; its author and moderation see it with the reasons); a
  censor verdict replaces its text (the text as asked is kept in `original_text`); allow, flag
  and tag change nothing visible. A question is screened once, so the first verdict stands.
- `case.decided.v1` of a `held` question entry: `dismiss` shows it, `uphold` hides it with
  the reason its author reads.
- `appeal.decided.v1` lifting (or reducing) that decision shows it again.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_events.questions.models import Question, QuestionVisibility
from servicekit.consumer import EventConsumer
from servicekit.events import Envelope

log = logging.getLogger(__name__)

screening = EventConsumer("events__moderation")

HOLDING = frozenset({"block", "require_approval"})
DEFAULT_REJECTION = "rejected by the community's moderators"
RESTORING = frozenset({"lifted", "reduced"})


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ScreeningCompletedFact(_Tolerant):
    """What events reads from hearth.moderation.screening.completed.v1."""

    screening_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    decision: str
    reasons: list[str] = []
    verdict: str = "allow"
    censored_text: str | None = None
    hits: list[dict[str, Any]] = []


class CaseDecidedFact(_Tolerant):
    """What events reads from hearth.moderation.case.decided.v1."""

    entry_id: uuid.UUID
    community_id: uuid.UUID
    kind: str
    item_type: str
    item_id: uuid.UUID
    decision: str
    author_reason: str | None = None


class AppealDecidedFact(_Tolerant):
    """What events reads from hearth.moderation.appeal.decided.v1."""

    community_id: uuid.UUID
    target_type: str
    target_id: uuid.UUID
    outcome: str


@screening.handles("hearth.moderation.screening.completed.v1", payload=ScreeningCompletedFact)
async def on_screening_completed(
    session: AsyncSession, envelope: Envelope, data: ScreeningCompletedFact
) -> None:
    """Hold or censor a question as moderation's verdict says (other targets are content's)."""
    if data.target_type != "question":
        return
    question = await session.get(Question, data.target_id, with_for_update=True)
    if question is None:
        log.warning("screening %s names unknown question %s", data.screening_id, data.target_id)
        return
    if question.screening_id is not None:
        return  # screened once: a verdict already applied stands
    question.screening_id = data.screening_id
    actions = {str(h.get("action")) for h in data.hits} | {data.verdict}
    if data.censored_text is not None and data.censored_text != question.text:
        question.original_text = question.original_text or question.text
        question.text = data.censored_text[:1000]
    if data.decision == "held" or actions & HOLDING:
        if question.visibility == QuestionVisibility.visible:
            question.visibility = QuestionVisibility.held
            question.hold_reasons = list(data.reasons) or ["screening"]
    session.add(question)


@screening.handles("hearth.moderation.case.decided.v1", payload=CaseDecidedFact)
async def on_case_decided(session: AsyncSession, envelope: Envelope, data: CaseDecidedFact) -> None:
    """A moderator decided a held question: shown (`dismiss`) or hidden (`uphold`)."""
    if data.kind != "held" or data.item_type != "question":
        return
    question = await session.get(Question, data.item_id, with_for_update=True)
    if question is None or question.community_id != data.community_id:
        return
    if question.visibility != QuestionVisibility.held:
        return  # decided already
    if data.decision == "dismiss":
        question.visibility = QuestionVisibility.visible
        question.hold_reasons = []
    elif data.decision == "uphold":
        question.visibility = QuestionVisibility.hidden
        question.rejection_reason = (data.author_reason or "").strip() or DEFAULT_REJECTION
        question.moderation_case_id = data.entry_id
    session.add(question)


@screening.handles("hearth.moderation.appeal.decided.v1", payload=AppealDecidedFact)
async def on_appeal_decided(
    session: AsyncSession, envelope: Envelope, data: AppealDecidedFact
) -> None:
    """Show a question again whose rejection an appeal lifted."""
    if data.target_type != "decision" or data.outcome not in RESTORING:
        return
    question = (
        await session.exec(
            select(Question).where(
                col(Question.moderation_case_id) == data.target_id,
                col(Question.community_id) == data.community_id,
            )
        )
    ).first()
    if question is None or question.visibility != QuestionVisibility.hidden:
        return
    question.visibility = QuestionVisibility.visible
    question.hold_reasons = []
    question.rejection_reason = None
    session.add(question)
