"""`hearth-events serve|migrate|makemigrations|verify-draw`."""

import sys

from hearth_events.app import definition
from servicekit.cli import run_cli


def main() -> None:
    """Entry point of the hearth-events command."""
    if sys.argv[1:2] == ["verify-draw"]:
        from hearth_events.draws.verify import main as verify_draw

        sys.exit(verify_draw(sys.argv[2:]))
    run_cli(definition)


if __name__ == "__main__":
    main()
