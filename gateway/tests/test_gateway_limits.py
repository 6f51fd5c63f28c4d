"""Rate limits per IP and per principal (GCRA), in memory and shared through a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from hearth_gateway.ratelimit import Lockout, MemoryLimiter, Rate, RedisLimiter
from servicekit.testing.backends import Backends

PROBLEM = "application/problem+json"


@pytest.fixture
async def redis_url(backends: Backends) -> str:
    if not backends.redis_url:  # under CI=true the backends resolver already failed instead
        pytest.skip("Redis is not available")
    return backends.redis_url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix unique to this test; its keys are deleted afterwards."""
    import redis.asyncio as redis

    prefix = f"hearth:test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def dev_token(client: httpx.AsyncClient, username: str = "member") -> str:
    response = await client.post(
        "/auth/token", json={"username": username, "password": f"hearth-{username}"}
    )
    return response.json()["access_token"]


def assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"] == "urn:hearth:problem:rate-limited"
    assert int(response.headers["retry-after"]) >= 1


async def test_per_principal_limit(make_gateway) -> None:
    async with make_gateway(rate_limit_principal_per_second=0.5, rate_limit_principal_burst=3) as (
        _,
        http,
    ):
        member, other = await dev_token(http), await dev_token(http, "member2")
        statuses = [
            (await http.get("/api/members/x", headers={"Authorization": f"Bearer {member}"}))
            for _ in range(4)
        ]
        assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
        assert_429(statuses[3])
        assert "x-request-id" in statuses[3].headers
        # Another principal from the same address has its own budget.
        ok = await http.get("/api/members/x", headers={"Authorization": f"Bearer {other}"})
        assert ok.status_code == 200


async def test_per_ip_limit_applies_before_authentication(make_gateway, echo) -> None:
    async with make_gateway(rate_limit_ip_per_second=0.5, rate_limit_ip_burst=2) as (app, http):
        before = len(echo.received)
        first = [await http.get("/api/members/x") for _ in range(2)]
        assert [r.status_code for r in first] == [401, 401]
        assert_429(await http.get("/api/members/x"))  # anonymous floods are cut off too
        assert len(echo.received) == before
        other = httpx.ASGITransport(app=app, client=("10.1.2.3", 1))
        async with httpx.AsyncClient(transport=other, base_url="http://gw") as elsewhere:
            assert (await elsewhere.get("/api/members/x")).status_code == 401


def test_gcra_refills_at_the_sustained_rate(monkeypatch) -> None:
    import hearth_gateway.ratelimit as rl

    now = [1000.0]
    monkeypatch.setattr(rl.time, "monotonic", lambda: now[0])
    limiter, rate = MemoryLimiter(), Rate(per_second=2, burst=2)
    assert limiter.hit_now("k", rate) == 0 and limiter.hit_now("k", rate) == 0
    assert limiter.hit_now("k", rate) == pytest.approx(0.5)
    now[0] += 0.5  # one emission interval later exactly one more request fits
    assert limiter.hit_now("k", rate) == 0
    assert limiter.hit_now("k", rate) > 0


async def test_lockout_back_off_doubles(monkeypatch) -> None:
    import hearth_gateway.ratelimit as rl

    now = [1000.0]
    monkeypatch.setattr(rl.time, "monotonic", lambda: now[0])
    limiter = MemoryLimiter()
    policy = Lockout(threshold=3, base_seconds=2, cap_seconds=5, window_seconds=600)
    assert [await limiter.fail("u|ip", policy) for _ in range(5)] == [0, 0, 2, 4, 5]
    assert await limiter.locked("u|ip") == 5
    await limiter.clear("u|ip")
    assert await limiter.locked("u|ip") == 0


async def test_redis_gcra_and_lockout(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisLimiter(redis_url, prefix=redis_prefix)
    try:
        rate = Rate(per_second=1, burst=3)
        results = [await limiter.hit("k", rate) for _ in range(4)]
        assert results[:3] == [0, 0, 0] and 0 < results[3] <= 1
        policy = Lockout(threshold=2, base_seconds=10, cap_seconds=60, window_seconds=600)
        assert [await limiter.fail("u", policy) for _ in range(3)] == [0, 10, 20]
        assert 15 < await limiter.locked("u") <= 20
        await limiter.clear("u")
        assert await limiter.locked("u") == 0
    finally:
        await limiter.close()


async def test_redis_limit_is_atomic_under_concurrency(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisLimiter(redis_url, prefix=redis_prefix)
    try:
        rate = Rate(per_second=0.01, burst=10)
        results = await asyncio.gather(*(limiter.hit("k", rate) for _ in range(50)))
        assert sum(1 for r in results if r == 0) == 10
    finally:
        await limiter.close()


async def test_two_gateways_sharing_redis_share_one_limit(
    make_gateway, redis_url: str, redis_prefix: str
) -> None:
    shared = {
        "rate_limit_redis_url": redis_url,
        "rate_limit_redis_prefix": redis_prefix,
        "rate_limit_principal_per_second": 0.1,
        "rate_limit_principal_burst": 4,
    }
    async with make_gateway(**shared) as (_, one), make_gateway(**shared) as (_, two):
        token = await dev_token(one)
        headers = {"Authorization": f"Bearer {token}"}
        statuses = []
        for n in range(6):  # alternate between the replicas: one budget of 4 in total
            gateway = one if n % 2 == 0 else two
            statuses.append((await gateway.get("/api/members/x", headers=headers)).status_code)
        assert statuses == [200, 200, 200, 200, 429, 429]


async def test_login_lockout_shared_through_redis(
    make_gateway, redis_url: str, redis_prefix: str
) -> None:
    shared = {
        "rate_limit_redis_url": redis_url,
        "rate_limit_redis_prefix": redis_prefix,
        "login_lockout_threshold": 2,
        "login_lockout_base_seconds": 60,
    }
    wrong = {"username": "member", "password": "wrong"}
    right = {"username": "member", "password": "hearth-member"}
    async with make_gateway(**shared) as (_, one), make_gateway(**shared) as (_, two):
        assert (await one.post("/auth/token", json=wrong)).status_code == 401
        assert (await two.post("/auth/token", json=wrong)).status_code == 401
        assert_429(await one.post("/auth/token", json=right))
        assert_429(await two.post("/auth/token", json=right))


async def test_redis_down_fails_open(make_gateway) -> None:
    async with make_gateway(rate_limit_redis_url="redis://127.0.0.1:1/0") as (_, http):
        token = await dev_token(http)
        response = await http.get("/api/members/x", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
