"""The reverse proxy for /api/<context>/<path>: a raw ASGI app on the hot path.

Per request it checks the path, verifies the bearer token, caps the body, replaces every
identity and hop-by-hop header with its own, signs the identity assertion and relays the call
on one long-lived aiohttp session per upstream (the transport was chosen by measurement; see
gateway/bench/transports.py and the README).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import aiohttp
from opentelemetry import propagate, trace
from yarl import URL

from hearth_gateway.authn import Authenticator, Identity
from hearth_gateway.client_ip import TrustedProxies
from hearth_gateway.ratelimit import Limiter, Rate, retry_after_header
from hearth_gateway.request_ids import new_request_id, valid_request_id
from hearth_gateway.tokens import InvalidToken
from servicekit.identity import ASSERTION_HEADER, AssertionSigner, Principal
from servicekit.problems import PROBLEM_CONTENT_TYPE, Problem

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("hearth-gateway")

API_PREFIX = b"/api/"
_SMALL_BODY = 256 * 1024  # bodies up to this size are buffered so a timeout can still be a 504
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Never forwarded: hop-by-hop headers (RFC 9110 7.6.1), headers the gateway sets itself, the
# bearer token (services trust only the assertion), and identity headers a client could use to
# impersonate someone; plus everything with a prefix in _DROP_REQUEST_PREFIXES.
_DROP_REQUEST = frozenset(
    b"connection keep-alive te trailer transfer-encoding upgrade host content-length expect "
    b"authorization forwarded x-real-ip x-request-id traceparent tracestate x-remote-user "
    b"x-remote-group remote-user x-user x-user-id x-auth-user x-authenticated-user "
    b"x-authenticated-userid x-principal x-api-key".split()
)
_DROP_REQUEST_PREFIXES = (b"x-hearth-", b"proxy-", b"x-forwarded-", b"x-auth-request-")
_DROP_RESPONSE = frozenset(
    b"connection keep-alive te trailer transfer-encoding upgrade proxy-authenticate "
    b"proxy-connection date server x-request-id".split()
)

_PATH_CHARS = re.compile(rb"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$")
_BAD_QUERY = re.compile(rb"[^\x21-\x7e]")
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def _bad_path(detail: str) -> Problem:
    return Problem(400, "bad-path", "Bad request path", detail)


def _unauthenticated(detail: str, *, invalid: bool = True) -> Problem:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return Problem(
        401, "unauthenticated", "Not authenticated", detail, headers={"www-authenticate": challenge}
    )


def _throttled(retry_after: float) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        "slow down and retry later",
        headers={"retry-after": retry_after_header(retry_after)},
    )


def _forbidden_scope(scope: str | None) -> Problem:
    detail = f"this API key lacks the scope {scope!r}" if scope else "no API-key access here"
    return Problem(403, "insufficient-scope", "Forbidden", detail, required_scope=scope)


class ScopeRules:
    """Which scope an API-key principal needs for a route: longest prefix, method beats '*'."""

    def __init__(self, rules: dict[str, str]) -> None:
        parsed = []
        for rule, scope in rules.items():
            method, _, prefix = rule.partition(" ")
            parsed.append((method.upper(), prefix, scope))
        # Longest prefix first; for one prefix an exact method before the wildcard.
        parsed.sort(key=lambda r: (-len(r[1]), r[0] == "*"))
        self._rules = parsed

    def required(self, method: str, path: str) -> str | None:
        """The scope needed, or None when API keys may not call this route at all."""
        for rule_method, prefix, scope in self._rules:
            if (rule_method == "*" or rule_method == method) and path.startswith(prefix):
                return scope
        return None


def _too_large(limit: int) -> Problem:
    return Problem(413, "payload-too-large", "Payload too large", f"the body exceeds {limit} bytes")


def _unreachable(name: str) -> Problem:
    return Problem(502, "bad-gateway", "Bad gateway", f"the {name} service is unreachable")


def _timed_out(name: str) -> Problem:
    return Problem(504, "gateway-timeout", "Gateway timeout", f"the {name} service timed out")


class _ResponseStarted(Exception):
    """The upstream failed after the response had started; nothing can be sent any more."""


def split_target(raw_path: bytes) -> tuple[str, str]:
    """(context, upstream path) for a raw /api/... path; refuses traversal and odd encodings."""
    if not raw_path.startswith(API_PREFIX):
        raise Problem(404, "not-found", "Not found", "no such route")
    context, _, rest_b = raw_path[len(API_PREFIX) :].partition(b"/")
    if not _PATH_CHARS.match(rest_b):
        raise _bad_path("the path has characters that must be percent-encoded")
    rest = rest_b.decode("ascii")
    segments = rest.split("/")
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if not segment:
            if index == last:
                continue  # a trailing slash is fine; an empty segment elsewhere is not
            raise _bad_path("empty path segment")
        decoded = segment
        for _ in range(3):  # also catches double encoding such as %252e%252e
            if "%" not in decoded:
                break
            decoded = unquote(decoded)
        if "/" in decoded or "\\" in decoded or "\x00" in decoded:
            raise _bad_path("encoded separator in a path segment")
        if decoded.split(";", 1)[0] in (".", ".."):
            raise _bad_path("dot segments are not allowed")
    return context.decode("latin-1"), "/" + rest


@dataclass(slots=True)
class Upstream:
    """One bounded context's service: its base URL and its long-lived client session."""

    name: str
    base: str
    session: aiohttp.ClientSession | None = None


# The caller of a capability URL: a nameless service principal with no roles and no scopes
# (rate-limited by IP like everyone); only the capability's own route accepts it for anything.
ANONYMOUS = Identity(
    subject=uuid.UUID(int=0),
    kind="service",
    name="capability-url",
    roles=frozenset(),
    scopes=frozenset(),
    valid_until=float("inf"),
    rate_key="anonymous",
)


class Proxy:
    """ASGI app for /api/<context>/<path> that relays authenticated calls to the upstreams."""

    def __init__(
        self,
        *,
        upstreams: dict[str, str],
        authenticator: Authenticator,
        signer: AssertionSigner,
        scope_rules: ScopeRules | None = None,
        trusted_proxies: TrustedProxies | None = None,
        limiter: Limiter | None = None,
        ip_rate: Rate | None = None,
        principal_rate: Rate | None = None,
        max_body_bytes: int,
        capability_paths: list[str] | None = None,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        connection_limit: int,
        keepalive_seconds: float,
    ) -> None:
        self.upstreams = {name: Upstream(name, base) for name, base in upstreams.items()}
        self._auth = authenticator
        self._signer = signer
        self._scopes = scope_rules or ScopeRules({})
        self._proxies = trusted_proxies or TrustedProxies(())
        self._limiter = limiter
        self._ip_rate = ip_rate
        self._principal_rate = principal_rate
        self._max_body = max_body_bytes
        self._capabilities = [re.compile(p) for p in capability_paths or []]
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, sock_connect=connect_timeout_seconds
        )
        self._limit = connection_limit
        self._keepalive = keepalive_seconds

    async def start(self) -> None:
        """Open one pooled keep-alive session per upstream (call from the app lifespan)."""
        for upstream in self.upstreams.values():
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit,
                keepalive_timeout=self._keepalive,  # below uvicorn's 5 s, so we close first
                ttl_dns_cache=300,
            )
            upstream.session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry cookies from user to user
                auto_decompress=False,  # relay the bytes exactly as the upstream sent them
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            )

    async def close(self) -> None:
        """Close every upstream session."""
        for upstream in self.upstreams.values():
            if upstream.session is not None:
                await upstream.session.close()
                upstream.session = None

    async def unready(self, timeout_seconds: float) -> list[str]:
        """The names of upstreams whose /healthz does not answer 200."""
        timeout = aiohttp.ClientTimeout(total=timeout_seconds)

        async def probe(upstream: Upstream) -> bool:
            if upstream.session is None:
                return False
            url = upstream.base + "/healthz"
            try:
                async with upstream.session.get(url, timeout=timeout) as response:
                    return response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        ups = list(self.upstreams.values())
        results = await asyncio.gather(*(probe(u) for u in ups))
        return [u.name for u, ok in zip(ups, results, strict=True) if not ok]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Authenticate, sanitise and relay one /api/ request; answer problems itself."""
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers: list[tuple[str, str]] = []
        api_key = authorization = content_length = request_id = traceparent = tracestate = None
        host = connection = forwarded_proto = None
        forwarded_for: list[str] = []
        for name, value in scope["headers"]:
            if name in _DROP_REQUEST or name.startswith(_DROP_REQUEST_PREFIXES):
                if name == b"authorization":
                    authorization = value
                elif name == b"content-length":
                    content_length = value
                elif name == b"x-request-id":
                    request_id = value
                elif name == b"traceparent":
                    traceparent = value
                elif name == b"tracestate":
                    tracestate = value
                elif name == b"host":
                    host = value
                elif name == b"connection":
                    connection = value
                elif name == b"x-api-key":
                    api_key = value
                elif name == b"x-forwarded-for":  # read only from trusted proxies (client_ip)
                    forwarded_for.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    forwarded_proto = value
                continue
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if connection:  # headers named in Connection are hop-by-hop too
            named = {t.strip().lower() for t in connection.decode("latin-1").split(",")}
            headers = [h for h in headers if h[0] not in named]
        if request_id is None or not valid_request_id(request_id):
            request_id = new_request_id()
        rid = request_id.decode("ascii")
        try:
            context, path = split_target(scope.get("raw_path") or scope["path"].encode())
            upstream = self.upstreams.get(context)
            if upstream is None or upstream.session is None:
                raise Problem(404, "not-found", "Not found", f"no API context {context!r}")
            query: bytes = scope.get("query_string", b"")
            if query and _BAD_QUERY.search(query):
                raise _bad_path("the query has characters that must be percent-encoded")
            client = scope.get("client")
            peer = client[0] if client else None
            client_ip = self._proxies.client_ip(peer, forwarded_for)
            limiter = self._limiter
            if limiter is not None and self._ip_rate is not None:
                ip_key = "ip:" + client_ip
                wait = (
                    limiter.hit_now(ip_key, self._ip_rate)
                    if limiter.local
                    else await limiter.hit(ip_key, self._ip_rate)
                )
                if wait:
                    raise _throttled(wait)
            if (
                authorization is None
                and api_key is None
                and scope["method"] in ("GET", "HEAD")
                and any(c.match(scope["path"]) for c in self._capabilities)
            ):
                identity = ANONYMOUS  # the path's token is the credential; the upstream checks it
            else:
                identity = await self._identify(authorization, api_key)
            if identity.api_key_id is not None:
                needed = self._scopes.required(scope["method"], scope["path"])
                if needed is None or needed not in identity.scopes:
                    raise _forbidden_scope(needed)
            if (
                limiter is not None
                and self._principal_rate is not None
                and identity is not ANONYMOUS
            ):
                wait = (
                    limiter.hit_now(identity.rate_key, self._principal_rate)
                    if limiter.local
                    else await limiter.hit(identity.rate_key, self._principal_rate)
                )
                if wait:
                    raise _throttled(wait)
            principal = Principal(
                subject=identity.subject,
                kind=identity.kind,  # type: ignore[arg-type]
                name=identity.name,
                roles=identity.roles,
                scopes=identity.scopes,
                request_id=rid,
            )
            if content_length is not None:
                if not content_length.isdigit():
                    raise Problem(400, "bad-request", "Bad request", "invalid Content-Length")
                if int(content_length) > self._max_body:
                    raise _too_large(self._max_body)
            body = await _read_body(receive, self._max_body)

            span = self._start_span(scope, upstream.name, traceparent, tracestate)
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            headers.extend(carrier.items())  # the upstream's parent is the gateway's span
            headers.append(("x-request-id", rid))
            headers.append((ASSERTION_HEADER, self._signer.sign(principal)))
            if peer is not None:
                headers.append(("x-forwarded-for", client_ip))
            headers.append(("x-forwarded-proto", self._scheme(scope, peer, forwarded_proto)))
            if host:
                headers.append(("x-forwarded-host", host.decode("latin-1")))
            target = upstream.base + path + ("?" + query.decode("ascii") if query else "")
            try:
                await self._relay(
                    upstream, scope["method"], target, headers, body, request_id, send
                )
            finally:
                span.end()
        except Problem as problem:
            await _send_problem(send, problem, scope["path"], request_id)
        except Exception:  # a bug; nothing has been sent yet (see _ResponseStarted)
            log.exception("proxy error on %s %s", scope["method"], scope["path"])
            bug = Problem(500, "internal-error", "Internal error", "an unexpected error")
            await _send_problem(send, bug, scope["path"], request_id)

    def _scheme(self, scope: dict[str, Any], peer: str | None, forwarded: bytes | None) -> str:
        """The client's scheme: a trusted proxy's X-Forwarded-Proto (it terminated TLS), else
        the scheme of the connection to the gateway."""
        if forwarded in (b"https", b"http") and peer is not None and self._proxies.trusts(peer):
            return "https" if forwarded == b"https" else "http"
        return str(scope.get("scheme", "http"))

    def _start_span(
        self,
        scope: dict[str, Any],
        context: str,
        traceparent: bytes | None,
        tracestate: bytes | None,
    ) -> trace.Span:
        """The gateway's SERVER span, continuing a valid incoming trace or starting one."""
        carrier: dict[str, str] = {}
        if traceparent is not None and _TRACEPARENT.match(traceparent):
            carrier["traceparent"] = traceparent.decode("ascii")
            if tracestate:
                carrier["tracestate"] = tracestate.decode("latin-1")
        return _tracer.start_span(
            f"{scope['method']} /api/{context}",
            context=propagate.extract(carrier) if carrier else None,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "hearth.context": context},
        )

    async def _identify(self, authorization: bytes | None, api_key: bytes | None) -> Identity:
        """The caller from `Authorization: Bearer <jwt | hk_ key>` or `X-API-Key: hk_...`."""
        if authorization is not None:
            scheme, _, credential = authorization.decode("latin-1").partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
        elif api_key is not None:
            credential = api_key.decode("latin-1").strip()
            if not credential:
                raise _unauthenticated("the X-API-Key header is empty")
        else:
            raise _unauthenticated("a bearer token or API key is required", invalid=False)
        identity = self._auth.cached(credential)
        if identity is not None:
            return identity
        try:
            return await self._auth.authenticate(credential)
        except InvalidToken as exc:
            raise _unauthenticated("the credential is not valid") from exc

    async def _relay(
        self,
        upstream: Upstream,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        request_id: bytes,
        send: Any,
    ) -> None:
        assert upstream.session is not None
        url = URL(target, encoded=True)  # already validated; never re-encode or re-normalise
        attempts = 2 if method in _SAFE_METHODS else 1
        for attempt in range(attempts):
            try:
                async with upstream.session.request(
                    method, url, headers=headers, data=body or None, allow_redirects=False
                ) as response:
                    await _relay_response(response, request_id, send)
                    return
            except _ResponseStarted:
                return  # logged; the client sees a truncated response and a closed connection
            except aiohttp.ServerDisconnectedError as exc:
                if attempt + 1 < attempts:
                    continue  # a pooled keep-alive connection the upstream had just closed
                raise _unreachable(upstream.name) from exc
            except TimeoutError as exc:
                raise _timed_out(upstream.name) from exc
            except aiohttp.ClientError as exc:
                raise _unreachable(upstream.name) from exc


async def _read_body(receive: Any, limit: int) -> bytes:
    """The whole request body, refused as soon as it grows past the limit."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise _too_large(limit)
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Problem(400, "bad-request", "Bad request", "the client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _relay_response(response: aiohttp.ClientResponse, request_id: bytes, send: Any) -> None:
    """Copy status, headers (minus hop-by-hop) and body back to the client."""
    headers = [
        (lower, value)
        for name, value in response.raw_headers
        if (lower := name.lower()) not in _DROP_RESPONSE
    ]
    headers.append((b"x-request-id", request_id))
    start = {"type": "http.response.start", "status": response.status, "headers": headers}
    length = response.content_length
    if length is not None and length <= _SMALL_BODY:
        body = await response.read()
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return
    await send(start)
    try:
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except Exception as exc:
        log.warning("upstream body interrupted after the response started: %r", exc)
        raise _ResponseStarted from exc
    await send({"type": "http.response.body", "body": b""})


async def _send_problem(send: Any, problem: Problem, path: str, request_id: bytes) -> None:
    payload = json.dumps(problem.body(path)).encode()
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id),
    ]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
