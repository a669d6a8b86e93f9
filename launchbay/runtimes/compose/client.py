"""The Docker Engine, through the Docker SDK: the only module of the compose runtime that
imports `docker` (and only when first needed, so a server without it still starts), and
its one translation of the Engine's answers into Launchbay's errors.

The SDK reads state, health, events and logs, and removes a space's objects by label;
Compose (the CLI, commands.py) creates and starts them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from launchbay.domain.errors import Conflict, LaunchbayError, NotFound, Refused
from launchbay.domain.names import SpaceName
from launchbay.domain.spec import ResolvedService
from launchbay.runtimes.base import RuntimeUnavailable, ServiceFailed
from launchbay.runtimes.compose.labels import LABEL_SERVICE, LABEL_SPACE, Owner

KINDS = ("containers", "networks", "volumes", "images")


class Docker:
    def __init__(self, owner: Owner, *, timeout: float) -> None:
        self.owner = owner
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The SDK's client, made (and pinged) at first use and again after a failure."""
        if self._client is not None:
            return self._client
        try:
            import docker
            from docker.errors import DockerException
        except ImportError as e:
            raise RuntimeUnavailable(
                f"the Docker SDK cannot be imported ({e}): `pip install docker` in the server's "
                "environment (it comes with launchbay; this install lacks it)"
            ) from e
        try:
            client = docker.from_env(timeout=self.timeout)
            client.ping()
        except DockerException as e:
            raise RuntimeUnavailable(
                f"Docker is not running or not reachable: {_first_line(e)} "
                "(start the Docker daemon, or point DOCKER_HOST at one)"
            ) from e
        self._client = client
        return client

    def translated(self, error: Exception, what: str) -> LaunchbayError:
        """The one translation of the Docker Engine's answers into Launchbay's error
        classes: refused (rights or input; never retried), not found, conflict (retried),
        or unavailable (no answer, or a server error: retried, with a new connection)."""
        status = _docker_status(error)
        said = _first_line(error)
        if status in (400, 401, 403, 422):
            return Refused(f"Docker refused to {what}: {said}")
        if status == 404:
            return NotFound(f"Docker has nothing to {what}: {said}")
        if status == 409:
            return Conflict(f"Docker could not {what}, it changed meanwhile: {said}")
        self._client = None
        return RuntimeUnavailable(f"Docker did not answer: {said}")

    @contextlib.contextmanager
    def answering(self, what: str, *, service: str) -> Iterator[None]:
        """Around a call on one service's container (stop it, read its log, run its health
        command): the Engine's answer about that container is the service's trouble
        (`ServiceFailed`), never the runtime's; only no answer at all is unavailable."""
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        try:
            yield
        except DockerException as e:
            error = self.translated(e, what)
            if isinstance(error, RuntimeUnavailable) and _docker_status(e):
                error = ServiceFailed(service, f"Docker could not {what}: {_first_line(e)}")
            raise error from e
        except (RequestException, OSError) as e:  # a stream cut off: Docker went away
            self._client = None
            raise RuntimeUnavailable(f"Docker did not answer: {_first_line(e)}") from e

    def labelled(self, kind: str, space: str | None, *, sparse: bool = False) -> list[Any]:
        """This installation's objects of one kind, of one space or of all."""
        filters = self.owner.filters(space)
        docker = self.client()  # first: it says so if the Docker SDK is missing
        from docker.errors import DockerException
        from docker.errors import NotFound as Vanished

        options: dict[str, Any] = {"filters": {"label": filters}}
        if kind == "containers":
            options.update(all=True, sparse=sparse)
        for attempt in range(3):
            try:
                listed = getattr(docker, kind).list(**options)
                return [x for x in listed if self.owner.ours(x)]
            except Vanished as e:
                # The SDK lists, then reads each; one removed in between (Compose recreating
                # it) is no error: list again.
                if attempt == 2:
                    raise self.translated(e, f"list {kind}") from e
            except DockerException as e:
                raise self.translated(e, f"list {kind}") from e
        return []

    def container(self, space: str, service: str) -> Any:
        found = [
            c for c in self.labelled("containers", space) if c.labels.get(LABEL_SERVICE) == service
        ]
        return found[0] if found else None

    def spaces(self) -> set[SpaceName]:
        """Every space some labelled object still belongs to."""
        found = set()
        for kind in KINDS:
            # Labels are all this needs: containers as listed, not read one by one.
            for item in self.labelled(kind, None, sparse=True):
                labels = (item.labels if kind == "images" else item.attrs.get("Labels")) or {}
                if labels.get(LABEL_SPACE):
                    found.add(SpaceName(labels[LABEL_SPACE]))
        return found

    def remove_space(self, space: str) -> None:
        """The space's containers, network, volumes and images (found by label), and
        nothing else."""
        for container in self.labelled("containers", space):
            with _gone_is_fine():
                container.remove(force=True, v=True)
        for network in self.labelled("networks", space):
            with _gone_is_fine():
                network.remove()
        for volume in self.labelled("volumes", space):
            with _gone_is_fine():
                volume.remove(force=True)
        for image in self.labelled("images", space):
            # Built for this space; still used by another space's container, it stays.
            with _gone_is_fine(), contextlib.suppress(Conflict):
                self._remove_image(image)

    def events(self, space: str) -> Any | None:
        """The stream of the space's container events, or None if Docker gives none."""
        from docker.errors import DockerException

        try:
            return self.client().events(
                decode=True, filters={"type": "container", "label": self.owner.filters(space)}
            )
        except DockerException:
            return None

    def missing_image(self, service: ResolvedService) -> str:
        """'image X ... could not be pulled; ' when that is why `up` failed, else ''."""
        section = service.spec.compose or {}
        image = section.get("image")
        if not image or section.get("build"):
            return ""
        from docker.errors import DockerException, ImageNotFound

        try:
            self.client().images.get(image)
        except ImageNotFound:
            return f"image {image!r} is not here and could not be pulled; "
        except DockerException:
            return ""
        return ""

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _remove_image(self, image: Any) -> None:
        from docker.errors import DockerException

        try:
            self.client().images.remove(image.id, force=False)
        except DockerException as e:
            raise self.translated(e, "remove an image") from e


@contextlib.contextmanager
def _gone_is_fine() -> Iterator[None]:
    from docker.errors import NotFound

    with contextlib.suppress(NotFound):
        yield


def _docker_status(error: Exception) -> int:
    """The HTTP status of the Docker Engine's answer, 0 if it gave none (not reachable)."""
    response = getattr(error, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
