"""Appeals: once per decision, a dialogue, decided by a moderator other than the one who acted."""
