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
