"""Per-user notifications: the inbox, and delivery adapters (webhook, SMTP) after commit."""

from hearth_members.notifications.models import Notification
from hearth_members.notifications.service import notify

__all__ = ["Notification", "notify"]
