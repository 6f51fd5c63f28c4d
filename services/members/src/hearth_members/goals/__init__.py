"""Community goals and their measurements."""
