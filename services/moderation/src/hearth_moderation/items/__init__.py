"""Moderation's copy of content's items (posts and comments), from content's events."""

from hearth_moderation.items.models import Item, ItemType
from hearth_moderation.items.service import item_of

__all__ = ["Item", "ItemType", "item_of"]
