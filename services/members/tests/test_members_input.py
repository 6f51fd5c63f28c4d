"""Input every database can hold: control characters and over-range integers are a 422 problem
on the primary backend (PostgreSQL in CI, which cannot store a NUL), never a 500."""

from __future__ import annotations

import pytest

from members_testkit import PROBLEM, make_community, staff
from servicekit.testing.harness import Identities, RunningService


async def test_a_nul_in_a_community_name_is_refused_and_nothing_is_stored(
    members: RunningService, identities: Identities
) -> None:
    body = {"name": "Hearth\u0000Club", "kind": "customer"}
    r = await members.client.post("/communities", json=body, headers=staff(identities))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert "U+0000" in r.text
    listed = await members.client.get("/communities", headers=staff(identities))
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


@pytest.mark.parametrize("bad", ["\u0001", "\u001b[31m", "\u007f\u0008"])
async def test_other_c0_controls_are_refused_in_nested_strings(
    members: RunningService, identities: Identities, bad: str
) -> None:
    body = {"name": "ok", "kind": "customer", "auto_approve_email_domains": [f"a{bad}.example"]}
    r = await members.client.post("/communities", json=body, headers=staff(identities))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM


async def test_a_perk_stock_beyond_its_column_is_refused(
    members: RunningService, identities: Identities
) -> None:
    cid = await make_community(members, identities)
    url = f"/communities/{cid}/perks"
    for stock in (10**30, 2**31):
        r = await members.client.post(
            url, json={"name": "Mug", "cost": 30, "stock": stock}, headers=staff(identities)
        )
        assert r.status_code == 422, (stock, r.text)
        assert r.headers["content-type"] == PROBLEM
    r = await members.client.post(
        url, json={"name": "Mug", "cost": 30, "stock": 2**31 - 1}, headers=staff(identities)
    )
    assert r.status_code == 201, r.text
    patch = await members.client.patch(
        f"{url}/{r.json()['id']}", json={"stock": 10**30}, headers=staff(identities)
    )
    assert patch.status_code == 422, patch.text


async def test_tab_and_newline_in_a_description_are_kept(
    members: RunningService, identities: Identities
) -> None:
    cid = await make_community(members, identities)
    text = "Line one\n\tindented\r\nline three"
    r = await members.client.post(
        f"/communities/{cid}/perks",
        json={"name": "Mug", "cost": 30, "description": text},
        headers=staff(identities),
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == text


async def test_a_nul_in_a_query_string_is_refused(
    members: RunningService, identities: Identities
) -> None:
    r = await members.client.get("/communities?cursor=a%00b", headers=staff(identities))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
