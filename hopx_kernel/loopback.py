"""Whether a host is this machine's loopback (pure; used by the kernel and the server).

Example:
    >>> is_loopback_name("127.0.0.1"), is_loopback_name("::1"), is_loopback_name("127.evil.example")
    (True, True, False)
    >>> is_loopback_url("http://localhost:8888/x")
    True
    >>> listen_url("http", "::1", 8888), listen_url("https", "127.0.0.1", 1)
    ('http://[::1]:8888', 'https://127.0.0.1:1')
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_name(hostname: str) -> bool:
    """``localhost`` or a loopback IP address (``127.0.0.0/8``, ``::1``)."""
    hostname = hostname.strip().lower().rstrip(".")
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether a URL's host is loopback."""
    try:
        hostname = urlsplit(url).hostname
    except ValueError:
        return False
    return hostname is not None and bool(hostname) and is_loopback_name(hostname)


def listen_url(scheme: str, host: str, port: int) -> str:
    """The base URL of a server listening on ``host``:``port`` (an IPv6 address in brackets).

    Example:
        >>> listen_url("http", "localhost", 80), listen_url("http", "0:0::1", 80)
        ('http://localhost:80', 'http://[::1]:80')
    """
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        return f"{scheme}://{host.strip()}:{port}"
    if address.version == 6:
        return f"{scheme}://[{address.compressed}]:{port}"
    return f"{scheme}://{address}:{port}"
