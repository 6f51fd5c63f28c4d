"""Per-user notifications: the inbox, and durable delivery beyond it (webhook, SMTP)."""

from hearth_members.notifications.models import Notification
from hearth_members.notifications.service import notify

__all__ = ["Notification", "notify"]
