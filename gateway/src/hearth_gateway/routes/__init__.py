"""The gateway's own HTTP routes (everything that is not proxied)."""
