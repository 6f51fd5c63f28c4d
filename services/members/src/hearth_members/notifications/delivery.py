"""Delivery adapters behind one interface: the inbox row always, webhook and SMTP when configured.

Adapters run after the notification's transaction commits (never for a rolled-back one), in a
background task, with a few retries. Delivery beyond the inbox is best effort: the inbox row is
the record; a failed webhook or e-mail is logged, never lost from the inbox.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import smtplib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
import orjson
from pydantic import BaseModel

from hearth_members.settings import MembersSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hearth-signature"


class Delivery(BaseModel):
    """What an adapter gets: the notification, copied out of the committed row."""

    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    community_id: uuid.UUID | None
    data: dict[str, Any]
    created_at: datetime


class DeliveryAdapter(Protocol):
    """One channel a notification can leave by."""

    name: str

    async def deliver(self, delivery: Delivery) -> None:
        """Deliver or raise; the caller retries and logs."""
        ...


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The webhook signature header value: `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: bytes, header: str, body: bytes, tolerance_seconds: int = 300) -> bool:
    """Check a webhook signature (what a receiver does), in constant time, within a time window."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


class WebhookAdapter:
    """HTTP POST of the notification as JSON, HMAC-SHA256 signed with a shared secret."""

    name = "webhook"

    def __init__(self, url: str, secret: bytes, timeout: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout

    async def deliver(self, delivery: Delivery) -> None:
        """POST it; a non-2xx answer is a failure."""
        body = orjson.dumps(delivery.model_dump(mode="json"))
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
            "x-hearth-notification-id": str(delivery.id),
        }
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, content=body, headers=headers)
        response.raise_for_status()


AddressLookup = Callable[[uuid.UUID], Awaitable[str | None]]


class SmtpAdapter:
    """E-mail through an SMTP relay (stdlib smtplib in a worker thread)."""

    name = "smtp"

    def __init__(self, settings: MembersSettings, address_of: AddressLookup) -> None:
        self.settings = settings
        self.address_of = address_of

    async def deliver(self, delivery: Delivery) -> None:
        """Send to the member's (decrypted) e-mail address; no address, nothing to do."""
        to = await self.address_of(delivery.user_id)
        if not to:
            return
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        message["Subject"] = delivery.title
        message.set_content(delivery.body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)


def configured_adapters(
    settings: MembersSettings, address_of: AddressLookup | None = None
) -> list[DeliveryAdapter]:
    """The adapters beyond the inbox that the settings switch on."""
    adapters: list[DeliveryAdapter] = []
    if settings.notify_webhook_url:
        secret = settings.notify_webhook_secret
        adapters.append(
            WebhookAdapter(
                settings.notify_webhook_url,
                secret.get_secret_value().encode() if secret else b"",
                settings.notify_webhook_timeout_seconds,
            )
        )
    if settings.smtp_host and address_of is not None:
        adapters.append(SmtpAdapter(settings, address_of))
    return adapters


async def deliver_all(
    adapters: list[DeliveryAdapter], deliveries: list[Delivery], attempts: int = 3
) -> None:
    """Run every adapter for every delivery, retrying each a few times with backoff."""
    for delivery in deliveries:
        for adapter in adapters:
            for attempt in range(1, attempts + 1):
                try:
                    await adapter.deliver(delivery)
                    break
                except Exception as exc:  # any failure of a channel: retry, then log
                    if attempt == attempts:
                        log.warning(
                            "notification %s: %s delivery failed after %d attempts: %s",
                            delivery.id,
                            adapter.name,
                            attempts,
                            type(exc).__name__,
                        )
                    else:
                        await asyncio.sleep(0.2 * 2**attempt)
