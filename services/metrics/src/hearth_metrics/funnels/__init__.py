"""The visitor -> member -> contributor -> core member funnel, from per-member milestone rows."""
