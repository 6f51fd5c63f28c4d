"""The sanction ladder: warning points that expire, mutes, removals, bans, their lifting."""
