"""The screening engine on its own: normalization, evasions, detectors, actions, RE2 safety."""

# ruff: noqa: RUF001  (full-width and look-alike characters are the point of these tests)

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
