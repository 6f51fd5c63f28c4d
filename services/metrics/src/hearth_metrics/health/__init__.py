"""A community's health score: a documented, CHAOSS-inspired formula with its parts shown."""
