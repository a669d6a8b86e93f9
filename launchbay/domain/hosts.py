"""Host names as HTTP clients send them, and which of them are this machine."""

from __future__ import annotations

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(host: str) -> str:
    """'127.0.0.1:8470' -> '127.0.0.1', '[::1]:8470' -> '::1', 'Example.com' -> 'example.com'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
