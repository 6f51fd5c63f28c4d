"""Content, activity and moderation measures per community, from per-item fact rows."""
