"""Activity ingest: facts per member per day and exact daily active-member bitmaps."""
