"""The pytest plugin every Hearth test session loads (`-p servicekit.testing.plugin`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any, NoReturn

import pytest

from servicekit.identity import generate_keypair
from servicekit.testing.backends import Backends, in_ci, resolve_backends
from servicekit.testing.harness import (
    Broker,
    Identities,
    RunningService,
    running_service,
    test_settings,
)

_backends: Backends | None = None
_error: str | None = None


def _get() -> Backends:
    global _backends, _error
    if _backends is None and _error is None:
        try:
            _backends = resolve_backends()
        except RuntimeError as exc:
            _error = str(exc)
    if _backends is None:
        pytest.exit(f"hearth: {_error}", returncode=3)
    return _backends


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose prerequisite is missing (reason shown with -ra); under CI, fail it.

    The project's rule: CI never silently skips what it could not start.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this must run in CI)", pytrace=False)
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Name the backends at the top of the run."""
    return _get().describe()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """And again at the end, so CI logs say which backends ran."""
    if _backends is not None:
        for line in _backends.describe():
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop test databases and stop what the session started."""
    if _backends is not None:
        _backends.close()


@pytest.fixture(scope="session")
def backends() -> Backends:
    """The resolved backends."""
    return _get()


@pytest.fixture(scope="session")
def nats_url(backends: Backends) -> str:
    """A JetStream-enabled NATS URL."""
    assert backends.nats_url
    return backends.nats_url


@pytest.fixture
async def subject_prefix(nats_url: str) -> AsyncIterator[str]:
    """A unique subject prefix per test (streams never collide); its streams are dropped after."""
    import nats

    prefix = "t" + uuid.uuid4().hex[:12]
    yield prefix
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for name in await js.streams_info():
            if name.config.name and name.config.name.startswith(prefix.upper() + "_"):
                await js.delete_stream(name.config.name)
    finally:
        await nc.close()


@pytest.fixture(scope="session")
def identities() -> Identities:
    """A gateway-like signer with a key pair made for this session."""
    private_pem, public_pem = generate_keypair()
    return Identities(private_pem, public_pem)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`any_database_url` runs a test on SQLite and, where available, PostgreSQL (reported)."""
    if "any_database_url" in metafunc.fixturenames:
        kinds = ["sqlite"] + (["postgres"] if _get().postgres_admin_url else [])
        metafunc.parametrize("any_database_url", kinds, indirect=True)


@pytest.fixture
def any_database_url(request: pytest.FixtureRequest, backends: Backends) -> str:
    """A fresh database on SQLite and on PostgreSQL when the session has it."""
    return backends.database_url("kit", request.param)


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[Any]:
    """A raw NATS client for asserting on what was published."""
    import nats

    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


@pytest.fixture
def fresh_database(backends: Backends) -> Iterator[Any]:
    """Factory of fresh databases on the primary backend: `fresh_database("members")`."""
    yield backends.database_url


Launch = Callable[..., Awaitable[RunningService]]


@pytest.fixture
async def launch(
    backends: Backends, nats_url: str, subject_prefix: str, identities: Identities
) -> AsyncIterator[Launch]:
    """`await launch(definition, database_url=None, **settings)`: a running service for this test.

    Every service started in one test shares the test's subject prefix (so they talk over real
    NATS) and gets a fresh database on the primary backend unless one is given; all stop at
    the end of the test.
    """
    async with AsyncExitStack() as stack:

        async def start(
            definition: Any, database_url: str | None = None, **values: Any
        ) -> RunningService:
            settings = test_settings(
                definition,
                database_url=database_url
                or backends.database_url(definition.context, migrations=definition.migrations_dir),
                nats_url=nats_url,
                subject_prefix=subject_prefix,
                identity_public_key=identities.public_pem,
                **values,
            )
            return await stack.enter_async_context(running_service(definition, settings))

        yield start


@pytest.fixture
def broker(nats_client: Any, subject_prefix: str) -> Broker:
    """Publishes and reads back CloudEvents on this test's subject prefix."""
    return Broker(nats_client, subject_prefix)


@pytest.fixture
def stream_events(broker: Broker) -> Callable[[str], Awaitable[list[Any]]]:
    """`await stream_events(subject)`: every event on that subject so far."""
    return broker.read
