"""Events service settings (env prefix HEARTH_EVENTS_, falling back to HEARTH_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import ServiceSettings


class EventsSettings(ServiceSettings):
    """Settings of the events (activities) service."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_EVENTS_", extra="ignore")

    service_name: str = "events"
    # Each activity sets its reminder leads (default 24 h and 1 h before the start); the
    # scheduler looks at activities starting within this many hours, every
    # reminder_tick_seconds.
    reminder_lead_hours: float = Field(default=24.0 * 14, gt=0, le=24 * 14)
    reminder_tick_seconds: float = Field(default=30.0, gt=0, le=3600)
