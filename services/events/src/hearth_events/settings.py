"""Events service settings (env prefix HEARTH_EVENTS_, falling back to HEARTH_)."""

from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class EventsSettings(ServiceSettings):
    """Settings of the events (activities) service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_EVENTS_", extra="ignore")

    service_name: str = "events"
