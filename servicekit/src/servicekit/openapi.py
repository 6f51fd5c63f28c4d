"""Every operation documents the problem responses it can answer with (RFC 9457 bodies).

FastAPI documents only a route's success code and a 422 with its own `HTTPValidationError`
schema under `application/json`. Hearth answers every error as `application/problem+json`
(servicekit.problems), and any authenticated route can be refused (401/403), miss (404), hit a
state conflict (409), be too large or of the wrong type (413/415), be rate limited (429) or find
its database down (503). Documenting them once here keeps the OpenAPI document true for
clients and for schemathesis' status-code and content-type checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from servicekit.problems import PROBLEM_CONTENT_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; extensions (e.g. `errors`, `muted_until`) vary.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
    "additionalProperties": True,
}

PROBLEM_STATUSES: dict[int, str] = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Refused: the caller may not do this",
    404: "Not found (or not visible to the caller)",
    409: "Conflict with the resource's current state",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Rate limited",
    503: "Temporarily unavailable (a dependency is down); retry later",
}
# What the gateway adds in front of a proxied operation.
UPSTREAM_STATUSES: dict[int, str] = {
    502: "The service behind the gateway failed to answer",
    504: "The service behind the gateway did not answer in time",
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def with_problems(
    doc: dict[str, Any], statuses: Iterable[int] = PROBLEM_STATUSES, *, ref: str | None = None
) -> dict[str, Any]:
    """Add the problem responses to every operation of an OpenAPI document (in place)."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if ref is None:
        schemas.setdefault("Problem", PROBLEM_SCHEMA)
        ref = "#/components/schemas/Problem"
    content = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": ref}}}
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if "201" in responses and "200" not in responses:
                # Creates are idempotent: the same create again answers 200 with what exists.
                created = dict(responses["201"])
                created["description"] = "Already done: the existing resource"
                responses["200"] = created
            for status in statuses:
                description = (PROBLEM_STATUSES | UPSTREAM_STATUSES).get(status, "Problem")
                # Replace FastAPI's 422 (HTTPValidationError, application/json): ours differs.
                responses[str(status)] = {"description": description, "content": content}
    if 422 in statuses:  # every 422 now names Problem: FastAPI's own schemas are unused
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return doc


def document_problems(app: FastAPI) -> None:
    """Make `app.openapi()` include the problem responses on every operation."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = [
    "PROBLEM_SCHEMA",
    "PROBLEM_STATUSES",
    "UPSTREAM_STATUSES",
    "document_problems",
    "with_problems",
]
