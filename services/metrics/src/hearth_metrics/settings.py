"""Metrics service settings (env prefix HEARTH_METRICS_, falling back to HEARTH_)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class MetricsSettings(ServiceSettings):
    """Settings of the metrics service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_METRICS_", extra="ignore")

    service_name: str = "metrics"
