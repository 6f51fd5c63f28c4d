"""Suggestion box (意见箱): ideas, votes, a status workflow, official replies."""
