"""Subscriptions that notify: the gateway's webhook-disabled notices; events' reminders,
cancelled activities and promotions from the waitlist; content's suggestion status changes;
metrics' community reports (to the community's owners and admins)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_members.communities.models import CommunityRole
from hearth_members.membership.models import Membership, MembershipStatus
from hearth_members.notifications import notify
from servicekit.consumer import EventConsumer
from servicekit.deps import handler_uow
from servicekit.events import Envelope

gateway_notices = EventConsumer("members__gateway")


class WebhookDisabledFact(BaseModel):
    """What members reads from hearth.gateway.webhook.disabled.v1."""

    model_config = ConfigDict(extra="ignore")

    subscription_id: uuid.UUID
    created_by: uuid.UUID
    url_origin: str = ""
    reason: str = ""
    failure_streak: int | None = None
    disabled_at: datetime | None = None


@gateway_notices.handles("hearth.gateway.webhook.disabled.v1")
async def on_webhook_disabled(session: AsyncSession, envelope: Envelope) -> None:
    """Tell the platform admin who created a webhook that the gateway disabled it."""
    data: WebhookDisabledFact = envelope.payload(WebhookDisabledFact)
    target = data.url_origin or "its receiver"
    await notify(
        uow=handler_uow(session),
        user_id=data.created_by,
        kind="webhook.disabled",
        title="A webhook subscription was disabled",
        body=(
            f"Deliveries to {target} kept failing ({data.reason or 'persistent failure'}), so "
            "the gateway disabled the subscription. Its events stay queued: re-enable it "
            "once the receiver works again."
        ),
        data={
            "subscription_id": str(data.subscription_id),
            "url_origin": data.url_origin,
            "reason": data.reason,
            "failure_streak": data.failure_streak,
            "disabled_at": data.disabled_at.isoformat() if data.disabled_at else None,
        },
    )


reminders = EventConsumer("members__reminders")


class ReminderDueFact(BaseModel):
    """What members reads from hearth.events.registration.reminder_due.v1."""

    model_config = ConfigDict(extra="ignore")

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    starts_at: datetime
    location: str | None = None
    online_url: str | None = None


@reminders.handles("hearth.events.registration.reminder_due.v1")
async def on_reminder_due(session: AsyncSession, envelope: Envelope) -> None:
    """Put an activity reminder in the registered member's inbox (once per event: the inbox)."""
    data: ReminderDueFact = envelope.payload(ReminderDueFact)
    starts = data.starts_at.astimezone(UTC)
    where = data.online_url or data.location
    body = f"{data.title} starts at {starts:%Y-%m-%d %H:%M} UTC" + (f", {where}." if where else ".")
    await notify(
        uow=handler_uow(session),
        user_id=data.user_id,
        kind="event.reminder",
        title=f"Reminder: {data.title}",
        body=body,
        community_id=data.community_id,
        data={
            "activity_id": str(data.activity_id),
            "registration_id": str(data.registration_id),
            "starts_at": starts.isoformat(),
            "location": data.location,
            "online_url": data.online_url,
        },
    )


suggestions = EventConsumer("members__suggestions")


class SuggestionStatusChangedFact(BaseModel):
    """What members reads from hearth.content.suggestion.status_changed.v1."""

    model_config = ConfigDict(extra="ignore")

    suggestion_id: uuid.UUID
    community_id: uuid.UUID
    author_id: uuid.UUID
    title: str = ""
    status: str
    reason: str | None = None
    merged_into_id: uuid.UUID | None = None
    # The voters to tell (content never includes the author); at most a batch of them per event.
    voter_ids: list[uuid.UUID] = []
    batch: int = 0


_SUGGESTION_STATUS = {
    "under_review": "is under review",
    "accepted": "was accepted",
    "done": "is done",
    "declined": "was declined",
    "merged": "was merged into another idea",
}


@suggestions.handles("hearth.content.suggestion.status_changed.v1")
async def on_suggestion_status_changed(session: AsyncSession, envelope: Envelope) -> None:
    """Tell an idea's author (batch 0 only) and the voters this event names that it moved."""
    data: SuggestionStatusChangedFact = envelope.payload(SuggestionStatusChangedFact)
    uow = handler_uow(session)
    what = _SUGGESTION_STATUS.get(data.status, f"is now {data.status}")
    body = f"«{data.title}» {what}." + (f" Reason: {data.reason}" if data.reason else "")
    info = {
        "suggestion_id": str(data.suggestion_id),
        "status": data.status,
        "reason": data.reason,
        "merged_into_id": str(data.merged_into_id) if data.merged_into_id else None,
    }
    voters = [v for v in dict.fromkeys(data.voter_ids) if v != data.author_id]
    recipients = [(v, "A suggestion you voted for") for v in voters]
    if data.batch == 0:  # the author is told once, on the first batch of a change
        recipients.insert(0, (data.author_id, "Your suggestion"))
    for user_id, whose in recipients:
        await notify(
            uow=uow,
            user_id=user_id,
            kind="suggestion.status_changed",
            title=f"{whose} {what}",
            body=body,
            community_id=data.community_id,
            data=info,
        )


class RegistrationVoidedFact(BaseModel):
    """What members reads from hearth.events.registration.voided.v1 (the activity was cancelled)."""

    model_config = ConfigDict(extra="ignore")

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID
    title: str
    starts_at: datetime
    was: str = ""


@reminders.handles("hearth.events.registration.voided.v1")
async def on_registration_voided(session: AsyncSession, envelope: Envelope) -> None:
    """Tell a registrant their activity was cancelled (once per event: the inbox)."""
    data: RegistrationVoidedFact = envelope.payload(RegistrationVoidedFact)
    starts = data.starts_at.astimezone(UTC)
    await notify(
        uow=handler_uow(session),
        user_id=data.user_id,
        kind="event.cancelled",
        title=f"Cancelled: {data.title}",
        body=f"{data.title} on {starts:%Y-%m-%d %H:%M} UTC has been cancelled.",
        community_id=data.community_id,
        data={
            "activity_id": str(data.activity_id),
            "registration_id": str(data.registration_id),
            "starts_at": starts.isoformat(),
            "was": data.was,
        },
    )


class RegistrationPromotedFact(BaseModel):
    """What members reads from hearth.events.registration.promoted.v1 (a seat freed up)."""

    model_config = ConfigDict(extra="ignore")

    registration_id: uuid.UUID
    activity_id: uuid.UUID
    community_id: uuid.UUID
    user_id: uuid.UUID


@reminders.handles("hearth.events.registration.promoted.v1")
async def on_registration_promoted(session: AsyncSession, envelope: Envelope) -> None:
    """Tell a waitlisted member a seat freed up and is now theirs (once per event: the inbox)."""
    data: RegistrationPromotedFact = envelope.payload(RegistrationPromotedFact)
    await notify(
        uow=handler_uow(session),
        user_id=data.user_id,
        kind="event.promoted",
        title="You have a seat",
        body="A seat freed up at an activity you were waiting for: your registration is confirmed.",
        community_id=data.community_id,
        data={"activity_id": str(data.activity_id), "registration_id": str(data.registration_id)},
    )


metrics_reports = EventConsumer("members__metrics_reports")


class ReportPublishedFact(BaseModel):
    """What members reads from hearth.metrics.report.published.v1."""

    model_config = ConfigDict(extra="ignore")

    report_id: uuid.UUID
    community_id: uuid.UUID
    period: str
    period_start: date
    period_end: date | None = None
    url: str


@metrics_reports.handles("hearth.metrics.report.published.v1")
async def on_report_published(session: AsyncSession, envelope: Envelope) -> None:
    """Put a community's new metrics report in the inbox of its active owners and admins."""
    data: ReportPublishedFact = envelope.payload(ReportPublishedFact)
    rows = await session.exec(
        select(Membership.user_id).where(
            Membership.community_id == data.community_id,
            col(Membership.role).in_([CommunityRole.owner, CommunityRole.admin]),
            Membership.status == MembershipStatus.active,
        )
    )
    uow = handler_uow(session)
    for user_id in sorted(rows.all()):
        await notify(
            uow=uow,
            user_id=user_id,
            kind="metrics.report",
            title=f"Your community's {data.period}ly report is ready",
            body=f"The metrics report for the {data.period} from {data.period_start} is ready.",
            community_id=data.community_id,
            data={
                "report_id": str(data.report_id),
                "period": data.period,
                "period_start": data.period_start.isoformat(),
                "url": data.url,
            },
        )
