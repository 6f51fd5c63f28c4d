"""Refuse a path or query string carrying a C0 control character, before any route sees it."""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.problems import Problem, problem_response
from servicekit.types import forbidden_character


class ControlCharacterGuard:
    """ASGI middleware: a 422 problem when the decoded path or query holds a C0 control."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass clean requests through; answer the others with 422."""
        if scope["type"] == "http":
            query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
            bad = forbidden_character(scope.get("path", "")) or forbidden_character(query)
            if bad:
                problem = Problem(
                    422,
                    "validation-error",
                    "Invalid request",
                    f"control character {bad} is not allowed in the path or query",
                )
                await problem_response(problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)
