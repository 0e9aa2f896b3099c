"""Sending one webhook request without being turned against the network it runs in (SSRF).

The target's host is resolved once; every address it resolves to must be public (not loopback, private, link-local,
multicast, reserved, unspecified or otherwise not global) unless WEBHOOK_ALLOW_PRIVATE is set, and the connection
goes to the vetted address itself, so a second DNS answer (DNS rebinding) cannot redirect it. Redirects are never
followed: a 3xx is a failed attempt like any other non-2xx.

The standard library's http.client is used rather than `requests`: connecting to a vetted address while keeping the
host name for the Host header, TLS SNI and certificate checks takes a few lines here, and it follows no redirects;
`requests` would need a custom transport adapter for the same, and is only a development dependency of the project.
"""

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from http import client
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 64 * 1024  # read (and discard) at most this much of a response


class TargetRefusedError(Exception):
    """The URL may not be called: a bad URL, a host that does not resolve, or one that resolves to a refused
    address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the vetted IP address to connect to


def _refused(address):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if getattr(ip, "ipv4_mapped", None) is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def vet(url, allow_private=False):
    """Resolve `url`'s host and check every address; returns the Target to connect to or raises TargetRefusedError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefusedError("The URL must be http:// or https:// with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefusedError("The URL's port is not valid.") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefusedError(f"The host {parts.hostname!r} does not resolve.") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise TargetRefusedError(f"The host {parts.hostname!r} does not resolve.")
    if not allow_private:
        refused = [address for address in addresses if _refused(address)]
        if refused:
            raise TargetRefusedError(
                f"The host {parts.hostname!r} resolves to {refused[0]}, a loopback, private, link-local or otherwise "
                "non-public address."
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, parts.hostname, port, path, addresses[0])


class _PinnedHTTPConnection(client.HTTPConnection):
    def __init__(self, target, timeout):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(client.HTTPSConnection):
    """TLS to the vetted address, with SNI and certificate checks for the URL's host name."""

    def __init__(self, target, timeout):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(target, body, headers, timeout):
    """POST `body` (bytes) to the vetted `target`; returns the response's status code. Raises OSError (or one of
    http.client's errors) when no response comes."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status
    finally:
        connection.close()
