"""OpenTelemetry tracing: OTLP when configured, console for debugging, otherwise in-process only.

Even with no exporter a real TracerProvider is installed, so trace context still flows from the
gateway through HTTP (FastAPI's native server spans), the outbox and NATS to consumers.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

log = logging.getLogger(__name__)
_provider: TracerProvider | None = None


def setup_tracing(service_name: str, exporter: str = "none") -> TracerProvider:
    """Install the process's tracer provider once; later calls return the same provider."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def add_span_processor(processor: SpanProcessor) -> None:
    """Attach a processor (tests use an in-memory exporter)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(processor)
