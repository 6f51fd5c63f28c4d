"""Every counter bump publishes metrics.community.measured.v1; the catalogue names the metrics."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, get_args

from hearth_metrics.app import definition as metrics_definition
from hearth_metrics.counters.consumers import community_counts
from hearth_metrics.counters.events import CommunityMeasured, MetricName
from hearth_metrics.counters.models import CATALOGUE, Counter
from servicekit.events import Envelope
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"
MEASURED = "hearth.metrics.community.measured.v1"


async def measurements(metrics: RunningService, broker: Any, community_id: uuid.UUID) -> list:
    """The measured events of one community on NATS, once the relay has published everything."""

    async def drained() -> bool:
        pending, _ = await metrics.runtime.relay.backlog()
        return pending == 0

    await eventually(drained)
    found: list[Envelope] = await broker.read(f"{broker.prefix}.metrics.community.measured.v1")
    return [e for e in found if e.data["community_id"] == str(community_id)]


async def test_a_counted_fact_publishes_the_new_value(
    metrics: RunningService, broker: Any, identities: Identities
) -> None:
    community_id = uuid.uuid4()
    first = broker.post_submitted(community_id)
    await broker.publish(first)
    await broker.publish(broker.post_submitted(community_id))
    await broker.publish(broker.post_published(community_id))
    # The same event again past JetStream's duplicate window: the inbox drops it, and with it
    # the measurement its transaction would have recorded.
    await broker.publish(first, msg_id=f"{first.id}-again")
    stats = metrics.runtime.consumers[0].stats

    async def all_seen() -> bool:
        return stats["handled"] + stats["duplicates"] >= 4

    await eventually(all_seen)
    assert stats["duplicates"] >= 1

    got = await measurements(metrics, broker, community_id)
    assert all(e.type == MEASURED and e.source == "/hearth/metrics" for e in got)
    assert all(e.subject == str(community_id) for e in got)
    by_metric: dict[str, list[float]] = {}
    for e in sorted(got, key=lambda e: e.data["measured_at"]):
        by_metric.setdefault(e.data["metric"], []).append(e.data["value"])
    assert by_metric == {"posts_submitted": [1.0, 2.0], "posts_published": [1.0]}
    # The payload is the published contract.
    for e in got:
        CommunityMeasured.model_validate(e.data)
    # The value published is the counter's value.
    r = await metrics.client.get(
        f"/communities/{community_id}/counts", headers=identities.headers(None, "operator")
    )
    assert (r.json()["posts_submitted"], r.json()["posts_published"]) == (2, 1)


async def test_concurrent_bumps_publish_each_value_once_in_time_order(
    any_database_url: str, launch: Any, broker: Any
) -> None:
    metrics = await launch(metrics_definition, database_url=any_database_url)
    rt = metrics.runtime
    community_id = uuid.uuid4()
    envelopes = [
        broker.envelope("hearth.members.member.joined.v1", community_id, user_id=str(uuid.uuid4()))
        for _ in range(8)
    ]
    results = await asyncio.gather(
        *(community_counts.handle(rt.db, rt.tables, e) for e in envelopes)
    )
    assert all(results)
    got = await measurements(metrics, broker, community_id)
    # RETURNING gives each bump its own value: 1..8, none lost, none repeated ...
    by_value = sorted(got, key=lambda e: e.data["value"])
    assert [e.data["value"] for e in by_value] == [float(n) for n in range(1, 9)]
    # ... and a larger value never carries an earlier measured_at (members keeps the newest).
    times = [CommunityMeasured.model_validate(e.data).measured_at for e in by_value]
    assert times == sorted(times)


async def test_the_catalogue_lists_every_metric_for_any_signed_in_caller(
    metrics: RunningService, identities: Identities
) -> None:
    r = await metrics.client.get("/catalogue")
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    r = await metrics.client.get("/catalogue", headers={"x-hearth-identity": "forged"})
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    for roles in (("member",), ("operator",), ("admin",)):
        r = await metrics.client.get("/catalogue", headers=identities.headers(None, *roles))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["next_cursor"] is None
        names = [m["name"] for m in body["items"]]
        assert names == ["joins", "posts_submitted", "posts_published", "registrations"]
        assert all(m["description"] for m in body["items"])


def test_the_catalogue_the_counters_and_the_event_contract_agree() -> None:
    names = [c.value for c in Counter]
    assert list(get_args(MetricName)) == names == [c.value for c in CATALOGUE]
    schema = CommunityMeasured.model_json_schema()
    assert schema["properties"]["metric"]["enum"] == names
    assert schema["properties"]["value"]["type"] == "number"
