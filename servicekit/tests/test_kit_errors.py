"""Errors leave as problem+json: a 500 logged once (real uvicorn, not twice), an outage as 503."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from servicekit.testing.backends import free_port
from servicekit.testing.processes import spawn_logged, wait_until_ok

APP = """
import uvicorn
from fastapi import FastAPI
from servicekit.logging import configure_logging
from servicekit.problems import install_problem_handlers

configure_logging("hearth-errors", "INFO", "development")
app = FastAPI()
install_problem_handlers(app)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items/{item_id}")
async def broken(item_id: str) -> None:
    raise RuntimeError("a bug")


uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), access_log=False)
"""


async def test_unhandled_error_is_one_problem_and_one_log_record(tmp_path: Path) -> None:
    script, log_path, port = tmp_path / "errors_app.py", tmp_path / "app.log", free_port()
    script.write_text(APP)
    proc = spawn_logged(
        [sys.executable, str(script), str(port)],
        env=dict(os.environ),
        cwd=tmp_path,
        log_path=log_path,
    )
    try:
        await wait_until_ok(proc, f"http://127.0.0.1:{port}/healthz", log_path)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/items/secret-token-123")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("internal-error")
    finally:
        proc.terminate()
        proc.wait(10)
    log = log_path.read_text()
    assert log.count("RuntimeError: a bug") == 1, log  # once: not again by uvicorn
    assert "unhandled error on GET /items/{item_id}" in log, log
    assert "secret-token-123" not in log  # the template is logged, never the raw path
    assert "Exception in ASGI application" not in log, log


def _outage_app() -> Any:
    from fastapi import FastAPI
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from servicekit.problems import install_problem_handlers

    lost = DBAPIError("SELECT 1", None, ConnectionResetError(), connection_invalidated=True)
    wrapped = RuntimeError("while loading")
    wrapped.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    raised: dict[str, BaseException] = {
        "refused": ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        "lost": lost,
        "pool": PoolTimeout("QueuePool limit reached"),
        "wrapped": wrapped,
        "missing-file": FileNotFoundError(errno.ENOENT, "no such file"),
        "bug": ValueError("a bug"),
    }
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/raise/{kind}")
    async def fail(kind: str) -> None:
        raise raised[kind]

    return app


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("refused", 503),
        ("lost", 503),
        ("pool", 503),
        ("wrapped", 503),
        ("missing-file", 500),
        ("bug", 500),
    ],
)
async def test_an_unreachable_dependency_is_503_and_a_bug_stays_500(kind: str, status: int) -> None:
    transport = httpx.ASGITransport(app=_outage_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        response = await client.get(f"/raise/{kind}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    if status == 503:
        assert doc["type"].endswith(":unavailable") and response.headers["retry-after"] == "2"
    else:
        assert doc["type"].endswith(":internal-error") and "retry-after" not in response.headers


async def test_a_lost_race_on_a_unique_key_is_409_and_writes_nothing_twice(
    any_database_url: str,
) -> None:
    """Two first inserts of one key (a real database): one wins, the other gets 409, not 500."""
    import asyncio

    from fastapi import FastAPI
    from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

    from servicekit.db import Database
    from servicekit.problems import install_problem_handlers

    table = Table(
        "settings", MetaData(), Column("id", Integer, primary_key=True), Column("v", String)
    )
    db = Database(any_database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    app = FastAPI()
    install_problem_handlers(app)
    gate = asyncio.Event()

    @app.put("/settings/{key}")
    async def put(key: int) -> dict[str, str]:
        async with db.engine.begin() as conn:
            found = (await conn.execute(select(table).where(table.c.id == key))).first()
            await gate.wait()  # both requests have read "no row yet" before either inserts
            if found is None:
                await conn.execute(insert(table).values(id=key, v="set"))
        return {"status": "ok"}

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kit"
        ) as client:
            racing = [asyncio.create_task(client.put("/settings/1")) for _ in range(2)]
            await asyncio.sleep(0.2)
            gate.set()
            codes = sorted(r.status_code for r in await asyncio.gather(*racing))
            loser = [r for r in (t.result() for t in racing) if r.status_code == 409]
        async with db.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(table))).scalar() == 1
        if any_database_url.startswith("sqlite"):
            # SQLite serialises writers (servicekit.db): the second waits, then sees the row.
            assert codes == [200, 200], codes
        else:
            assert codes == [200, 409], codes
            assert loser[0].headers["content-type"] == "application/problem+json"
            assert loser[0].json()["type"].endswith("concurrent-update")
    finally:
        await db.dispose()
