"""Content service settings (env prefix HEARTH_CONTENT_, falling back to HEARTH_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    """Settings of the content service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_CONTENT_", extra="ignore")

    service_name: str = "content"
    # How often the scheduled publisher looks for due calendar slots (a post goes out at most
    # this much after its publish_at).
    publish_tick_seconds: float = Field(default=5.0, gt=0, le=300)
