"""Where webhooks may be sent: public http(s) addresses only (server-side request forgery guard).

A platform admin could otherwise aim a webhook at the cloud metadata service
(169.254.169.254), the cluster network (10.x), or the services' own ports, and read the
answers through the delivery log. Two checks, because DNS answers change:

- at creation or URL change, the host (an IP literal, or every address its name resolves to)
  must be public, else 422;
- on every connection, `PublicOnlyResolver` drops refused addresses from what aiohttp
  resolved, so the address actually connected to is a checked one (a name rebound to
  127.0.0.1 after creation gets nowhere); IP literals, which aiohttp never resolves, are
  checked by `literal_refusal` before each request.

URLs are parsed with yarl, the parser aiohttp itself uses, so both see the same host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 reached through a NAT64 gateway
RESOLVE_TIMEOUT_SECONDS = 5.0
CHECKS = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_private", "private"),
    ("is_reserved", "reserved"),
)


class TargetRefused(ValueError):
    """The URL is not an allowed webhook target; the message says why."""


def address_refusal(address: str | Address) -> str | None:
    """Why an address is refused (e.g. 'loopback'), or None for a public address."""
    try:
        ip: Address = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
            ip = ip.ipv4_mapped
        elif ip in NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    for attribute, reason in CHECKS:
        if getattr(ip, attribute):
            return reason
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT)
        return "not globally routable"
    return None


def parse_target(url: str) -> URL:
    """The URL if it is absolute http(s) with a host; TargetRefused otherwise."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("the URL must be http(s)")
    if not parsed.raw_host:
        raise TargetRefused("the URL has no host")
    return parsed


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def literal_refusal(url: str) -> str | None:
    """For a URL whose host is an IP literal (never resolved by aiohttp): why it is refused."""
    host = parse_target(url).raw_host or ""
    ip = _literal(host)
    if ip is None:
        return None
    reason = address_refusal(ip)
    return f"{host} is a {reason} address" if reason else None


async def check_target(url: str) -> None:
    """Refuse (TargetRefused) a URL whose host is, or resolves to, any refused address."""
    parsed = parse_target(url)
    host = parsed.raw_host or ""
    ip = _literal(host)
    if ip is not None:
        reason = address_refusal(ip)
        if reason:
            raise TargetRefused(f"{host} is a {reason} address")
        return
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, parsed.port or 443, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"{host} does not resolve") from exc
    for info in infos:
        address = str(info[4][0])
        reason = address_refusal(address)
        if reason:
            raise TargetRefused(f"{host} resolves to {address}, a {reason} address")


class PublicOnlyResolver(AbstractResolver):
    """An aiohttp resolver that keeps only public addresses of whatever DNS answers now."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The public addresses of host; OSError (a connection error) when there are none."""
        results = await self._inner.resolve(host, port, family)
        kept = [r for r in results if address_refusal(r["host"]) is None]
        if not kept:
            refused: list[Any] = sorted({r["host"] for r in results})
            raise OSError(f"webhook target {host} refused: resolves only to {refused}")
        return kept

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()
