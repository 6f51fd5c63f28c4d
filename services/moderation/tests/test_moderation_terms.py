"""Banned-term matching: case, whole words, CJK substrings, full-width forms."""

from hearth_moderation.settings import DEFAULT_BANNED_TERMS
from hearth_moderation.terms import TermMatcher, matcher_for

M = TermMatcher({"abuse": ["idiot", "ass"], "advertising": ["click here", "加微信"]})


def found(text: str) -> list[str]:
    return [m.term for m in M.find(text)]


def test_case_insensitive_whole_words() -> None:
    assert found("What an IDIOT.") == ["idiot"]
    assert found("idiots and idiotic") == []  # whole words only
    assert found("a first-class pass") == []
    assert found("you ass!") == ["ass"]
    assert found("Click\n  HERE now") == ["click here"]
    assert found("clickhere") == []


def test_cjk_substrings_and_mixed_scripts() -> None:
    assert found("欢迎加微信了解详情") == ["加微信"]
    assert found("你是idiot吗") == ["idiot"]  # CJK neighbours are word boundaries
    assert found("ＩＤＩＯＴ") == ["idiot"]  # noqa: RUF001 - full-width letters are normalized
    assert found("普通的一天") == []


def test_categories_and_defaults() -> None:
    matches = M.find("idiot, click here")
    assert {m.category for m in matches} == {"abuse", "advertising"}
    defaults = matcher_for(DEFAULT_BANNED_TERMS)
    assert defaults is matcher_for(DEFAULT_BANNED_TERMS)  # compiled once
    assert {m.category for m in defaults.find("低价出售，加微信")} == {"advertising"}  # noqa: RUF001
    assert defaults.find("Quarterly planning notes for the partner community") == []
    assert TermMatcher({"x": ["", "   "]}).find("anything") == []
