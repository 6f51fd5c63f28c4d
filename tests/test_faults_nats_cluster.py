"""Faults on real NATS processes, checked with a ledger of every acknowledged write.

The Jepsen ledger method: every post the gateway acknowledged (2xx, its id recorded) must end
up, exactly once, in every context that consumes it, read from the consumers' own databases
(never from logs): moderation holds one screening per post, content holds the post screened
(no longer pending), metrics counted it once, and each consumer's inbox holds the producer's
event once. Meanwhile NATS is SIGKILLed under the writes:

- a three-node JetStream cluster, streams and durables with 3 replicas: a non-leader node
  killed and restarted from its store, then the content stream's leader killed and restarted;
- a single nats-server killed mid-stream and restarted from its store on the same port.

WRITES is 300 by default, not the issue's 5,000, and concurrency does not change that: the
writes are already concurrent (HEARTH_FAULT_CONCURRENCY, default 8) and are not the limit; the
consumer chain is. Each post costs about ten commits across four databases (post + search index
+ outbox; screening + outbox; the verdict applied + outbox; counts and measures; members' points
and goal read models), and moderation's screening durable settles some 5 posts a second on 2
shared cores at load average ~20. Measured there: 1,000 writes were acknowledged in 63-65 s (at 8
or 16 at a time; 16 also ran the shared PostgreSQL out of connections, 503s) but 125 s after
the first write only 582 were screened, the rest still pending on `moderation__screening`; 400
writes took 26 s + 80 s to settle (cluster) and 50 s + 69 s (single server), 170-195 s per
test. So 5,000 would take some 20 minutes; 300 keeps each test near 90 s at load ~10. The faults
land while the relays and consumers are busy either way; `HEARTH_FAULT_WRITES=5000` runs the
full count (the settle wait, HEARTH_FAULT_SETTLE_SECONDS, grows with it), and a failed settle
prints how far each stage got and every durable's backlog.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import text

from servicekit.db import create_engine
from servicekit.testing.backends import (
    Backends,
    NatsCluster,
    free_port,
    nats_server_binary,
    start_nats_cluster,
)
from servicekit.testing.harness import eventually
from servicekit.testing.platform import CONTEXTS, Platform

WRITES = int(os.environ.get("HEARTH_FAULT_WRITES", "300"))
# The consumers settle ~5 posts a second on 2 shared loaded cores: the wait grows with the count.
SETTLE_SECONDS = float(os.environ.get("HEARTH_FAULT_SETTLE_SECONDS") or max(120.0, WRITES / 5))
pytestmark = pytest.mark.timeout(300 + int(2 * SETTLE_SECONDS))
CONCURRENCY = int(os.environ.get("HEARTH_FAULT_CONCURRENCY", "8"))
SUBMITTED = "hearth.content.post.submitted.v1"
SCREENED = "hearth.moderation.screening.completed.v1"
PUBLISHED = "hearth.content.post.published.v1"


@dataclass
class Ledger:
    """Every write sent, and the id of every one the gateway acknowledged."""

    acked: list[uuid.UUID] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    sent: int = 0


@contextmanager
def platform_on(backends: Backends, workdir: Path, nats_url: str) -> Iterator[Platform]:
    """The whole platform on this NATS (one URL or a cluster's, comma-separated)."""
    running = Platform(
        workdir=workdir,
        nats_url=nats_url,
        subject_prefix="f" + uuid.uuid4().hex[:10],
        database_urls={c: backends.database_url(c) for c in CONTEXTS},
        extra_env={"HEARTH_STREAM_REPLICAS": "3"} if "," in nats_url else {},
    ).start(timeout=180)
    try:
        yield running
    finally:
        running.stop()


async def token(gw: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await gw.post("/auth/token", json={"username": username, "password": f"hearth-{username}"})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


async def community_with_writers(gw: httpx.AsyncClient) -> tuple[str, list[dict[str, str]]]:
    """A community two members joined, once content's read model lets them post."""
    operator = await token(gw, "operator")
    r = await gw.post(
        "/api/members/communities", json={"name": "Ledger", "kind": "hybrid"}, headers=operator
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    writers = [await token(gw, "member"), await token(gw, "member2")]
    for who in writers:
        r = await gw.post(f"/api/members/communities/{community}/members", headers=who)
        assert r.status_code == 201, r.text

    async def can_post(who: dict[str, str]) -> bool:
        r = await gw.get(f"/api/content/communities/{community}/posts", headers=who)
        return r.status_code == 200

    for who in writers:
        await eventually(lambda who=who: can_post(who), timeout=30)
    return community, writers


async def write(
    gw: httpx.AsyncClient, community: str, writers: list[dict[str, str]], ledger: Ledger
) -> None:
    """WRITES posts, CONCURRENCY at a time; the acknowledged ones go into the ledger."""
    numbers = iter(range(WRITES))

    async def worker() -> None:
        for n in numbers:
            ledger.sent += 1
            try:
                r = await gw.post(
                    f"/api/content/communities/{community}/posts",
                    json={"title": f"Ledger {n}", "body": f"Entry {n} of the ledger."},
                    headers=writers[n % len(writers)],
                )
            except httpx.HTTPError as exc:
                ledger.refused[type(exc).__name__] += 1
                continue
            if r.status_code == 201:
                ledger.acked.append(uuid.UUID(r.json()["id"]))
            else:
                ledger.refused[str(r.status_code)] += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def acked_reach(ledger: Ledger, count: int, writing: asyncio.Task[None]) -> None:
    """Wait until `count` writes are acknowledged; fail if writing ends first (no fault then)."""
    await eventually(lambda: _reached(ledger, count, writing), timeout=120, interval=0.02)


async def _reached(ledger: Ledger, count: int, writing: asyncio.Task[None]) -> bool:
    if len(ledger.acked) >= count:
        return True
    if writing.done():
        raise RuntimeError(f"writing stopped at {len(ledger.acked)} acknowledged writes")
    return False


async def stream_leader(url: str, stream: str) -> str:
    """The server name leading a stream, from JetStream's own stream info."""
    nc = await nats.connect(servers=url.split(","), connect_timeout=2)
    try:
        for _ in range(100):
            try:
                info = await nc.jetstream(timeout=2).stream_info(stream)
            except Exception:
                await asyncio.sleep(0.1)
                continue
            if info.cluster and info.cluster.leader:
                return info.cluster.leader
            await asyncio.sleep(0.1)
    finally:
        await nc.close()
    raise AssertionError(f"stream {stream} has no leader")


# --- Reading the consumers' own databases ---------------------------------------------------


async def rows(url: str, sql: str) -> list[Any]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).all())
    finally:
        await engine.dispose()


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


async def outbox_ids(url: str, event_type: str, key: str) -> dict[uuid.UUID, uuid.UUID]:
    """The producer's own record: event id of each `event_type`, by the payload's `key` id."""
    found = await rows(url, f"SELECT event_id, data FROM outbox WHERE event_type = '{event_type}'")
    return {as_uuid(as_dict(data)[key]): as_uuid(event_id) for event_id, data in found}


async def inbox_by_consumer(url: str, event_type: str) -> dict[str, Counter[uuid.UUID]]:
    """Each consumer's handled events of one type, counted (the inbox row is the effect's twin)."""
    found = await rows(
        url, f"SELECT consumer, event_id FROM inbox WHERE event_type = '{event_type}'"
    )
    seen: dict[str, Counter[uuid.UUID]] = {}
    for consumer, event_id in found:
        seen.setdefault(consumer, Counter())[as_uuid(event_id)] += 1
    return seen


async def screened_so_far(platform: Platform) -> int:
    """How many screenings moderation holds now (at a kill: the consumers are mid-stream)."""
    [(count,)] = await rows(platform.database_urls["moderation"], "SELECT count(*) FROM screenings")
    return int(count)


async def check_ledger(platform: Platform, community: str, ledger: Ledger) -> dict[str, Any]:
    """Every acknowledged post's effect in every consuming context, exactly once; else raise."""
    db = platform.database_urls
    acked = set(ledger.acked)
    assert len(acked) == len(ledger.acked), "the gateway acknowledged one id twice"

    # Content: the post exists and content applied moderation's verdict (it left pending).
    # Fresh databases per test: every row is this test's (SQLite keeps UUIDs as bare hex).
    posts = {as_uuid(i): s for i, s in await rows(db["content"], "SELECT id, status FROM posts")}
    assert acked <= set(posts), f"{len(acked - set(posts))} acknowledged posts missing in content"
    pending = [p for p in acked if posts[p] == "pending_review"]
    assert not pending, f"{len(pending)} posts never got their screening applied"

    # Moderation: one screening per post.
    screened = Counter(
        as_uuid(t)
        for (t,) in await rows(
            db["moderation"], "SELECT target_id FROM screenings WHERE target_type = 'post'"
        )
    )
    assert acked <= set(screened), f"{len(acked - set(screened))} posts never screened"
    assert all(screened[p] == 1 for p in acked), "a post screened twice"

    # Every consumer's inbox holds each producer event of the ledger exactly once.
    submitted = await outbox_ids(db["content"], SUBMITTED, "post_id")
    screenings = await outbox_ids(db["moderation"], SCREENED, "target_id")
    published_ids = await outbox_ids(db["content"], PUBLISHED, "post_id")
    published = {p for p in acked if posts[p] == "published"}
    assert set(published_ids) >= published
    wanted = {
        ("moderation", SUBMITTED): {submitted[p] for p in acked},
        ("metrics", SUBMITTED): {submitted[p] for p in acked},
        ("content", SCREENED): {screenings[p] for p in acked},
        ("metrics", PUBLISHED): {published_ids[p] for p in published},
    }
    for (context, event_type), events in wanted.items():
        inboxes = await inbox_by_consumer(db[context], event_type)
        assert inboxes, f"no consumer in {context} handled {event_type}"
        for consumer, handled in inboxes.items():
            missing = events - set(handled)
            assert not missing, f"{consumer}: {len(missing)} of {event_type} never handled"
            assert all(handled[e] == 1 for e in events), f"{consumer}: {event_type} twice"

    # Metrics' counters: each event counted once, so the totals are exact (never above).
    [(count_submitted, count_published)] = await rows(
        db["metrics"], "SELECT posts_submitted, posts_published FROM community_counts"
    )
    assert (count_submitted, count_published) == (len(acked), len(published)), (
        count_submitted,
        count_published,
        len(acked),
        len(published),
    )
    for context in CONTEXTS:
        [(dead,)] = await rows(db[context], "SELECT count(*) FROM dead_letters")
        assert dead == 0, f"{context} dead-lettered {dead} events"
    return {"acked": len(acked), "published": len(published)}


async def settled(platform: Platform, community: str, ledger: Ledger) -> dict[str, Any]:
    """The ledger check, retried until it holds (bounded): consumers catch up eventually."""
    try:
        return await eventually(
            lambda: check_ledger(platform, community, ledger), timeout=SETTLE_SECONDS
        )
    except AssertionError as exc:
        # Say where the chain stopped: each stage's count and every durable's backlog.
        raise AssertionError(f"{exc}\n{await diagnosis(platform, ledger)}") from None


async def diagnosis(platform: Platform, ledger: Ledger) -> str:
    """Per stage, how many acknowledged posts got that far; per durable, what it still holds."""
    db, acked = platform.database_urls, {str(p) for p in ledger.acked}
    posts = {
        str(as_uuid(i)): s for i, s in await rows(db["content"], "SELECT id, status FROM posts")
    }
    screened = {
        str(as_uuid(t))
        for (t,) in await rows(
            db["moderation"], "SELECT target_id FROM screenings WHERE target_type = 'post'"
        )
    }
    pending = {p for p in acked if posts.get(p) == "pending_review"}
    lines = [
        f"acked {len(acked)}, in content {len(acked & set(posts))},"
        f" screened {len(acked & screened)}, pending in content {len(pending)}"
        f" (of which screened {len(pending & screened)})"
    ]
    nc = await nats.connect(servers=platform.nats_url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        for info in await js.streams_info():
            if not (info.config.name or "").startswith(platform.subject_prefix.upper() + "_"):
                continue
            for c in await js.consumers_info(info.config.name):
                lines.append(
                    f"{info.config.name}/{c.name}: pending {c.num_pending}, ack pending"
                    f" {c.num_ack_pending}, redelivered {c.num_redelivered},"
                    f" delivered {c.delivered.stream_seq if c.delivered else None},"
                    f" stream last {info.state.last_seq}"
                )
    except Exception as exc:  # the diagnosis must not hide the failure it explains
        lines.append(f"consumer info unavailable: {exc!r}")
    finally:
        await nc.close()
    return "\n".join(lines)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    running = start_nats_cluster(tmp_path / "nats")
    yield running
    running.stop()


async def test_cluster_node_and_stream_leader_killed_mid_stream_loses_nothing(
    backends: Backends, cluster: NatsCluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    with platform_on(backends, tmp_path / "platform", cluster.url) as platform:
        up = time.monotonic()
        async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as gw:
            community, writers = await community_with_writers(gw)
            stream = f"{platform.subject_prefix.upper()}_CONTENT"
            ledger = Ledger()
            writing = asyncio.create_task(write(gw, community, writers, ledger))
            killed = []

            # A third in: SIGKILL a node that does not lead content's stream, restart it.
            await acked_reach(ledger, WRITES // 3, writing)
            replicas, durables = await replicas_of(cluster.url, stream)
            assert replicas == 3 and durables, (replicas, durables)
            assert set(durables.values()) == {3}, durables  # consumers' state replicated too
            leader = await stream_leader(cluster.url, stream)
            follower = next(n.name for n in cluster.nodes if n.name != leader)
            cluster.kill(follower)
            killed.append((follower, len(ledger.acked), await screened_so_far(platform)))
            await asyncio.sleep(1.0)
            cluster.start_node(cluster.node(follower))
            await asyncio.to_thread(cluster.wait_healthy, [follower])

            # Two thirds in: SIGKILL the stream's leader (replicas current again), restart it.
            await acked_reach(ledger, 2 * WRITES // 3, writing)
            leader = await stream_leader(cluster.url, stream)
            cluster.kill(leader)
            killed.append((leader, len(ledger.acked), await screened_so_far(platform)))
            await asyncio.sleep(1.0)
            cluster.start_node(cluster.node(leader))
            await asyncio.to_thread(cluster.wait_healthy, [leader])
            await writing
            wrote = time.monotonic()

            # The write path never waits on NATS (the outbox does): every write is acknowledged.
            assert not ledger.refused and len(ledger.acked) == WRITES, ledger.refused
            # Each kill hit the consumers in flight, not a finished stream (the first one the
            # writes too; the leader's lookup can outlast the last writes).
            assert killed[0][1] < WRITES, killed
            assert all(screened < WRITES for _, _, screened in killed), killed
            print(f"\ncluster: {WRITES} writes acknowledged in {wrote - up:.1f}s, settling")
            result = await settled(platform, community, ledger)
    print(
        f"\ncluster ledger: {result} killed={killed} platform up {up - started:.1f}s,"
        f" writes {wrote - up:.1f}s,"
        f" settled {time.monotonic() - wrote:.1f}s"
    )


async def replicas_of(url: str, stream: str) -> tuple[int, dict[str, int]]:
    """A stream's replica count and, per durable on it, how many servers hold it."""
    nc = await nats.connect(servers=url.split(","), connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        for attempt in range(10):  # the JetStream API answers once the stream has a leader
            try:
                info = await js.stream_info(stream)
                consumers = await js.consumers_info(stream)
                break
            except nats.errors.TimeoutError:
                if attempt == 9:
                    raise
                await asyncio.sleep(0.5)
        durables = {
            str(c.name): 1 + len((c.cluster.replicas or []) if c.cluster else []) for c in consumers
        }
        return int(info.config.num_replicas or 1), durables
    finally:
        await nc.close()


async def test_single_server_killed_mid_stream_restarts_from_its_store_losing_nothing(
    backends: Backends, tmp_path: Path
) -> None:
    import subprocess

    port = free_port()
    store = tmp_path / "nats"
    command = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]

    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    server = serve()
    try:
        started = time.monotonic()
        url = f"nats://127.0.0.1:{port}"
        await eventually(lambda: _answers(url), timeout=15)
        with platform_on(backends, tmp_path / "platform", url) as platform:
            up = time.monotonic()
            async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as gw:
                community, writers = await community_with_writers(gw)
                ledger = Ledger()
                writing = asyncio.create_task(write(gw, community, writers, ledger))
                await acked_reach(ledger, WRITES // 2, writing)
                server.kill()
                server.wait(10)
                at = len(ledger.acked), await screened_so_far(platform)
                assert not writing.done() and at[1] < WRITES, "the kill came after the stream"
                await asyncio.sleep(2.0)  # writes go on while the broker is away
                server = serve()
                await writing
                wrote = time.monotonic()
                assert not ledger.refused and len(ledger.acked) == WRITES, ledger.refused
                result = await settled(platform, community, ledger)
        print(
            f"\nsingle-server ledger: {result} killed at {at}, platform up {up - started:.1f}s,"
            f" writes {wrote - up:.1f}s,"
            f" settled {time.monotonic() - wrote:.1f}s"
        )
    finally:
        server.kill()
        server.wait(10)


async def _answers(url: str) -> bool:
    try:
        nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False)
    except Exception:
        return False
    await nc.close()
    return True
