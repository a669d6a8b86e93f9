"""The one translation of the Kubernetes API's answers into Launchbay's errors, used by
every module of the runtime that calls the API (kopf keeps its own in
`_cogs/clients/errors.py` for the same reason)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from launchbay.domain.errors import Conflict, LaunchbayError, NotFound, Refused
from launchbay.runtimes.base import RuntimeUnavailable


def translated(error: ApiException, *, verb: str, resource: str) -> LaunchbayError:
    """The one translation of the API's answers into Launchbay's error classes: refused
    (rights or input; never retried), not found, conflict (changed meanwhile; retried),
    or unavailable (retried after the delay the API asked for, if it did)."""
    what = f"{verb} {resource}"
    status = error.status or 0
    said = f"{status} {error.reason or ''}".strip() + _message(error)
    if status in (401, 403):
        return Refused(
            f"no rights to {what} in the cluster ({said}); grant them to Launchbay's "
            "service account (see the chart's ClusterRole)"
        )
    if status in (400, 405, 406, 413, 415, 422):
        return Refused(f"the cluster refused to {what}: {said}")
    if status == 404:
        return NotFound(f"the cluster has no such {resource} to {verb}: {said}")
    if status == 409:
        return Conflict(f"the cluster could not {what}, it changed meanwhile: {said}")
    delay = 5.0
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        delay = float((error.headers or {}).get("Retry-After", delay))
    return RuntimeUnavailable(f"the Kubernetes API did not {what}: {said}", delay=delay)


@contextlib.contextmanager
def answering(*, verb: str, resource: str) -> Iterator[None]:
    """Around every call to the API (and every read of a stream it gave): its answer
    translated once (`translated`); a connection that breaks is the API unavailable. The
    one boundary of this runtime, as kopf's `check_response` is of its API layer."""
    try:
        yield
    except ApiException as e:
        raise translated(e, verb=verb, resource=resource) from e
    except (HTTPError, OSError) as e:
        said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeUnavailable(f"the Kubernetes API did not {verb} {resource}: {said}") from e


def create(call: Callable[[], Any], *, verb: str, resource: str) -> None:
    """`call()`, an API create: one already there is no error (creating is idempotent)."""
    with contextlib.suppress(Conflict), answering(verb=verb, resource=resource):
        call()  # already there (409) is no error: creating is idempotent


def _message(error: ApiException) -> str:
    """The `message` of the API's Status body, if it sent one."""
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if isinstance(message, str) and message else ""
