"""Hearth moderation context."""
