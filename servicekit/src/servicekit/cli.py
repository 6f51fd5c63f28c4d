"""The command line every service shares: serve, migrate, makemigrations (plus its own)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from servicekit import migrations
from servicekit.runtime import ServiceDefinition, ServiceRuntime


@dataclass(frozen=True)
class CliCommand:
    """A service's own command: it runs against the service's database (no HTTP, no NATS)."""

    name: str
    help: str
    run: Callable[[ServiceRuntime, argparse.Namespace], Awaitable[None]]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


def run_cli(
    definition: ServiceDefinition,
    argv: list[str] | None = None,
    *,
    commands: Sequence[CliCommand] = (),
) -> None:
    """`hearth-<context> serve|migrate|makemigrations|<the service's own commands>`."""
    parser = argparse.ArgumentParser(prog=f"hearth-{definition.context}")
    sub = parser.add_subparsers(dest="command", required=True)
    own = {c.name: c for c in commands}
    for command in commands:
        extra = sub.add_parser(command.name, help=command.help)
        if command.arguments is not None:
            command.arguments(extra)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=definition.default_port)
    serve.add_argument(
        "--migrate", action="store_true", help="upgrade the database first (development, tests)"
    )
    sub.add_parser("migrate", help="upgrade the database to the latest revision")
    make = sub.add_parser("makemigrations", help="autogenerate a revision")
    make.add_argument("message")
    args = parser.parse_args(argv)
    settings = definition.settings_cls()
    if args.command in own:
        asyncio.run(_run_own(own[args.command], ServiceRuntime(definition, settings), args))
    elif args.command == "migrate":
        migrations.upgrade(definition.migrations_dir, settings.database_url)
    elif args.command == "makemigrations":
        migrations.upgrade(definition.migrations_dir, settings.database_url)
        migrations.revision(
            definition.migrations_dir,
            settings.database_url,
            args.message,
            branch=definition.context,
        )
    else:
        import uvicorn

        if args.migrate:  # one process start instead of two: imports dominate start-up time
            migrations.upgrade(definition.migrations_dir, settings.database_url)

        # uvicorn drains on SIGTERM (stops accepting, finishes in-flight requests, runs the
        # lifespan shutdown: consumers finish their message, the relay its batch), then
        # re-raises the signal. A drained stop is a clean stop: exit 0, not 143.
        signal.signal(signal.SIGTERM, _drained)
        uvicorn.run(
            definition.app_factory,
            factory=True,
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            log_level=settings.log_level.lower(),
            proxy_headers=False,
            # Its lines carry the raw path and query string (secrets: invite tokens, e-mail
            # lookups); the app logs each request by route template instead (log_request).
            access_log=False,
            timeout_graceful_shutdown=10,
        )


async def _run_own(command: CliCommand, runtime: ServiceRuntime, args: argparse.Namespace) -> None:
    try:
        await command.run(runtime, args)
    finally:
        await runtime.db.dispose()


def _drained(signum: int, frame: FrameType | None) -> None:
    """Exit 0: re-raised by uvicorn once drained, or received before it took the signals."""
    raise SystemExit(0)
