"""`hearth-members serve|migrate|makemigrations`."""

from hearth_members.app import definition
from servicekit.cli import run_cli


def main() -> None:
    """Entry point of the hearth-members command."""
    run_cli(definition)


if __name__ == "__main__":
    main()
