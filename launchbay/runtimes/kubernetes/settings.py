"""What a server tells its kubernetes runtime: names, limits and rights for its spaces."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClusterSettings:
    namespace_prefix: str = "lb-"
    # Carried by every namespace it makes, and in their names (`<prefix><installation>-
    # <space>`): two servers with one prefix on one cluster never share a namespace.
    installation: str = ""
    own_namespace: str | None = None
    base_domain: str = ""
    pod_security: str = "baseline"
    quota: dict[str, str] = field(
        default_factory=lambda: {"pods": "50", "requests.cpu": "8", "requests.memory": "16Gi"}
    )
    default_limits: dict[str, str] = field(
        default_factory=lambda: {"cpu": "500m", "memory": "512Mi"}
    )
    delete_timeout: float = 120.0
    # The server's own service account: bound to the built-in `admin` ClusterRole inside each
    # space's namespace, so that helm may install charts there and nowhere else.
    service_account: str | None = None
