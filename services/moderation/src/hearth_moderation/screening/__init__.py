"""Screening additions: behaviour rules on top of the matcher (flood, duplicates, newcomers)."""
