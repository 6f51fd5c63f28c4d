"""Moderation service settings (env prefix HEARTH_MODERATION_, falling back to HEARTH_)."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from hearth_moderation.rules import Action, RuleSetDraft, WordRule
from servicekit.settings import ServiceSettings

# Starting lists for the community rules the seeds name (禁止广告 / 违法 / 攻击); a deployment
# replaces them with HEARTH_MODERATION_BANNED_TERMS='{"advertising": ["..."], ...}'.
DEFAULT_BANNED_TERMS: dict[str, list[str]] = {
    "advertising": [
        "buy now",
        "click here",
        "limited offer",
        "discount code",
        "free money",
        "work from home",
        "加微信",
        "加v",
        "代购",
        "刷单",
        "兼职日结",
        "优惠券",
        "低价出售",
    ],
    "illegal": [
        "counterfeit",
        "pirated",
        "fake id",
        "cocaine",
        "heroin",
        "money laundering",
        "赌博",
        "博彩",
        "毒品",
        "假证",
        "洗钱",
        "枪支",
    ],
    "abuse": [
        "idiot",
        "moron",
        "scumbag",
        "retard",
        "kill yourself",
        "傻逼",
        "脑残",
        "废物",
        "滚蛋",
        "去死",
    ],
}


class ModerationSettings(ServiceSettings):
    """Settings of the moderation service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_MODERATION_", extra="ignore")

    service_name: str = "moderation"
    # Category -> terms. Matching is case-insensitive; whole words for spaced scripts, substrings
    # for CJK (see matcher.py). A category becomes the hold reason `banned_term:<category>`.
    banned_terms: dict[str, list[str]] = DEFAULT_BANNED_TERMS
    # How often the expiry pass looks for mutes that ended and warning points that lapsed.
    sanction_tick_seconds: float = Field(default=5.0, gt=0, le=3600)
    # How long a queue entry may wait before it counts as overdue.
    queue_sla_seconds: int = Field(default=24 * 3600, ge=1, le=90 * 86400)
    # How long an appeal may wait for a decision before its SLA alert, and how often it is checked.
    appeal_sla_seconds: int = Field(default=72 * 3600, ge=1, le=90 * 86400)
    appeal_tick_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Audit log (audit/): how often the chain head is announced (only when it moved).
    audit_head_interval_seconds: float = Field(default=300.0, ge=0.05, le=86400.0)
    # Evidence (evidence/): the retention of a community without its own policy, the purge
    # pass's pace, and the Ed25519 private key (PEM, from a secret) that signs case bundles.
    evidence_retention_days: int = Field(default=365, ge=1, le=36500)
    evidence_purge_interval_seconds: float = Field(default=3600.0, ge=0.05, le=86400.0)
    evidence_signing_key: SecretStr | None = None
    # Sentiment monitoring (sentiment/): the bucket that rolling shares are counted in, the
    # EWMA weight of a new bucket, the z-score and the minimum bucket volume that make a spike.
    sentiment_bucket_seconds: int = Field(default=3600, ge=1, le=86400)
    sentiment_ewma_alpha: float = Field(default=0.2, gt=0.0, le=1.0)
    sentiment_z_threshold: float = Field(default=3.0, gt=0.0, le=100.0)
    sentiment_min_volume: int = Field(default=10, ge=1, le=1_000_000)
    sentiment_min_share: float = Field(default=0.3, ge=0.0, le=1.0)


def platform_rules(terms: dict[str, list[str]]) -> RuleSetDraft:
    """The platform's default rule set: every banned term holds for approval, with its category."""
    return _platform_rules(tuple((c, tuple(words)) for c, words in sorted(terms.items())))


@lru_cache(maxsize=4)
def _platform_rules(terms: tuple[tuple[str, tuple[str, ...]], ...]) -> RuleSetDraft:
    return RuleSetDraft(
        words=[
            WordRule(term=t, action=Action.require_approval, reason=f"banned_term:{category}")
            for category, words in terms
            for t in words
        ]
    )
