"""The items read model: content's facts merged idempotently and in any order, checked against
content's own event models (a renamed or dropped field fails here, not in production)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hearth_content.events import (
    CommentCreated,
    CommentDeleted,
    CommentEdited,
    PostDeleted,
    PostEdited,
    PostSubmitted,
)
from hearth_moderation.items import item_of
from hearth_moderation.items.consumers import (
    CommentCreatedFact,
    CommentDeletedFact,
    CommentEditedFact,
    PostDeletedFact,
    PostEditedFact,
    PostSubmittedFact,
    items,
)
from servicekit.events import Envelope
from servicekit.ids import utcnow, uuid7
from servicekit.testing.contracts import producer_envelope, producer_payload
from servicekit.testing.harness import RunningService

T0 = utcnow().replace(microsecond=0)


def test_facts_read_what_content_publishes() -> None:
    """Every field a Fact requires is one content's model has (same name), so parsing never fails
    on a real event; and a real event parses into the Fact with its values."""
    pairs = [
        (PostSubmitted, PostSubmittedFact),
        (PostEdited, PostEditedFact),
        (PostDeleted, PostDeletedFact),
        (CommentCreated, CommentCreatedFact),
        (CommentEdited, CommentEditedFact),
        (CommentDeleted, CommentDeletedFact),
    ]
    for producer, fact in pairs:
        for name, field in fact.model_fields.items():
            if field.is_required():
                assert name in producer.model_fields, (fact.__name__, name)
    post = _post_data(uuid7(), uuid7(), "t", "b")
    parsed = PostSubmittedFact.model_validate(
        producer_payload(PostSubmitted, post).model_dump(mode="json")
    )
    assert parsed.title == "t" and parsed.body == "b" and parsed.round == 0


def _post_data(post_id, community_id, title, body, *, round=0, at=T0, author=None):  # type: ignore[no-untyped-def]
    return {
        "post_id": str(post_id),
        "community_id": str(community_id),
        "author_id": str(author or uuid.UUID(int=1)),
        "title": title,
        "body": body,
        "format": "markdown",
        "submitted_at": at.isoformat(),
        "round": round,
    }


async def _deliver(service: RunningService, envelope: Envelope) -> bool:
    return await items.handle(service.runtime.db, service.runtime.tables, envelope)


async def _item(service: RunningService, item_type: str, item_id: uuid.UUID):  # type: ignore[no-untyped-def]
    async with service.runtime.db.session() as session:
        return await item_of(session, item_type=item_type, item_id=item_id)


async def test_a_post_in_any_order_ends_the_same(moderation: RunningService) -> None:
    community, author, staff = uuid7(), uuid7(), uuid7()
    post_id = uuid7()
    first = producer_envelope(
        PostSubmitted, _post_data(post_id, community, "Deal", "v1", author=author)
    )
    second = producer_envelope(
        PostSubmitted,
        _post_data(post_id, community, "Deal", "v2 revised", round=1, at=T0 + timedelta(hours=1)),
    )
    edited = producer_envelope(
        PostEdited,
        {
            "post_id": str(post_id),
            "community_id": str(community),
            "author_id": str(author),
            "editor_id": str(author),
            "revision": 3,
            "changed": ["body"],
            "edited_at": (T0 + timedelta(hours=2)).isoformat(),
        },
    )
    deleted = producer_envelope(
        PostDeleted,
        {
            "post_id": str(post_id),
            "community_id": str(community),
            "author_id": str(author),
            "deleted_by": str(staff),
            "deleted_at": (T0 + timedelta(hours=3)).isoformat(),
        },
    )
    # Deletion first, the later round before the first, everything delivered twice.
    for envelope in (deleted, second, edited, first):
        assert await _deliver(moderation, envelope)
        assert not await _deliver(moderation, envelope)  # the inbox: once
    item = await _item(moderation, "post", post_id)
    assert item is not None
    assert (item.community_id, item.author_id) == (community, author)
    assert (item.title, item.text, item.text_round) == ("Deal", "v2 revised", 1)
    assert item.created_at == T0  # the first round's time
    assert item.revision == 3 and item.edited_at == T0 + timedelta(hours=2)
    assert item.deleted_at == T0 + timedelta(hours=3) and item.deleted_by == staff
    assert item.known
    assert await _item(moderation, "comment", post_id) is None  # the type is part of the key


async def test_a_comment_keeps_its_latest_edit_and_outlives_deletion(
    moderation: RunningService,
) -> None:
    community, author, post_id, comment_id = uuid7(), uuid7(), uuid7(), uuid7()
    base = {"comment_id": str(comment_id), "post_id": str(post_id), "community_id": str(community)}
    created = producer_envelope(
        CommentCreated,
        base | {"author_id": str(author), "body": "original", "created_at": T0.isoformat()},
    )
    edit1 = producer_envelope(
        CommentEdited,
        base
        | {
            "author_id": str(author),
            "body": "edit one",
            "edited_at": (T0 + timedelta(minutes=1)).isoformat(),
        },
    )
    edit2 = producer_envelope(
        CommentEdited,
        base
        | {
            "author_id": str(author),
            "body": "edit two",
            "edited_at": (T0 + timedelta(minutes=2)).isoformat(),
        },
    )
    deleted = producer_envelope(
        CommentDeleted,
        base | {"deleted_by": str(author), "deleted_at": (T0 + timedelta(minutes=3)).isoformat()},
    )
    for envelope in (edit2, deleted, created, edit1):
        assert await _deliver(moderation, envelope)
    item = await _item(moderation, "comment", comment_id)
    assert item is not None
    assert item.text == "edit two"  # neither the creation nor the older edit overwrote it
    assert item.post_id == post_id and item.author_id == author
    assert item.created_at == T0 and item.edited_at == T0 + timedelta(minutes=2)
    assert item.deleted_at == T0 + timedelta(minutes=3)  # deleted, its copy kept
