"""Flagged items: what moderation's screening marked `flag`, listed for the community's staff."""
