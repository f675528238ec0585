"""Which URLs the platform may post webhooks to, and the exact addresses it may connect to.

A webhook makes the platform send a request where a project member says, so an unchecked URL would let a
member reach the platform's own network: its loopback services, the cloud metadata endpoint, private
ranges. The host is resolved once, every address it resolves to is checked, and the request is then sent
to one of those checked addresses (:class:`Target`), never to a fresh lookup that DNS rebinding could
turn elsewhere. An admin admits private receivers by listing their networks in
``AITIP_WEBHOOK_ALLOWED_NETWORKS`` (comma-separated CIDRs); nothing else overrides the check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

from ..errors import InvalidInput, Phrase
from ..i18n import N_

ALLOWED_NETWORKS_ENV = "AITIP_WEBHOOK_ALLOWED_NETWORKS"
RESOLVE_TIMEOUT_SECONDS = 10.0
MAX_URL_LENGTH = 2048

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

_CGNAT = IPv4Network("100.64.0.0/10")
_METADATA = {IPv4Address("169.254.169.254"), IPv6Address("fd00:ec2::254")}
_IPV4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))
_DEFAULT_PORTS = {"http": 80, "https": 443}


def allowed_networks(environ: Mapping[str, str] | None = None) -> tuple[Network, ...]:
    """The networks an admin admits despite the checks, from ``$AITIP_WEBHOOK_ALLOWED_NETWORKS``.

    Read on every check, so a changed setting applies to the next delivery. A malformed entry is an error
    (a typo must not silently admit nothing, or everything)."""
    raw = (os.environ if environ is None else environ).get(ALLOWED_NETWORKS_ENV, "")
    networks = []
    for entry in raw.replace(";", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{ALLOWED_NETWORKS_ENV}: {entry!r} is not a CIDR network ({exc})") from None
    return tuple(networks)


@dataclass(frozen=True)
class Target:
    """A checked receiver: the name the request is addressed to and the addresses it may connect to."""

    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal, sent as Host and as TLS SNI
    port: int
    path: str  # path and query, as sent on the request line
    addresses: tuple[Address, ...]

    @property
    def origin(self) -> str:
        """``scheme://host:port``: what messages and logs name (the path may hold a token, as Slack's do)."""
        return f"{self.scheme}://{_bracketed(self.host)}:{self.port}"

    @property
    def host_header(self) -> str:
        host = _bracketed(self.host)
        return host if _DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    @property
    def is_ip_literal(self) -> bool:
        return _literal(self.host) is not None

    def url_for(self, address: Address) -> str:
        """The URL that connects to ``address`` itself (the Host header carries the name)."""
        return f"{self.scheme}://{_bracketed(str(address))}:{self.port}{self.path}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _canonical(address: Address) -> Address:
    """An IPv4-mapped IPv6 address is its IPv4 address: that is where a connection to it goes."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded_ipv4(address: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """IPv4 addresses an IPv6 form reaches (compatible, NAT64, 6to4, Teredo), with the form's name."""
    found: list[tuple[str, IPv4Address]] = []
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        found.append(("IPv4-compatible", IPv4Address(int(address) & 0xFFFFFFFF)))
    if any(address in network for network in _NAT64):
        found.append(("NAT64", IPv4Address(int(address) & 0xFFFFFFFF)))
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        found.extend(("Teredo", v4) for v4 in address.teredo)
    return found


def _reason(address: Address) -> Phrase | None:
    """Why the platform must not connect to ``address`` (canonical form), or None when it may."""
    if isinstance(address, IPv6Address):
        for form, v4 in _embedded_ipv4(address):
            inner = _reason(v4)
            if inner is not None:
                return Phrase(N_("{form} form of {address}, {reason}"), form=form, address=v4, reason=inner)
        if any(address in network for network in _NAT64):
            return None  # DNS64 synthesizes these for every public IPv4 host on an IPv6-only network
        if address.is_site_local:
            return Phrase(N_("site-local"))
    if address.is_unspecified:
        return Phrase(N_("unspecified (it means this host)"))
    if address.is_loopback:
        return Phrase(N_("loopback (this host)"))
    if address in _METADATA:
        return Phrase(N_("the cloud metadata service"))
    if address.is_link_local:
        return Phrase(N_("link-local"))
    if address.is_multicast:
        return Phrase(N_("multicast"))
    if isinstance(address, IPv4Address) and address in _CGNAT:
        return Phrase(N_("carrier-grade NAT (100.64.0.0/10)"))
    if address.is_private:
        return Phrase(N_("private network"))
    if address.is_reserved:
        return Phrase(N_("reserved"))
    if not address.is_global:
        return Phrase(N_("not a public internet address"))
    return None


def _is_allowed(address: Address, allowed: Iterable[Network]) -> bool:
    return any(address.version == network.version and address in network for network in allowed)


def refusal(address: Address, allowed: Iterable[Network] = ()) -> Phrase | None:
    """Why a connection to ``address`` is refused under the allow-list ``allowed`` (``str()`` of it in English),
    or None."""
    canonical = _canonical(address)
    if _is_allowed(canonical, allowed):
        return None
    reason = _reason(canonical)
    if reason is not None and canonical != address:
        return Phrase(N_("{form} form of {address}, {reason}"), form="IPv4-mapped", address=canonical, reason=reason)
    return reason


def parse(url: str) -> tuple[str, str, int, str]:
    """Check a URL's form (http/https, a host, no credentials); return scheme, ASCII host, port, path."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("a webhook URL must be a non-empty string", code="webhook_url_invalid")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput("a webhook URL has at most {max_url_length} characters", code="webhook_url_invalid",
                           max_url_length=MAX_URL_LENGTH)
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidInput("a webhook URL must not contain spaces or control characters",
                           code="webhook_url_invalid")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput("the webhook URL is malformed: {exc}", code="webhook_url_invalid", exc=exc) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidInput("a webhook URL must be http:// or https://, not {scheme}",
                           code="webhook_url_invalid", scheme=scheme or 'schemeless')
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("a webhook URL must not carry credentials (user:password@); deliveries are signed "
                           "instead", code="webhook_url_invalid")
    host = parts.hostname or ""
    if not host:
        raise InvalidInput("the webhook URL names no host", code="webhook_url_invalid")
    if _literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInput("the webhook URL's host {host!r} is not a valid domain name",
                               code="webhook_url_invalid", host=host) from None
    if port == 0:
        raise InvalidInput("the webhook URL's port must be 1-65535", code="webhook_url_invalid")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or _DEFAULT_PORTS[scheme], path


async def _resolve(host: str, port: int) -> list[Address]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            RESOLVE_TIMEOUT_SECONDS)
    except (TimeoutError, OSError) as exc:
        raise InvalidInput("the webhook host {host!r} cannot be resolved: {exc}",
                           code="webhook_unresolvable",
                                detail={"host": host}, host=host, exc=exc or 'timed out') from None
    addresses: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InvalidInput("the webhook host {host!r} resolves to no address", code="webhook_unresolvable",
                           detail={"host": host}, host=host)
    return addresses


async def resolve_target(url: str, allowed: Iterable[Network] | None = None) -> Target:
    """Parse ``url``, resolve its host and check every address; the :class:`Target` to connect to.

    ``allowed`` defaults to :func:`allowed_networks`. Refused when any address is refused: a name that
    resolves to one public and one private address could otherwise be steered to the private one. Raises
    InvalidInput with code ``webhook_target_refused`` (naming the address and why), ``webhook_url_invalid``,
    or ``webhook_unresolvable`` (a DNS failure, which may pass)."""
    scheme, host, port, path = parse(url)
    networks = tuple(allowed_networks() if allowed is None else allowed)
    addresses = await _resolve(host, port)
    for address in addresses:
        reason = refusal(address, networks)
        if reason is not None:
            origin = f"{scheme}://{_bracketed(host)}:{port}"
            raise InvalidInput(
                N_("webhook target {origin} refused: {address} is {reason}; an admin can allow its network with "
                   "{allowed_networks_env}") if _literal(host) is not None else
                N_("webhook target {origin} refused: {address} ({host} resolves to it) is {reason}; an admin can "
                   "allow its network with {allowed_networks_env}"),
                code="webhook_target_refused",
                detail={"origin": origin, "address": str(address), "reason": str(reason)},
                origin=origin, address=address, host=host, reason=reason, allowed_networks_env=ALLOWED_NETWORKS_ENV)
    return Target(scheme=scheme, host=host, port=port, path=path,
                  addresses=tuple(_canonical(a) for a in addresses))
