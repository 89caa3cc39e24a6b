"""Who the client is: the socket peer, or what a trusted proxy in front of the edge says it saw.

`X-Forwarded-For` is believed only from a peer in `EDGE_TRUSTED_PROXIES` (addresses or networks,
e.g. `10.0.0.0/8,127.0.0.1`). Then the client is the right-most address in it that is not itself a
trusted proxy: everything left of that was written by the client and proves nothing. Without trusted
proxies the peer is the client, whatever the header says (it is still passed on, with the peer appended).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(net.strip(), strict=False) for net in networks if net.strip()
        )
        # Addresses seen and whether they are trusted: a handful of proxies, or every client once.
        self._seen: dict[str, bool] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._networks)

    def trusted(self, address: str) -> bool:
        known = self._seen.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                known = False
            else:
                known = any(ip in net for net in self._networks)
            if len(self._seen) < 65536:
                self._seen[address] = known
        return known

    def client(self, peer: str, forwarded_for: bytes | None) -> str:
        """The client address for rate limits and logs."""
        if forwarded_for is None or not self._networks or not self.trusted(peer):
            return peer
        for hop in reversed(forwarded_for.split(b",")):
            address = hop.strip().decode("latin-1")
            if not address:
                continue
            if not self.trusted(address):
                return address
        return peer
