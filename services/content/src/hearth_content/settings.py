"""Content service settings (env prefix HEARTH_CONTENT_, falling back to HEARTH_)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class ContentSettings(ServiceSettings):
    """Settings of the content service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_CONTENT_", extra="ignore")

    service_name: str = "content"
