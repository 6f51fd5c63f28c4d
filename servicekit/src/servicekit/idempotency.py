"""`Idempotency-Key` on writes: a retried request gets the first response, never a second effect.

Keys are scoped to the caller. The first request with a key records it as in flight, runs, and
stores its response (unless it was a 5xx, which the client may retry for real). A repeat with
the same key and the same request replays that response with `Idempotent-Replayed: true`; the
same key with a different request is a 422; a repeat while the first is still running is a 409.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from servicekit.ids import utcnow
from servicekit.problems import Problem, problem_response

HEADER = b"idempotency-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 200
KEY_TTL = timedelta(hours=24)


class IdempotencyMiddleware:
    """Pure ASGI; sits inside the identity middleware, so the principal is known."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        key = dict(scope.get("headers", ())).get(HEADER)
        principal = scope.get("state", {}).get("principal")
        if key is None or principal is None:
            await self.app(scope, receive, send)
            return
        key_text = key.decode("latin-1").strip()
        if not key_text or len(key_text) > MAX_KEY_LENGTH:
            await _problem(
                scope,
                receive,
                send,
                Problem(
                    422,
                    "invalid-idempotency-key",
                    "Invalid Idempotency-Key",
                    f"the key must be 1 to {MAX_KEY_LENGTH} characters",
                ),
            )
            return
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            b"\0".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope.get("query_string", b""),
                    body,
                ]
            )
        ).hexdigest()
        runtime = scope["app"].state.runtime
        table = runtime.tables.idempotency_keys
        where = (table.c.principal == principal.subject) & (table.c.key == key_text)
        async with runtime.db.session() as session:
            row = (await session.execute(select(table).where(where))).first()
            if (
                row is not None
                and row.created_at.replace(tzinfo=utcnow().tzinfo) < utcnow() - KEY_TTL
            ):
                await session.execute(delete(table).where(where))
                row = None
            if row is None:
                try:
                    await session.execute(
                        table.insert().values(
                            principal=principal.subject,
                            key=key_text,
                            fingerprint=fingerprint,
                            created_at=utcnow(),
                        )
                    )
                    await session.commit()
                except IntegrityError:
                    await session.rollback()
                    row = (await session.execute(select(table).where(where))).first()
            else:
                await session.commit()
        if row is not None:
            await _answer_repeat(row, fingerprint, scope, receive, send)
            return
        await self._run_and_store(scope, body, send, runtime, table, where)

    async def _run_and_store(
        self, scope: Any, body: bytes, send: Any, runtime: Any, table: Any, where: Any
    ) -> None:
        captured: dict[str, Any] = {"body": []}

        async def replay_receive() -> dict[str, Any]:
            if "sent" in captured:
                return {"type": "http.disconnect"}
            captured["sent"] = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["content_type"] = (
                    dict(message.get("headers", ())).get(b"content-type", b"").decode()
                )
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            status = captured.get("status", 500)
            async with runtime.db.session() as session:
                if status >= 500:  # a failure the client may really retry: forget the key
                    await session.execute(delete(table).where(where))
                else:
                    await session.execute(
                        update(table)
                        .where(where)
                        .values(
                            status=status,
                            content_type=captured.get("content_type"),
                            body=b"".join(captured["body"]),
                        )
                    )
                await session.commit()


async def _answer_repeat(row: Any, fingerprint: str, scope: Any, receive: Any, send: Any) -> None:
    if row.fingerprint != fingerprint:
        await _problem(
            scope,
            receive,
            send,
            Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "this key was used with a different request",
            ),
        )
        return
    if row.status is None:
        await _problem(
            scope,
            receive,
            send,
            Problem(
                409,
                "request-in-progress",
                "Conflict",
                "a request with this Idempotency-Key is still being processed",
                headers={"Retry-After": "1"},
            ),
        )
        return
    headers = [(b"idempotent-replayed", b"true")]
    if row.content_type:
        headers.append((b"content-type", row.content_type.encode()))
    await send({"type": "http.response.start", "status": row.status, "headers": headers})
    await send({"type": "http.response.body", "body": row.body or b""})


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _problem(scope: Any, receive: Any, send: Any, problem: Problem) -> None:
    await problem_response(problem, scope["path"])(scope, receive, send)
