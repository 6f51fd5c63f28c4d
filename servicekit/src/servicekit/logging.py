"""Structured logs: one JSON object per line with the trace, span and request ids.

`HEARTH_LOG_FORMAT=json` (the Kubernetes base sets it) or `text` (the default outside
production). Log records carry messages, never request bodies; a filter also masks bearer
tokens and JWT-shaped strings, so a careless `log.info("%s", headers)` cannot leak a credential.

Requests are logged by `log_request` (logger `hearth.access`), never by uvicorn's access log:
a raw path or query string can carry secrets (`/invites/<token>/redeem`, `?email=`), so the
line names the route template instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("hearth_request_id", default=None)
access_log = logging.getLogger("hearth.access")

_SECRETS = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # a JWT / identity assertion
    r"|(://[^:/@\s]+:)[^@\s]+@"  # a password inside a URL
)
# Uvicorn's loggers come with their own handlers; route them through ours instead. Its access
# log is silenced outright: its lines carry the raw path and query string (see log_request).
_UVICORN = ("uvicorn", "uvicorn.error")
_UVICORN_ACCESS = "uvicorn.access"


def redact(text: str) -> str:
    """Mask bearer tokens, JWTs and URL passwords."""

    def mask(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1) + "***"
        if m.group(2):
            return m.group(2) + "***@"
        return "***"

    return _SECRETS.sub(mask, text)


def log_request(method: str, route: str, status: int, seconds: float) -> None:
    """One access-log line: method, route template, status, duration and the request id.

    Call it inside the request: the JSON format then adds the request, trace and span ids from
    the context (the trace is the request's SERVER span), and `http` holds the fields.
    """
    if not access_log.isEnabledFor(logging.INFO):
        return
    request_id = request_id_var.get()
    access_log.info(
        "%s %s %d %.1fms%s",
        method,
        route,
        status,
        seconds * 1000,
        f" request_id={request_id}" if request_id else "",
        extra={
            "http": {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            }
        },
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, service, trace/span/request."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "service": self.service,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            out["trace_id"] = format(span.trace_id, "032x")
            out["span_id"] = format(span.span_id, "016x")
        request_id = request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            out["http"] = http
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingFilter(logging.Filter):
    """For the text format: mask secrets in the rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message in place; never drop a record."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(service: str, level: str = "INFO", environment: str = "development") -> None:
    """Install one stdout handler on the root logger (JSON or text) and adopt uvicorn's loggers."""
    # However uvicorn was started (access_log on or off): no handler and no propagation, so
    # uvicorn's own check (`hasHandlers()`) turns its access log off per connection.
    access = logging.getLogger(_UVICORN_ACCESS)
    access.handlers.clear()
    access.propagate = False
    fmt = os.environ.get("HEARTH_LOG_FORMAT") or ("json" if environment == "production" else "text")
    if fmt != "json":
        logging.basicConfig(level=level.upper())  # the readable default; a no-op if configured
        for existing in logging.getLogger().handlers:
            if not any(isinstance(f, RedactingFilter) for f in existing.filters):
                existing.addFilter(RedactingFilter())
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    handler._hearth = True  # type: ignore[attr-defined]  # ours, replaced on reconfiguration
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_hearth", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
