"""Interaction: views counted once per member per day, hot ranking, unanswered posts."""
