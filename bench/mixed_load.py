"""Issue 15's load test: a fixed-arrival-rate mixed workload through the gateway, with a ledger.

Open loop: request i is due at start + i/rate whatever the earlier ones are doing, and its
latency is measured from that due time, not from when it was sent, so a stall (in the
platform or in this generator) shows in the percentiles instead of quietly slowing the
arrivals down (coordinated omission). The mix, from several members with real tokens:
about two thirds reads (post lists, post pages, comment pages, activity lists and pages,
notifications), the rest posts, comments, reactions, activity registrations and reports.

Every acknowledged write goes into a ledger. When the load stops, the JetStream consumers of
the platform's streams must drain (num_pending + num_ack_pending back to 0) within LAG_LIMIT
seconds, and then every write's effect must be in the consuming contexts exactly once, read
through the gateway from their own APIs: content applied moderation's screening to each post;
metrics' counts (posts submitted and published, registrations) and measures (comments,
reactions, reports) grew by exactly the ledger's numbers; and each member's points ledger in
members holds one entry per published post and per comment of theirs, no source event twice.

    python bench/mixed_load.py          # not standalone: run by `make bench BENCH=load`
                                        # and by tests/test_load_ledger.py
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import nats

LAG_LIMIT = 10.0  # seconds the issue allows for consumer lag to return to zero
PASSWORD = "load-ledger-password"
# Weights of the mix, per 100 requests: reads first (about two thirds), then writes.
MIX: dict[str, int] = {
    "list_posts": 20,
    "read_post": 18,
    "read_comments": 10,
    "list_activities": 7,
    "read_activity": 6,
    "notifications": 5,
    "post": 6,
    "comment": 10,
    "reaction": 9,
    "registration": 6,
    "report": 3,
}
WRITES = ("post", "comment", "reaction", "registration", "report")


@dataclass(frozen=True)
class LoadConfig:
    """How hard and how long; every knob has an environment variable (see `from_env`)."""

    rate: float = 50.0  # requests per second, fixed
    seconds: float = 60.0
    users: int = 20
    seed_posts: int = 30
    activities: int = 10
    seed: int = 15
    settle_timeout: float = 60.0

    @classmethod
    def from_env(cls, prefix: str, **defaults: Any) -> LoadConfig:
        """A config from `<prefix>RATE`, `SECONDS`, `USERS`, `SEED_POSTS`, `ACTIVITIES`, `SEED`."""
        base = cls(**defaults)
        values: dict[str, Any] = {}
        for name, kind in (
            ("rate", float),
            ("seconds", float),
            ("users", int),
            ("seed_posts", int),
            ("activities", int),
            ("seed", int),
        ):
            raw = os.environ.get(prefix + name.upper())
            values[name] = kind(raw) if raw else getattr(base, name)
        return cls(**{**base.__dict__, **values})


@dataclass
class Member:
    """A load user: its account id and bearer header."""

    id: str
    headers: dict[str, str]


@dataclass
class Ledger:
    """Every acknowledged write, with whom it belongs to."""

    posts: dict[str, int] = field(default_factory=dict)  # post id → member index
    comments: list[tuple[str, str, int]] = field(default_factory=list)  # (comment, post, member)
    reactions: list[tuple[str, int, str]] = field(default_factory=list)  # (post, member, kind)
    registrations: list[tuple[str, int]] = field(default_factory=list)  # (activity, member)
    reports: list[tuple[str, int]] = field(default_factory=list)  # (report id, member)

    def sizes(self) -> dict[str, int]:
        """How many writes of each kind were acknowledged."""
        return {
            "posts": len(self.posts),
            "comments": len(self.comments),
            "reactions": len(self.reactions),
            "registrations": len(self.registrations),
            "reports": len(self.reports),
        }


@dataclass
class Result:
    """What one run measured; `problems` is empty when every promise held."""

    config: LoadConfig
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    by_op: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    max_send_lag_ms: float = 0.0  # how late the generator itself sent (should stay ~0)
    wall_seconds: float = 0.0
    setup_seconds: float = 0.0
    max_lag_during: int = 0
    lag_drain_seconds: float | None = None
    ledger: dict[str, int] = field(default_factory=dict)
    ledger_seconds: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        """Failed requests as a percentage of those sent."""
        return 100.0 * sum(self.errors.values()) / self.sent if self.sent else 100.0

    @property
    def achieved_rate(self) -> float:
        """Requests completed per second of the scheduled run."""
        return self.ok / self.config.seconds

    def percentile(self, q: float) -> float:
        """The q-quantile (0..1) of the latencies, nearest rank."""
        s = sorted(self.latencies_ms)
        return s[min(len(s) - 1, int(len(s) * q))] if s else float("nan")

    def summary(self) -> str:
        """The run in a few lines."""
        lines = [
            f"mixed load: {self.config.rate:g} req/s scheduled for {self.config.seconds:g} s,"
            f" {self.config.users} members; load average {os.getloadavg()[0]:.2f}",
            f"  sent {self.sent}, ok {self.ok}, errors {dict(self.errors) or 0}"
            f" ({self.error_rate:.2f}%), achieved {self.achieved_rate:.1f} req/s"
            f" (last response at {self.wall_seconds:.1f} s; setup took {self.setup_seconds:.1f} s)",
            f"  latency from the scheduled time: p50 {self.percentile(0.5):.1f} ms,"
            f" p95 {self.percentile(0.95):.1f} ms, p99 {self.percentile(0.99):.1f} ms,"
            f" max {max(self.latencies_ms, default=float('nan')):.1f} ms;"
            f" generator send lag max {self.max_send_lag_ms:.1f} ms",
            f"  mix: {dict(sorted(self.by_op.items()))}",
            f"  consumer lag: max {self.max_lag_during} pending during the load,"
            f" back to 0 in {_s(self.lag_drain_seconds)} after it (limit {LAG_LIMIT:g} s)",
            f"  ledger: {self.ledger} acknowledged writes,"
            f" {'exact' if not self.problems else 'NOT exact'}"
            f" (held after {_s(self.ledger_seconds)})",
        ]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


class Client:
    """One aiohttp session to the gateway; every call returns (status, parsed body or None)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, json: Any = None
    ) -> tuple[int, Any]:
        """Send one request; a body that is not JSON comes back as None."""
        async with self.session.request(
            method, self.base + path, headers=headers, json=json
        ) as response:
            raw = await response.read()
            try:
                body = await response.json(content_type=None) if raw else None
            except ValueError:
                body = None
            return response.status, body

    async def expect(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> Any:
        """A setup call that must succeed."""
        status, body = await self.call(method, path, headers, json)
        if status not in ok:
            raise RuntimeError(f"{method} {path}: {status} {body}")
        return body

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float, interval: float = 0.2
) -> Any:
    """Retry `check` until it returns a truthy value; the last exception or falsy result fails."""
    deadline = time.monotonic() + within
    while True:
        try:
            value = await check()
            if value:
                return value
            last: BaseException = AssertionError(f"still {value!r}")
        except (AssertionError, RuntimeError, aiohttp.ClientError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise last
        await asyncio.sleep(interval)


async def bearer(client: Client, username: str, password: str) -> dict[str, str]:
    """A real token from the gateway's token endpoint."""
    body = await client.expect(
        "POST", "/auth/token", json={"username": username, "password": password}
    )
    return {"authorization": f"Bearer {body['access_token']}"}


# --- Consumer lag, from JetStream's own consumer info ----------------------------------------


class Lag:
    """Pending and unacknowledged messages of every durable on the platform's streams."""

    def __init__(self, nats_url: str, subject_prefix: str) -> None:
        self.url = nats_url
        self.stream_prefix = subject_prefix.upper() + "_"
        self.nc: Any = None

    async def open(self) -> None:
        """Connect to NATS (a cluster's URLs are comma-separated)."""
        self.nc = await nats.connect(servers=self.url.split(","), connect_timeout=5)

    async def close(self) -> None:
        """Disconnect."""
        if self.nc is not None:
            await self.nc.close()

    async def now(self) -> dict[str, int]:
        """num_pending + num_ack_pending per `stream/durable`."""
        js = self.nc.jetstream(timeout=5)
        out: dict[str, int] = {}
        for info in await js.streams_info():
            name = info.config.name or ""
            if not name.startswith(self.stream_prefix):
                continue
            for c in await js.consumers_info(name):
                out[f"{name}/{c.name}"] = int(c.num_pending or 0) + int(c.num_ack_pending or 0)
        return out

    async def drained(self, within: float) -> float | None:
        """Seconds until every durable is at 0 twice in a row (None: not `within` seconds)."""
        start = time.monotonic()
        zeros = 0
        while time.monotonic() - start < within:
            zeros = zeros + 1 if not any((await self.now()).values()) else 0
            if zeros >= 2:
                return time.monotonic() - start
            await asyncio.sleep(0.1)
        return None


# --- The run -----------------------------------------------------------------------------------


@dataclass
class World:
    """What the setup made: the community, members, seed posts and activities."""

    community: str
    staff: dict[str, str]
    members: list[Member]
    posts: list[str]
    activities: list[str]
    baseline: dict[str, int]


async def setup(client: Client, cfg: LoadConfig) -> World:
    """A community, `users` accounts that joined it, published seed posts, open activities."""
    admin, staff, author = [
        await eventually(lambda u=u: bearer(client, u, f"hearth-{u}"), within=60)
        for u in ("admin", "operator", "member")
    ]
    run = uuid.uuid4().hex[:8]
    community = (
        await client.expect(
            "POST",
            "/api/members/communities",
            staff,
            {"name": f"Load {run}", "kind": "customer"},
        )
    )["id"]
    c = f"/communities/{community}"
    # Reports pile up on the seed posts; a hidden post would refuse the comments aimed at it.
    await eventually(
        lambda: client.expect(
            "PATCH", f"/api/moderation{c}/reports/policy", staff, {"hide_threshold": 1000}
        ),
        within=30,
    )

    # Password hashing is deliberately slow: a few accounts at a time, and a login the gateway
    # could not check in time (503 on a loaded machine) is tried again; setup is not measured.
    hashing = asyncio.Semaphore(4)

    async def account(i: int) -> Member:
        login = f"load-{run}-{i}"
        async with hashing:
            body = await client.expect(
                "POST",
                "/api/members/accounts",
                admin,
                {"login": login, "password": PASSWORD, "name": f"Load member {i}"},
            )
            headers = await eventually(lambda: bearer(client, login, PASSWORD), within=60)
        await client.expect("POST", f"/api/members{c}/members", headers)
        return Member(str(body["id"]), headers)

    members = list(await asyncio.gather(*(account(i) for i in range(cfg.users))))
    await client.expect("POST", f"/api/members{c}/members", author)

    async def content_knows(headers: dict[str, str]) -> bool:
        return (await client.call("GET", f"/api/content{c}/posts", headers))[0] == 200

    for h in [author] + [m.headers for m in members]:
        await eventually(lambda h=h: content_knows(h), within=60)

    async def seed_post(n: int) -> str:
        body = {"title": f"Seed {n}", "body": f"Seed post {n} of run {run}.", "format": "text"}
        return str((await client.expect("POST", f"/api/content{c}/posts", author, body))["id"])

    posts = list(await asyncio.gather(*(seed_post(n) for n in range(cfg.seed_posts))))
    starts = datetime.now(UTC) + timedelta(days=3)
    spec = {
        "community_id": community,
        "kind": "meetup",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 100_000,
    }

    async def activity(n: int) -> str:
        status, body = await client.call(
            "POST", "/api/events/activities", staff, {**spec, "title": f"Load meetup {n}"}
        )
        return body["id"] if status == 201 else ""

    # The first waits for events to learn of the community; the others follow at once.
    first = await eventually(lambda: activity(0), within=60)
    activities = [first, *await asyncio.gather(*(activity(n) for n in range(1, cfg.activities)))]
    if not all(activities):
        raise RuntimeError("an activity could not be created")

    async def events_knows(headers: dict[str, str]) -> bool:
        status, _ = await client.call(
            "GET", f"/api/events/activities?community_id={community}", headers
        )
        return status == 200

    for m in members:
        await eventually(lambda m=m: events_knows(m.headers), within=60)

    async def seeds_settled() -> bool:
        # Published in content and known to metrics: comments and reports can aim at them.
        counts = await client.expect("GET", f"/api/metrics{c}/counts", staff)
        return bool(counts["posts_published"] == cfg.seed_posts)

    await eventually(seeds_settled, within=60)
    return World(
        community, staff, members, posts, activities, await figures(client, community, staff)
    )


async def figures(client: Client, community: str, staff: dict[str, str]) -> dict[str, int]:
    """The consumers' totals the ledger is checked against (metrics, through the gateway)."""
    base = f"/api/metrics/communities/{community}"
    counts = await client.expect("GET", f"{base}/counts", staff)
    content = await client.expect("GET", f"{base}/measures/content?top=0", staff)
    moderation = await client.expect("GET", f"{base}/measures/moderation", staff)
    return {
        "posts_submitted": counts["posts_submitted"],
        "posts_published": counts["posts_published"],
        "registrations": counts["registrations"],
        "comments": content["comments"],
        "reactions": content["reactions"],
        "reports": moderation["reports"],
    }


class Workload:
    """Chooses and sends each request; acknowledged writes go into the ledger."""

    def __init__(self, client: Client, world: World, cfg: LoadConfig) -> None:
        self.client, self.world, self.cfg = client, world, cfg
        self.rng = random.Random(cfg.seed)
        self.ledger = Ledger()
        users, posts = range(len(world.members)), world.posts
        # Each reaction, registration and report is a first one: a repeat would be a no-op
        # (200, no event) and the ledger could not tell it from a lost one.
        self.reactions = [
            (p, u, k) for p in posts for u in users for k in ("like", "thanks", "insightful")
        ]
        self.registrations = [(a, u) for a in world.activities for u in users]
        self.reports = [(p, u) for p in posts for u in users]
        for pool in (self.reactions, self.registrations, self.reports):
            self.rng.shuffle(pool)
        self.ops = list(MIX)
        self.weights = [MIX[o] for o in self.ops]

    def choose(self) -> tuple[str, Callable[[], Awaitable[tuple[int, Any]]], Callable[[Any], None]]:
        """The next request: its op name, how to send it, and what to record if acknowledged."""
        rng, w, c = self.rng, self.world, f"/communities/{self.world.community}"
        op = rng.choices(self.ops, self.weights)[0]
        pool = {"reaction": self.reactions, "registration": self.registrations}.get(op)
        if (pool is not None and not pool) or (op == "report" and not self.reports):
            op = "read_post"  # a pool ran out: a read instead (only in very long runs)
        u = rng.randrange(len(w.members))
        h = w.members[u].headers
        post = rng.choice(w.posts)
        call = self.client.call
        nothing: Callable[[Any], None] = lambda body: None  # noqa: E731
        if op == "list_posts":
            return op, lambda: call("GET", f"/api/content{c}/posts?limit=20", h), nothing
        if op == "read_post":
            fresh = list(self.ledger.posts)[-20:]
            if fresh and rng.random() < 0.3:
                # Its author rereads a new post (to others it is 404 until screening publishes it).
                post = rng.choice(fresh)
                h = w.members[self.ledger.posts[post]].headers
            return op, lambda: call("GET", f"/api/content/posts/{post}", h), nothing
        if op == "read_comments":
            return (
                op,
                lambda: call("GET", f"/api/content/posts/{post}/comments?limit=20", h),
                nothing,
            )
        if op == "list_activities":
            path = f"/api/events/activities?community_id={w.community}&limit=20"
            return op, lambda: call("GET", path, h), nothing
        if op == "read_activity":
            act = rng.choice(w.activities)
            return op, lambda: call("GET", f"/api/events/activities/{act}", h), nothing
        if op == "notifications":
            return op, lambda: call("GET", "/api/members/me/notifications?limit=20", h), nothing
        if op == "post":
            n = uuid.uuid4().hex[:12]
            body = {"title": f"Update {n}", "body": f"Notes from the week, {n}.", "format": "text"}
            return (
                op,
                lambda: call("POST", f"/api/content{c}/posts", h, body),
                lambda r: self.ledger.posts.__setitem__(r["id"], u),
            )
        if op == "comment":
            text = {"body": f"Thanks for sharing, {uuid.uuid4().hex[:10]}."}
            return (
                op,
                lambda: call("POST", f"/api/content/posts/{post}/comments", h, text),
                lambda r: self.ledger.comments.append((r["id"], post, u)),
            )
        if op == "reaction":
            p, ru, kind = self.reactions.pop()
            rh = w.members[ru].headers
            return (
                op,
                lambda: call("PUT", f"/api/content/posts/{p}/reactions", rh, {"kind": kind}),
                lambda r: self.ledger.reactions.append((p, ru, kind)),
            )
        if op == "registration":
            a, gu = self.registrations.pop()
            gh = w.members[gu].headers
            return (
                op,
                lambda: call("POST", f"/api/events/activities/{a}/registrations", gh),
                lambda r: self.ledger.registrations.append((a, gu)),
            )
        p, ru = self.reports.pop()
        report = {"item_type": "post", "item_id": p, "reason": "off_topic"}
        rh = w.members[ru].headers
        return (
            "report",
            lambda: call("POST", f"/api/moderation{c}/reports", rh, report),
            lambda r: self.ledger.reports.append((r["id"], ru)),
        )


async def drive(workload: Workload, lag: Lag, result: Result) -> None:
    """Send rate x seconds requests, each at its due time, whatever the earlier ones do."""
    cfg = workload.cfg
    total = int(cfg.rate * cfg.seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    last_done = start

    async def one(due: float) -> None:
        nonlocal last_done
        op, send, record = workload.choose()
        result.by_op[op] += 1
        result.max_send_lag_ms = max(result.max_send_lag_ms, (loop.time() - due) * 1000)
        try:
            status, body = await send()
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.errors[f"{op}:{type(exc).__name__}"] += 1
            return
        finally:
            last_done = max(last_done, loop.time())
        if status in (200, 201) and (op not in WRITES or isinstance(body, dict)):
            result.ok += 1
            result.latencies_ms.append((loop.time() - due) * 1000)
            record(body)
        else:
            result.errors[f"{op}:{status}"] += 1

    async def sample_lag() -> None:
        while True:
            try:
                result.max_lag_during = max(result.max_lag_during, sum((await lag.now()).values()))
            except Exception:  # a missed sample is no reason to stop the load
                pass
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_lag())
    tasks = []
    for i in range(total):
        due = start + i / cfg.rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
        result.sent += 1
    await asyncio.gather(*tasks)
    sampler.cancel()
    result.wall_seconds = last_done - start


async def check(client: Client, world: World, ledger: Ledger) -> list[str]:
    """Every acknowledged write's effect in the consuming contexts, exactly once (problems)."""
    problems: list[str] = []
    staff, c = world.staff, f"/communities/{world.community}"
    # Content applied moderation's verdict to every acknowledged post (the post left pending).
    sem = asyncio.Semaphore(16)

    async def status_of(post: str) -> str:
        async with sem:
            code, body = await client.call("GET", f"/api/content/posts/{post}", staff)
        return str(body.get("status")) if code == 200 and isinstance(body, dict) else f"HTTP {code}"

    statuses = dict(
        zip(ledger.posts, await asyncio.gather(*map(status_of, ledger.posts)), strict=True)
    )
    unsettled = Counter(s for s in statuses.values() if s != "published")
    if unsettled:
        problems.append(f"posts not published: {dict(unsettled)}")
    published = [p for p, s in statuses.items() if s == "published"]

    # Metrics' totals grew by exactly the ledger (once each: never above, never below).
    now = await figures(client, world.community, staff)
    expected = {
        "posts_submitted": len(ledger.posts),
        "posts_published": len(published),
        "registrations": len(ledger.registrations),
        "comments": len(ledger.comments),
        "reactions": len(ledger.reactions),
        "reports": len(ledger.reports),
    }
    for key, grew in expected.items():
        if now[key] - world.baseline[key] != grew:
            problems.append(f"metrics {key}: +{now[key] - world.baseline[key]}, ledger {grew}")

    # Members' points ledger: one entry per published post and per comment, per member.
    want: dict[int, Counter[str]] = {u: Counter() for u in range(len(world.members))}
    for p in published:
        want[ledger.posts[p]]["post.published"] += 1
    for _, _, u in ledger.comments:
        want[u]["comment.created"] += 1

    async def points(u: int) -> None:
        member = world.members[u]
        got: Counter[str] = Counter()
        sources: Counter[str] = Counter()
        cursor = ""
        while True:
            async with sem:
                body = await client.expect(
                    "GET", f"/api/members{c}/members/{member.id}/points?limit=100{cursor}", staff
                )
            for e in body["items"]:
                kind = next((k for k in want[u] if k in str(e["source_event_type"])), "other")
                got[kind] += 1
                sources[str(e["source_event_id"])] += 1
            if not body.get("next_cursor"):
                break
            cursor = f"&cursor={body['next_cursor']}"
        if +got != +want[u]:
            problems.append(f"member {u} points entries {dict(got)}, ledger {dict(want[u])}")
        twice = [s for s, n in sources.items() if n > 1]
        if twice:
            problems.append(f"member {u}: {len(twice)} source events credited twice")

    await asyncio.gather(*(points(u) for u in want))
    return problems


async def run(gateway: str, nats_url: str, subject_prefix: str, cfg: LoadConfig) -> Result:
    """Set up, drive the load, wait for the lag to drain, check the ledger: one Result."""
    client = Client(gateway)
    lag = Lag(nats_url, subject_prefix)
    result = Result(cfg)
    try:
        await lag.open()
        began = time.monotonic()
        world = await setup(client, cfg)
        result.setup_seconds = time.monotonic() - began
        if await lag.drained(30) is None:
            result.problems.append("consumers did not drain before the load started")
        workload = Workload(client, world, cfg)
        await drive(workload, lag, result)
        result.ledger = workload.ledger.sizes()
        result.lag_drain_seconds = await lag.drained(max(LAG_LIMIT, cfg.settle_timeout))
        if result.lag_drain_seconds is None or result.lag_drain_seconds > LAG_LIMIT:
            stuck = {k: v for k, v in (await lag.now()).items() if v}
            result.problems.append(f"consumer lag not 0 within {LAG_LIMIT:g} s: {stuck}")
        started = time.monotonic()
        # The relays poll their outboxes: the last effects may land just after the lag is 0.
        deadline = started + cfg.settle_timeout
        while True:
            problems = await check(client, world, workload.ledger)
            if not problems or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        result.ledger_seconds = time.monotonic() - started if not problems else None
        result.problems += problems
    finally:
        await lag.close()
        await client.close()
    return result


def bench(gateway: str, nats_url: str, subject_prefix: str) -> dict[str, Any]:
    """`make bench BENCH=load`: BENCH_LOAD_RATE (default 30) req/s for BENCH_LOAD_SECONDS (60)."""
    from table import Measured  # bench/ is on sys.path when bench/run.py runs this

    cfg = LoadConfig.from_env("BENCH_LOAD_", rate=30.0, seconds=60.0)
    result = asyncio.run(run(gateway, nats_url, subject_prefix, cfg))
    print("\n== Mixed load: fixed arrival rate through the gateway, with a ledger ==")
    print(result.summary())
    note = (
        f"{cfg.rate:g} req/s x {cfg.seconds:g} s scheduled, {cfg.users} members,"
        f" load avg {os.getloadavg()[0]:.1f}"
    )
    exact = not result.problems
    ledger = f"{sum(result.ledger.values())} writes {result.ledger}"
    measured = bool(result.latencies_ms)
    return {
        "load.error_rate": Measured(round(result.error_rate, 3), note),
        "load.p50": Measured(round(result.percentile(0.5), 1) if measured else None, note, exact),
        "load.p95": Measured(round(result.percentile(0.95), 1) if measured else None, note, exact),
        "load.p99": Measured(round(result.percentile(0.99), 1) if measured else None, note, exact),
        "load.rate": Measured(round(result.achieved_rate, 1), note),
        "load.ledger_problems": Measured(
            len(result.problems), ledger + ("" if exact else f"; {result.problems[0][:80]}")
        ),
        "load.lag_drain": Measured(
            round(result.lag_drain_seconds, 2) if result.lag_drain_seconds is not None else None,
            f"max {result.max_lag_during} pending during the load",
        ),
    }
