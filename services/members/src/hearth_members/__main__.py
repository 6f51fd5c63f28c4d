"""`hearth-members serve|migrate|makemigrations|republish-snapshots`."""

from hearth_members.app import definition
from hearth_members.snapshots.republish import command as republish_snapshots
from servicekit.cli import run_cli


def main() -> None:
    """Entry point of the hearth-members command."""
    run_cli(definition, commands=[republish_snapshots])


if __name__ == "__main__":
    main()
