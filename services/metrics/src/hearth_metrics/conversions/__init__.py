"""Conversions that business systems report (HTTP or NATS), and conversion rates."""
