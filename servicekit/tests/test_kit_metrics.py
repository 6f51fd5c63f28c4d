"""Consumer lag figures read from real JetStream, for processes without a ServiceRuntime."""

from __future__ import annotations

from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from servicekit.events import stream_name
from servicekit.metrics import ConsumerLagCollector
from servicekit.testing.harness import Broker, relay_envelope

DURABLE = "tests__lag"


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out[(sample.name, sample.labels.get("consumer", ""))] = sample.value
    return out


async def test_lag_of_a_durable_consumer_is_read_from_jetstream_and_cached(
    nats_client: Any, broker: Broker, subject_prefix: str
) -> None:
    for n in range(3):
        await broker.publish(relay_envelope("hearth.members.member.joined.v1", n=n))
    stream = stream_name(subject_prefix, "members")
    js = nats_client.jetstream()
    await js.add_consumer(
        stream, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT)
    )
    nats_up = True
    collector = ConsumerLagCollector(
        "gateway", lambda: js if nats_up else None, [(DURABLE, stream), ("missing", stream)]
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    await collector.refresh()
    samples = _samples(registry)
    assert samples[("hearth_consumer_pending", DURABLE)] == 3  # nobody consumed yet
    assert samples[("hearth_consumer_ack_pending", DURABLE)] == 0
    assert ("hearth_consumer_pending", "missing") not in samples  # not bound: no made-up figure
    # Two delivered, not acknowledged: in flight. Within the cache's 5 s the figure stays put.
    sub = await js.pull_subscribe_bind(DURABLE, stream)
    await sub.fetch(2, timeout=5)
    await collector.refresh()
    assert _samples(registry)[("hearth_consumer_pending", DURABLE)] == 3
    collector._cache.clear()  # the TTL has passed
    nats_up = False  # and NATS is away: nothing to read, nothing reported for a new reader
    await collector.refresh()
    assert ("hearth_consumer_pending", DURABLE) not in _samples(registry)
    nats_up = True
    await collector.refresh()
    samples = _samples(registry)
    assert samples[("hearth_consumer_pending", DURABLE)] == 1
    assert samples[("hearth_consumer_ack_pending", DURABLE)] == 2
    await sub.unsubscribe()
