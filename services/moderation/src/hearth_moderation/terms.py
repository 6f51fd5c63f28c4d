"""Banned-term matching for automatic screening (初审).

Text and terms are NFKC-normalized (full-width letters and digits become ASCII) and case-folded.
A term in a spaced script matches whole words only, so "ass" does not flag "class"; a term with
CJK characters matches as a substring, because Chinese and Japanese do not separate words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
# Letters and digits of spaced scripts (Latin, Greek, Cyrillic). CJK characters are left out on
# purpose: "idiot" must still match in "你是idiot吗", where \b would see no word boundary.
_WORD = r"0-9a-z\u00df-\u00f6\u00f8-\u024f\u0370-\u03ff\u0400-\u04ff"


def normalize(text: str) -> str:
    """NFKC, case-folded, with runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True)
class TermMatch:
    """One banned term found in a text."""

    category: str
    term: str


class TermMatcher:
    """Finds banned terms of every category in a text."""

    def __init__(self, terms: Mapping[str, Sequence[str]]) -> None:
        self._patterns: list[tuple[str, str, re.Pattern[str]]] = []
        for category, words in terms.items():
            for word in words:
                term = normalize(word)
                if term:
                    self._patterns.append((category, term, _compile(term)))

    def find(self, text: str) -> list[TermMatch]:
        """Every distinct banned term in the text, in list order."""
        normalized = normalize(text)
        return [
            TermMatch(category, term)
            for category, term, pattern in self._patterns
            if pattern.search(normalized)
        ]


def _compile(term: str) -> re.Pattern[str]:
    if _CJK.search(term):
        return re.compile(re.escape(term))
    body = r"\s+".join(re.escape(part) for part in term.split(" "))
    return re.compile(rf"(?<![{_WORD}]){body}(?![{_WORD}])")


def matcher_for(terms: Mapping[str, Sequence[str]]) -> TermMatcher:
    """A matcher for a term list, compiled once per distinct list."""
    return _cached(tuple((category, tuple(words)) for category, words in sorted(terms.items())))


@lru_cache(maxsize=8)
def _cached(frozen: tuple[tuple[str, tuple[str, ...]], ...]) -> TermMatcher:
    return TermMatcher(dict(frozen))
