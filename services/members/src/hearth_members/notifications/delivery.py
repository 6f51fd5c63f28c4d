"""Delivery adapters behind one interface: the inbox row always, webhook and SMTP when configured.

Adapters are called by the sender pass (`sender.py`) for rows of `notification_deliveries`,
which `notify()` writes in the notification's own transaction. An adapter delivers once or
raises; retries, back-off and the record of each attempt are the sender's.
"""

from __future__ import annotations

import asyncio
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
from servicekit import signing

SIGNATURE_HEADER = "x-hearth-signature"
# The same id on every attempt of a notification: delivery is at least once (a sender that
# stops after the receiver answered but before it recorded the answer sends again), so
# receivers dedupe on this header.
NOTIFICATION_ID_HEADER = "x-hearth-notification-id"
WEBHOOK = "webhook"
SMTP = "smtp"


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


class Undeliverable(Exception):
    """This notification cannot go out on this channel, now or later (no retry).

    The message is recorded as the delivery's `last_error`: it must never hold personal data.
    """


class DeliveryAdapter(Protocol):
    """One channel a notification can leave by."""

    name: str

    async def deliver(self, delivery: Delivery) -> None:
        """Deliver or raise; the sender records the outcome and schedules retries."""
        ...


def error_summary(exc: BaseException) -> str:
    """A short, PII-free description of a failed attempt (for `last_error` and logs).

    Never `str(exc)`: smtplib's errors carry the recipient's address, httpx's the URL.
    """
    if isinstance(exc, Undeliverable):
        return str(exc)[:200]
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code} ({type(exc).__name__})"
    return type(exc).__name__[:200]


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The webhook signature header value: `t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`."""
    return signing.sign(secret, body, timestamp)


def verify_signature(secret: bytes, header: str, body: bytes, tolerance_seconds: int = 300) -> bool:
    """Check a webhook signature (what a receiver does), in constant time, within a time window."""
    return signing.verify(header, body, secret, tolerance=tolerance_seconds)


class WebhookAdapter:
    """HTTP POST of the notification as JSON, HMAC-SHA256 signed with a shared secret."""

    name = WEBHOOK

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
            NOTIFICATION_ID_HEADER: str(delivery.id),
        }
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, content=body, headers=headers)
        response.raise_for_status()


AddressLookup = Callable[[uuid.UUID], Awaitable[str | None]]


class SmtpAdapter:
    """E-mail through an SMTP relay (stdlib smtplib in a worker thread)."""

    name = SMTP

    def __init__(self, settings: MembersSettings, address_of: AddressLookup) -> None:
        self.settings = settings
        self.address_of = address_of

    async def deliver(self, delivery: Delivery) -> None:
        """Send to the member's e-mail address as it is now (read at send time, decrypted)."""
        # Read here, not when the notification was written: a member who changed or deleted
        # their address since is mailed at the new one, or not at all.
        to = await self.address_of(delivery.user_id)
        if not to:
            raise Undeliverable("no e-mail address on file")
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        message["Subject"] = delivery.title
        message.set_content(delivery.body)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            smtp.send_message(message)


def configured_channels(settings: MembersSettings) -> list[str]:
    """The channels beyond the inbox that the settings switch on (one delivery row each)."""
    channels = []
    if settings.notify_webhook_url:
        channels.append(WEBHOOK)
    if settings.smtp_host:
        channels.append(SMTP)
    return channels


def configured_adapters(
    settings: MembersSettings, address_of: AddressLookup
) -> dict[str, DeliveryAdapter]:
    """The adapters of `configured_channels`, by channel name."""
    adapters: dict[str, DeliveryAdapter] = {}
    if settings.notify_webhook_url:
        secret = settings.notify_webhook_secret
        adapters[WEBHOOK] = WebhookAdapter(
            settings.notify_webhook_url,
            secret.get_secret_value().encode() if secret else b"",
            settings.notify_webhook_timeout_seconds,
        )
    if settings.smtp_host:
        adapters[SMTP] = SmtpAdapter(settings, address_of)
    return adapters
