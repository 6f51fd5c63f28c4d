"""Comparison, trend and correlation: pure functions over series (no database)."""
