"""A 500 leaves as problem+json and is logged once, by a real uvicorn, not twice."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

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
