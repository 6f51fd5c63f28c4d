"""Index posts and comments at write time; search them with relevance and recency.

Score = relevance / (1 + age_days / 30): relevance is PostgreSQL's ts_rank or SQLite's
-bm25 over the pre-segmented tokens, and a month-old document needs twice the relevance of a
new one to rank level with it (docs/content-search.md).
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select

from hearth_content.models import COMMUNITY_STAFF_ROLES, Membership, MembershipStatus, Post
from hearth_content.search.models import SearchDocument, SearchHit
from hearth_content.search.tokenize import document, normalize, tokens
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow
from servicekit.problems import Problem

HALF_LIFE_DAYS = 30
SNIPPET_CHARS = 120
# Candidates taken by relevance before the visibility filter and recency re-rank trim them.
CANDIDATES = 200


async def index(
    uow: UnitOfWork,
    *,
    doc_id: uuid.UUID,
    kind: str,
    post_id: uuid.UUID,
    community_id: uuid.UUID,
    author_id: uuid.UUID,
    fmt: str,
    created_at: datetime,
    title: str,
    body: str,
) -> None:
    """Write (or rewrite) a document's row and, on SQLite, its FTS5 row; caller commits."""
    doc = await uow.session.get(SearchDocument, doc_id)
    values: dict[str, Any] = {
        "kind": kind,
        "post_id": post_id,
        "community_id": community_id,
        "author_id": author_id,
        "format": fmt,
        "created_at": created_at,
        "title": title,
        "body": body,
        "tokens": document(title, body),
    }
    if doc is None:
        doc = SearchDocument(id=doc_id, **values)
    else:
        for key, value in values.items():
            setattr(doc, key, value)
    uow.session.add(doc)
    if _dialect(uow) == "sqlite":
        await uow.session.flush()
        await uow.session.execute(
            text("DELETE FROM search_fts WHERE doc_id = :d"), {"d": doc_id.hex}
        )
        await uow.session.execute(
            text("INSERT INTO search_fts (doc_id, tokens) VALUES (:d, :t)"),
            {"d": doc_id.hex, "t": values["tokens"]},
        )


async def unindex(uow: UnitOfWork, doc_id: uuid.UUID) -> None:
    """Drop a document (a deleted comment); caller commits."""
    doc = await uow.session.get(SearchDocument, doc_id)
    if doc is not None:
        await uow.session.delete(doc)
    if _dialect(uow) == "sqlite":
        await uow.session.execute(
            text("DELETE FROM search_fts WHERE doc_id = :d"), {"d": doc_id.hex}
        )


async def index_post(uow: UnitOfWork, post: Post) -> None:
    """Index a post as submitted; review state is applied at query time, via the post row."""
    await index(
        uow,
        doc_id=post.id,
        kind="post",
        post_id=post.id,
        community_id=post.community_id,
        author_id=post.author_id,
        fmt=str(post.format),
        created_at=post.submitted_at,
        title=post.title,
        body=post.body,
    )


async def search(
    *,
    uow: UnitOfWork,
    actor: Principal,
    q: str,
    community_id: uuid.UUID | None,
    author_id: uuid.UUID | None,
    fmt: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[SearchHit]:
    """Posts and comments matching every query word that the actor may read, best first."""
    terms = list(dict.fromkeys(tokens(q, for_query=True)))
    if not terms:
        raise Problem(422, "empty-query", "Unprocessable", "the query has no searchable words")
    ranked = await _candidates(uow, terms)
    if not ranked:
        return []
    scores = dict(ranked)
    stmt = (
        select(SearchDocument, Post)
        .join(Post, col(Post.id) == col(SearchDocument.post_id))
        .where(col(SearchDocument.id).in_(list(scores)))
    )
    if community_id is not None:
        stmt = stmt.where(col(SearchDocument.community_id) == community_id)
    if author_id is not None:
        stmt = stmt.where(col(SearchDocument.author_id) == author_id)
    if fmt is not None:
        stmt = stmt.where(col(SearchDocument.format) == fmt)
    if since is not None:
        stmt = stmt.where(col(SearchDocument.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(SearchDocument.created_at) < until)
    if not actor.is_staff:
        staff_in, member_in = await _communities(uow, actor)
        # Members find published posts (and comments on them) and their own posts; community
        # staff also find what waits for review in their communities. A deleted post is kept
        # as evidence for platform staff only.
        stmt = stmt.where(col(Post.deleted_at).is_(None)).where(
            (col(SearchDocument.community_id).in_(staff_in))
            | (
                col(SearchDocument.community_id).in_(member_in)
                & (
                    (col(Post.status) == "published")
                    | ((col(Post.author_id) == actor.subject) & (SearchDocument.kind == "post"))
                )
            )
        )
    now = utcnow()
    hits: list[SearchHit] = []
    for doc, _post in (await uow.session.exec(stmt)).all():
        created = _aware(doc.created_at)
        age_days = max((now - created).total_seconds() / 86400, 0.0)
        score = scores[doc.id] / (1 + age_days / HALF_LIFE_DAYS)
        hits.append(
            SearchHit(
                id=doc.id,
                kind=doc.kind,
                post_id=doc.post_id,
                community_id=doc.community_id,
                author_id=doc.author_id,
                format=doc.format,
                created_at=created,
                title=doc.title,
                snippet=doc.body or doc.title,  # cut and marked below, for the page only
                score=round(score, 6),
            )
        )
    hits.sort(key=lambda h: (-h.score, h.id))
    page = hits[:limit]
    wanted = set(terms)
    for hit in page:
        hit.snippet = snippet(hit.snippet, wanted)
    return page


async def _candidates(uow: UnitOfWork, terms: list[str]) -> list[tuple[uuid.UUID, float]]:
    """(doc id, relevance) of documents holding every term, by the dialect's full-text index."""
    if _dialect(uow) == "postgresql":
        rows = await uow.session.execute(
            text(
                "SELECT id, ts_rank(tsv, q) AS r "
                "FROM search_documents, plainto_tsquery('simple', :q) q "
                "WHERE tsv @@ q ORDER BY r DESC, id DESC LIMIT :n"
            ),
            {"q": " ".join(terms), "n": CANDIDATES},
        )
        return [(uuid.UUID(str(i)), float(r)) for i, r in rows.all()]
    match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
    rows = await uow.session.execute(
        text(
            "SELECT doc_id, -bm25(search_fts) AS r FROM search_fts "
            "WHERE search_fts MATCH :m ORDER BY r DESC LIMIT :n"
        ),
        {"m": match, "n": CANDIDATES},
    )
    return [(uuid.UUID(hex=i), float(r)) for i, r in rows.all()]


async def _communities(
    uow: UnitOfWork, actor: Principal
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(communities where the actor is staff, communities where the actor is an active member)."""
    rows = (
        await uow.session.exec(
            select(Membership).where(
                col(Membership.user_id) == actor.subject,
                col(Membership.status) == MembershipStatus.active,
            )
        )
    ).all()
    staff = [m.community_id for m in rows if m.role in COMMUNITY_STAFF_ROLES]
    return staff, [m.community_id for m in rows]


def snippet(body: str, terms: set[str]) -> str:
    """About SNIPPET_CHARS of the body around the first match, matched words in <mark>."""
    import jieba

    pieces = jieba.lcut(body)
    marked: list[str] = []
    first = None
    offset = 0
    for piece in pieces:
        hit = normalize(piece) in terms
        if hit and first is None:
            first = offset
        marked.append(f"<mark>{html.escape(piece)}</mark>" if hit else html.escape(piece))
        offset += len(piece)
    start = max((first or 0) - SNIPPET_CHARS // 3, 0)
    # Cut on piece boundaries so a <mark> is never split.
    out, pos = [], 0
    for piece, shown in zip(pieces, marked, strict=True):
        if pos + len(piece) > start and pos < start + SNIPPET_CHARS:
            out.append(shown)
        pos += len(piece)
    text_ = "".join(out)
    return ("…" if start > 0 else "") + re.sub(r"\s+", " ", text_).strip()


def _dialect(uow: UnitOfWork) -> str:
    return uow.session.get_bind().dialect.name


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
