"""Rule sets: what a community (on top of the platform's defaults) watches for, and what to do.

A rule set is data (pydantic, stored as JSON on each version): watched words and phrases,
regular expressions (RE2 syntax: linear time, no backreferences or lookarounds) and the
advertising detectors, each with an action. Validation compiles every regex with RE2, so a
pattern RE2 refuses is a 422 before it is ever stored.
"""

from __future__ import annotations

from enum import StrEnum

import re2  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator


class Action(StrEnum):
    """What a hit does to the item; the most severe hit decides the verdict."""

    block = "block"
    require_approval = "require_approval"
    flag = "flag"
    censor = "censor"
    tag = "tag"


# Most severe first; the verdict is the first action any hit has.
SEVERITY = [Action.block, Action.require_approval, Action.flag, Action.censor, Action.tag]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action = Action.require_approval
    # For censor: what replaces the hit (default: a full-width asterisk per character).
    # For tag: the tag.
    replacement: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, max_length=60)
    # The reason the author and moderators see, e.g. "advertising"; defaults to the rule id.
    reason: str | None = Field(default=None, max_length=60)


class WordRule(_Rule):
    """A watched word or phrase (matched after normalization; substrings in CJK)."""

    term: str = Field(min_length=1, max_length=200)


class RegexRule(_Rule):
    """A regular expression, RE2 syntax, matched against the normalized text."""

    pattern: str = Field(min_length=1, max_length=500)

    @field_validator("pattern")
    @classmethod
    def _compiles_in_re2(cls, value: str) -> str:
        try:
            re2.compile(value)
        except re2.error as exc:
            raise ValueError(f"not a valid RE2 pattern: {exc}") from exc
        return value


class Detector(StrEnum):
    """Built-in advertising detectors."""

    link = "link"
    phone = "phone"
    qq_wechat = "qq_wechat"
    email = "email"
    evasion = "evasion"  # 加V / 加微信 / 加扣 and their spaced, full-width, mixed-script forms


class DetectorRule(_Rule):
    """One advertising detector switched on, with its action."""

    detector: Detector


class FloodRule(_Rule):
    """More than `max_items` posts and comments by one member within `per_seconds` is a hit."""

    max_items: int = Field(default=5, ge=1, le=1000)
    per_seconds: int = Field(default=60, ge=1, le=86400)


class DuplicateRule(_Rule):
    """The same text (normalized, at least `min_length` characters) already screened in another
    community within `window_seconds` is a hit: one message spread across communities."""

    window_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    min_length: int = Field(default=20, ge=1, le=10000)


class NewcomerRule(BaseModel):
    """Stricter screening for members who joined less than `joined_within_days` ago or whose
    tier is in `tiers`: `detectors` apply to them too, and every milder hit becomes `action`."""

    model_config = ConfigDict(extra="forbid")

    joined_within_days: int | None = Field(default=7, ge=1, le=3650)
    tiers: list[str] = Field(default_factory=list, max_length=20)
    detectors: list[Detector] = Field(default_factory=list, max_length=20)
    action: Action = Action.require_approval
    reason: str | None = Field(default=None, max_length=60)


class RuleSetDraft(BaseModel):
    """A rule set as a moderator writes it (also what the dry run takes)."""

    model_config = ConfigDict(extra="forbid")

    words: list[WordRule] = Field(default_factory=list, max_length=20000)
    regexes: list[RegexRule] = Field(default_factory=list, max_length=200)
    detectors: list[DetectorRule] = Field(default_factory=list, max_length=20)
    # Domains links may point to without a hit (subdomains included), e.g. "hearth.example".
    allowed_domains: list[str] = Field(default_factory=list, max_length=500)
    # Whether the platform's default watched words apply too (on unless a community opts out).
    include_platform_defaults: bool = True
    # Behaviour rules, off unless set: flood limits, duplicates across communities, newcomers.
    flood: FloodRule | None = None
    duplicates: DuplicateRule | None = None
    newcomers: NewcomerRule | None = None
