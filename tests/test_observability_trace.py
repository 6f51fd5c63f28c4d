"""One trace from the client through the gateway, members, the outbox, NATS and content.

Every process runs for real (servicekit.testing.platform.Platform) and exports its spans over
OTLP/HTTP to a small collector in this test, exactly as they would to the OpenTelemetry
collector in the cluster. The gateway makes a SERVER span per proxied call, continuing a valid
client `traceparent` (or starting a trace when there is none), and hands its own context on.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from servicekit.testing import platform as platform_module
from servicekit.testing.backends import Backends, free_port
from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform

JOINED = "consume hearth.members.membership.snapshot.v1"
# Only what the trace crosses: fewer processes start in half the time on two cores.
TRACED_CONTEXTS = ("members", "content")


class Collector:
    """An OTLP/HTTP trace receiver: keeps (service, name, kind, trace, span, parent)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.add(request)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    with self.lock:
                        self.spans.append(
                            {
                                "service": attrs.get("service.name"),
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "attributes": {
                                    a.key: a.value.string_value for a in span.attributes
                                },
                            }
                        )

    def of_trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]


@pytest.fixture(scope="module")
def traced(
    backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, Collector]]:
    assert backends.nats_url
    collector = Collector()
    prefix = "o" + uuid.uuid4().hex[:10]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(platform_module, "CONTEXTS", TRACED_CONTEXTS)
        platform = Platform(
            workdir=Path(tmp_path_factory.mktemp("traced")),
            nats_url=backends.nats_url,
            subject_prefix=prefix,
            database_urls={c: backends.database_url(c) for c in TRACED_CONTEXTS},
            extra_env={
                "HEARTH_OTEL_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            },
        ).start()
    try:
        yield platform, collector
    finally:
        platform.stop()
        collector.server.shutdown()


async def _token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post(
        "/auth/token", json={"username": username, "password": f"hearth-{username}"}
    )
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


async def test_gateway_members_outbox_nats_and_consumer_share_one_trace(
    traced: tuple[Platform, Collector],
) -> None:
    platform, collector = traced
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as gw:
        operator = await _token(gw, "operator")
        member = await _token(gw, "member")
        r = await gw.post(
            "/api/members/communities",
            json={"name": "Traced circle", "kind": "internal"},
            headers=operator,
        )
        assert r.status_code == 201, r.text
        community = r.json()["id"]

        # The client starts the trace; the gateway continues it and hands its span on.
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        r = await gw.post(
            f"/api/members/communities/{community}/members",
            headers={**member, "traceparent": f"00-{trace_id}-{client_span}-01"},
        )
        assert r.status_code == 201, r.text

    async def whole_trace() -> list[dict[str, Any]]:
        spans = collector.of_trace(trace_id)
        assert any(s["service"] == "hearth-content" and s["name"] == JOINED for s in spans), spans
        # Each process exports on its own schedule: content's consumer span can reach the
        # collector before members' server span (which ends only after the response is sent).
        assert any(s["service"] == "hearth-gateway" for s in spans), spans
        assert any(s["service"] == "hearth-members" and s["kind"] == 2 for s in spans), spans
        return spans

    spans = await eventually(whole_trace, timeout=20)
    gateway = [s for s in spans if s["service"] == "hearth-gateway" and s["kind"] == 2]
    assert len(gateway) == 1, spans
    assert gateway[0]["parent_id"] == client_span  # the gateway continued the client's trace
    assert gateway[0]["name"] == "POST /api/members"
    members = [s for s in spans if s["service"] == "hearth-members"]
    server = [s for s in members if s["kind"] == 2]  # SPAN_KIND_SERVER
    assert len(server) == 1, spans
    assert server[0]["parent_id"] == gateway[0]["span_id"]  # members is the gateway's child
    assert "/communities/{community_id}/members" in server[0]["name"]
    # What left the process names the route, never the raw path (ids, invite tokens, PII).
    attributes = server[0]["attributes"]
    assert attributes["url.path"] == "/communities/{community_id}/members", attributes
    assert community not in str([s["attributes"] for s in spans])
    # The consumer's span is a child of the span that wrote the outbox row (traceparent stored
    # with the row at write time, carried in the NATS message headers by the relay).
    consume = next(s for s in spans if s["service"] == "hearth-content" and s["name"] == JOINED)
    assert consume["kind"] == 5  # SPAN_KIND_CONSUMER
    assert consume["parent_id"] in {s["span_id"] for s in members}


async def test_without_client_context_the_gateway_starts_the_trace(
    traced: tuple[Platform, Collector],
) -> None:
    platform, collector = traced
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=10) as gw:
        operator = await _token(gw, "operator")
        r = await gw.post(
            "/api/members/communities",
            json={"name": "Untraced circle", "kind": "internal"},
            headers=operator,
        )
        assert r.status_code == 201, r.text
        community = r.json()["id"]

    async def created_trace() -> str:
        with collector.lock:
            servers = [
                s
                for s in collector.spans
                if s["service"] == "hearth-members"
                and s["kind"] == 2
                and s["name"].startswith("POST /communities")
                and s["name"].endswith("/communities")
            ]
        assert servers
        return servers[-1]["trace_id"]

    trace_id = await eventually(created_trace, timeout=20)
    assert trace_id != "0" * 32

    async def gateway_root() -> list[dict[str, Any]]:
        return [s for s in collector.of_trace(trace_id) if s["service"] == "hearth-gateway"]

    roots = await eventually(gateway_root, timeout=20)
    assert roots[0]["parent_id"] in ("", "0" * 16)  # the gateway started this trace

    async def consumed() -> bool:
        spans = collector.of_trace(trace_id)
        names = {(s["service"], s["name"]) for s in spans}
        assert ("hearth-content", "consume hearth.members.community.snapshot.v1") in names, names
        return True

    await eventually(consumed, timeout=20)
    assert community


async def test_gateway_and_services_serve_metrics_on_real_processes(
    traced: tuple[Platform, Collector],
) -> None:
    platform, _ = traced
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(f"{platform.gateway}/api/members/communities")  # 401: no token
        await client.get(f"{platform.gateway}/api/nowhere/x")
        gateway = (await client.get(f"{platform.gateway}/metrics")).text
        members = (await client.get(f"{platform.service('members')}/metrics")).text
    # Proxied calls are labelled by context, never by raw path; own routes by template.
    assert 'route="/api/members"' in gateway
    assert 'route="/api/<unknown>"' in gateway
    assert 'route="/auth/token"' in gateway
    assert "/api/members/communities" not in gateway
    for name in (
        "hearth_http_requests_total",
        "hearth_http_request_duration_seconds_bucket",
        "hearth_outbox_pending",
        "hearth_outbox_oldest_pending_age_seconds",
        "hearth_dead_letters",
        "hearth_db_pool_checked_out",
    ):
        assert name in members, name
    assert 'route="/communities/{community_id}/members"' in members
