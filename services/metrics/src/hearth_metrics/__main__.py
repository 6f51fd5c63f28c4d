"""`hearth-metrics serve|migrate|makemigrations|rebuild`."""

from __future__ import annotations

import argparse

from hearth_metrics.app import definition
from hearth_metrics.settings import MetricsSettings
from servicekit.cli import CliCommand, run_cli
from servicekit.runtime import ServiceRuntime, settings_of


async def _rebuild(runtime: ServiceRuntime, _: argparse.Namespace) -> None:
    import nats

    from hearth_metrics.activity.rebuild import rebuild

    settings = settings_of(runtime, MetricsSettings)
    nc = await nats.connect(settings.nats_url)
    try:
        result = await rebuild(
            runtime.db,
            runtime.tables,
            nc.jetstream(),
            prefix=settings.subject_prefix,
            default_zone=settings.default_time_zone,
        )
    finally:
        await nc.close()
    print(f"rebuilt: {result.read} messages read, {result.applied} events applied")


REBUILD = CliCommand(
    "rebuild",
    "recompute the activity tables from the streams and swap them in (reads go on)",
    _rebuild,
)


def main() -> None:
    """Entry point of the hearth-metrics command."""
    run_cli(definition, commands=[REBUILD])


if __name__ == "__main__":
    main()
