"""Incentives: one points ledger, balances, leaderboards, badges, titles and perks."""
