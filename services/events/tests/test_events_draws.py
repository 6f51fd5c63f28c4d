"""Verifiable lucky draws: commit, reveal, re-draw, and the verifier reruns them (real NATS, DB)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from hearth_events.draws import verify
from hearth_events.models import CommunityMembership
from servicekit.ids import utcnow
from servicekit.testing.harness import Identities, RunningService, eventually

OPERATOR = uuid.UUID("00000000-0000-7000-8000-000000000001")
VERIFIER = Path(verify.__file__)


def run_verifier(
    tmp_path: Path, proof: dict[str, Any], *, installed: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the verifier as a participant would, on a saved proof file."""
    path = tmp_path / f"proof-{uuid.uuid4()}.json"
    path.write_text(json.dumps(proof))
    if installed:
        command = [sys.executable, "-m", "hearth_events", "verify-draw", str(path)]
    else:
        # -S: no site-packages, so the script proves it needs the standard library only.
        command = [sys.executable, "-S", str(VERIFIER), str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_the_documented_worked_example() -> None:
    """The example in docs/activities.md, as a known answer: the algorithm may never drift."""
    seed = bytes(range(32))
    eligible = [f"0190a000-0000-7000-8000-00000000000{i}" for i in range(1, 6)]
    book, mug = "0190b000-0000-7000-8000-000000000001", "0190b000-0000-7000-8000-000000000002"
    prizes = [{"id": book, "name": "Book", "count": 1}, {"id": mug, "name": "Mug", "count": 2}]
    assert verify.commitment_of(seed) == (
        "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    )
    assert verify.list_digest(eligible) == (
        "89df730236bdacefcb7380a5ecdfe421ec99e088ab5f13a80d1dad86aba7bd4c"
    )
    redraws = [{"prize_id": mug, "absent_registration_id": eligible[0]}]
    winners = verify.run(
        seed=seed, eligible=eligible, prizes=prizes, allow_multiple_wins=False, redraws=redraws
    )
    picked = [
        (w["prize_id"], w["registration_id"][-1], w["counter"], w["replaces"]) for w in winners
    ]
    assert picked == [
        (book, "2", 0, None),
        (mug, "1", 0, None),
        (mug, "4", 1, None),
        (mug, "3", 2, eligible[0]),
    ]


def test_rejection_sampling_is_uniform_enough() -> None:
    """Over many seeds each of 3 places is chosen about a third of the time (no modulo bias)."""
    counts = [0, 0, 0]
    for i in range(3000):
        index, _ = verify.Stream(i.to_bytes(32, "big"), "p").below(3)
        counts[index] += 1
    assert all(900 < c < 1100 for c in counts), counts


async def test_a_draw_anyone_can_verify(
    events: RunningService, identities: Identities, directory, published, tmp_path: Path
) -> None:
    community_id, users = await directory.community(events, members=6)
    staff = identities.headers(OPERATOR, "operator")
    starts = utcnow() + timedelta(minutes=30)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Launch party",
            "kind": "meetup",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 10,
        },
        headers=staff,
    )
    activity = r.json()
    regs: dict[uuid.UUID, str] = {}
    for user in users:
        r = await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
        )
        regs[user] = r.json()["id"]
    checkins = f"/activities/{activity['id']}/check-ins"
    for user in users[:5]:  # users[5] registered but does not come
        r = await events.client.post(checkins, json={"user_id": str(user)}, headers=staff)
        assert r.status_code == 201, r.text

    r = await events.client.post(
        f"/activities/{activity['id']}/draws",
        json={
            "title": "Door prizes",
            "prizes": [{"name": "Book", "count": 1}, {"name": "Mug", "count": 2}],
            "excluded_user_ids": [str(users[0])],
        },
        headers=staff,
    )
    assert r.status_code == 201, r.text
    draw = r.json()
    assert draw["state"] == "open" and draw["commitment"] is None and draw["seed"] is None
    r = await events.client.post(
        f"/activities/{activity['id']}/draws",
        json={"title": "x", "prizes": [{"name": "y", "count": 1}]},
        headers=identities.headers(users[1]),
    )
    assert r.status_code == 403  # members do not run draws
    url = f"/draws/{draw['id']}"
    r = await events.client.patch(
        url, json={"excluded_user_ids": [str(users[0]), str(users[1])]}, headers=staff
    )
    assert r.status_code == 200 and len(r.json()["excluded_user_ids"]) == 2, r.text

    # Commit: the eligible list (checked in, not excluded) is frozen and published with its
    # SHA-256, and a commitment to the secret seed; the seed itself stays hidden.
    r = await events.client.post(f"{url}/commit", headers=staff)
    assert r.status_code == 200, r.text
    committed = r.json()
    assert committed["state"] == "committed" and committed["seed"] is None
    assert committed["eligible_count"] == 3
    r = await events.client.get(f"{url}/proof", headers=identities.headers(users[5]))
    assert r.status_code == 200, r.text
    before = r.json()
    assert before["seed"] is None and before["winners"] == []
    assert before["eligible"] == sorted(regs[u] for u in users[2:5])
    assert (
        hashlib.sha256("\n".join(before["eligible"]).encode()).hexdigest()
        == (committed["eligible_sha256"])
    )
    assert run_verifier(tmp_path, before).returncode == 1  # nothing to verify before the reveal

    # After the commitment the list cannot change: 409, and a late check-in changes nothing.
    for method, body in (
        ("PATCH", {"excluded_user_ids": []}),
        ("PATCH", {"prizes": [{"name": "Car", "count": 1}]}),
        ("PATCH", {"checked_in_only": False}),
    ):
        r = await events.client.request(method, url, json=body, headers=staff)
        assert r.status_code == 409 and r.json()["type"].endswith(":draw-committed"), r.text
    r = await events.client.post(f"{url}/commit", headers=staff)
    assert r.status_code == 409
    r = await events.client.post(checkins, json={"user_id": str(users[5])}, headers=staff)
    assert r.status_code == 201
    r = await events.client.get(f"{url}/proof", headers=staff)
    assert r.json()["eligible"] == before["eligible"]

    # Reveal: the seed matches the commitment and the verifier recomputes the winners.
    r = await events.client.post(f"{url}/reveal", headers=identities.headers(users[2]))
    assert r.status_code == 403
    r = await events.client.post(f"{url}/reveal", headers=staff)
    assert r.status_code == 200, r.text
    revealed = r.json()
    seed = bytes.fromhex(revealed["seed"])
    assert hashlib.sha256(seed).hexdigest() == committed["commitment"]
    winners = revealed["winners"]
    assert len(winners) == 3 and len({w["registration_id"] for w in winners}) == 3  # one win each
    assert {w["registration_id"] for w in winners} == set(before["eligible"])
    r = await events.client.get(f"{url}/proof", headers=identities.headers(users[5]))
    proof = r.json()
    result = run_verifier(tmp_path, proof)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 3 winners" in result.stdout
    announced = [(w["prize_id"], w["registration_id"]) for w in winners]
    recomputed = verify.run(
        seed=seed,
        eligible=proof["eligible"],
        prizes=proof["prizes"],
        allow_multiple_wins=False,
    )
    assert [(w["prize_id"], w["registration_id"]) for w in recomputed] == announced
    # A forged announcement, a changed list or another seed fails the verifier.
    forged = {**proof, "winners": [proof["winners"][1], proof["winners"][0], *proof["winners"][2:]]}
    assert run_verifier(tmp_path, forged).returncode == 1
    changed = {**proof, "eligible": [*proof["eligible"], regs[users[5]]]}
    assert "digest" in run_verifier(tmp_path, changed).stdout
    reseeded = {**proof, "seed": "00" * 32}
    assert "commitment" in run_verifier(tmp_path, reseeded).stdout

    # A mug winner is absent: the re-draw continues the mug's stream and is verifiable too.
    absent = next(w for w in winners if w["prize_id"] == proof["prizes"][1]["id"])
    r = await events.client.post(
        f"{url}/redraws", json={"registration_id": absent["registration_id"]}, headers=staff
    )
    assert r.status_code == 200, r.text
    after = r.json()["winners"]
    # Three eligible, three winners already: nobody is left to replace the absent winner.
    assert len(after) == 3 and [w["absent"] for w in after].count(True) == 1
    r = await events.client.get(f"{url}/proof", headers=staff)
    assert r.json()["redraws"] == [
        {"prize_id": absent["prize_id"], "absent_registration_id": absent["registration_id"]}
    ]
    result = run_verifier(tmp_path, r.json(), installed=True)
    assert result.returncode == 0, result.stdout + result.stderr

    r = await events.client.post(f"{url}/complete", headers=staff)
    assert r.status_code == 200 and r.json()["state"] == "completed"
    r = await events.client.post(
        f"{url}/redraws", json={"registration_id": winners[0]["registration_id"]}, headers=staff
    )
    assert r.status_code == 409
    [c] = await published("events.draw.committed.v1", 1)
    assert c.data["commitment"] == committed["commitment"] and c.data["eligible_count"] == 3
    [v] = await published("events.draw.revealed.v1", 1)
    assert v.data["seed"] == revealed["seed"] and len(v.data["winners"]) == 3
    [done] = await published("events.draw.completed.v1", 1)
    assert len(done.data["winners"]) == 2 and done.data["community_id"] == str(community_id)
    assert {w["user_id"] for w in done.data["winners"]} <= {str(u) for u in users[2:5]}


async def test_a_redraw_picks_someone_new_from_the_same_stream(
    events: RunningService, identities: Identities, directory, tmp_path: Path
) -> None:
    community_id, users = await directory.community(events, members=8)
    staff = identities.headers(OPERATOR, "operator")
    starts = utcnow() + timedelta(minutes=30)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Quiz night",
            "kind": "quiz",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 10,
        },
        headers=staff,
    )
    activity = r.json()
    for user in users:
        await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
        )
    # Everyone registered may win (not only the checked in), and more than once.
    r = await events.client.post(
        f"/activities/{activity['id']}/draws",
        json={
            "title": "Everyone",
            "checked_in_only": False,
            "allow_multiple_wins": True,
            "prizes": [{"name": "Sticker", "count": 2}, {"name": "Pin", "count": 2}],
        },
        headers=staff,
    )
    url = f"/draws/{r.json()['id']}"
    assert (await events.client.post(f"{url}/commit", headers=staff)).json()["eligible_count"] == 8
    r = await events.client.post(f"{url}/reveal", headers=staff)
    winners = r.json()["winners"]
    assert len(winners) == 4
    gone = winners[0]
    r = await events.client.post(
        f"{url}/redraws", json={"registration_id": gone["registration_id"]}, headers=staff
    )
    assert r.status_code == 200, r.text
    after = r.json()["winners"]
    # Multiple wins allowed: the absent person may hold both prizes; each is re-drawn.
    held = [w["prize_id"] for w in winners if w["registration_id"] == gone["registration_id"]]
    new = after[len(winners) :]
    assert [w["prize_id"] for w in new] == held
    assert all(w["replaces"] == gone["registration_id"] for w in new)
    assert all(w["registration_id"] != gone["registration_id"] for w in new)
    assert new[0]["counter"] >= 2  # the stream continued past the two places it filled
    assert [w["absent"] for w in after].count(True) == len(held)
    r = await events.client.post(
        f"{url}/redraws", json={"registration_id": gone["registration_id"]}, headers=staff
    )
    assert r.status_code == 409  # already replaced
    proof = (await events.client.get(f"{url}/proof", headers=staff)).json()
    result = run_verifier(tmp_path, proof)
    assert result.returncode == 0 and "re-draw for" in result.stdout, result.stdout


async def test_draw_tiers_decide_eligibility(
    events: RunningService, identities: Identities, directory
) -> None:
    community_id, users = await directory.community(events, members=3)
    await directory.membership(community_id, users[0], tier="gold")  # members' snapshot

    async def gold() -> bool:
        async with events.runtime.db.session() as session:
            row = await session.get(CommunityMembership, (community_id, users[0]))
            return row is not None and row.tier == "gold"

    await eventually(gold)
    staff = identities.headers(OPERATOR, "operator")
    starts = utcnow() + timedelta(minutes=30)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Gold lounge",
            "kind": "meetup",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 10,
        },
        headers=staff,
    )
    activity = r.json()
    regs = {}
    for user in users:
        r = await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
        )
        regs[user] = r.json()["id"]
    r = await events.client.post(
        f"/activities/{activity['id']}/draws",
        json={
            "title": "Gold",
            "checked_in_only": False,
            "tiers": ["gold"],
            "prizes": [{"name": "x", "count": 5}],
        },
        headers=staff,
    )
    url = f"/draws/{r.json()['id']}"
    await events.client.post(f"{url}/commit", headers=staff)
    proof = (await events.client.get(f"{url}/proof", headers=staff)).json()
    assert proof["eligible"] == [regs[users[0]]]
    r = await events.client.post(f"{url}/reveal", headers=staff)
    assert [w["registration_id"] for w in r.json()["winners"]] == [regs[users[0]]]


def test_the_verifier_fetches_a_proof_url_with_a_header(tmp_path: Path) -> None:
    """`verify-draw <url> -H 'Authorization: …'`, as a participant fetches a proof."""
    import http.server
    import threading

    seed = bytes(range(32))
    eligible = [f"0190a000-0000-7000-8000-00000000000{i}" for i in range(1, 6)]
    prizes = [{"id": "0190b000-0000-7000-8000-000000000001", "name": "Book", "count": 2}]
    proof = {
        "algorithm": verify.ALGORITHM,
        "commitment": verify.commitment_of(seed),
        "eligible_sha256": verify.list_digest(eligible),
        "eligible": eligible,
        "seed": seed.hex(),
        "allow_multiple_wins": False,
        "prizes": prizes,
        "redraws": [],
        "winners": verify.run(
            seed=seed, eligible=eligible, prizes=prizes, allow_multiple_wins=False
        ),
    }
    body = json.dumps(proof).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == "Bearer t0ken"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if ok else b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/events/draws/x/proof"
        command = [sys.executable, "-S", str(VERIFIER), url, "-H", "Authorization: Bearer t0ken"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: 2 winners" in result.stdout
        refused = subprocess.run(
            [sys.executable, "-S", str(VERIFIER), url], capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2 and "401" in refused.stdout  # no header: no proof
    finally:
        server.shutdown()


async def test_racing_commits_and_reveals_end_with_one_of_each(
    any_database_url: str, launch, identities: Identities, directory
) -> None:
    from hearth_events.app import definition

    events = await launch(definition, database_url=any_database_url)
    community_id, users = await directory.community(events, members=4)
    staff = identities.headers(OPERATOR, "operator")
    starts = utcnow() + timedelta(minutes=30)
    r = await events.client.post(
        "/activities",
        json={
            "community_id": str(community_id),
            "title": "Race",
            "kind": "other",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "capacity": 10,
        },
        headers=staff,
    )
    activity = r.json()
    for user in users:
        await events.client.post(
            f"/activities/{activity['id']}/registrations", headers=identities.headers(user)
        )
    r = await events.client.post(
        f"/activities/{activity['id']}/draws",
        json={"title": "R", "checked_in_only": False, "prizes": [{"name": "P", "count": 2}]},
        headers=staff,
    )
    url = f"/draws/{r.json()['id']}"
    edits = [events.client.patch(url, json={"title": "late"}, headers=staff) for _ in range(3)]
    commits = [events.client.post(f"{url}/commit", headers=staff) for _ in range(3)]
    responses = await asyncio.gather(*commits, *edits)
    assert sorted(r.status_code for r in responses[:3]) == [200, 409, 409], [
        r.text for r in responses
    ]
    assert all(r.status_code in (200, 409) for r in responses[3:])
    reveals = await asyncio.gather(
        *(events.client.post(f"{url}/reveal", headers=staff) for _ in range(3))
    )
    assert sorted(r.status_code for r in reveals) == [200, 409, 409], [r.text for r in reveals]
    r = await events.client.get(url, headers=staff)
    assert r.json()["state"] == "revealed" and len(r.json()["winners"]) == 2
