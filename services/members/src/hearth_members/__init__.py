"""Hearth members context."""
