"""Real processes for tests that must see what a deployment sees (signals, logs, exit codes)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx


def spawn_logged(
    argv: list[str], *, env: dict[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start a process with stdout and stderr appended to `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


async def wait_until_ok(
    proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 30.0
) -> None:
    """Poll `url` until it answers 200; fail with the log if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as probe:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if (await probe.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never answered 200:\n{_tail(log_path)}")
            await asyncio.sleep(0.1)


def _tail(log_path: Path) -> str:
    """The end of a process's log, for a failing test's message."""
    return log_path.read_text(errors="replace")[-3000:]
