"""The merged OpenAPI document of every service, and CORS."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import create_model


def service(name: str, field: str) -> FastAPI:
    """A small service whose schema names collide with the other one's."""
    app = FastAPI(title=name)
    hits = {"n": 0}
    app.state.hits = hits

    Item: Any = create_model("Item", id=(int, ...), **{field: (str | None, None)})

    @app.middleware("http")
    async def count(request, call_next):  # type: ignore[no-untyped-def]
        if request.url.path == "/openapi.json":
            hits["n"] += 1
        return await call_next(request)

    @app.get("/items/{item_id}", response_model=Item)
    async def get_item(item_id: int) -> Any:
        return {"id": item_id}

    @app.post("/items", response_model=Item, status_code=201)
    async def create_item(item: Item) -> Any:  # type: ignore[valid-type]
        return item

    return app


@pytest.fixture(scope="module")
def services(server_thread) -> Iterator[dict]:
    alpha, beta = server_thread(service("alpha", "a")), server_thread(service("beta", "b"))
    with alpha, beta:
        yield {"alpha": alpha, "beta": beta}


async def test_merged_document_prefixes_paths_and_schemas(make_gateway, services, dead_url):
    upstreams = {n: s.url for n, s in services.items()} | {"gone": dead_url}
    async with make_gateway(upstreams=upstreams, openapi_cache_seconds=60) as (_, http):
        response = await http.get("/openapi.json")
        assert response.status_code == 200
        doc = response.json()
        hits = services["alpha"].server.config.app.state.hits["n"]
        assert (await http.get("/openapi.json")).json() == doc  # cached for the TTL
        assert services["alpha"].server.config.app.state.hits["n"] == hits
        docs = await http.get("/docs")
        assert docs.status_code == 200 and "/openapi.json" in docs.text
    paths = doc["paths"]
    for ctx in ("alpha", "beta"):
        assert f"/api/{ctx}/items/{{item_id}}" in paths and f"/api/{ctx}/items" in paths
        operation = paths[f"/api/{ctx}/items"]["post"]
        assert operation["tags"][0] == ctx and operation["operationId"].startswith(f"{ctx}__")
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{ctx}__Item"
    schemas = doc["components"]["schemas"]
    assert {"alpha__Item", "beta__Item", "alpha__HTTPValidationError"} <= set(schemas)
    assert "/auth/token" in paths and "/.well-known/jwks.json" in paths  # the gateway's own
    assert doc["x-hearth-unavailable"] == ["gone"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_no_docs_in_production(keys, tmp_path, monkeypatch) -> None:
    from hearth_gateway.main import create_app
    from hearth_gateway.settings import GatewaySettings
    from hearth_gateway.webhook_keys import add_key

    monkeypatch.setenv("HEARTH_LOG_FORMAT", "text")  # no JSON root handler in this session
    add_key(tmp_path / "webhook-secrets.json")
    app = create_app(
        GatewaySettings(
            environment="production",
            database_url="postgresql://unused/gw",
            assertion_private_key_file=keys.assertion_file,
            token_private_key_file=keys.token_file,
            webhook_secret_keys_file=tmp_path / "webhook-secrets.json",
        )
    )
    # Asked over HTTP (FastAPI's route objects no longer expose their paths directly).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        for path in ("/openapi.json", "/docs"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.get("/.well-known/jwks.json")).status_code == 200  # the app answers


async def test_cors_allow_list(make_gateway) -> None:
    allowed = "https://app.example.com"
    async with make_gateway(cors_allow_origins=[allowed]) as (_, http):
        preflight = {
            "Origin": allowed,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        ok = await http.options("/api/members/communities", headers=preflight)
        assert ok.status_code == 200  # answered by the gateway, no token needed
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "POST" in ok.headers["access-control-allow-methods"]
        evil = await http.options(
            "/api/members/communities", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        simple = await http.get("/api/members/x", headers={"Origin": allowed})
        assert simple.status_code == 401  # still authenticated; CORS only adds headers
        assert simple.headers["access-control-allow-origin"] == allowed
        assert "x-request-id" in simple.headers["access-control-expose-headers"]
        own = await http.get("/healthz", headers={"Origin": allowed})
        assert own.headers["access-control-allow-origin"] == allowed


async def test_no_cors_headers_by_default(client) -> None:
    response = await client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers
