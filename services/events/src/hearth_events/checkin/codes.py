"""Check-in codes: `<registration id>.<member id>.<MAC>`, base64url, short enough for a QR code.

The MAC is HMAC-SHA256 (truncated to 128 bits) under a key from settings over
`hearth.checkin.v1|<activity id>|<registration id>|<member id>`. The activity is not in the
code: it comes from the URL the host scans at, so a code for another activity fails the MAC;
changing the member or the registration fails it too. Nothing secret is in the code itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from hearth_events.settings import EventsSettings
from servicekit.problems import Problem
from servicekit.runtime import Key, ServiceRuntime, extension, settings_of

log = logging.getLogger(__name__)

MAC_BYTES = 16
DOMAIN = b"hearth.checkin.v1"


@dataclass(frozen=True)
class CodeKeys:
    """The keys check-in codes are signed with (first) and verified against (any)."""

    keys: Sequence[bytes]


KEYS: Key[CodeKeys] = Key("events.checkin_keys")


def _keys_from(settings: EventsSettings) -> CodeKeys:
    keys = [k.get_secret_value().encode() for k in settings.checkin_keys if k.get_secret_value()]
    if not keys:
        if settings.environment == "production":
            log.error("HEARTH_EVENTS_CHECKIN_KEYS is not set: no check-in codes in production")
            raise Problem(503, "unavailable", "Unavailable", "check-in codes are not configured")
        keys = [secrets.token_bytes(32)]  # development and tests: a key per process
    return CodeKeys(keys=keys)


def keys_of(runtime: ServiceRuntime) -> CodeKeys:
    """The runtime's check-in keys (made once per runtime)."""
    return extension(runtime, KEYS, lambda: _keys_from(settings_of(runtime, EventsSettings)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(
    key: bytes, activity_id: uuid.UUID, registration_id: uuid.UUID, user_id: uuid.UUID
) -> bytes:
    message = b"|".join(
        [DOMAIN, str(activity_id).encode(), str(registration_id).encode(), str(user_id).encode()]
    )
    return hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES]


def issue(
    keys: CodeKeys, *, activity_id: uuid.UUID, registration_id: uuid.UUID, user_id: uuid.UUID
) -> str:
    """The code of one registration (deterministic: the same code every time it is asked for)."""
    mac = _mac(keys.keys[0], activity_id, registration_id, user_id)
    return ".".join([_b64(registration_id.bytes), _b64(user_id.bytes), _b64(mac)])


def read(
    keys: CodeKeys, code: str, *, activity_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(registration id, member id) of a genuine code for this activity, else None."""
    parts = code.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        registration_id = uuid.UUID(bytes=_unb64(parts[0]))
        user_id = uuid.UUID(bytes=_unb64(parts[1]))
        mac = _unb64(parts[2])
    except (ValueError, binascii.Error):
        return None
    for key in keys.keys:
        if hmac.compare_digest(mac, _mac(key, activity_id, registration_id, user_id)):
            return registration_id, user_id
    return None
