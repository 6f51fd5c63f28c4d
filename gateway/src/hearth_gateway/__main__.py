"""Run the gateway with uvicorn, or write a development key set.

hearth-gateway serve [--host 127.0.0.1] [--port 8000] [--migrate]   # one process a container
hearth-gateway migrate            # the gateway database (refresh tokens, API keys, webhooks)
hearth-gateway makemigrations "message"   # autogenerate a revision (scripts/regen_migration.sh)
hearth-gateway generate-keys var/keys
hearth-gateway new-webhook-key var/keys/webhook-secrets.json [--activate]
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_settings import BaseSettings, SettingsConfigDict

from hearth_gateway.settings import GatewaySettings
from hearth_gateway.tokens import private_pem, public_pem
from hearth_gateway.webhook_keys import add_key


def generate_keys(folder: Path) -> None:
    """Write assertion and token Ed25519 keys and the webhook-secret keyring (never overwriting)
    and print the env to use."""
    folder.mkdir(parents=True, exist_ok=True)
    webhook = folder / "webhook-secrets.json"
    if webhook.exists():
        raise SystemExit(f"{webhook} exists; refusing to overwrite it")
    files = {}
    for name in ("assertion", "token"):
        key = Ed25519PrivateKey.generate()
        private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
        if private.exists():
            raise SystemExit(f"{private} exists; refusing to overwrite it")
        private.touch(mode=0o600)
        private.write_text(private_pem(key))
        public.write_text(public_pem(key.public_key()))
        files[name] = (private.resolve(), public.resolve())
    add_key(webhook)
    print(f"HEARTH_GATEWAY_ASSERTION_PRIVATE_KEY_FILE={files['assertion'][0]}")
    print(f"HEARTH_GATEWAY_TOKEN_PRIVATE_KEY_FILE={files['token'][0]}")
    print(f"HEARTH_GATEWAY_WEBHOOK_SECRET_KEYS_FILE={webhook.resolve()}")
    print(f"HEARTH_IDENTITY_PUBLIC_KEY_FILE={files['assertion'][1]}  # for every service")


class MigrationSettings(BaseSettings):
    """What `hearth-gateway migrate` reads: the gateway's database URL and nothing else."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_GATEWAY_", extra="ignore")

    database_url: str = "sqlite:///./var/gateway.db"


def _migrate(database_url: str) -> None:
    from hearth_gateway.main import MIGRATIONS_DIR
    from servicekit.migrations import upgrade

    # The gateway's branch plus the kernel's (its outbox), as in every service database.
    upgrade(MIGRATIONS_DIR, database_url)


def _makemigrations(database_url: str, message: str) -> None:
    from hearth_gateway.main import MIGRATIONS_DIR
    from servicekit.migrations import revision

    _migrate(database_url)
    revision(MIGRATIONS_DIR, database_url, message, branch="gateway")


def main(argv: list[str] | None = None) -> None:
    """Serve the gateway (uvloop + httptools) on host:port, default 127.0.0.1:8000."""
    parser = argparse.ArgumentParser(prog="hearth-gateway", description="Hearth API gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")  # same shape as hearth-<service>
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--migrate", action="store_true", help="upgrade the database first")
    sub.add_parser("migrate", help="upgrade the gateway database to the latest revision")
    make = sub.add_parser("makemigrations", help="autogenerate a revision")
    make.add_argument("message")
    keys = sub.add_parser("generate-keys", help="write development keys and exit")
    keys.add_argument("folder", type=Path)
    webhook_key = sub.add_parser(
        "new-webhook-key", help="add a key to the webhook-secret keyring file (created if missing)"
    )
    webhook_key.add_argument("file", type=Path)
    webhook_key.add_argument(
        "--activate", action="store_true", help="make it the key new secrets are encrypted with"
    )
    args = parser.parse_args(argv)
    if args.command == "generate-keys":
        generate_keys(args.folder)
        return
    if args.command == "new-webhook-key":
        existed = args.file.exists()
        kid = add_key(args.file, activate=args.activate)
        state = "active" if args.activate or not existed else "not active yet"
        print(f"added key {kid} to {args.file} ({state})")
        return
    if args.command == "migrate":
        # Only the database URL: a migration Job gets no signing keys (least privilege).
        _migrate(MigrationSettings().database_url)
        return
    if args.command == "makemigrations":
        _makemigrations(MigrationSettings().database_url, args.message)
        return
    settings = GatewaySettings()  # validated here too, so unsafe settings fail before binding
    if args.migrate:
        _migrate(settings.database_url)
    # As the services' runner (servicekit.cli): uvicorn drains on SIGTERM (stops accepting,
    # finishes in-flight requests for up to graceful_shutdown_seconds, runs the lifespan
    # shutdown: webhook consumers and dispatcher stop, the relay finishes its batch), then
    # re-raises the signal. A drained stop is a clean stop: exit 0, not 143.
    signal.signal(signal.SIGTERM, _drained)
    # One process per container (no --workers): replicas scale out, and each process's
    # in-memory state (credential cache, limits without Redis) stays what the README says.
    uvicorn.run(
        "hearth_gateway.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        # Off: it logs the raw target, query string and secret path segments included; the
        # request log (servicekit's, through EdgeMetrics) names the route instead.
        access_log=False,
        # Trusted proxies are the gateway's own setting (it reads X-Forwarded-For itself).
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )


def _drained(signum: int, frame: FrameType | None) -> None:
    """Exit 0: re-raised by uvicorn once drained, or received before it took the signals."""
    raise SystemExit(0)


if __name__ == "__main__":
    main()
