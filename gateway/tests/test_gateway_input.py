"""The gateway's own routes refuse what no database can hold, as the services do."""

from __future__ import annotations

from typing import Any


async def test_a_nul_in_a_login_or_a_query_is_a_422_problem(make_gateway: Any) -> None:
    async with make_gateway() as (_app, http):
        r = await http.post("/auth/token", json={"username": "mem\u0000ber", "password": "p"})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "U+0000" in r.text
        r = await http.get("/auth/api-keys?cursor=a%01b")
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        # A clean login still reaches the handler (and fails for its own reason).
        r = await http.post("/auth/token", json={"username": "nobody-x", "password": "p"})
        assert r.status_code == 401, r.text
