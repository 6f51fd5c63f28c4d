"""`hearth-content serve|migrate|makemigrations`."""

from hearth_content.app import definition
from servicekit.cli import run_cli


def main() -> None:
    """Entry point of the hearth-content command."""
    run_cli(definition)


if __name__ == "__main__":
    main()
