"""Membership lifecycle: joining, applications, invites, sanctions, ownership, cleanup."""
