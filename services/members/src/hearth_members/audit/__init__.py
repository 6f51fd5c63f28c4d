"""The audit trail: who did what to whom, why, and when."""
