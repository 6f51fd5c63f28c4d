"""Property-based fuzzing of every operation of the platform's OpenAPI document, via the gateway.

Schemathesis generates requests from the merged document (gateway + every service) — valid ones
and deliberately invalid ones — and sends them with the tokens of several roles and with none.
Every response must be a non-5xx answer whose status code and content type are documented and,
for valid requests, whose body matches the documented schema. Path parameters named
`community_id` are pinned to a real community the member belongs to, so requests reach past
the 404. The platform is its own (fresh databases, its own subject prefix): the fuzzer may ban,
mute or pseudonymise the accounts it uses.

Examples per operation, role and mode: HEARTH_FUZZ_EXAMPLES (default 3; one for anonymous calls,
which must all be refused alike); CI keeps it bounded.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from servicekit.testing.backends import Backends
from servicekit.testing.platform import CONTEXTS, Platform

EXAMPLES = int(os.environ.get("HEARTH_FUZZ_EXAMPLES", "3"))
ROLES = ("admin", "member", None)  # None: no credentials at all
ALWAYS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
]
POSITIVE = [*ALWAYS, st_checks.response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of its own: what the fuzzer does to its accounts stays here."""
    assert backends.nats_url
    running = Platform(
        workdir=Path(tmp_path_factory.mktemp("fuzz")),
        nats_url=backends.nats_url,
        subject_prefix="fz" + uuid.uuid4().hex[:8],
        database_urls={c: backends.database_url(f"fz{c}") for c in CONTEXTS},
    ).start(timeout=180)
    yield running
    running.stop()


def _fuzzer(
    strategy: Any, *, gateway: str, sent: dict[str, str], checks: list[Any], examples: int
) -> Any:
    """A Hypothesis test sending `examples` generated cases with `sent` headers, then checking."""

    @given(case=strategy)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, move on
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=gateway, headers=sent)
        case.validate_response(response, checks=checks)

    return run


def _document(gateway: str) -> dict[str, Any]:
    """The merged document once every service answers (a starting service is listed missing)."""
    deadline = time.monotonic() + 60
    while True:
        doc = httpx.get(gateway + "/openapi.json", timeout=30).json()
        if not doc.get("x-hearth-unavailable") or time.monotonic() > deadline:
            assert not doc.get("x-hearth-unavailable"), doc.get("x-hearth-unavailable")
            return doc
        time.sleep(1)


def test_every_operation_survives_generated_input(fuzzed: Platform) -> None:
    gw = httpx.Client(base_url=fuzzed.gateway, timeout=10)

    def login(name: str) -> dict[str, str]:
        r = gw.post("/auth/token", json={"username": name, "password": f"hearth-{name}"})
        assert r.status_code == 200, r.text
        return {"authorization": f"Bearer {r.json()['access_token']}"}

    headers = {role: login(role) if role else {} for role in ROLES}
    r = gw.post(
        "/api/members/communities",
        json={"name": "Fuzzed", "kind": "hybrid"},
        headers=headers["admin"],
    )
    assert r.status_code == 201, r.text
    community = r.json()["id"]
    r = gw.post(f"/api/members/communities/{community}/members", headers=headers["member"])
    assert r.status_code == 201, r.text

    schema = schemathesis.openapi.from_dict(_document(fuzzed.gateway))
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        pinned = {p.name: community for p in operation.path_parameters if p.name == "community_id"}
        for role in ROLES:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if role is None and mode is GenerationMode.NEGATIVE:
                    continue
                checks = POSITIVE if mode is GenerationMode.POSITIVE else ALWAYS

                run = _fuzzer(
                    operation.as_strategy(mode, path_parameters=pinned or None),
                    gateway=fuzzed.gateway,
                    sent=headers[role],
                    checks=checks,
                    examples=EXAMPLES if role else 1,
                )
                try:
                    run()
                except BaseException as exc:  # schemathesis reports a BaseExceptionGroup
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    failures.append(f"{operation.label} as {role or 'anonymous'} ({mode}): {exc}")
    # The document held the whole platform, not an empty or partial one.
    assert operations > 150, operations
    assert not failures, "\n\n".join(failures[:10]) + f"\n\n({len(failures)} failing)"
