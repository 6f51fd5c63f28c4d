"""Events service settings (env prefix HEARTH_EVENTS_, falling back to HEARTH_)."""

from pydantic import Field, SecretStr
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
    # How often each series' rolling horizon is extended (series/horizon.py).
    series_tick_seconds: float = Field(default=3600.0, gt=0, le=24 * 3600)
    # Registrations for one activity in flight at once in one process (PostgreSQL; SQLite takes
    # one): enough that the next ones do their reads while the row lock's holder commits, few
    # enough that waiting on that lock never holds most of the connection pool.
    registration_parallelism: int = Field(default=4, ge=1, le=16)
    # Check-in codes are HMAC-SHA256 tokens under these keys: the first signs, any verifies, so
    # a key rolls over without voiding codes already handed out. Required in production (a code
    # request fails without one); elsewhere an empty list means a random key per process.
    checkin_keys: list[SecretStr] = []
    # The default check-in window, around the activity's start and end (an activity's organisers
    # may set their own: PUT /activities/{id}/check-in-policy).
    checkin_opens_minutes_before: int = Field(default=60, ge=0, le=7 * 24 * 60)
    checkin_closes_minutes_after: int = Field(default=30, ge=0, le=7 * 24 * 60)
