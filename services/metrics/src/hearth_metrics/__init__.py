"""Hearth metrics context: community counters and, later, activity, retention and reports."""
