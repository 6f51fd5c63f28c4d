"""Domain event contracts and the CloudEvents 1.0 envelope (binary mode over NATS headers).

Event payloads are Pydantic models registered under a versioned type. The NATS subject is
`<prefix>.<context>.<entity>.<fact>.v<N>`; the CloudEvents `type` is the same path with the
fixed `hearth.` prefix, so it stays stable when a deployment changes the subject prefix.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict

from servicekit.ids import utcnow, uuid7

CE_SPECVERSION = "1.0"
CE_TYPE_PREFIX = "hearth."
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[0-9]+$")
_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class Event(BaseModel):
    """Base for event payloads; subclasses are registered with `@event_type(...)`."""

    model_config = ConfigDict(frozen=True)
    __event_type__: ClassVar[str] = ""

    @classmethod
    def ce_type(cls) -> str:
        """The CloudEvents type, e.g. `hearth.members.member.joined.v1`."""
        return CE_TYPE_PREFIX + cls.__event_type__


REGISTRY: dict[str, type[Event]] = {}
E = TypeVar("E", bound=type[Event])


def event_type(name: str) -> Callable[[E], E]:
    """Register a payload model under `<context>.<entity>.<fact>.v<N>`; names are never reused."""
    if not _TYPE_RE.match(name):
        raise ValueError(f"event type {name!r} is not <context>.<entity>.<fact>.v<N>")

    def register(cls: E) -> E:
        existing = REGISTRY.get(CE_TYPE_PREFIX + name)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {name} is already registered by {existing.__name__}")
        cls.__event_type__ = name
        REGISTRY[CE_TYPE_PREFIX + name] = cls
        return cls

    return register


def context_of(ce_type: str) -> str:
    """The bounded context that owns an event type."""
    return ce_type.removeprefix(CE_TYPE_PREFIX).split(".", 1)[0]


def nats_subject(prefix: str, ce_type: str) -> str:
    """The NATS subject for an event type under a deployment's subject prefix."""
    return f"{prefix}.{ce_type.removeprefix(CE_TYPE_PREFIX)}"


def stream_name(prefix: str, context: str) -> str:
    """One JetStream stream per context, e.g. HEARTH_MEMBERS."""
    return f"{prefix}_{context}".upper().replace("-", "_")


def validate_prefix(prefix: str) -> str:
    """A subject prefix must be a single NATS token."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"subject prefix {prefix!r} must be one token of letters, digits, _ or -")
    return prefix


M = TypeVar("M", bound=BaseModel)
# Named outside Envelope, whose `type` field would shadow the builtin in annotations there.
PayloadModel = type[M]


class Envelope(BaseModel):
    """A CloudEvents 1.0 event as carried on NATS: attributes in `ce-*` headers, data as body."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    source: str
    type: str
    time: datetime
    subject: str | None = None
    specversion: str = CE_SPECVERSION
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    traceparent: str | None = None
    tracestate: str | None = None

    @classmethod
    def new(cls, source: str, payload: Event, subject: str | None = None) -> Envelope:
        """A fresh envelope around a registered payload."""
        if not payload.__event_type__:
            raise ValueError(f"{type(payload).__name__} is not a registered event type")
        return cls(
            id=uuid7(),
            source=source,
            type=payload.ce_type(),
            time=utcnow(),
            subject=subject,
            data=payload.model_dump(mode="json"),
        )

    def headers(self) -> dict[str, str]:
        """Binary-mode CloudEvents headers plus the JetStream de-duplication id."""
        headers = {
            "Nats-Msg-Id": str(self.id),
            "ce-specversion": self.specversion,
            "ce-id": str(self.id),
            "ce-source": self.source,
            "ce-type": self.type,
            "ce-time": self.time.isoformat(),
            "content-type": self.datacontenttype,
        }
        if self.subject:
            headers["ce-subject"] = self.subject
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        if self.tracestate:
            headers["tracestate"] = self.tracestate
        return headers

    def body(self) -> bytes:
        """The data, JSON-encoded."""
        return orjson.dumps(self.data)

    @classmethod
    def from_message(cls, headers: Mapping[str, str] | None, body: bytes) -> Envelope:
        """Parse a binary-mode message; raises ValueError when it is not a CloudEvent."""
        h = headers or {}
        try:
            data = orjson.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError("event data must be a JSON object")
            return cls(
                id=uuid.UUID(h["ce-id"]),
                source=h["ce-source"],
                type=h["ce-type"],
                time=datetime.fromisoformat(h["ce-time"]),
                subject=h.get("ce-subject"),
                specversion=h.get("ce-specversion", CE_SPECVERSION),
                datacontenttype=h.get("content-type", "application/json"),
                data=data,
                traceparent=h.get("traceparent"),
                tracestate=h.get("tracestate"),
            )
        except (KeyError, orjson.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"not a CloudEvents message: {exc}") from exc

    def payload(self, model: PayloadModel[M]) -> M:
        """The data parsed as a (consumer's own, tolerant) model, typed as that model."""
        return model.model_validate(self.data)
