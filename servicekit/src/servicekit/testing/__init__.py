"""Test support: real backends (NATS, PostgreSQL) found once per session; service harnesses."""
