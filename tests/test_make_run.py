"""`make run`'s runner on a fresh state folder, the way a laptop without NATS or PostgreSQL runs it.

The runner (scripts/hearth_run.py) is started as a real process with no NATS_URL and no database
URLs, on ports and a state folder of the test's own (HEARTH_RUN_PORT_BASE, HEARTH_RUN_NATS_PORT,
HEARTH_RUN_VAR), so it must start `nats-server` from the venv itself, make development keys,
migrate five SQLite databases, start the gateway and the five services, and seed the demo
community through the gateway. Then the test uses it as a person would — a development token,
the seeded community, the demo member in it — and stops it with Ctrl-C (SIGINT): exit 0 and
every port it opened closed again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from servicekit.testing.backends import free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_MEMBER = "00000000-0000-7000-8000-000000000002"


def _free_block(size: int) -> int:
    """A base port with `size` consecutive free ports on 127.0.0.1."""
    for _ in range(50):
        base = free_port()
        if base + size >= 65535:
            continue
        if all(_free(base + i) for i in range(size)):
            return base
    raise AssertionError("no block of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _follow(proc: subprocess.Popen[str]) -> tuple[list[str], threading.Event, threading.Thread]:
    """Collect a runner's output lines in a thread; the event is set once it says it is ready."""
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, ready, reader


def test_make_run_starts_seeds_serves_and_stops_cleanly(tmp_path: Path) -> None:
    base, nats_port = _free_block(6), free_port()
    state = tmp_path / "var"
    env = _runner_env(state, base, nats_port)
    runner = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "hearth_run.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, ready, reader = _follow(runner)
    try:
        assert ready.wait(180), "runner did not get ready:\n" + "".join(lines)
        output = "".join(lines)
        # It started NATS itself (nothing in the environment, nothing on its port).
        assert f"nats://127.0.0.1:{nats_port}   (started here" in output, output
        assert "hearth-operator" in output  # the development credentials are printed
        for offset, svc in enumerate(["members", "content", "events", "moderation", "metrics"], 1):
            assert f"{svc:<12} http://127.0.0.1:{base + offset}" in output
            assert (state / f"{svc}.db").exists()  # embedded default: one SQLite file each
        # Private keys are the owner's only.
        assert stat.S_IMODE((state / "keys" / "assertion.key").stat().st_mode) == 0o600

        gateway = f"http://127.0.0.1:{base}"
        with httpx.Client(base_url=gateway, timeout=10) as client:
            token = client.post(
                "/auth/token", json={"username": "member", "password": "hearth-member"}
            ).json()["access_token"]
            bearer = {"authorization": f"Bearer {token}"}
            page = client.get("/api/members/communities", headers=bearer).json()
            demo = [c for c in page["items"] if c["name"] == "Hearth Demo"]
            assert len(demo) == 1, page
            members = client.get(
                f"/api/members/communities/{demo[0]['id']}/members", headers=bearer
            ).json()
            assert DEMO_MEMBER in {m["user_id"] for m in members["items"]}, members
            assert client.get("/api/members/communities").status_code == 401  # no token
            # The gateway's readiness probes every upstream it was given: all five answer.
            ready_body = client.get("/readyz")
            assert ready_body.status_code == 200, ready_body.text

        runner.send_signal(signal.SIGINT)  # Ctrl-C
        assert runner.wait(90) == 0, "".join(lines)
        reader.join(5)
        assert "stopped every process this run started" in "".join(lines)
        for port in [base + i for i in range(6)] + [nats_port]:
            assert not _listening(port), f"port {port} still open after the runner stopped"
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGINT)
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                runner.kill()


def _runner_env(state: Path, base: int, nats_port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k in ("NATS_URL", "HEARTH_DATABASE_URL_TEMPLATE") or k.endswith("_DATABASE_URL"))
        and not k.endswith("_NATS_URL")
    }
    return env | {
        "HEARTH_RUN_VAR": str(state),
        "HEARTH_RUN_PORT_BASE": str(base),
        "HEARTH_RUN_NATS_PORT": str(nats_port),
        "HEARTH_LOG_LEVEL": "WARNING",
    }


def _started_here(ports: list[int]) -> list[str]:
    """Command lines of live processes that were started with one of these ports."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if any(str(port) == word for port in ports for word in words):
            found.append(" ".join(words))
    return found


def test_make_run_stops_everything_on_repeated_group_signals(tmp_path: Path) -> None:
    """`make run` in its own process group, SIGTERM to the group twice, then SIGINT: all stop."""
    base, nats_port = _free_block(6), free_port()
    ports = [base + i for i in range(6)] + [nats_port]
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=_runner_env(tmp_path / "var", base, nats_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a supervisor or CI job runs it
    )
    lines, ready, reader = _follow(make)
    try:
        assert ready.wait(240), "make run did not get ready:\n" + "".join(lines)
        assert all(_listening(port) for port in ports), "".join(lines)
        # Both make and the runner get each signal; the second and third land while the
        # runner is already inside its shutdown path.
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGINT):
            os.killpg(make.pid, sig)
            time.sleep(0.05)
        make.wait(90)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (
            _started_here(ports) or any(_listening(p) for p in ports)
        ):
            time.sleep(0.5)
        assert _started_here(ports) == [], "".join(lines)
        for port in ports:
            assert not _listening(port), f"port {port} still open:\n" + "".join(lines)
        reader.join(5)
        output = "".join(lines)
        assert "stopped every process this run started" in output, output
        assert "already stopping" in output, output  # the later signals reached the runner
    finally:
        if make.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(make.pid, signal.SIGKILL)
        for command in _started_here(ports):
            print("left running:", command)
