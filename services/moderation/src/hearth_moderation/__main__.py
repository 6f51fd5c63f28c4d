"""`hearth-moderation serve|migrate|makemigrations`."""

from hearth_moderation.app import definition
from hearth_moderation.audit.cli import verify_command
from servicekit.cli import run_cli


def main() -> None:
    """Entry point of the hearth-moderation command."""
    run_cli(definition, commands=[verify_command])


if __name__ == "__main__":
    main()
