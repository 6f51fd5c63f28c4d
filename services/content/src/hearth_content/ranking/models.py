"""Ranking tables: one row per (post, member, day) a member viewed a post."""

from __future__ import annotations

import uuid
from datetime import date

from sqlmodel import Field

from hearth_content.models import ContentModel


class PostView(ContentModel, table=True):
    """A member viewed a post on a (UTC) day; the primary key counts them once per day."""

    __tablename__ = "post_views"

    post_id: uuid.UUID = Field(primary_key=True)
    member_id: uuid.UUID = Field(primary_key=True)
    day: date = Field(primary_key=True)
