"""Unit tests of the kernel's pure parts: settings, identity assertions, envelopes, cursors."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsConfigDict

from servicekit.crypto import Keyring
from servicekit.events import Envelope, Event, event_type, nats_subject, stream_name
from servicekit.idempotency import keyring_from
from servicekit.identity import (
    ASSERTION_AUDIENCE,
    ASSERTION_ISSUER,
    AssertionSigner,
    AssertionVerifier,
    InvalidAssertion,
    Principal,
    generate_keypair,
)
from servicekit.pagination import cursor_key, decode_cursor, encode_cursor
from servicekit.problems import Problem
from servicekit.settings import ServiceSettings
from servicekit.types import UtcDatetime, as_utc


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HEARTH_DEMO_", extra="ignore")
    service_name: str = "demo"


def test_service_prefix_wins_over_shared_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_SUBJECT_PREFIX", "shared")
    monkeypatch.setenv("HEARTH_NATS_URL", "nats://shared:4222")
    monkeypatch.setenv("HEARTH_DEMO_NATS_URL", "nats://own:4222")
    s = DemoSettings()
    assert s.subject_prefix == "shared"
    assert s.nats_url == "nats://own:4222"
    assert s.database_url == "sqlite:///./var/demo.db"


def test_conventional_nats_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_NATS_URL", raising=False)
    monkeypatch.setenv("NATS_URL", "nats://conventional:4222")
    assert DemoSettings().nats_url == "nats://conventional:4222"


def test_production_refuses_unsafe_defaults() -> None:
    with pytest.raises(ValueError, match="PostgreSQL in production"):
        DemoSettings(environment="production", identity_public_key="x")
    with pytest.raises(ValueError, match="identity public key"):
        DemoSettings(environment="production", database_url="postgresql://db/demo")
    ok = DemoSettings(
        environment="production", database_url="postgresql://db/demo", identity_public_key="k"
    )
    assert ok.environment == "production"


def test_the_idempotency_keyring_is_required_in_production_only() -> None:
    prod = {"database_url": "postgresql://db/demo", "identity_public_key": "k"}
    with pytest.raises(ValueError, match="idempotency_keyring"):
        keyring_from(DemoSettings(environment="production", **prod))
    ring = Keyring.generate("p1")
    configured = DemoSettings(
        environment="production", idempotency_keyring=json.dumps(ring.to_document()), **prod
    )
    assert keyring_from(configured) == ring
    # Development without one: a fresh key per process, so two processes cannot read each other.
    assert keyring_from(DemoSettings()) != keyring_from(DemoSettings())


def _principal() -> Principal:
    return Principal(subject=uuid.uuid4(), roles=frozenset({"operator"}), request_id="r1")


def test_assertion_round_trip() -> None:
    private, public = generate_keypair()
    p = _principal()
    got = AssertionVerifier(public).verify(AssertionSigner(private).sign(p))
    assert got == p


def test_assertion_refusals() -> None:
    private, public = generate_keypair()
    other_private, _ = generate_keypair()
    verifier = AssertionVerifier(public)
    p = _principal()
    token = AssertionSigner(private).sign(p)
    bad = [
        AssertionSigner(other_private).sign(p),  # signed by someone else
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),  # tampered signature
        jwt.encode(
            {
                "sub": str(p.subject),
                "iss": ASSERTION_ISSUER,
                "aud": ASSERTION_AUDIENCE,
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
            },
            None,
            algorithm="none",
        ),
        _hs256_with_public_key(public, p),  # key confusion
        AssertionSigner(private, ttl_seconds=-60).sign(p),  # expired beyond the skew
        "not-a-jwt",
    ]
    for token in bad:
        with pytest.raises(InvalidAssertion):
            verifier.verify(token)


def _hs256_with_public_key(public_pem: str, p: Principal) -> str:
    """An HS256 token whose HMAC secret is the public key (PyJWT refuses to make one)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(
        json.dumps(
            {
                "sub": str(p.subject),
                "iss": ASSERTION_ISSUER,
                "aud": ASSERTION_AUDIENCE,
                "iat": now,
                "exp": now + 60,
            }
        ).encode()
    )
    sig = hmac.new(public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def test_assertion_key_must_be_ed25519() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError):
        AssertionSigner(rsa_pem)
    assert isinstance(Ed25519PrivateKey.generate(), Ed25519PrivateKey)


@event_type("kittest.unit.checked.v1")
class UnitChecked(Event):
    value: int


def test_envelope_binary_mode_round_trip() -> None:
    env = Envelope.new("/hearth/kittest", UnitChecked(value=3), subject="s-1")
    headers = env.headers()
    assert headers["Nats-Msg-Id"] == headers["ce-id"] == str(env.id)
    assert headers["ce-type"] == "hearth.kittest.unit.checked.v1"
    back = Envelope.from_message(headers, env.body())
    assert back == env
    assert back.payload(UnitChecked).value == 3


def test_envelope_rejects_non_cloudevents() -> None:
    with pytest.raises(ValueError):
        Envelope.from_message({"ce-id": "x"}, b"{}")
    env = Envelope.new("/s", UnitChecked(value=1))
    with pytest.raises(ValueError):
        Envelope.from_message(env.headers(), b"[1, 2]")


def test_event_type_naming_is_enforced() -> None:
    with pytest.raises(ValueError):
        event_type("Bad.Name")
    with pytest.raises(ValueError):
        event_type("kittest.unit.checked.v1")(type("Other", (Event,), {"__annotations__": {}}))


def test_subjects_and_streams() -> None:
    assert (
        nats_subject("hearth", "hearth.members.member.joined.v1")
        == "hearth.members.member.joined.v1"
    )
    assert (
        nats_subject("acme", "hearth.members.member.joined.v1") == "acme.members.member.joined.v1"
    )
    assert stream_name("hearth", "members") == "HEARTH_MEMBERS"


def test_cursor_round_trip_and_tampering() -> None:
    values = ["2026-01-01T00:00:00+00:00", str(uuid.uuid4())]
    assert decode_cursor(encode_cursor(values)) == values
    for bad in ["%%%", "bm90IGpzb24", encode_cursor({"a": 1})]:  # type: ignore[arg-type]
        with pytest.raises(Problem) as info:
            decode_cursor(bad)
        assert info.value.status == 422


def test_cursor_key_reads_typed_values_and_refuses_the_rest() -> None:
    ident = uuid.uuid4()
    at, got = cursor_key(["2026-01-01T08:00:00+08:00", str(ident)], datetime, uuid.UUID)
    assert at == datetime(2026, 1, 1, tzinfo=UTC) and at.tzinfo is UTC and got == ident
    assert cursor_key([3, "x"], int, str) == (3, "x")
    bad = [
        ([str(ident), 5], [datetime, uuid.UUID]),  # well-formed JSON, wrong types
        (["2026-01-01T00:00:00+00:00", {"a": 1}], [datetime, uuid.UUID]),
        ([None], [uuid.UUID]),
        (["not-a-uuid"], [uuid.UUID]),
        ([True], [int]),
        ([str(ident)], [datetime, uuid.UUID]),  # one value short
        ([str(ident), str(ident)], [uuid.UUID]),  # one too many
        (["9999-12-31T23:00:00-23:59", str(ident)], [datetime, uuid.UUID]),  # past year 9999
    ]
    for values, kinds in bad:
        with pytest.raises(Problem) as info:
            cursor_key(values, *kinds)
        assert info.value.status == 422 and info.value.slug == "invalid-cursor", values


def test_as_utc_refuses_instants_outside_the_calendar_as_a_value_error() -> None:
    assert as_utc(datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert as_utc(datetime(2026, 1, 1)).tzinfo is UTC  # naive is taken to be UTC
    for text in ("9999-12-31T23:00:00-23:59", "0001-01-01T00:00:00+23:59"):
        with pytest.raises(ValueError, match="out of range"):
            as_utc(datetime.fromisoformat(text))

    class Stamped(BaseModel):
        at: UtcDatetime

    # Through Pydantic it is a validation error (a 422 in a request), not an OverflowError.
    with pytest.raises(ValidationError) as info:
        Stamped.model_validate({"at": "9999-12-31T23:00:00-23:59"})
    assert info.value.errors()[0]["loc"] == ("at",)


def test_assertion_keys_rotate_without_refusals() -> None:
    old_private, old_public = generate_keypair()
    new_private, new_public = generate_keypair()
    p = _principal()
    during = AssertionVerifier(old_public + new_public)  # services learn the new key first
    assert during.verify(AssertionSigner(old_private).sign(p)) == p
    assert during.verify(AssertionSigner(new_private).sign(p)) == p
    after = AssertionVerifier(new_public)  # then the old key is dropped
    with pytest.raises(InvalidAssertion):
        after.verify(AssertionSigner(old_private).sign(p))
    assert after.verify(AssertionSigner(new_private).sign(p)) == p


def test_exported_spans_carry_the_route_not_the_raw_path_or_query() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from servicekit.telemetry import ScrubbingExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingExporter(memory)))
    tracer = provider.get_tracer("test")
    span = tracer.start_span(
        "POST /invites/{token}/redeem",
        attributes={
            "url.path": "/invites/s3cr3t-t0ken/redeem",
            "url.query": "email=ada%40example.com&limit=5",
            "url.full": "http://h/invites/s3cr3t-t0ken/redeem?email=ada%40example.com",
            "http.request.method": "POST",
        },
    )
    span.set_attribute("http.route", "/invites/{token}/redeem")
    span.end()
    with tracer.start_as_current_span("no route", attributes={"http.target": "/x/s3cr3t-t0ken"}):
        pass
    exported = memory.get_finished_spans()
    text = str([dict(s.attributes or {}) for s in exported])
    assert "s3cr3t" not in text and "ada" not in text
    first = dict(exported[0].attributes or {})
    assert first["url.path"] == "/invites/{token}/redeem"
    assert first["url.query"] == "email=REDACTED&limit=REDACTED"
    assert first["http.request.method"] == "POST"  # other attributes untouched
    assert dict(exported[1].attributes or {})["http.target"] == "REDACTED"


async def test_periodic_survives_a_failing_pass_and_keeps_its_name() -> None:
    import asyncio
    import types

    from servicekit.periodic import periodic

    calls: list[int] = []
    fifth = asyncio.Event()

    async def flaky(_runtime: object) -> str | None:
        calls.append(len(calls))
        if len(calls) == 5:
            fifth.set()
        if len(calls) == 2:
            raise RuntimeError("database away")
        return "did work" if len(calls) % 2 else None

    loop = periodic("flaky_scheduler", flaky, interval=lambda rt: rt.settings.tick)
    assert loop.__name__ == "flaky_scheduler"
    runtime = types.SimpleNamespace(settings=types.SimpleNamespace(tick=0.01))
    task = asyncio.create_task(loop(runtime))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(fifth.wait(), timeout=5)  # passes 3-5 ran after the failure
        assert not task.done()
    finally:
        task.cancel()


async def test_periodic_with_wake_runs_a_pass_as_soon_as_woken_not_only_on_the_interval() -> None:
    import asyncio
    import types

    from servicekit.periodic import periodic

    passes: list[asyncio.Event] = [asyncio.Event() for _ in range(3)]
    count = 0

    async def run(_runtime: object) -> str | None:
        nonlocal count
        passes[min(count, 2)].set()
        count += 1
        return None

    woken = asyncio.Event()
    loop = periodic(
        "woken_scheduler", run, interval=lambda rt: rt.settings.tick, wake=lambda _: woken
    )
    runtime = types.SimpleNamespace(settings=types.SimpleNamespace(tick=3600))
    task = asyncio.create_task(loop(runtime))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(passes[0].wait(), timeout=5)  # the first pass runs at start
        await asyncio.sleep(0.05)
        assert count == 1  # an hour's interval: nothing more without a wake
        woken.set()
        await asyncio.wait_for(passes[1].wait(), timeout=5)
        woken.set()
        await asyncio.wait_for(passes[2].wait(), timeout=5)
        assert count == 3 and not task.done()
    finally:
        task.cancel()


def test_extension_is_made_once_per_runtime_and_keys_do_not_collide() -> None:
    from servicekit.runtime import Key, extension

    class Runtime:  # any weak-referenceable object stands in for a ServiceRuntime
        pass

    first, second = Runtime(), Runtime()
    counter: Key[list[int]] = Key("counter")
    other: Key[list[int]] = Key("counter")  # same name, different key
    made: list[int] = []

    def make() -> list[int]:
        made.append(1)
        return []

    a = extension(first, counter, make)  # type: ignore[arg-type]
    assert extension(first, counter, make) is a  # type: ignore[arg-type]
    assert extension(second, counter, make) is not a  # type: ignore[arg-type]
    assert extension(first, other, make) is not a  # type: ignore[arg-type]
    assert len(made) == 3


def test_settings_of_refuses_another_settings_class() -> None:
    import types

    import pytest

    from servicekit.runtime import settings_of
    from servicekit.settings import ServiceSettings

    class Mine(ServiceSettings):
        pass

    runtime = types.SimpleNamespace(settings=ServiceSettings())
    with pytest.raises(TypeError, match="not Mine"):
        settings_of(runtime, Mine)  # type: ignore[arg-type]
