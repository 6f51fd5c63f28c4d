"""Care journeys: nudge quiet members, follow up, and record the win-back."""
