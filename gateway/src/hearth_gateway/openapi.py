"""One OpenAPI document for the whole platform: every service under its public prefix."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from typing import Any

import aiohttp

from hearth_gateway.accounts import GATEWAY_SERVICE
from servicekit.identity import ASSERTION_HEADER, AssertionSigner
from servicekit.openapi import UPSTREAM_STATUSES, with_problems

log = logging.getLogger(__name__)

_REF = "#/components/"
INCOMPLETE_TTL_SECONDS = 2.0
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _rename_refs(node: Any, context: str) -> Any:
    """Every `$ref` to a component points at its context-prefixed name."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                section, _, name = value[len(_REF) :].partition("/")
                out[key] = f"{_REF}{section}/{context}__{name}"
            else:
                out[key] = _rename_refs(value, context)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, context) for v in node]
    return node


def merge(gateway_doc: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The gateway's own document plus each service's, paths under /api/<context>, component
    names prefixed `<context>__` so two services' `Page` or `Problem` never collide."""
    merged = copy.deepcopy(gateway_doc)
    merged.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = merged.setdefault("components", {})
    tags = {t["name"]: t for t in merged.get("tags", [])}
    for context, doc in services.items():
        # A proxied call can also fail at the gateway itself (upstream down or too slow).
        doc = _rename_refs(with_problems(copy.deepcopy(doc), UPSTREAM_STATUSES), context)
        for path, item in doc.get("paths", {}).items():
            if not isinstance(item, dict):
                continue
            for method, operation in item.items():
                if method in _METHODS and isinstance(operation, dict):
                    operation["tags"] = [context, *operation.get("tags", [])]
                    if "operationId" in operation:
                        operation["operationId"] = f"{context}__{operation['operationId']}"
            merged["paths"][f"/api/{context}{path}"] = item
        for section, entries in doc.get("components", {}).items():
            if isinstance(entries, dict):
                target = components.setdefault(section, {})
                for name, value in entries.items():
                    target[f"{context}__{name}"] = value
        tags.setdefault(context, {"name": context, "description": f"the {context} service"})
    merged["tags"] = list(tags.values())
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "an access token (built-in or external issuer) or an hk_ API key",
    }
    merged["security"] = [{"bearer": []}]
    return merged


class OpenApiAggregator:
    """Fetches every upstream's /openapi.json and caches the merged document for a TTL."""

    def __init__(self, upstreams: dict[str, str], signer: AssertionSigner, *, ttl: float) -> None:
        self._upstreams = upstreams
        self._signer = signer
        self._ttl = ttl
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def document(self, gateway_doc: dict[str, Any]) -> dict[str, Any]:
        """The merged document (cached; upstreams that do not answer are listed, not fatal)."""
        if (doc := self._fresh()) is not None:
            return doc
        async with self._lock:
            if (doc := self._fresh()) is not None:
                return doc
            services, missing = await self._fetch_all()
            doc = merge(gateway_doc, services)
            if missing:
                doc["x-hearth-unavailable"] = missing
            # An incomplete document (a service starting or down) is kept only briefly, so the
            # next reader gets the whole platform as soon as it answers.
            ttl = self._ttl if not missing else min(self._ttl, INCOMPLETE_TTL_SECONDS)
            self._cached = (time.monotonic() + ttl, doc)
            return doc

    def _fresh(self) -> dict[str, Any] | None:
        cached = self._cached
        return cached[1] if cached is not None and time.monotonic() < cached[0] else None

    async def _fetch_all(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        # openapi.json is exempt from the identity check in services; the assertion is sent
        # anyway so a service that does check it still answers.
        headers = {ASSERTION_HEADER: self._signer.sign(GATEWAY_SERVICE)}
        timeout = aiohttp.ClientTimeout(total=3)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def fetch(context: str, base: str) -> dict[str, Any] | None:
                try:
                    async with session.get(base + "/openapi.json", headers=headers) as resp:
                        if resp.status != 200:
                            return None
                        doc = json.loads(await resp.read())
                        return doc if isinstance(doc, dict) else None
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.info("no OpenAPI document from %s: %r", context, exc)
                    return None

            names = list(self._upstreams)
            docs = await asyncio.gather(*(fetch(n, self._upstreams[n]) for n in names))
        services = {n: d for n, d in zip(names, docs, strict=True) if d is not None}
        return services, [n for n, d in zip(names, docs, strict=True) if d is None]
