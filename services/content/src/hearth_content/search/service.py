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
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, column, func, join, literal_column, or_, table, text
from sqlalchemy import select as sa_select
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
# SQLite: the best matches by bm25 that the recency decay re-ranks.
CANDIDATES = 200
# PostgreSQL: the newest readable matches that are ranked (see _candidates).
RECENT_WINDOW = 500


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
    conditions: list[Any] = []
    if community_id is not None:
        conditions.append(col(SearchDocument.community_id) == community_id)
    if author_id is not None:
        conditions.append(col(SearchDocument.author_id) == author_id)
    if fmt is not None:
        conditions.append(col(SearchDocument.format) == fmt)
    if since is not None:
        conditions.append(col(SearchDocument.created_at) >= since)
    if until is not None:
        conditions.append(col(SearchDocument.created_at) < until)
    if not actor.is_staff:
        conditions.append(await _visible_to(uow, actor))
    # Filters and visibility go into the full-text query itself, so a page is never short
    # because the best matches overall sat in communities the actor cannot read.
    now = utcnow()
    scored = [
        (
            relevance
            / (1 + max((now - _aware(created)).total_seconds(), 0.0) / 86400 / HALF_LIFE_DAYS),
            doc_id,
        )
        for doc_id, created, relevance in await _candidates(uow, terms, conditions)
    ]
    scored.sort(key=lambda s: (-s[0], s[1]))
    page = dict((doc_id, score) for score, doc_id in scored[:limit])
    if not page:
        return []
    docs = (
        await uow.session.exec(select(SearchDocument).where(col(SearchDocument.id).in_(list(page))))
    ).all()
    wanted = set(terms)
    hits = [
        SearchHit(
            id=doc.id,
            kind=doc.kind,
            post_id=doc.post_id,
            community_id=doc.community_id,
            author_id=doc.author_id,
            format=doc.format,
            created_at=_aware(doc.created_at),
            title=doc.title,
            snippet=snippet(doc.body or doc.title, wanted),
            score=round(page[doc.id], 6),
        )
        for doc in docs
    ]
    hits.sort(key=lambda h: (-page[h.id], h.id))
    return hits


async def _visible_to(uow: UnitOfWork, actor: Principal) -> Any:
    """The SQL condition on (document, post) for what a non-staff actor may find."""
    staff_in, member_in = await _communities(uow, actor)
    # Members find published posts (and comments on them) and their own posts; community
    # staff also find what waits for review in their communities. A deleted post is kept
    # as evidence for platform staff only.
    return and_(
        col(Post.deleted_at).is_(None),
        or_(
            col(SearchDocument.community_id).in_(staff_in),
            and_(
                col(SearchDocument.community_id).in_(member_in),
                or_(
                    col(Post.status) == "published",
                    and_(col(Post.author_id) == actor.subject, col(SearchDocument.kind) == "post"),
                ),
            ),
        ),
    )


async def _candidates(
    uow: UnitOfWork, terms: list[str], conditions: list[Any]
) -> list[tuple[uuid.UUID, datetime, float]]:
    """(doc id, created, relevance) of the readable documents holding every term.

    PostgreSQL ranks only the newest RECENT_WINDOW matches: a common word matches tens of
    thousands of rows and ranking them all is what made search slow, while the recency decay
    means an older match needs several times the relevance to reach the first page anyway.
    SQLite (small, single-node data) ranks all matches by bm25 and keeps the best CANDIDATES.
    """
    docs_posts = join(
        SearchDocument, Post, col(Post.id) == col(SearchDocument.post_id)
    )  # the post carries the review state and deletion that decide visibility
    found: Any
    rank: Any
    order: Any
    if _dialect(uow) == "postgresql":
        tsq = func.plainto_tsquery("simple", " ".join(terms))
        tsv = SearchDocument.__table__.c.tsv  # type: ignore[attr-defined]
        found = tsv.op("@@")(tsq)
        rank = func.ts_rank(tsv, tsq)
        order, limit = col(SearchDocument.created_at).desc(), RECENT_WINDOW
    else:
        fts = table("search_fts", column("doc_id"), column("tokens"))
        docs_posts = docs_posts.join(fts, fts.c.doc_id == col(SearchDocument.id))
        match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
        found = literal_column("search_fts").op("MATCH")(match)
        rank = -func.bm25(literal_column("search_fts"))
        order, limit = rank.desc(), CANDIDATES
    stmt = (
        sa_select(col(SearchDocument.id), col(SearchDocument.created_at), rank)
        .select_from(docs_posts)
        .where(found, *conditions)
        .order_by(order)
        .limit(limit)
    )
    rows = (await uow.session.execute(stmt)).all()
    return [(i, c, float(r)) for i, c, r in rows]


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
    """About SNIPPET_CHARS of the body around the first match, matched words in <mark>.

    No segmenter here (it cost more than the query): a Latin word is marked when its stem is a
    query term, a Chinese term wherever it occurs literally.
    """
    lowered = body.lower()
    found = [i for i in (lowered.find(t) for t in terms) if i >= 0]
    first_at = min(found) if found else 0
    begin = max(first_at - SNIPPET_CHARS, 0)
    window = body[begin : first_at + 2 * SNIPPET_CHARS]
    cjk = frozenset(t for t in terms if not _LATIN_WORD.fullmatch(t))
    marks = [
        (m.start(), m.end())
        for m in _marker(cjk).finditer(window)
        if m.group(0) in cjk or normalize(m.group(0)) in terms
    ]
    first = marks[0][0] if marks else first_at - begin
    start = max(first - SNIPPET_CHARS // 3, 0)
    end = start + SNIPPET_CHARS
    for m_start, m_end in marks:  # never cut a mark in two
        if m_start < start < m_end:
            start = m_start
        if m_start < end < m_end:
            end = m_end
    out, pos = [], start
    for m_start, m_end in marks:
        if m_end <= start or m_start >= end:
            continue
        out.append(html.escape(window[pos:m_start]))
        out.append(f"<mark>{html.escape(window[m_start:m_end])}</mark>")
        pos = m_end
    out.append(html.escape(window[pos:end]))
    return ("…" if begin + start > 0 else "") + re.sub(r"\s+", " ", "".join(out)).strip()


_LATIN_WORD = re.compile(r"[0-9A-Za-z_'\-]+")


@lru_cache(maxsize=1024)
def _marker(cjk: frozenset[str]) -> re.Pattern[str]:
    """Latin words, or any of the Chinese terms (longest first, so a compound wins)."""
    words = sorted(cjk, key=len, reverse=True)
    return re.compile("|".join([*(re.escape(w) for w in words), _LATIN_WORD.pattern]))


def _dialect(uow: UnitOfWork) -> str:
    return uow.session.get_bind().dialect.name


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
