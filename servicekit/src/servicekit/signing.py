"""Webhook signatures: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, one `v1` a secret.

The one implementation of the scheme business systems verify (the gateway's webhooks, members'
notification webhook). While a secret is rolled over the sender signs with every active secret,
one `v1=` each, and a receiver accepts the delivery when any `v1` matches any secret it holds,
so either side can switch first. The timestamp is inside the MAC: a replayed or re-dated
delivery fails once it is older than the receiver's tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

Secret = str | bytes
# A receiver's default window for clock skew and transit (5 minutes, as documented).
DEFAULT_TOLERANCE_SECONDS = 300


def _key(secret: Secret) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _secrets(secrets: Secret | Sequence[Secret]) -> list[Secret]:
    return [secrets] if isinstance(secrets, str | bytes) else list(secrets)


def mac(secret: Secret, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under one secret."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secrets: Secret | Sequence[Secret], body: bytes, timestamp: int | None = None) -> str:
    """The signature header value: `t=<unix>` then one `v1=` per secret, current one first."""
    keys = _secrets(secrets)
    if not keys:
        raise ValueError("signing needs at least one secret")
    at = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={at}", *(f"v1={mac(k, at, body)}" for k in keys)])


def parse(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, v1 values) of a header, or None when it is malformed (unknown keys pass)."""
    stamps: list[str] = []
    macs: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            stamps.append(value)
        elif name == "v1":
            macs.append(value)
    if len(stamps) != 1 or not macs:
        return None
    try:
        return int(stamps[0]), macs
    except ValueError:
        return None


def verify(
    header: str,
    body: bytes,
    secrets: Secret | Sequence[Secret],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True when the header is well formed, recent, and any `v1` matches any of the secrets.

    Every comparison is made (constant time each, no early exit), so the time taken does not
    tell which secret or which `v1` matched.
    """
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, macs = parsed
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    matched = False
    for secret in _secrets(secrets):
        expected = mac(secret, timestamp, body)
        for candidate in macs:
            matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched
