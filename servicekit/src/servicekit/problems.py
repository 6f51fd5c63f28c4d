"""RFC 9457 problem details: one exception type, stable `type` URIs, handlers for FastAPI."""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_TYPE_BASE = "urn:hearth:problem:"
PROBLEM_CONTENT_TYPE = "application/problem+json"

log = logging.getLogger(__name__)

_DEFAULT_SLUGS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    502: "bad-gateway",
    503: "unavailable",
    504: "gateway-timeout",
}


class Problem(Exception):
    """An error a client should see: status, a stable slug, a title and optional detail."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json document."""
        doc: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            doc["detail"] = self.detail
        if instance:
            doc["instance"] = instance
        doc.update(self.extensions)
        return doc


def not_found(what: str, ident: Any = None) -> Problem:
    """A 404 for a named resource."""
    detail = f"{what} {ident} not found" if ident is not None else f"{what} not found"
    return Problem(404, "not-found", "Not found", detail)


def conflict(slug: str, detail: str, **extensions: Any) -> Problem:
    """A 409 for a duplicate or a state-machine violation."""
    return Problem(409, slug, "Conflict", detail, **extensions)


def forbidden(detail: str) -> Problem:
    """A 403 for an authenticated caller who may not do this."""
    return Problem(403, "forbidden", "Forbidden", detail)


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    """Render a Problem as an application/problem+json response."""
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error leave the service as problem+json (a 500 is logged as a bug)."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        problem = Problem(
            422, "validation-error", "Invalid request", "the request is not valid", errors=errors
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _DEFAULT_SLUGS.get(exc.status_code, "error")
        problem = Problem(
            exc.status_code,
            slug,
            slug.replace("-", " ").capitalize(),
            str(exc.detail) if exc.detail else None,
            headers=dict(exc.headers or {}),
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        # A versioned row (mapper `version_id_col`) changed between this request's read and its
        # write: optimistic concurrency lost the race. Nothing was written; the client retries.
        problem = Problem(
            409, "concurrent-update", "Conflict", "the resource changed meanwhile; retry"
        )
        return problem_response(problem, request.url.path)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Two first writes raced (both read "no row yet", both inserted): the loser's insert hit
        # the unique key and its transaction rolled back, so nothing was half-written. That is
        # the client's retry, not a bug; any other integrity error still is one (a 500).
        if not unique_violation(exc):
            raise exc
        problem = Problem(
            409, "concurrent-update", "Conflict", "a concurrent request wrote it first; retry"
        )
        return problem_response(problem, request.url.path)

    # Not `exception_handler(Exception)`: Starlette's ServerErrorMiddleware re-raises after
    # that handler has answered, so uvicorn logged every 500 a second time.
    app.add_middleware(UnhandledErrors)


# Socket errors that mean "a dependency cannot be reached", not "this code is wrong".
_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}
# asyncpg's refusals while PostgreSQL starts, stops or is full (raised raw on connect).
_UNAVAILABLE_NAMES = {
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
}


def unique_violation(exc: IntegrityError) -> bool:
    """Whether an integrity error is a duplicate key (PostgreSQL 23505, SQLite UNIQUE)."""
    if getattr(exc.orig, "sqlstate", None) == "23505":
        return True
    message = str(exc.orig)
    return "UNIQUE constraint failed" in message or "duplicate key value" in message


def dependency_unavailable(exc: BaseException) -> bool:
    """True when an error means the database (or another dependency) cannot be reached.

    A connect refused or reset, a connection lost mid-query, a pool that cannot hand one out in
    time: the request did nothing (its transaction never committed) and may be retried once the
    dependency is back, so the answer is 503, not a 500 that reads as a bug.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PoolTimeout | TimeoutError | socket.gaierror):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError) and current.errno in _UNREACHABLE_ERRNOS:
            return True
        if isinstance(current, ConnectionError):
            return True
        if type(current).__name__ in _UNAVAILABLE_NAMES:
            return True
        current = current.__cause__ or current.__context__
    return False


class UnhandledErrors:
    """Innermost middleware: an unhandled exception is logged once and answered as a 500 problem."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # The route template, not the path: a path can carry a secret (an invite token).
            route = getattr(scope.get("route"), "path", "<unmatched>")
            if dependency_unavailable(exc):
                # An outage, not a bug: one line, no traceback (a long outage logs every request).
                log.warning("dependency unavailable on %s %s: %r", scope.get("method"), route, exc)
                problem = Problem(
                    503,
                    "unavailable",
                    "Service unavailable",
                    "a dependency of this service is unavailable; retry later",
                    headers={"Retry-After": "2"},
                )
            else:
                log.exception("unhandled error on %s %s", scope.get("method"), route)
                problem = Problem(
                    500, "internal-error", "Internal error", "an unexpected error occurred"
                )
            if started:  # too late for a problem body; the server closes the connection
                return
            await problem_response(problem, scope.get("path"))(scope, receive, send)
