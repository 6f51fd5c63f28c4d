"""Write-time tokenization: jieba segments Chinese, Snowball stems English; one token stream."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import jieba
import snowballstemmer

jieba.setLogLevel(logging.WARNING)  # its dictionary-load chatter is not our log

_WORD = re.compile(r"\w", re.UNICODE)
_LATIN = re.compile(r"^[0-9a-z_'\-]+$")
MAX_TOKENS = 5000


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def normalize(token: str) -> str | None:
    """The indexed form of one segment: lower-cased, English stemmed; None for punctuation."""
    token = token.strip().lower()
    if not token or not _WORD.search(token):
        return None
    if _LATIN.match(token):
        token = token.strip("'-_")
        return _stemmer().stemWord(token) if token else None
    return token


def tokens(text: str, *, for_query: bool = False) -> list[str]:
    """Index tokens of a text; documents also get jieba's sub-words, so parts of compounds match."""
    segments = jieba.lcut(text) if for_query else jieba.lcut_for_search(text)
    out = [n for n in (normalize(s) for s in segments) if n is not None]
    return out[:MAX_TOKENS]


def document(*parts: str) -> str:
    """The search-document column: space-separated tokens (FTS5 and tsvector split on spaces)."""
    return " ".join(tokens(" ".join(parts)))
