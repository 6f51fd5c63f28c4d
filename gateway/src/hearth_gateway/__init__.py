"""Hearth API gateway."""
