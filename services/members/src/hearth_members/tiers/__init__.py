"""Earned tiers (core / active / regular) recomputed from activity and points."""
