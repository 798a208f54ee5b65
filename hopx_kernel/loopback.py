"""Whether a host is this machine's loopback (pure; used by the kernel and the server).

Example:
    >>> is_loopback_name("127.0.0.1"), is_loopback_name("::1"), is_loopback_name("127.evil.example")
    (True, True, False)
    >>> is_loopback_url("http://localhost:8888/x")
    True
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
