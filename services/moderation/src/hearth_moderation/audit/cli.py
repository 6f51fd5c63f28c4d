"""`hearth-moderation verify-audit`: walk the chain from the command line (exit 1 if broken)."""

from __future__ import annotations

import argparse
import sys

from hearth_moderation.audit.service import verify_chain
from servicekit.cli import CliCommand
from servicekit.runtime import ServiceRuntime


async def _verify(runtime: ServiceRuntime, args: argparse.Namespace) -> None:
    async with runtime.db.session() as session:
        result = await verify_chain(session)
    print(result.model_dump_json(indent=2))
    if not result.ok:
        assert result.broken is not None
        print(
            f"audit chain broken at record {result.broken.seq}: {result.broken.reason}",
            file=sys.stderr,
        )
        raise SystemExit(1)


verify_command = CliCommand(
    name="verify-audit",
    help="walk the audit chain and name the first broken record (exit 1 if any)",
    run=_verify,
)
