"""Scoring one text for negative sentiment, offline, in Chinese and English.

- English (and other Latin-script text): VADER (`vadersentiment`), a lexicon and rules made for
  social-media text (negations, intensifiers, "but", caps, emoji). Negative when the compound
  score is at most -0.05, VADER's own documented boundary.
- Chinese: `pysenti`, a lexicon-and-rules classifier over jieba segmentation (sentiment
  words, degree adverbs, negations, per clause). Negative when its score is below 0, its own
  boundary.

Both ship their lexicons in the package: nothing is downloaded at run time. A text whose
letters are at least a fifth CJK is scored as Chinese, traditional characters mapped to
simplified first (the lexicon is simplified). Loading the lexicons (jieba's
dictionary mostly) takes a few seconds, once per process, on first use.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hearth_moderation.normalize import _t2s

EN_NEGATIVE = -0.05  # VADER's compound threshold for negative
ZH_NEGATIVE = 0.0  # pysenti's score below which a text is negative
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Score:
    """A text's sentiment: `value` in [-1, 1] (negative below 0), whether it counts as negative."""

    language: str
    value: float
    negative: bool


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def language_of(text: str) -> str:
    """`zh` when at least a fifth of the letters are CJK ideographs, else `en`."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    cjk = sum(1 for c in letters if _is_cjk(c))
    return "zh" if cjk * 5 >= len(letters) else "en"


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _pysenti() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    import pysenti

    pysenti.classify("好")  # load the lexicons now, not on the first real text
    return pysenti


def warm_up() -> None:
    """Load both lexicons (a few seconds; call from a thread before the first scores)."""
    with _LOCK:
        _vader()
        _pysenti()


def score(text: str) -> Score:
    """Score one text (thread-safe once warmed up)."""
    language = language_of(text)
    if not text.strip():
        return Score(language=language, value=0.0, negative=False)
    if language == "zh":
        simplified = "".join(_t2s().get(c, c) for c in text)  # the lexicon is simplified
        with _LOCK:
            raw = float(_pysenti().classify(simplified)["score"])
        return Score(language="zh", value=math.tanh(raw / 3.0), negative=raw < ZH_NEGATIVE)
    with _LOCK:
        compound = float(_vader().polarity_scores(text)["compound"])
    return Score(language="en", value=compound, negative=compound <= EN_NEGATIVE)
