"""Metrics service settings (env prefix HEARTH_METRICS_, falling back to HEARTH_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    """Settings of the metrics service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_METRICS_", extra="ignore")

    service_name: str = "metrics"

    # Defaults of every community's metrics policy (communities.models.CommunityPolicy).
    default_time_zone: str = "UTC"
    default_inactive_days: int = Field(default=30, ge=1, le=365)
    # The k-anonymity floor of internal (employee) communities: fewer people → suppressed.
    privacy_k: int = Field(default=5, ge=2, le=1000)

    # Ingest: facts are applied in batches of at most this many events per transaction.
    ingest_batch: int = Field(default=500, ge=1, le=10000)

    # Inactivity detection: how often a pass runs (one replica at a time, by a DB claim).
    inactivity_tick_seconds: float = Field(default=300.0, gt=0)
    # "Top contributor quiet": a top-quartile contributor quiet between these many days.
    quiet_top_min_days: int = Field(default=7, ge=1, le=365)
    quiet_top_max_days: int = Field(default=28, ge=1, le=365)
    quiet_top_lookback_days: int = Field(default=90, ge=7, le=730)

    # Funnels: a core member has at least this many contributions inside one window.
    funnel_core_contributions: int = Field(default=10, ge=1, le=1000)
    funnel_core_window_days: int = Field(default=28, ge=1, le=365)
    # Reports: how often the scheduler looks for periods that ended (one claim row each).
    reports_tick_seconds: float = Field(default=600.0, gt=0)
    # The public base of report links in report.published events (the gateway's metrics path).
    reports_base_url: str = "/api/metrics"
