"""Text normalization before matching: width, case, script variants, inserted separators.

Two views of a text are matched. `plain` is NFKC (full-width letters and digits become ASCII,
① becomes 1), case-folded, traditional characters mapped to simplified and look-alike Cyrillic
or Greek letters mapped to Latin. `compact` is `plain` without separators (spaces, punctuation,
symbols, zero-width characters), so "加 . V" and "微-信" are seen as "加v" and "微信".
Both are made with C-level string operations; the map back to the original's positions is
built only when a text has hits.
"""

# ruff: noqa: RUF001, RUF003  (look-alike and full-width characters are what this module is about)

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import zhconv  # type: ignore[import-untyped]

# Cyrillic and Greek letters that look like Latin ones (mixed-script evasions such as "wеchat"
# with a Cyrillic е). Case-folded forms only: casefold runs first.
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x",
}  # fmt: skip


@lru_cache(maxsize=1)
def _t2s() -> dict[str, str]:
    """Single-character traditional→simplified pairs from zhconv's MediaWiki table."""
    pairs = zhconv.zhconv.getdict("zh-hans").items()
    # Character-level only: phrase entries would need segmentation, and a character map
    # already makes 發財/发财 or 臺灣/台湾 equal for matching.
    return {t: s for t, s in pairs if len(t) == 1 and len(s) == 1}


def _map_char(ch: str) -> str:
    """What one case-folded character becomes: NFKC, case-folded again, simplified, de-confused."""
    # Compatibility-decomposed, so combining marks can be dropped ("ìdìot" or a Zalgo-decorated
    # word is the plain word), then recomposed (Hangul) and case-folded again.
    out = unicodedata.normalize("NFKD", ch)
    out = "".join(c for c in out if unicodedata.category(c) != "Mn")
    out = unicodedata.normalize("NFC", out).casefold()
    t2s = _t2s()
    return "".join(_CONFUSABLES.get(c, c) for c in (t2s.get(c, c) for c in out))


# Full-width and ideographic punctuation that only separates: left alone in `plain` (it is
# removed in `compact` anyway), so ordinary Chinese text needs no per-character work.
_KEEP = set("，。！？、；：「」『』（）《》〈〉【】…—·～“”‘’")


@lru_cache(maxsize=1)
def _mapping() -> tuple[re.Pattern[str], dict[str, str], re.Pattern[str]]:
    """The characters (BMP) normalization changes, as a class, what each becomes, and the
    class of those whose length changes (only a text with one needs a real position map)."""
    changes: dict[str, str] = {}
    resizing: list[str] = []
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        if ch in _KEEP or 0xD800 <= cp <= 0xDFFF:
            continue
        folded = ch.casefold()
        if folded != ch:
            # str.casefold on the whole text handles it first
            if len("".join(_map_char(c) if ord(c) > 0x7F else c for c in folded)) != 1:
                resizing.append(ch)
            continue
        mapped = _map_char(ch)
        if mapped != ch:
            changes[ch] = mapped
            if len(mapped) != 1:
                resizing.append(ch)
    cls = "".join(re.escape(c) for c in sorted(changes))
    resize = "".join(re.escape(c) for c in sorted(resizing))
    return re.compile(f"[{cls}]"), changes, re.compile(f"[{resize}]")


_SEPARATORS = re.compile(r"[\W_]+")


def plain(text: str) -> str:
    """Case-folded, NFKC without combining marks, simplified, de-confused; separators kept."""
    folded = text.casefold()
    if folded.isascii():
        return folded
    pattern, changes, _ = _mapping()
    # re.sub visits only the characters that change; typical text has few of them.
    return pattern.sub(lambda m: changes[m.group()], folded)


def compact(plain_text: str) -> str:
    """A plain text without separators (spaces, punctuation, symbols, zero-width characters)."""
    return _SEPARATORS.sub("", plain_text)


@dataclass(frozen=True)
class Views:
    """The two views of one text that rules match against."""

    original: str
    plain: str
    compact: str

    def plain_to_original(self) -> list[int]:
        """For each plain index, the original index it came from (computed on demand)."""
        if len(self.plain) == len(self.original) and not _mapping()[2].search(self.original):
            return list(range(len(self.plain)))  # every character stayed one character
        out: list[int] = []
        for i, ch in enumerate(self.original):
            out.extend([i] * len(plain(ch)))
        # Per-character NFKC can differ from whole-text NFKC (combining marks): pad or cut.
        if len(out) < len(self.plain):
            out.extend([len(self.original) - 1] * (len(self.plain) - len(out)))
        return out[: len(self.plain)]

    def compact_to_plain(self) -> list[int]:
        """For each compact index, the plain index it came from."""
        return [m.start() for m in re.finditer(r"[^\W_]", self.plain)]


def views(text: str) -> Views:
    """Both views of a text."""
    p = plain(text)
    return Views(original=text, plain=p, compact=compact(p))
