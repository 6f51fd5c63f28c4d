"""`hearth-moderation serve|migrate|makemigrations`."""

from hearth_moderation.app import definition
from servicekit.cli import run_cli


def main() -> None:
    """Entry point of the hearth-moderation command."""
    run_cli(definition)


if __name__ == "__main__":
    main()
