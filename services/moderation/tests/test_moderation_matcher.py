"""The screening engine on its own: normalization, evasions, detectors, actions, RE2 safety."""

# ruff: noqa: RUF001, RUF003  (full-width and look-alike characters are the point of these tests)

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from hearth_moderation.matcher import Matcher
from hearth_moderation.normalize import views
from hearth_moderation.rules import RuleSetDraft
from hearth_moderation.settings import DEFAULT_BANNED_TERMS, platform_rules


def _matcher(**rules: object) -> Matcher:
    return Matcher(RuleSetDraft.model_validate(rules))


def _words(*terms: str, action: str = "require_approval") -> Matcher:
    return _matcher(words=[{"term": t, "action": action} for t in terms])


def test_views_fold_width_case_traditional_confusables_and_separators() -> None:
    v = views("加　Ｖ：ＡＢＣ１２３ 發財 wеchat ①")  # full-width, traditional, Cyrillic e
    assert v.plain == "加 v：abc123 发财 wechat 1"
    assert v.compact == "加vabc123发财wechat1"


@pytest.mark.parametrize(
    "text",
    ["发财", "發財", "发 财", "发.财", "发\u200b财", "发-_-财", "ＦＡ发财"],
)
def test_chinese_words_match_through_traditional_forms_and_inserted_separators(
    text: str,
) -> None:
    [hit] = _words("发财").screen(f"今天{text}了").hits
    assert hit.rule == "community:word:0"
    # Offsets point into the original text, whatever normalization did.
    assert hit.text == f"今天{text}了"[hit.start : hit.end] == text.removeprefix("ＦＡ")


def test_latin_words_need_word_boundaries_but_not_against_hanzi() -> None:
    m = _words("idiot", "ass")
    assert m.screen("first class passage").hits == []
    assert [h.text for h in m.screen("你是idiot吗").hits] == ["idiot"]
    assert [h.text for h in m.screen("ＩＤＩＯＴ!").hits] == ["ＩＤＩＯＴ"]
    assert [h.text for h in m.screen("ìdìot").hits] == ["ìdìot"]  # combining marks dropped


@pytest.mark.parametrize(
    "text",
    ["加V 12345", "加 v", "加　Ｖ", "+v信", "加微", "加.薇", "私q", "wx我"],
)
def test_jia_v_evasions_are_caught(text: str) -> None:
    m = _matcher(detectors=[{"detector": "evasion", "action": "require_approval"}])
    result = m.screen(f"好东西 {text} 详聊")
    assert result.verdict == "require_approval", text
    assert {h.rule for h in result.hits} == {"community:detector:evasion"}


def test_advertising_detectors_and_the_domain_allow_list() -> None:
    m = _matcher(
        detectors=[
            {"detector": d, "action": "flag", "reason": "advertising"}
            for d in ("link", "phone", "qq_wechat", "email")
        ],
        allowed_domains=["hearth.example"],
    )
    text = (
        "docs at https://help.hearth.example/x, buy at cheap-stuff.top, "
        "call 138 0013 8000, QQ：12345678, 微信号 abc_123x, mail me@spam.cn"
    )
    hits = m.screen(text).hits
    kinds = sorted({h.rule.rsplit(":", 1)[-1] for h in hits})
    assert kinds == ["email", "link", "phone", "qq_wechat"]
    assert not any("hearth.example" in h.text for h in hits)
    assert "138 0013 8000" in [h.text for h in hits]
    assert "QQ：12345678" in [h.text for h in hits]
    assert "微信号 abc_123x" in [h.text for h in hits]


def test_actions_rank_censor_replaces_and_tags_collect() -> None:
    m = _matcher(
        words=[
            {"term": "笨蛋", "action": "censor"},
            {"term": "广告", "action": "tag", "tag": "ads"},
            {"term": "赌博", "action": "block", "reason": "illegal"},
        ]
    )
    r = m.screen("你个笨蛋，看广告")
    assert r.verdict == "censor" and r.censored == "你个＊＊，看广告" and r.tags == ["ads"]
    assert r.reasons == []  # nothing holds
    r = m.screen("广告：赌博")
    assert r.verdict == "block" and r.reasons == ["illegal"]
    assert [(h.start, h.end, h.action) for h in r.hits] == [(0, 2, "tag"), (3, 5, "block")]


def test_platform_defaults_apply_unless_the_community_opts_out() -> None:
    platform = platform_rules(DEFAULT_BANNED_TERMS)
    on = Matcher(RuleSetDraft(), platform).screen("低价出售")
    assert on.reasons == ["banned_term:advertising"]
    assert on.hits[0].rule.startswith("platform:word:")
    off = Matcher(RuleSetDraft(include_platform_defaults=False), platform).screen("低价出售")
    assert off.verdict == "allow"


def test_a_catastrophic_backtracking_pattern_completes_in_linear_time() -> None:
    m = _matcher(regexes=[{"pattern": r"(a+)+$", "action": "flag"}, {"pattern": "(x|xx)+y"}])
    text = "a" * 50_000 + "!" + "x" * 50_000
    started = time.perf_counter()
    result = m.screen(text)
    assert time.perf_counter() - started < 1.0  # Python's re would run for ages
    assert result.verdict == "allow"


def test_patterns_re2_refuses_are_rejected_when_the_rules_are_written() -> None:
    with pytest.raises(ValidationError, match="RE2"):
        RuleSetDraft.model_validate({"regexes": [{"pattern": r"(a)\1"}]})  # a backreference
    with pytest.raises(ValidationError):
        RuleSetDraft.model_validate({"words": [{"term": "x", "action": "delete_account"}]})


# --- Normalization paths of the faster engine (bytes scanning, BMP separator set, astral) ----


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("加ＶＸ：ａｂｃ＿１２３４", "加Ｖ"),  # full-width letters and digits
        ("加 V 详聊", "加 V"),  # inserted space
        ("＋薇信", "薇信"),  # look-alike character for 微
        ("加 . ｗｘ", "加 . ｗｘ"),  # separators and full-width mixed
        ("加微信", "加微"),
        ("加徽信", "加徽"),
    ],
)
def test_evasions_are_caught_with_offsets_into_the_original(text: str, found: str) -> None:
    m = _matcher(detectors=[{"detector": "evasion", "action": "require_approval"}])
    sample = f"好东西，{text}！"
    hits = m.screen(sample).hits
    assert hits, text
    assert sample[hits[0].start : hits[0].end] == hits[0].text == found


def test_mixed_script_and_mathematical_letters_fold_to_the_latin_word() -> None:
    m = _words("wechat", "spam")
    # Cyrillic е and а, then mathematical bold letters (beyond the BMP), then full-width.
    for text in ("加wеchаt详聊", "加𝐰𝐞𝐜𝐡𝐚𝐭详聊", "ＷＥＣＨＡＴ号"):
        [hit] = m.screen(text).hits
        assert hit.text == text[hit.start : hit.end]
        assert views(hit.text).plain == "wechat"
    assert [h.start for h in m.screen("spammer 😀 spam").hits] == [10]  # past an emoji


def test_traditional_forms_beyond_the_bmp_are_simplified_too() -> None:
    # 𠕂 (U+20542) is a traditional form of 再; the BMP-only map used to leave it alone.
    assert views("𠕂見").plain == "再见"
    [hit] = _words("再见").screen("说𠕂 見了").hits
    assert hit.text == "𠕂 見"


def test_compact_drops_every_separator_and_keeps_astral_letters() -> None:
    v = views("a_b·c\u200bd😀e，𠀀f　g")
    assert v.compact == "abcde𠀀fg"
    # every compact character points at the same character of plain
    assert [v.plain[i] for i in v.compact_to_plain()] == list(v.compact)


def test_the_separator_set_agrees_with_the_unicode_class_on_the_whole_bmp() -> None:
    import re

    from hearth_moderation.normalize import _bmp_separators

    fast, slow = _bmp_separators(), re.compile(r"[\W_]")
    for cp in range(0x10000):
        ch = chr(cp)
        assert bool(fast.match(ch)) == bool(slow.match(ch)), hex(cp)


def test_latin_word_boundaries_hold_next_to_multibyte_characters() -> None:
    m = _words("ass")
    assert m.screen("éass").hits == []  # é is a word character, two bytes in UTF-8
    assert m.screen("ассass").hits == []  # Cyrillic look-alikes fold to Latin letters
    assert [h.text for h in m.screen("你ass好").hits] == ["ass"]
    assert [h.text for h in m.screen("😀ass😀").hits] == ["ass"]


def test_a_lone_surrogate_is_screened_not_an_error() -> None:
    m = _words("发财", "spam")
    result = m.screen("\ud800 spam 发财 \udfff")
    assert [h.text for h in result.hits] == ["spam", "发财"]
