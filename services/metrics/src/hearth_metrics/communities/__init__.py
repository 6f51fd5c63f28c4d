"""Communities as metrics knows them: members' snapshots, plus each community's metrics policy."""
