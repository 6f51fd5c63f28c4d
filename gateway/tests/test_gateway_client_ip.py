"""The client IP behind trusted proxies: X-Forwarded-For is read only when the TCP peer is a
trusted proxy, right to left; from anyone else it is ignored, so per-IP limits, the login
lock-out and the X-Forwarded-For sent upstream cannot be steered by a client."""

from __future__ import annotations

from ipaddress import ip_network

import httpx
import pytest

from hearth_gateway.client_ip import TrustedProxies

INGRESS = "10.0.0.7"  # an ingress controller pod
PODS = ["10.0.0.0/8"]
CLIENT_A, CLIENT_B = "203.0.113.5", "203.0.113.6"
WRONG = {"username": "member", "password": "wrong"}
RIGHT = {"username": "member", "password": "hearth-member"}


def forwarded_for(record: dict) -> list[str]:
    return [v for k, v in record["headers"] if k == "x-forwarded-for"]


def forwarded_proto(record: dict) -> list[str]:
    return [v for k, v in record["headers"] if k == "x-forwarded-proto"]


async def bearer(http: httpx.AsyncClient) -> dict[str, str]:
    token = (await http.post("/auth/token", json=RIGHT)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_resolution_rules() -> None:
    proxies = TrustedProxies([ip_network("10.0.0.0/8"), ip_network("fd00::/8")])
    assert proxies.client_ip("203.0.113.9", ["1.2.3.4"]) == "203.0.113.9"  # untrusted peer
    assert proxies.client_ip(INGRESS, [f"198.51.100.1, {CLIENT_A}"]) == CLIENT_A  # right-most
    assert proxies.client_ip(INGRESS, [f"{CLIENT_A}, 10.1.1.1"]) == CLIENT_A  # proxies skipped
    assert proxies.client_ip(INGRESS, [CLIENT_A, "10.1.1.1"]) == CLIENT_A  # headers in order
    assert proxies.client_ip(INGRESS, []) == INGRESS  # no header: the peer itself
    assert proxies.client_ip(INGRESS, ["not-an-ip, 10.1.1.1"]) == "10.1.1.1"  # nearest hop
    assert proxies.client_ip(INGRESS, [f"{CLIENT_A}:4711"]) == CLIENT_A
    assert proxies.client_ip(INGRESS, ["[2001:db8::1]:443"]) == "2001:db8::1"
    assert proxies.client_ip(INGRESS, ["2001:db8::1"]) == "2001:db8::1"
    assert proxies.client_ip(INGRESS, ["10.2.2.2, 10.1.1.1"]) == "10.2.2.2"  # all trusted
    assert proxies.client_ip("fd00::5", [CLIENT_A]) == CLIENT_A  # an IPv6 ingress
    assert proxies.client_ip(f"::ffff:{INGRESS}", [CLIENT_A]) == CLIENT_A  # dual-stack peer
    assert proxies.client_ip(None, [CLIENT_A]) == "-"
    assert TrustedProxies([]).client_ip(INGRESS, [CLIENT_A]) == INGRESS  # default: nothing


@pytest.mark.parametrize("trusted", [[], PODS], ids=["no proxies", "peer not a proxy"])
async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    make_gateway, echo, trusted: list[str]
) -> None:
    limits = {"rate_limit_ip_per_second": 0.01, "rate_limit_ip_burst": 3}
    async with make_gateway(client_ip="203.0.113.9", trusted_proxies=trusted, **limits) as (
        _,
        http,
    ):
        headers = await bearer(http)
        spoof = {"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}
        first = await http.get("/api/members/x", headers={**headers, **spoof})
        assert first.status_code == 200, first.text
        assert forwarded_for(first.json()) == ["203.0.113.9"]  # upstreams get the real peer
        assert forwarded_proto(first.json()) == ["http"]
        # A new made-up address on every request: still one budget, the peer's.
        statuses = [
            (await http.get("/api/members/x", headers={"X-Forwarded-For": f"198.51.100.{n}"}))
            for n in range(2, 5)
        ]
        assert [r.status_code for r in statuses] == [401, 401, 429]


async def test_behind_a_trusted_proxy_limits_key_on_the_real_client(make_gateway, echo) -> None:
    limits = {"rate_limit_ip_per_second": 0.01, "rate_limit_ip_burst": 2}
    async with make_gateway(client_ip=INGRESS, trusted_proxies=PODS, **limits) as (_, http):
        headers = await bearer(http)

        async def call(xff: str) -> httpx.Response:
            hop = {"X-Forwarded-For": xff, "X-Forwarded-Proto": "https"}
            return await http.get("/api/members/x", headers={**headers, **hop})

        first = await call(CLIENT_A)
        assert first.status_code == 200, first.text
        assert forwarded_for(first.json()) == [CLIENT_A]
        assert forwarded_proto(first.json()) == ["https"]  # TLS ended at the ingress
        assert (await call(CLIENT_A)).status_code == 200
        assert (await call(CLIENT_A)).status_code == 429  # client A's budget is spent ...
        other = await call(CLIENT_B)  # ... not the ingress pod's: B, same peer, is fine
        assert other.status_code == 200 and forwarded_for(other.json()) == [CLIENT_B]
        # A claims another address left of what the ingress appended: still A.
        assert (await call(f"198.51.100.1, {CLIENT_A}")).status_code == 429


async def test_login_lockout_keys_on_the_real_client(make_gateway) -> None:
    lockout = {"login_lockout_threshold": 2, "login_lockout_base_seconds": 60}
    async with make_gateway(client_ip=INGRESS, trusted_proxies=PODS, **lockout) as (_, http):
        a, b = {"X-Forwarded-For": CLIENT_A}, {"X-Forwarded-For": CLIENT_B}
        assert (await http.post("/auth/token", json=WRONG, headers=a)).status_code == 401
        assert (await http.post("/auth/token", json=WRONG, headers=a)).status_code == 401
        assert (await http.post("/auth/token", json=RIGHT, headers=a)).status_code == 429
        # The same username from another client behind the same ingress is not locked out.
        assert (await http.post("/auth/token", json=RIGHT, headers=b)).status_code == 200
    async with make_gateway(client_ip="203.0.113.9", trusted_proxies=PODS, **lockout) as (_, http):
        # Not a trusted peer: a fresh X-Forwarded-For per attempt does not escape the lock-out.
        for n, body in enumerate((WRONG, WRONG)):
            spoof = {"X-Forwarded-For": f"198.51.100.{n}"}
            assert (await http.post("/auth/token", json=body, headers=spoof)).status_code == 401
        spoof = {"X-Forwarded-For": "198.51.100.99"}
        assert (await http.post("/auth/token", json=RIGHT, headers=spoof)).status_code == 429
