"""Outbound HTTP policy: model providers, webhooks and connectors may not reach private,
loopback or link-local addresses unless the host is on the allowlist (tests allowlist
127.0.0.1). Names are resolved first, so a public name pointing inside is refused too."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class OutboundRefused(Exception):
    """The destination is not allowed by the outbound policy."""


def check_url(url: str, allowlist: list[str]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(f"only http and https URLs are allowed, not {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise OutboundRefused("the URL has no host")
    if host in allowlist:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OutboundRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise OutboundRefused(
                f"{host} resolves to {address}, a private or local address; add the host to "
                "outbound_allowlist to allow it"
            )
