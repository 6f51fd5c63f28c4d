"""Markdown to safe HTML: the kernel's sanitizing renderer (servicekit.markdown), shared."""

from servicekit.markdown import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, URL_SCHEMES, render_markdown

__all__ = ["ALLOWED_ATTRIBUTES", "ALLOWED_TAGS", "URL_SCHEMES", "render_markdown"]
