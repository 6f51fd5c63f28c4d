"""Snapshots of membership and community state, written with every change (see writer.py)."""
