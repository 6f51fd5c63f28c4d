"""The client's IP address, behind trusted reverse proxies or none.

Behind an ingress (nginx), the TCP peer is the ingress pod: every per-IP limit would key on it.
X-Forwarded-For says who the ingress talked to, but anyone can send that header, so it is read
only when the peer is a configured trusted proxy, and then from the right: each trusted proxy
appends the address it saw, so the right-most entry that is not a trusted proxy is the first
address no one we trust can vouch past — the client. Entries left of it are the client's own
claims and are never used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CACHE_MAX = 4096  # peers seen (ingress pods, clients): trust decisions are cached per string


def _parse(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from an X-Forwarded-For entry (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:5678`)."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1 : entry.find("]")] if "]" in entry else ""
    elif entry.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        entry = entry.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(entry)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 (dual-stack listeners)
    return address


class TrustedProxies:
    """Resolves the client IP from the TCP peer and, from trusted peers only, X-Forwarded-For."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = tuple(networks)
        self._trusted: dict[str, bool] = {}

    @property
    def enabled(self) -> bool:
        """True when any proxy is trusted (otherwise the peer is always the client)."""
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        """True when this address is inside a trusted proxy network."""
        if not self._networks:
            return False
        known = self._trusted.get(address)
        if known is not None:
            return known
        parsed = _parse(address)
        trusted = parsed is not None and any(parsed in net for net in self._networks)
        if len(self._trusted) >= _CACHE_MAX:
            self._trusted.clear()
        self._trusted[address] = trusted
        return trusted

    def client_ip(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address: the peer, unless the peer is trusted and X-Forwarded-For
        (every header, in order) names hops before it; "-" when there is no peer at all."""
        if peer is None:
            return "-"
        if not self._networks or not forwarded_for or not self.trusts(peer):
            return peer
        hop = peer
        entries = [e for value in forwarded_for for e in value.split(",")]
        for entry in reversed(entries):
            address = _parse(entry)
            if address is None:
                return hop  # garbage left of a trusted hop: that hop is all we can vouch for
            hop = str(address)
            if not self.trusts(hop):
                return hop
        return hop  # every hop is a trusted proxy: the left-most one is the origin
