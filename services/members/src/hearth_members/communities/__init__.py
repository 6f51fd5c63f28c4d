"""Communities: create, read, update, archive/restore."""
