"""Gateway test fixtures: a real echo upstream and a real gateway, each a uvicorn server.

Both run in background threads on pre-bound free ports of 127.0.0.1. The echo upstream verifies
the gateway's identity assertion with servicekit's AssertionVerifier (as every service does),
records every request it receives, and echoes method, paths, query, headers, body and principal.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hearth_gateway.dev_accounts import DEV_ACCOUNTS
from hearth_gateway.main import create_app
from hearth_gateway.settings import GatewaySettings
from hearth_gateway.tokens import TokenIssuer, load_private_key, private_pem, public_pem
from servicekit.identity import ASSERTION_HEADER, AssertionVerifier, InvalidAssertion

MAX_BODY = 64 * 1024
TIMEOUT = 1.0
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def bound_socket() -> socket.socket:
    """A listening-ready TCP socket bound to a free port on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """A uvicorn server for an ASGI app, served from a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = bound_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="httptools",
            log_level="warning",
            lifespan="on",
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Echo:
    """The echo upstream and everything it has received."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)


def echo_app(assertion_public_pem: str, echo: Echo) -> FastAPI:
    """A stand-in service: verifies the assertion, records and echoes the request."""
    verifier = AssertionVerifier(assertion_public_pem)
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/{path:path}", methods=ALL_METHODS)
    async def everything(request: Request, path: str) -> JSONResponse:
        if path.endswith("healthz"):  # a probe; services exempt it from the assertion check
            return JSONResponse({"status": "ok"})
        body = await request.body()
        record: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "headers": [
                [k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]
            ],
            "body": body.decode("latin-1"),
            "principal": None,
        }
        echo.received.append(record)
        try:
            principal = verifier.verify(request.headers.get(ASSERTION_HEADER, ""))
        except InvalidAssertion:
            return JSONResponse({"error": "no valid assertion"}, status_code=401)
        record["principal"] = principal.model_dump(mode="json")
        if path.endswith("/slow"):
            await asyncio.sleep(TIMEOUT * 3)
        status = 418 if path.endswith("/teapot") else 200
        return JSONResponse(record, status_code=status, headers={"x-upstream": "echo"})

    return app


@dataclass
class AccountsStub:
    """A real HTTP stub of members' internal accounts API (contract 2), with its own state."""

    url: str = ""
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # login -> account
    provisioned: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)


def accounts_app(assertion_public_pem: str, stub: AccountsStub) -> FastAPI:
    """members' /internal/accounts/verify and /provision as the contract describes them."""
    verifier = AssertionVerifier(assertion_public_pem)
    app = FastAPI()

    def problem(status: int, kind: str) -> JSONResponse:
        body = {"type": f"urn:hearth:problem:{kind}", "title": kind, "status": status}
        return JSONResponse(body, status_code=status, media_type="application/problem+json")

    def caller(request: Request, scope: str) -> JSONResponse | None:
        try:
            principal = verifier.verify(request.headers.get(ASSERTION_HEADER, ""))
        except InvalidAssertion:
            return problem(401, "unauthenticated")
        if principal.kind != "service" or scope not in principal.scopes:
            return problem(403, "forbidden")
        return None

    @app.post("/internal/accounts/verify")
    async def verify(request: Request) -> JSONResponse:
        refused = caller(request, "accounts:verify")
        if refused:
            return refused
        body = await request.json()
        stub.calls.append({"verify": body["login"]})
        account = stub.accounts.get(body["login"])
        if account is None or account["password"] != body["password"]:
            return problem(401, "invalid-credentials")
        if account["status"] != "active":
            return problem(403, "account-disabled")
        public = {k: account[k] for k in ("subject", "name", "roles", "status")}
        return JSONResponse(public)

    @app.post("/internal/accounts/provision")
    async def provision(request: Request) -> JSONResponse:
        refused = caller(request, "accounts:provision")
        if refused:
            return refused
        body = await request.json()
        stub.calls.append({"provision": body})
        key = (body["issuer"], body["external_subject"])
        if key not in stub.provisioned:
            stub.provisioned[key] = {
                "subject": str(uuid.uuid4()),
                "name": body.get("name") or "",
                "roles": body["roles"],
                "status": "active",
            }
        return JSONResponse(stub.provisioned[key])

    return app


@dataclass
class Keys:
    """Key files written for the gateway under test."""

    assertion_file: Path
    token_file: Path
    assertion_public_pem: str
    token_key: Ed25519PrivateKey


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Ed25519 key files, so the echo upstream knows the assertion key before the gateway runs."""
    folder = tmp_path_factory.mktemp("keys")
    assertion, token = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    (folder / "assertion.pem").write_text(private_pem(assertion))
    (folder / "token.pem").write_text(private_pem(token))
    return Keys(
        folder / "assertion.pem",
        folder / "token.pem",
        public_pem(assertion.public_key()),
        load_private_key(folder / "token.pem"),
    )


@pytest.fixture(scope="session")
def echo(keys: Keys) -> Iterator[Echo]:
    """The running echo upstream."""
    state = Echo()
    with ServerThread(echo_app(keys.assertion_public_pem, state)) as server:
        state.url = server.url
        print(f"\n[gateway tests] echo upstream (uvicorn thread) at {server.url}")
        yield state


@pytest.fixture(scope="session")
def accounts(keys: Keys) -> Iterator[AccountsStub]:
    """The running accounts stub (members' accounts routes do not exist yet)."""
    state = AccountsStub()
    with ServerThread(accounts_app(keys.assertion_public_pem, state)) as server:
        state.url = server.url
        print(f"[gateway tests] members accounts stub (uvicorn thread) at {server.url}")
        yield state


@pytest.fixture(scope="session")
def dead_url() -> str:
    """A URL on which nothing listens."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def gateway_settings(
    keys: Keys,
    echo: Echo,
    dead_url: str,
    accounts: AccountsStub,
    idps: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> GatewaySettings:
    """members and content go to the echo (under distinct prefixes); events is down; two
    external issuers; generous rate limits (the limit tests make their own gateways)."""
    folder = tmp_path_factory.mktemp("gwdb")
    return GatewaySettings(
        database_url=f"sqlite:///{folder}/gateway.db",
        accounts_url=accounts.url,
        external_issuers=[idps.a.config(), idps.b.config()],
        jwks_min_refresh_seconds=0,
        rate_limit_ip_per_second=10_000,
        rate_limit_ip_burst=10_000,
        rate_limit_principal_per_second=10_000,
        rate_limit_principal_burst=10_000,
        rate_limit_login_per_second=10_000,
        rate_limit_login_burst=10_000,
        environment="test",
        upstreams={
            "members": f"{echo.url}/members-svc",
            "content": f"{echo.url}/content-svc",
            "events": dead_url,
        },
        assertion_private_key_file=keys.assertion_file,
        token_private_key_file=keys.token_file,
        max_body_bytes=MAX_BODY,
        upstream_timeout_seconds=TIMEOUT,
    )


@pytest.fixture(scope="session")
def gateway(gateway_settings: GatewaySettings) -> Iterator[str]:
    """The running gateway's base URL."""
    app = create_app(gateway_settings)
    with ServerThread(app) as server:
        print(f"[gateway tests] gateway (uvicorn thread) at {server.url}")
        yield server.url


@pytest.fixture(scope="session")
async def asgi_client(gateway_settings: GatewaySettings) -> Any:
    """The same gateway in-process (httpx ASGITransport), where request bodies arrive as
    exactly the chunks the test streams: deterministic, unlike racing a socket reset."""
    app = create_app(gateway_settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


@pytest.fixture(scope="session")
def issuer(keys: Keys, gateway_settings: GatewaySettings) -> TokenIssuer:
    """An issuer with the gateway's own token key (for minting test tokens)."""
    return TokenIssuer(
        keys.token_key,
        issuer=gateway_settings.token_issuer,
        audience=gateway_settings.token_audience,
        ttl=gateway_settings.access_token_ttl_seconds,
    )


@pytest.fixture
async def client(gateway: str) -> Any:
    """An HTTP client for the gateway."""
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
        yield http


@pytest.fixture
async def member_token(client: httpx.AsyncClient) -> str:
    """A real token for the `member` dev account."""
    response = await client.post(
        "/auth/token", json={"username": "member", "password": DEV_ACCOUNTS["member"].password}
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def raw(gateway: str) -> Any:
    """raw_request bound to the gateway."""

    async def send(method: str, target: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        return await raw_request(gateway, method, target, **kwargs)

    return send


async def raw_request(
    base_url: str,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send the request-target byte for byte (no client normalisation): (status, headers, body)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def write_body() -> None:
        with contextlib.suppress(ConnectionError):  # the gateway may refuse the body midway
            for chunk in chunks or []:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            if chunks is not None:
                writer.write(b"0\r\n\r\n")
                await writer.drain()

    # Read while writing, and stop at the end of the response: a connection reset that follows
    # an early response (unread body on the server side) must not hide that response.
    writing = asyncio.create_task(write_body())
    data = b""
    try:
        async with asyncio.timeout(10):
            while True:
                chunk = await reader.read(65536)
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep and (length := _content_length(head)) is not None and len(body) >= length:
                    break
                if not chunk:
                    break
    except ConnectionError:
        pass
    await writing
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), parsed, body


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


class Idp:
    """A small real OIDC-like issuer: its own keys, a JWKS endpoint over HTTP, token minting."""

    def __init__(self, name: str, alg: str, audience: str) -> None:
        self.name = name
        self.alg = alg
        self.audience = audience
        self.keys: list[tuple[str, Any]] = []
        self.jwks_hits = 0
        self.url = ""
        self.rotate()

    def _generate(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if self.alg.startswith("RS"):
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    def rotate(self) -> str:
        """A new signing key, published alongside the old ones; returns its kid."""
        kid = f"{self.name}-{len(self.keys) + 1}"
        self.keys.append((kid, self._generate()))
        return kid

    def jwks(self) -> dict[str, Any]:
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        algorithm = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        out = []
        for kid, key in self.keys:
            jwk = algorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig", "alg": self.alg})
        return {"keys": out}

    @property
    def issuer(self) -> str:
        return f"{self.url}/{self.name}"

    def config(self, **overrides: Any) -> Any:
        from hearth_gateway.oidc import ExternalIssuer

        values: dict[str, Any] = {
            "name": self.name, "issuer": self.issuer, "jwks_url": f"{self.issuer}/jwks.json",
            "audience": self.audience, "algorithms": [self.alg], "groups_claim": "groups",
            "group_roles": {"hearth-operators": "operator"},
        }  # fmt: skip
        values.update(overrides)
        return ExternalIssuer(**values)

    def mint(self, subject: str, *, kid: str | None = None, headers: dict | None = None,
             key: Any = None, alg: str | None = None, **claims: Any) -> str:  # fmt: skip
        import jwt

        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now,
            "exp": now + 300, "email": f"{subject}@{self.name}.example", "name": subject.title(),
        }  # fmt: skip
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        if kid is None:
            use_kid, use_key = self.keys[-1]
        else:
            use_kid, use_key = kid, dict(self.keys).get(kid, self.keys[-1][1])
        return jwt.encode(
            body, key or use_key, algorithm=alg or self.alg,
            headers={"kid": use_kid, **(headers or {})},
        )  # fmt: skip


def idp_app(idps: list[Idp]) -> FastAPI:
    app = FastAPI()
    by_name = {i.name: i for i in idps}

    @app.get("/{name}/jwks.json")
    async def jwks(name: str) -> JSONResponse:
        idp = by_name[name]
        idp.jwks_hits += 1
        return JSONResponse(idp.jwks())

    return app


@dataclass
class Idps:
    a: Idp
    b: Idp


@pytest.fixture(scope="session")
def idps() -> Iterator[Idps]:
    """Two external issuers (A signs RS256 with RSA keys, B ES256 with P-256 keys) served
    over real HTTP from one small server, each under its own path."""
    a, b = Idp("corp", "RS256", "hearth-corp"), Idp("partners", "ES256", "hearth-partners")
    with ServerThread(idp_app([a, b])) as server:
        a.url = f"{server.url}"
        b.url = f"{server.url}"
        print(f"[gateway tests] external issuers (uvicorn thread) at {server.url}")
        yield Idps(a, b)


@pytest.fixture
def make_gateway(gateway_settings: GatewaySettings, tmp_path: Path) -> Any:
    """Start an extra in-process gateway (own database unless given) with setting overrides;
    use as `async with make_gateway(**overrides) as (app, client):`."""

    @contextlib.asynccontextmanager
    async def start(client_ip: str = "127.0.0.1", **overrides: Any) -> Any:
        values = gateway_settings.model_dump()
        values["database_url"] = f"sqlite:///{tmp_path}/gw-{uuid.uuid4().hex[:6]}.db"
        values.update(overrides)
        app = create_app(GatewaySettings(**values))
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app, client=(client_ip, 5555))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                yield app, http

    return start


@pytest.fixture(scope="session")
def server_thread() -> type[ServerThread]:
    """The ServerThread class (test modules can't import conftest under importlib mode)."""
    return ServerThread


@dataclass
class Attacker:
    """A real HTTP server an attacker controls, serving a JWKS (and an X.509 chain) of its own
    keys, and recording every request: a gateway that ever follows `jku`/`x5u` shows up here."""

    url: str = ""
    ed25519: Any = None  # signs tokens posing as the built-in issuer
    rsa: Any = None  # signs tokens posing as external issuer A (RS256)
    certificate_pem: bytes = b""
    hits: list[str] = field(default_factory=list)

    def okp_jwk(self) -> dict[str, str]:
        from hearth_gateway.tokens import public_jwk

        return public_jwk(self.ed25519.public_key())

    def rsa_jwk(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        return {**jwk, "kid": "attacker-rsa", "use": "sig", "alg": "RS256"}

    def token_headers(self, case: str, jwk: dict[str, Any]) -> dict[str, Any]:
        """JOSE header parameters that name a key (RFC 7515 4.1.2-4.1.6): `jku`/`x5u` point at
        this server, `jwk`/`x5c` embed the attacker's key; "all" sets every one."""
        parts: dict[str, dict[str, Any]] = {
            "jku": {"jku": f"{self.url}/jwks.json"},
            "x5u": {"x5u": f"{self.url}/chain.pem"},
            "jwk": {"jwk": jwk},
            "x5c": {"x5c": [self.certificate_der_b64()]},
        }
        if case == "all":
            return {k: v for part in parts.values() for k, v in part.items()}
        return parts[case]

    def certificate_der_b64(self) -> str:
        import base64

        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_pem_x509_certificate(self.certificate_pem)
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _self_signed(key: Any) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def attacker() -> Iterator[Attacker]:
    """The attacker's key server (one per session; tests compare `hits` before and after)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    state = Attacker(ed25519=Ed25519PrivateKey.generate())
    state.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state.certificate_pem = _self_signed(state.rsa)
    app = FastAPI()

    @app.api_route("/{path:path}", methods=ALL_METHODS)
    async def anything(request: Request, path: str) -> Any:
        from fastapi.responses import Response

        state.hits.append(f"{request.method} /{path}")
        if path.endswith(".pem"):
            return Response(state.certificate_pem, media_type="application/pem-certificate-chain")
        return JSONResponse({"keys": [state.okp_jwk(), state.rsa_jwk()]})

    with ServerThread(app) as server:
        state.url = server.url
        print(f"[gateway tests] attacker key server (uvicorn thread) at {server.url}")
        yield state
