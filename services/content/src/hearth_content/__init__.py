"""Hearth content context."""
