"""Markdown to safe HTML (shared kernel helper): markdown-it-py parses (raw HTML off), nh3
sanitizes with an allow-list. Used by content (posts, comments) and events (descriptions).
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

# CommonMark with tables and strikethrough; `html=False` turns raw HTML in the source into text,
# and nh3 then removes anything the allow-list does not name (defence in depth).
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
        "code", "pre", "blockquote", "ul", "ol", "li", "a", "img",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "ol": {"start"}}
# Only these URL schemes survive in href/src: javascript:, data:, vbscript: are dropped.
URL_SCHEMES = frozenset({"http", "https", "mailto"})


def render_markdown(source: str) -> str:
    """The sanitized HTML for a Markdown source; no script, handler or javascript: URL survives."""
    return nh3.clean(
        _md.render(source),
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="nofollow noopener noreferrer ugc",
        strip_comments=True,
    )
