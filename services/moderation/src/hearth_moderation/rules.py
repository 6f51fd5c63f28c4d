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
