"""What content does with moderation's screening verdicts (docs/content.md, "Screening verdicts").

- hold (decision `held`, or a `block`/`require_approval` hit): a post is held (never visible to
  members); a comment is hidden (its author and the community's staff still see it).
- censor (`censored_text` given): the stored text is replaced by the censored one; the text as
  written is kept for moderation (a post revision by the moderation editor id, a comment's
  `original_body`), and search indexes only the censored text.
- flag: the item stays visible and is marked `flagged` for moderators.
- tag: the tags are added (normalized, and added to the community's tags).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

# The editor id of a revision made by moderation's screening (no person made it).
MODERATION_EDITOR = uuid.UUID(int=0)
# The hold reason of an item moderation's reports hid (hearth_content.hiding), not screening.
REPORTED = "reported"


@dataclass(frozen=True)
class Verdict:
    """Content's reading of one screening verdict."""

    hold: bool = False
    censored_text: str | None = None
    flag: bool = False
    tags: list[str] = field(default_factory=list)


def split_censored(text: str, title: str) -> tuple[str, str]:
    """A post's (title, body) from `title + "\\n" + body` as moderation screened and censored it.

    The title never holds a newline after stripping on submit; when an older title does, its
    line count decides where the body starts.
    """
    lines = title.count("\n") + 1
    parts = text.split("\n", lines)
    if len(parts) <= lines:
        return text, ""
    return "\n".join(parts[:lines]), parts[lines]


def censored_comment_body(text: str, body: str) -> str:
    """A comment's body from its censored screened text (`"" + "\\n" + body`, or `body` alone)."""
    if text.startswith("\n") and not body.startswith("\n"):
        return text[1:]
    return text
