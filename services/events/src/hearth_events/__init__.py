"""Hearth events context: activities (活动) and registrations (报名)."""
