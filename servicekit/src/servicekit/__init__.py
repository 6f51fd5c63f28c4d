"""Hearth cross-cutting kernel shared by every service."""
