"""Columns (固定栏目), their cadences, tags, and the content calendar built from them."""
