"""Helpers the members tests share: staff headers, a community, joining, points, events, and
real receivers of notification deliveries (an HTTP webhook receiver, an SMTP sink).

Events of other contexts are published the way their producers will publish them: the payload
is built and validated by the producer's own model (servicekit.testing.contracts, re-exported
here), so a field a producer renames or adds as required breaks these tests, not production.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from servicekit.testing.contracts import contract, producer_payload, publish, published
from servicekit.testing.harness import Identities, RunningService

__all__ = ["contract", "producer_payload", "publish", "published"]

PROBLEM = "application/problem+json"
OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")


def staff(identities: Identities) -> dict[str, str]:
    """Headers of the dev operator (platform staff)."""
    return identities.headers(OPERATOR, "operator")


async def make_community(members: RunningService, identities: Identities, **extra: Any) -> str:
    """A community created by the operator; returns its id."""
    body = {"name": f"c-{uuid.uuid4().hex[:6]}", "kind": "customer", **extra}
    r = await members.client.post("/communities", json=body, headers=staff(identities))
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def join(members: RunningService, identities: Identities, cid: str, user: uuid.UUID) -> None:
    """The user joins the (open) community."""
    r = await members.client.post(f"/communities/{cid}/members", headers=identities.headers(user))
    assert r.status_code in (200, 201), r.text


async def adjust(
    members: RunningService, identities: Identities, cid: str, user: uuid.UUID, points: int
) -> dict:
    """A manual award by the operator."""
    r = await members.client.post(
        f"/communities/{cid}/points/adjustments",
        json={"user_id": str(user), "points": points, "reason": "test"},
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    return r.json()


def took(svc: RunningService, consumer: str, deliveries: int) -> Callable[[], Awaitable[bool]]:
    """An `eventually` check: the consumer has taken this many deliveries (applied or not)."""
    [running] = [c for c in svc.runtime.consumers if c.consumer.name == consumer]

    async def check() -> bool:
        stats = running.stats
        assert stats["dead_lettered"] == 0, stats
        return stats["handled"] + stats["duplicates"] >= deliveries

    return check


class WebhookReceiver:
    """A real local HTTP receiver of notification webhooks (a thread-pool server).

    Answers `fail_status` to the first `fail_first` requests, then 204; keeps every request
    (`requests`: headers, body, status answered) and the accepted ones' notification ids.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.fail_first = 0
        self.fail_status = 500
        self.delay = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.fail_status if receiver.fail_first > 0 else 204
                    receiver.fail_first -= 1 if receiver.fail_first > 0 else 0
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.requests.append((headers, body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    @property
    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        """The requests answered 2xx."""
        with self._lock:
            return [(h, b) for h, b, status in self.requests if status < 300]

    def accepted_ids(self) -> list[str]:
        """The `x-hearth-notification-id` of every accepted request, in arrival order."""
        return [h["x-hearth-notification-id"] for h, _ in self.accepted]


class SmtpSink:
    """A minimal real SMTP server (enough of RFC 5321 for smtplib) that keeps what it receives.

    With `refuse` set it answers MAIL FROM with a temporary failure (451), as a relay that is
    down or throttling would.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse = False
        self.refused = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> SmtpSink:
        """Listen on a free local port."""
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def handle(self, reader: Any, writer: Any) -> None:
        """Speak SMTP on one connection."""

        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 sink ESMTP")
        sender, rcpts = "", []
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                say("250 sink")
            elif verb == "MAIL" and self.refuse:
                self.refused += 1
                say("451 4.3.0 try again later")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip(" <>"), []
                say("250 ok")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip(" <>"))
                say("250 ok")
            elif verb == "DATA":
                say("354 go ahead")
                body = b""
                while (chunk := await reader.readline()) != b".\r\n":
                    body += chunk
                self.messages.append((sender, rcpts, body))
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                break
            else:
                say("250 ok")
            await writer.drain()
        writer.close()
