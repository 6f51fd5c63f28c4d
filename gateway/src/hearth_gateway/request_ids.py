"""Request ids at the edge: a client's well-formed `X-Request-ID` is kept, otherwise one is made.

The proxy applies this to every /api/ call itself (its hot path bypasses app middleware);
`RequestIdMiddleware` does the same for the gateway's own routes (login, API keys, webhooks),
so every response and every request-log line names its request.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

MAX_REQUEST_ID_LENGTH = 128
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,%d}$" % MAX_REQUEST_ID_LENGTH)


def valid_request_id(value: bytes | None) -> bool:
    """Whether a client-supplied id may be kept (bounded, no separators or control bytes)."""
    return value is not None and _REQUEST_ID.match(value) is not None


def new_request_id() -> bytes:
    """A fresh request id."""
    return str(uuid.uuid4()).encode()


class RequestIdMiddleware:
    """Gives a request without a usable `X-Request-ID` one, and answers with it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Settle the id on the way in; echo it on the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"x-request-id"]
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = given if given is not None and valid_request_id(given) else new_request_id()
        headers.append((b"x-request-id", request_id))
        scope = {**scope, "headers": headers}

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *(h for h in message.get("headers", ()) if h[0] != b"x-request-id"),
                        (b"x-request-id", request_id),
                    ],
                }
            await send(message)

        await self.app(scope, receive, send_with_id)
