"""The official client, with a request rate limit of its own and a count of API calls.

The Python client has no rate limit; a sweep over many spaces must not flood the API
server, so every request waits for a token. The count is how the benchmark shows that a
status refresh costs no API call per space.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client
from urllib3.exceptions import HTTPError

from launchbay.runtimes.base import RuntimeUnavailable


class RateLimiter:
    """A token bucket: `rate` requests a second on average, bursts of up to `burst`."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                delay = (1 - self._tokens) / self.rate
            time.sleep(delay)


class LimitedApiClient(client.ApiClient):
    """An ApiClient whose every request is rate-limited and counted."""

    def __init__(
        self, configuration: client.Configuration, *, rate: float = 20.0, burst: int = 40
    ) -> None:
        super().__init__(configuration)
        self.limiter = RateLimiter(rate=rate, burst=burst)
        self.calls = 0
        self._count_lock = threading.Lock()

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        self.limiter.wait()
        with self._count_lock:
            self.calls += 1
        try:
            return super().call_api(*args, **kwargs)
        except HTTPError as e:  # refused, timed out, TLS: the API server is not there
            reason = str(getattr(e, "reason", None) or e).splitlines()[0]
            raise RuntimeUnavailable(
                f"the Kubernetes API at {self.configuration.host} does not answer: {reason}"
            ) from e


def load_configuration(
    *, kubeconfig: str | None = None, context: str | None = None
) -> client.Configuration:
    """In-cluster service account when running in a pod, else a kubeconfig and context."""
    from kubernetes import config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    return configuration
