#!/usr/bin/env python3
"""Verify a Hearth lucky draw (抽奖) from its published proof. Standard library only.

    python verify.py proof.json          # a file saved from GET /draws/{id}/proof
    python verify.py https://.../proof   # or fetched (add -H 'Header: value' for auth)
    hearth-events verify-draw proof.json # the same, installed with the events service

The algorithm (`hearth-draw-v1`), which the events service itself runs to pick winners:

1. Before anyone knows the seed, the organisers commit: the eligible list is frozen (sorted
   registration ids, lowercase canonical UUIDs) and published with
   `eligible_sha256 = SHA-256("\n".join(eligible))` and `commitment = SHA-256(seed)`, where the
   seed is 32 random bytes the server drew (secrets.token_bytes) and keeps secret.
2. At the reveal the seed is published. Every prize (in the published order) has its own
   stream of numbers: block k is `HMAC-SHA256(key=seed, msg="<prize id>:<k>")`, k = 0, 1, …;
   its first 8 bytes, big-endian, are a 64-bit number x.
3. To fill one place of a prize, take the pool: the eligible list, in order, without anyone
   who already won this prize, anyone marked absent, and (unless `allow_multiple_wins`)
   anyone who won any prize. With n people in the pool, take the next block of the prize's
   stream; reject it while x >= 2^64 - (2^64 mod n) (so every index is equally likely);
   otherwise the winner is pool[x mod n]. The prize's places are filled one after another,
   then the next prize's; a prize with an empty pool stops short.
4. A re-draw for an absent winner marks them absent (they win nothing more) and fills one
   place of the same prize from the same stream, continuing where it stopped; someone absent
   who won several prizes gets one re-draw per prize. Re-draws are replayed in their
   published order.

This script checks the commitment, the list's digest, and that the winners recomputed from
the revealed seed are exactly the announced ones, in order. Exit status 0 when they are.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ALGORITHM = "hearth-draw-v1"
SPAN = 1 << 64


def list_digest(eligible: Iterable[str]) -> str:
    """SHA-256 (hex) of the eligible registration ids, one per line, no trailing newline."""
    return hashlib.sha256("\n".join(eligible).encode()).hexdigest()


def commitment_of(seed: bytes) -> str:
    """SHA-256 (hex) of the seed: what is published before the draw."""
    return hashlib.sha256(seed).hexdigest()


class Stream:
    """One prize's stream of uniform choices: HMAC-SHA256(seed, "<prize id>:<k>")."""

    def __init__(self, seed: bytes, prize_id: str) -> None:
        self.seed, self.prize_id, self.counter = seed, prize_id, 0

    def below(self, n: int) -> tuple[int, int]:
        """(a uniform index in [0, n), the block counter that gave it), by rejection sampling."""
        limit = SPAN - SPAN % n
        while True:
            message = f"{self.prize_id}:{self.counter}".encode()
            block = hmac.new(self.seed, message, hashlib.sha256).digest()
            used, self.counter = self.counter, self.counter + 1
            x = int.from_bytes(block[:8], "big")
            if x < limit:
                return x % n, used


def run(
    *,
    seed: bytes,
    eligible: Sequence[str],
    prizes: Sequence[Mapping[str, Any]],
    allow_multiple_wins: bool,
    redraws: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The winners, in announcement order: prize id, registration id, counter, replaces."""
    streams = {str(p["id"]): Stream(seed, str(p["id"])) for p in prizes}
    won_prize: dict[str, set[str]] = {prize: set() for prize in streams}
    won_any: set[str] = set()
    absent: set[str] = set()
    winners: list[dict[str, Any]] = []

    def fill(prize_id: str, replaces: str | None) -> bool:
        pool = [
            r
            for r in eligible
            if r not in absent
            and r not in won_prize[prize_id]
            and (allow_multiple_wins or r not in won_any)
        ]
        if not pool:
            return False
        index, counter = streams[prize_id].below(len(pool))
        chosen = pool[index]
        won_prize[prize_id].add(chosen)
        won_any.add(chosen)
        winners.append(
            {
                "prize_id": prize_id,
                "registration_id": chosen,
                "counter": counter,
                "replaces": replaces,
            }
        )
        return True

    for prize in prizes:
        for _ in range(int(prize["count"])):
            if not fill(str(prize["id"]), None):
                break
    replaced: set[tuple[str, str]] = set()
    for redraw in redraws:
        prize_id, gone = str(redraw["prize_id"]), str(redraw["absent_registration_id"])
        if (
            prize_id not in streams
            or gone not in won_prize[prize_id]
            or (prize_id, gone) in replaced
        ):
            raise ValueError(f"re-draw for {gone}, who is not a present winner of {prize_id}")
        replaced.add((prize_id, gone))
        absent.add(gone)
        fill(prize_id, gone)
    return winners


def verify(proof: Mapping[str, Any]) -> list[str]:
    """What is wrong with a proof (an empty list: the announced winners are the right ones)."""
    problems: list[str] = []
    if proof.get("algorithm") != ALGORITHM:
        return [f"unknown algorithm {proof.get('algorithm')!r} (this verifier knows {ALGORITHM})"]
    if not proof.get("seed"):
        return ["the seed has not been revealed yet"]
    seed = bytes.fromhex(proof["seed"])
    eligible = [str(r) for r in proof["eligible"]]
    if commitment_of(seed) != proof["commitment"]:
        problems.append("SHA-256(seed) is not the published commitment")
    if list_digest(eligible) != proof["eligible_sha256"]:
        problems.append("SHA-256 of the eligible list is not the published digest")
    canonical = sorted({str(uuid.UUID(r)) for r in eligible})
    if eligible != canonical:
        problems.append("the eligible list is not sorted, unique, canonical registration ids")
    try:
        expected = run(
            seed=seed,
            eligible=eligible,
            prizes=proof["prizes"],
            allow_multiple_wins=bool(proof["allow_multiple_wins"]),
            redraws=proof.get("redraws", []),
        )
    except ValueError as error:
        return [*problems, str(error)]
    announced = [
        (str(w["prize_id"]), str(w["registration_id"]), w.get("replaces")) for w in proof["winners"]
    ]
    recomputed = [(w["prize_id"], w["registration_id"], w["replaces"]) for w in expected]
    if announced != recomputed:
        problems.append(f"announced winners {announced} differ from the recomputed {recomputed}")
    return problems


def load(source: str, headers: Sequence[str] = ()) -> dict[str, Any]:
    """A proof from a file path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source)  # noqa: S310  # the user names the URL
        for header in headers:
            name, _, value = header.partition(":")
            request.add_header(name.strip(), value.strip())
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            data: dict[str, Any] = json.load(response)
            return data
    with open(source, encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
        return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """Verify the proof named on the command line; print the winners."""
    parser = argparse.ArgumentParser(prog="verify-draw", description=__doc__.splitlines()[0])
    parser.add_argument("proof", help="a proof file or URL (GET /draws/{id}/proof)")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args(argv)
    try:
        proof = load(args.proof, args.header)
    except (OSError, ValueError) as error:  # URLError/HTTPError are OSErrors; bad JSON a ValueError
        print(f"FAIL: cannot read the proof {args.proof}: {error}")
        return 2
    problems = verify(proof)
    for problem in problems:
        print(f"FAIL: {problem}")
    if problems:
        return 1
    names = {str(p["id"]): p.get("name", p["id"]) for p in proof["prizes"]}
    for winner in proof["winners"]:
        again = f" (re-draw for {winner['replaces']})" if winner.get("replaces") else ""
        print(f"{names[str(winner['prize_id'])]}: {winner['registration_id']}{again}")
    print(f"OK: {len(proof['winners'])} winners follow from the revealed seed and the list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
