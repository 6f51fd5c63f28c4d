"""Run the gateway with uvicorn, or write a development key set.

hearth-gateway serve [--host 127.0.0.1] [--port 8000] [--workers 1] [--migrate]
hearth-gateway migrate            # the gateway database (refresh tokens, API keys, webhooks)
hearth-gateway generate-keys var/keys
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_settings import BaseSettings, SettingsConfigDict

from hearth_gateway.settings import GatewaySettings
from hearth_gateway.tokens import private_pem, public_pem


def generate_keys(folder: Path) -> None:
    """Write assertion and token Ed25519 keys (never overwriting) and print the env to use."""
    folder.mkdir(parents=True, exist_ok=True)
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
    print(f"HEARTH_GATEWAY_ASSERTION_PRIVATE_KEY_FILE={files['assertion'][0]}")
    print(f"HEARTH_GATEWAY_TOKEN_PRIVATE_KEY_FILE={files['token'][0]}")
    print(f"HEARTH_IDENTITY_PUBLIC_KEY_FILE={files['assertion'][1]}  # for every service")


class MigrationSettings(BaseSettings):
    """What `hearth-gateway migrate` reads: the gateway's database URL and nothing else."""

    model_config = SettingsConfigDict(env_prefix="HEARTH_GATEWAY_", extra="ignore")

    database_url: str = "sqlite:///./var/gateway.db"


def _migrate(database_url: str) -> None:
    from hearth_gateway.main import MIGRATIONS_DIR
    from servicekit.migrations import upgrade

    upgrade(MIGRATIONS_DIR, database_url, kernel=False)  # no outbox/inbox tables here


def main(argv: list[str] | None = None) -> None:
    """Serve the gateway (uvloop + httptools) on host:port, default 127.0.0.1:8000."""
    parser = argparse.ArgumentParser(prog="hearth-gateway", description="Hearth API gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")  # same shape as hearth-<service>
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--migrate", action="store_true", help="upgrade the database first")
    sub.add_parser("migrate", help="upgrade the gateway database to the latest revision")
    keys = sub.add_parser("generate-keys", help="write development keys and exit")
    keys.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "generate-keys":
        generate_keys(args.folder)
        return
    if args.command == "migrate":
        # Only the database URL: a migration Job gets no signing keys (least privilege).
        _migrate(MigrationSettings().database_url)
        return
    settings = GatewaySettings()  # validated here too, so unsafe settings fail before binding
    if args.migrate:
        _migrate(settings.database_url)
    uvicorn.run(
        "hearth_gateway.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        proxy_headers=False,  # the gateway is the edge; it sets X-Forwarded-* itself
        server_header=False,
    )


if __name__ == "__main__":
    main()
