"""Per-community running counters (the metrics catalogue goals are set on)."""
