"""The whole platform as real processes (gateway + services), for end-to-end tests and benches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from servicekit.identity import generate_keypair
from servicekit.testing.backends import free_port

CONTEXTS = ("members", "content", "events", "moderation", "metrics")


@dataclass
class Platform:
    """Six processes on free ports sharing one NATS, one subject prefix and fresh databases."""

    workdir: Path
    nats_url: str
    subject_prefix: str
    database_urls: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    # A subset for tests that need only some contexts (the gateway routes to these alone).
    contexts: tuple[str, ...] = CONTEXTS
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        """Base URL of the gateway."""
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service(self, context: str) -> str:
        """Base URL of one service (direct, bypassing the gateway)."""
        return f"http://127.0.0.1:{self.ports[context]}"

    def _bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def _env(self, keys: dict[str, Path]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        env.update(
            {
                "HEARTH_ENVIRONMENT": "test",
                "HEARTH_NATS_URL": self.nats_url,
                "HEARTH_SUBJECT_PREFIX": self.subject_prefix,
                "HEARTH_IDENTITY_PUBLIC_KEY_FILE": str(keys["assertion_public"]),
                "HEARTH_RELAY_POLL_SECONDS": "0.2",
                # Tests run several platforms against one PostgreSQL (max_connections 100 by
                # default): small pools keep a whole platform under 50 connections.
                "HEARTH_DATABASE_POOL_SIZE": "4",
                "HEARTH_CONSUMER_BACKOFF_SECONDS": "[0.2, 0.5, 1.0]",
                "HEARTH_LOG_LEVEL": "WARNING",
                "HEARTH_GATEWAY_ASSERTION_PRIVATE_KEY_FILE": str(keys["assertion_private"]),
                "HEARTH_GATEWAY_TOKEN_PRIVATE_KEY_FILE": str(keys["token_private"]),
                "HEARTH_GATEWAY_UPSTREAMS": json.dumps({c: self.service(c) for c in self.contexts}),
                # The gateway's own database (refresh tokens, API keys) lives in the workdir.
                "HEARTH_GATEWAY_DATABASE_URL": f"sqlite:///{self.workdir / 'gateway.db'}",
                # End-to-end tests and benches send far more than a real client from one IP:
                # the limiter still runs (its cost is measured) but never throttles them.
                "HEARTH_GATEWAY_RATE_LIMIT_IP_PER_SECOND": "1000000",
                "HEARTH_GATEWAY_RATE_LIMIT_IP_BURST": "1000000",
                "HEARTH_GATEWAY_RATE_LIMIT_PRINCIPAL_PER_SECOND": "1000000",
                "HEARTH_GATEWAY_RATE_LIMIT_PRINCIPAL_BURST": "1000000",
                "HEARTH_GATEWAY_RATE_LIMIT_LOGIN_PER_SECOND": "1000",
                "HEARTH_GATEWAY_RATE_LIMIT_LOGIN_BURST": "1000",
            }
        )
        for context, url in self.database_urls.items():
            env[f"HEARTH_{context.upper()}_DATABASE_URL"] = url
        env.update(self.extra_env)
        return env

    def _keys(self) -> dict[str, Path]:
        keys_dir = self.workdir / "keys"
        keys_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("assertion", "token"):
            private, public = generate_keypair()
            (keys_dir / f"{name}.pem").write_text(private)
            (keys_dir / f"{name}.pub.pem").write_text(public)
            paths[f"{name}_private"] = keys_dir / f"{name}.pem"
            paths[f"{name}_public"] = keys_dir / f"{name}.pub.pem"
        return paths

    def start(self, timeout: float = 60.0) -> Platform:
        """Start every process (each migrates its database first), wait until all are ready."""
        for name in (*self.contexts, "gateway"):
            self.ports[name] = free_port()
        env = self._env(self._keys())
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        for name in (*self.contexts, "gateway"):
            log = (logs / f"{name}.log").open("wb")
            self.procs[name] = subprocess.Popen(
                [self._bin(f"hearth-{name}"), "serve", "--port", str(self.ports[name])]
                + (["--migrate"] if name != "gateway" else []),
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        for name in (*self.contexts, "gateway"):
            url = (
                (self.gateway + "/healthz") if name == "gateway" else self.service(name) + "/readyz"
            )
            while not _ok(url):
                if self.procs[name].poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not become ready:\n{self.log_tail(name)}")
                time.sleep(0.1)
        return self

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The end of one process's log."""
        path = self.workdir / "logs" / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def stop(self) -> None:
        """Terminate every process (SIGTERM, then SIGKILL)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            return response.status == 200
    except Exception:
        return False
