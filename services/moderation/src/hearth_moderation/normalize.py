"""Text normalization before matching: width, case, script variants, inserted separators.

Two views of a text are matched. `plain` is NFKC (full-width letters and digits become ASCII,
① becomes 1), case-folded, traditional characters mapped to simplified and look-alike Cyrillic
or Greek letters mapped to Latin. `compact` is `plain` without separators (spaces, punctuation,
symbols, zero-width characters), so "加 . V" and "微-信" are seen as "加v" and "微信".
Both are made with C-level string operations; the map back to the original's positions is
built only when a text has hits.
"""

# ruff: noqa: RUF001, RUF002, RUF003  (look-alike and full-width characters are what this module is about)

from __future__ import annotations

import re
import unicodedata
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


# Separators are what `[\W_]` matches: not alphanumeric, or "_". That class tests each
# character's Unicode category, and `+` runs it as a slow repeat: about 13 ns a character.
# Spelled out as one BMP character set without repetition, re scans it as a bitmap at about
# 3 ns a character. Characters beyond the BMP (emoji, CJK extension B, where a sixth of the
# traditional forms live) would turn the set into a chain of ranges, so they get their own
# pass that visits only them.
_SEPARATORS = re.compile(r"[\W_]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@lru_cache(maxsize=1)
def _bmp_separators() -> re.Pattern[str]:
    """The BMP's separators as one explicit character set (same answers as `[\\W_]`)."""
    chars = (chr(cp) for cp in range(0x10000))  # lone surrogates too: they are separators
    return re.compile("[" + "".join(re.escape(c) for c in chars if _SEPARATORS.match(c)) + "]")


@lru_cache(maxsize=8192)
def _astral(ch: str) -> str:
    """What a character beyond the BMP becomes (𝐰 is w, 𠁞 its simplified form, 😀 itself)."""
    return _map_char(ch)


@lru_cache(maxsize=8192)
def _astral_kept(ch: str) -> str:
    """A character beyond the BMP in `compact`: kept if alphanumeric, else dropped (emoji)."""
    return "" if _SEPARATORS.match(ch) else ch


def _plain(text: str) -> tuple[str, bool]:
    """The plain view, and whether it holds characters beyond the BMP."""
    folded = text.casefold()
    if folded.isascii():
        return folded, False
    # re.sub visits only the characters that change; typical text has few of them. A
    # precomputed str.translate table was measured too: it looks every character up in the
    # table (about 7 times slower on 500 characters of hanzi).
    pattern, changes, _ = _mapping()
    out = pattern.sub(lambda m: changes[m.group()], folded)
    if not _ASTRAL.search(out):
        return out, False
    return _ASTRAL.sub(lambda m: _astral(m.group()), out), True


def _compact(plain_text: str, astral: bool) -> str:
    out = _bmp_separators().sub("", plain_text)
    return _ASTRAL.sub(lambda m: _astral_kept(m.group()), out) if astral else out


def plain(text: str) -> str:
    """Case-folded, NFKC without combining marks, simplified, de-confused; separators kept."""
    return _plain(text)[0]


def compact(plain_text: str) -> str:
    """A plain text without separators (spaces, punctuation, symbols, zero-width characters)."""
    return _compact(plain_text, bool(_ASTRAL.search(plain_text)))


class Views:
    """The two views of one text that rules match against."""

    # A plain class with slots: built once per screening, a frozen dataclass costs a microsecond.
    __slots__ = ("compact", "original", "plain")

    def __init__(self, original: str, plain: str, compact: str) -> None:
        self.original = original
        self.plain = plain
        self.compact = compact

    def plain_to_original(self) -> list[int]:
        """For each plain index, the original index it came from (computed on demand)."""
        if (
            len(self.plain) == len(self.original)
            and not _mapping()[2].search(self.original)
            # beyond the BMP the resizing class has no entries: ask each such character
            and all(len(_plain_char(c)) == 1 for c in _ASTRAL.findall(self.original))
        ):
            return list(range(len(self.plain)))  # every character stayed one character
        out: list[int] = []
        for i, ch in enumerate(self.original):
            out.extend([i] * len(_plain_char(ch)))
        # Per-character NFKC can differ from whole-text NFKC (combining marks): pad or cut.
        if len(out) < len(self.plain):
            out.extend([len(self.original) - 1] * (len(self.plain) - len(out)))
        return out[: len(self.plain)]

    def compact_to_plain(self) -> list[int]:
        """For each compact index, the plain index it came from."""
        out: list[int] = []
        kept = 0  # separators are few: copy the runs between them as ranges
        for m in _SEPARATORS.finditer(self.plain):
            out.extend(range(kept, m.start()))
            kept = m.end()
        out.extend(range(kept, len(self.plain)))
        return out


@lru_cache(maxsize=65536)
def _plain_char(ch: str) -> str:
    """The plain form of one character (offset maps ask per character)."""
    return _plain(ch)[0]


def views(text: str) -> Views:
    """Both views of a text."""
    p, astral = _plain(text)
    return Views(text, p, _compact(p, astral))
