"""Community goals: a read model of members' goals and their progress from the counters."""
