"""The hot score (docs/content.md, "Hot ranking"): engagement on a log scale plus publish time.

    engagement = 1·reactions + 2·comments + 3·shares + 0.05·views
    hot        = log10(1 + engagement) + (published_at - 2026-01-01 UTC) / 45 000 s

Reddit's "hot" shape: the time term grows with the publish time, not with the clock, so a
post's score changes only when its own engagement does and can be stored and indexed
(`ix_posts_community_id_hot_score_id`); ordering by it is ordering with time decay, because
every 45 000 s (12.5 h) newer is worth ten times the engagement.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hearth_content.models import Post, PostStatus

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DECAY_SECONDS = 45_000.0
WEIGHTS = {"reactions": 1.0, "comments": 2.0, "shares": 3.0, "views": 0.05}


def hot(*, published_at: datetime, reactions: int, comments: int, shares: int, views: int) -> float:
    """The hot score of a post published at `published_at` with this engagement."""
    engagement = (
        WEIGHTS["reactions"] * max(reactions, 0)
        + WEIGHTS["comments"] * max(comments, 0)
        + WEIGHTS["shares"] * max(shares, 0)
        + WEIGHTS["views"] * max(views, 0)
    )
    at = published_at if published_at.tzinfo is not None else published_at.replace(tzinfo=UTC)
    return math.log10(1 + engagement) + (at - EPOCH).total_seconds() / DECAY_SECONDS


def rescore(post: Post) -> None:
    """Recompute a published post's stored hot score from its counters (others have none)."""
    if post.status != PostStatus.published or post.published_at is None:
        return
    post.hot_score = hot(
        published_at=post.published_at,
        reactions=post.reaction_count,
        comments=post.comment_count,
        shares=post.share_count,
        views=post.view_count,
    )
