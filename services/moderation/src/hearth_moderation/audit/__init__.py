"""Moderation's audit log: every event moderation records, append-only and hash-chained."""
