"""/metrics on every service, and structured JSON logs without secrets."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from opentelemetry import trace
from prometheus_client.parser import text_string_to_metric_families

import kitapp
from servicekit.logging import JsonFormatter, redact, request_id_var
from servicekit.testing.harness import Identities, eventually, running_service, test_settings


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    matches = [
        v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items()
    ]
    assert matches, f"no sample {name} {labels}"
    return sum(matches)


async def test_metrics_cover_http_outbox_consumers_dead_letters_and_pool(
    any_database_url: str, nats_url: str, subject_prefix: str, identities: Identities
) -> None:
    settings = test_settings(
        kitapp.definition,
        database_url=any_database_url,
        nats_url=nats_url,
        subject_prefix=subject_prefix,
        identity_public_key=identities.public_pem,
    )
    async with running_service(kitapp.definition, settings) as svc:
        headers = identities.headers(uuid.uuid4())
        for text in ("one", "two"):
            r = await svc.client.post("/notes", json={"text": text}, headers=headers)
            assert r.status_code == 201, r.text
        assert (await svc.client.post("/notes", json={}, headers=headers)).status_code == 422
        assert (await svc.client.post("/notes", json={"text": "x"})).status_code == 401
        # A poison event ends in the dead letters after max_deliver attempts.
        async with svc.runtime.db.session() as session:
            uow_event = kitapp.NoteWritten(note_id=uuid.uuid4(), text="bad", poison=True)
            await svc.runtime.outbox.record(session, uow_event, subject="poison")
            await session.commit()
        svc.runtime.relay.wake()

        async def settled() -> dict[Any, float]:
            r = await svc.client.get("/metrics")  # no identity needed
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            samples = _samples(r.text)
            assert _value(samples, "hearth_dead_letters", consumer="kittest__notes") == 1
            assert _value(samples, "hearth_consumer_messages_total", outcome="handled") == 2
            return samples

        samples = await eventually(settled, timeout=15)
        # Request rate and errors by route template (never the raw path).
        route = {"service": "kittest", "method": "POST", "route": "/notes"}
        assert _value(samples, "hearth_http_requests_total", **route, status="201") == 2
        assert _value(samples, "hearth_http_requests_total", **route, status="422") == 1
        assert _value(samples, "hearth_http_request_duration_seconds_count", **route) == 3
        # Refused before routing (no identity): counted, under the shared unmatched label.
        assert _value(samples, "hearth_http_requests_total", route="<unmatched>", status="401") == 1
        assert not any(dict(ls).get("route") == "/metrics" for (_, ls) in samples)
        r = await svc.client.get(f"/nothing/{uuid.uuid4()}", headers=headers)
        assert r.status_code == 404
        samples = _samples((await svc.client.get("/metrics")).text)
        assert _value(samples, "hearth_http_requests_total", route="<unmatched>", status="404") == 1
        # Outbox backlog and age, relay lease, consumer lag and redeliveries, pool.
        assert _value(samples, "hearth_outbox_pending") == 0
        assert _value(samples, "hearth_outbox_oldest_pending_age_seconds") == 0
        assert _value(samples, "hearth_outbox_published_total") == 3
        assert _value(samples, "hearth_outbox_relay_lease_held") == 1
        assert _value(samples, "hearth_consumer_messages_total", outcome="dead_lettered") == 1
        assert _value(samples, "hearth_consumer_messages_total", outcome="retried") >= 1
        # Lag comes from JetStream consumer info, cached for a few seconds (one NATS call each).
        assert 0 <= _value(samples, "hearth_consumer_pending", consumer="kittest__notes") <= 3
        assert ("hearth_consumer_redelivered", ()) not in samples  # labelled, per stream
        assert _value(samples, "hearth_db_pool_checked_out") >= 0


def test_json_logs_carry_trace_and_request_ids_and_no_secrets() -> None:
    formatter = JsonFormatter("hearth-test")
    tracer = trace.get_tracer("test")
    record_args = ("Bearer abc.def.ghi", "postgresql://hearth:s3cret@db/members")
    token = request_id_var.set("req-123")
    try:
        with tracer.start_as_current_span("work") as span:
            record = logging.LogRecord(
                "hearth.test", logging.INFO, __file__, 1, "auth %s db %s", record_args, None
            )
            line = formatter.format(record)
            ctx = span.get_span_context()
    finally:
        request_id_var.reset(token)
    doc = json.loads(line)
    assert doc["level"] == "INFO" and doc["service"] == "hearth-test"
    assert doc["request_id"] == "req-123"
    if ctx.is_valid:  # a real tracer provider is installed once any service app was built
        assert doc["trace_id"] == format(ctx.trace_id, "032x")
        assert doc["span_id"] == format(ctx.span_id, "016x")
    assert "abc.def.ghi" not in line and "s3cret" not in line
    assert "Bearer ***" in doc["message"] and "hearth:***@db" in doc["message"]
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"
    assert redact(f"token={jwt}") == "token=***"
