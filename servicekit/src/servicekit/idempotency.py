"""`Idempotency-Key` on writes: a retried request gets the first response, never a second effect.

Keys are scoped to the caller. The first request with a key records it as in flight, runs, and
stores its response (unless it was a 5xx, which the client may retry for real). A repeat with
the same key and the same request replays that response with `Idempotent-Replayed: true`; the
same key with a different request is a 422; a repeat while the first is still running is a 409.

The response is saved before it is sent, so a retry fired the moment the first response arrives
is a replay, never a 409. Stored bodies can hold PII (a profile's e-mail), so they are sealed
with AES-256-GCM under `settings.idempotency_keyring`, bound to the principal, key and request.
`forget` erases a principal's keys; `sweep_loop` deletes expired keys on one replica.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.crypto import DecryptionError, Keyring
from servicekit.ids import utcnow
from servicekit.lease import Lease
from servicekit.periodic import periodic
from servicekit.problems import Problem, problem_response
from servicekit.runtime import ServiceRuntime
from servicekit.settings import ServiceSettings
from servicekit.tables import KitTables

log = logging.getLogger(__name__)

HEADER = b"idempotency-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 200
KEY_TTL = timedelta(hours=24)


def keyring_from(settings: ServiceSettings) -> Keyring:
    """The keyring that seals stored responses; development without one gets a per-process key."""
    # Why a kernel setting and not members' PII keyring: every service stores responses, and
    # only members has that keyring. Why a per-process key in development rather than a file:
    # keys live 24 h and a lost key fails closed (409 `idempotency-key-unreadable`, never a
    # second effect). Sealing, not dropping bodies: a replay must return the same response.
    if settings.idempotency_keyring is not None:
        return Keyring.from_json(settings.idempotency_keyring.get_secret_value())
    if settings.environment == "production":
        raise ValueError("idempotency_keyring must be configured in production")
    return Keyring.generate("dev")


def _seal_context(principal: Any, key: str, fingerprint: str) -> str:
    # Normalised, so the principal's UUID and its string form seal and unseal alike.
    return f"idempotency:{uuid.UUID(str(principal))}:{key}:{fingerprint}"


def seal(keyring: Keyring, body: bytes, *, principal: Any, key: str, fingerprint: str) -> bytes:
    """Encrypt a response body for the store (latin-1 maps every byte to one character)."""
    token = keyring.encrypt(
        body.decode("latin-1"), context=_seal_context(principal, key, fingerprint)
    )
    return token.encode("ascii")


def unseal(keyring: Keyring, stored: bytes, *, principal: Any, key: str, fingerprint: str) -> bytes:
    """Decrypt a stored response body; raises DecryptionError if it is not ours."""
    try:
        token = stored.decode("ascii")
    except UnicodeDecodeError as exc:  # a plaintext body from before encryption
        raise DecryptionError("not a ciphertext") from exc
    plain = keyring.decrypt(token, context=_seal_context(principal, key, fingerprint))
    return plain.encode("latin-1")


async def forget(session: AsyncSession, tables: KitTables, subject: uuid.UUID | str) -> int:
    """Delete every idempotency key (and stored response) of one principal; the caller commits."""
    table = tables.idempotency_keys
    principal = subject if isinstance(subject, uuid.UUID) else uuid.UUID(str(subject))
    result = await session.execute(delete(table).where(table.c.principal == principal))
    return int(getattr(result, "rowcount", 0) or 0)


async def sweep_expired(session: AsyncSession, tables: KitTables) -> int:
    """Delete keys older than KEY_TTL (a later use would replace them anyway); caller commits."""
    table = tables.idempotency_keys
    result = await session.execute(delete(table).where(table.c.created_at < utcnow() - KEY_TTL))
    return int(getattr(result, "rowcount", 0) or 0)


async def sweep_loop(runtime: ServiceRuntime) -> None:
    """Background loop: sweep expired keys every `idempotency_sweep_seconds`, on one replica."""
    lease = Lease(runtime.db, f"idempotency-sweep:{runtime.definition.context}")

    async def run_pass(rt: ServiceRuntime) -> str | None:
        if not await lease.held():
            return None
        async with rt.db.session() as session:
            swept = await sweep_expired(session, rt.tables)
            await session.commit()
        return f"swept {swept} expired keys" if swept else None

    loop = periodic(
        "idempotency-sweep",
        run_pass,
        interval=lambda rt: rt.settings.idempotency_sweep_seconds,
    )
    try:
        await loop(runtime)
    finally:
        await asyncio.shield(lease.release())


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
            await _answer_repeat(
                row, fingerprint, runtime.idempotency_keyring, scope, receive, send
            )
            return
        await self._run_and_store(scope, body, send, runtime, table, where, fingerprint)

    async def _run_and_store(
        self,
        scope: Any,
        body: bytes,
        send: Any,
        runtime: Any,
        table: Any,
        where: Any,
        fingerprint: str,
    ) -> None:
        captured: dict[str, Any] = {"body": [], "messages": []}

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
            # Held back until the response is stored: a client that retries the moment it
            # sees the response must find it saved (a replay), not in flight (a 409).
            captured["messages"].append(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        except BaseException:
            # Nothing was sent yet, so the error handler outside still answers the client.
            async with runtime.db.session() as session:
                await session.execute(delete(table).where(where))
                await session.commit()
            raise
        status = captured.get("status", 500)
        principal = scope["state"]["principal"].subject
        key_text = dict(scope["headers"])[HEADER].decode("latin-1").strip()
        async with runtime.db.session() as session:
            if status >= 500:  # a failure the client may really retry: forget the key
                await session.execute(delete(table).where(where))
            else:
                sealed = seal(
                    runtime.idempotency_keyring,
                    b"".join(captured["body"]),
                    principal=principal,
                    key=key_text,
                    fingerprint=fingerprint,
                )
                await session.execute(
                    update(table)
                    .where(where)
                    .values(status=status, content_type=captured.get("content_type"), body=sealed)
                )
            await session.commit()
        for message in captured["messages"]:
            await send(message)


async def _answer_repeat(
    row: Any, fingerprint: str, keyring: Keyring, scope: Any, receive: Any, send: Any
) -> None:
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
    try:
        body = unseal(
            keyring, row.body or b"", principal=row.principal, key=row.key, fingerprint=fingerprint
        )
    except DecryptionError:
        # Sealed under a key this process does not hold (a development restart, a dropped
        # key): running the request again could repeat its effect, so refuse instead.
        await _problem(
            scope,
            receive,
            send,
            Problem(
                409,
                "idempotency-key-unreadable",
                "Conflict",
                "the stored response for this Idempotency-Key cannot be read; use a new key",
            ),
        )
        return
    headers = [(b"idempotent-replayed", b"true")]
    if row.content_type:
        headers.append((b"content-type", row.content_type.encode()))
    await send({"type": "http.response.start", "status": row.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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


sweep_loop.__name__ = sweep_loop.__qualname__ = "idempotency-sweep"  # the task's name
