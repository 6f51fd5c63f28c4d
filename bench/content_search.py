"""Content search and newest-first listing on PostgreSQL over a generated Chinese/English corpus.

BENCH_CORPUS posts (default 200,000) in 20 communities (half in one, for deep pages), written
with COPY; each post's search tokens are the real tokenizer's output for its words (computed
once per vocabulary word, which is what makes generation fast). Then, through content's own
service functions: search p50/p95 over mixed queries, and the newest-first list at deep
keyset pages. Targets (issue 11): search p95 <= 50 ms, deep page p95 <= 20 ms.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hearth_content import service
from hearth_content.models import PostStatus
from hearth_content.search import service as search
from hearth_content.search.tokenize import tokens
from servicekit.deps import UnitOfWork
from servicekit.identity import Principal
from servicekit.ids import utcnow, uuid7
from servicekit.migrations import upgrade_async
from servicekit.pagination import PageParams, encode_cursor

CORPUS = int(os.environ.get("BENCH_CORPUS", "200000"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "200"))
MIGRATIONS = Path(service.__file__).parent / "migrations"

ZH = (
    "社区 活动 周末 北京 上海 大学 机器 学习 未来 发展 方向 讨论 分享 经验 产品 用户 反馈 "
    "设计 开发 测试 部署 服务 数据 分析 模型 训练 音乐 电影 读书 旅行 美食 健康 运动 跑步 "
    "篮球 足球 摄影 绘画 编程 语言 文化 历史 科学 技术 创新 创业 投资 市场 教育 孩子 家庭"
).split()
EN = (
    "community event weekend running runner books music travel health coffee design product "
    "feedback release deploy service database search ranking python rust garden cooking photo "
    "camera football basketball history science climate energy startup market school family "
    "learning machine model training review meeting project planning volunteer charity"
).split()


def _vocabulary(rng: random.Random) -> list[str]:
    """Real words, then a long tail of rarer variants, so query selectivity is realistic."""
    words = list(ZH) + list(EN)
    words += [f"{rng.choice(ZH)}{rng.choice(ZH)}" for _ in range(1500)]
    words += [f"{rng.choice(EN)}{n}" for n in range(1500)]
    return words


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _generate(url: str, rng: random.Random) -> tuple[list[uuid.UUID], uuid.UUID, list[str]]:
    vocab = _vocabulary(rng)
    weights = [1 / (i + 1) ** 0.9 for i in range(len(vocab))]  # Zipf-like word frequencies
    rng.shuffle(vocab)
    toks = {w: " ".join(tokens(w)) for w in vocab}
    communities = [uuid.uuid4() for _ in range(20)]
    reader = uuid.uuid4()
    authors = [uuid.uuid4() for _ in range(500)]
    now = utcnow()
    posts, docs = [], []
    for _ in range(CORPUS):
        words = rng.choices(vocab, weights=weights, k=rng.randint(8, 24))
        body = "".join(w if w[0] > "\u2e80" else f" {w} " for w in words).strip()
        title = " ".join(words[:3])
        pid = uuid7()
        cid = communities[0] if rng.random() < 0.5 else rng.choice(communities)
        author = rng.choice(authors)
        at = now - timedelta(seconds=rng.randint(0, 365 * 86400))
        status = PostStatus.published if rng.random() < 0.95 else PostStatus.held
        posts.append(
            (
                title,
                body,
                "text",
                None,
                pid,
                cid,
                author,
                str(status),
                "[]",
                None,
                at,
                None,
                at if status == PostStatus.published else None,
                None,
            )
        )
        docs.append(
            (
                pid,
                "post",
                pid,
                cid,
                author,
                "text",
                at,
                title,
                body,
                " ".join(toks[w] for w in words[:3] + words),
            )
        )
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("DROP INDEX ix_search_documents_tsv")
        await conn.copy_records_to_table(
            "posts",
            records=posts,
            columns=[
                "title",
                "body",
                "format",
                "url",
                "id",
                "community_id",
                "author_id",
                "status",
                "hold_reasons",
                "screening_id",
                "submitted_at",
                "publish_at",
                "published_at",
                "held_at",
            ],
        )
        await conn.copy_records_to_table(
            "search_documents",
            records=docs,
            columns=[
                "id",
                "kind",
                "post_id",
                "community_id",
                "author_id",
                "format",
                "created_at",
                "title",
                "body",
                "tokens",
            ],
        )
        await conn.execute(
            "CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)"
        )
        await conn.copy_records_to_table(
            "communities",
            records=[(c, "c", "public", False, 1) for c in communities],
            columns=["id", "name", "visibility", "archived", "version"],
        )
        await conn.copy_records_to_table(
            "memberships",
            records=[(c, reader, "member", "active", 1) for c in communities],
            columns=["community_id", "user_id", "role", "status", "version"],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return communities, reader, vocab[:400]


async def run(url: str) -> dict[str, float]:
    """Generate the corpus in the empty PostgreSQL database at `url`, then time both reads."""
    from servicekit.db import async_url  # the kit's driver-qualified URL

    rng = random.Random(11)
    await upgrade_async(MIGRATIONS, url)
    t0 = time.perf_counter()
    communities, reader, queries = await _generate(async_url(url), rng)
    generated = time.perf_counter() - t0
    actor = Principal(subject=reader, roles=frozenset({"member"}))
    engine = create_async_engine(async_url(url))
    search_ms, list_ms = [], []
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            # Reads record nothing, so the unit of work needs no runtime's outbox.
            uow = UnitOfWork(session, SimpleNamespace(outbox=None))  # type: ignore[arg-type]
            tokens("预热 warm-up")  # jieba loads its dictionary on first use, not per query
            for i in range(QUERIES):
                q = rng.choice(queries) if i % 2 else f"{rng.choice(ZH)} {rng.choice(EN)}"
                t = time.perf_counter()
                await search.search(
                    uow=uow,
                    actor=actor,
                    q=q,
                    community_id=None,
                    author_id=None,
                    fmt=None,
                    since=None,
                    until=None,
                    limit=20,
                )
                search_ms.append((time.perf_counter() - t) * 1000)
            # Deep keyset pages of the big community: continue after an id ~90% down.
            ids = [
                r[0]
                for r in (
                    await session.execute(
                        __import__("sqlalchemy").text(
                            "SELECT id FROM posts WHERE community_id = :c ORDER BY id DESC"
                        ),
                        {"c": communities[0]},
                    )
                ).all()
            ]
            for _ in range(QUERIES):
                after = ids[rng.randint(len(ids) * 8 // 10, len(ids) - 30)]
                page = PageParams(limit=20, after=json.loads(json.dumps([str(after)])))
                t = time.perf_counter()
                rows = await service.list_posts(
                    uow=uow, community_id=communities[0], actor=actor, status=None, page=page
                )
                list_ms.append((time.perf_counter() - t) * 1000)
                assert rows
    finally:
        await engine.dispose()
    _ = encode_cursor
    return {
        "corpus": CORPUS,
        "generate_s": round(generated, 1),
        "search_p50_ms": round(_percentile(search_ms, 0.5), 2),
        "search_p95_ms": round(_percentile(search_ms, 0.95), 2),
        "deep_page_p50_ms": round(_percentile(list_ms, 0.5), 2),
        "deep_page_p95_ms": round(_percentile(list_ms, 0.95), 2),
    }
