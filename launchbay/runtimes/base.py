"""The interface every runtime implements, and the errors it may raise.

A runtime knows nothing of the store: the engine tells it what to run and asks what
runs. It must be idempotent (starting a running service is a no-op, destroying a gone
space is a no-op) and must label everything it creates, so that it can find what belongs
to Launchbay after a crash and never touch anything else.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from launchbay.domain.errors import PermanentError, Refused, TemporaryError
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service, Template


class RuntimeUnavailable(TemporaryError):
    """The runtime cannot be reached or used right now (daemon down, no cluster access)."""


class ServiceFailed(PermanentError):
    """A service could not be started or died; carries the tail of its log."""

    def __init__(self, service: str, message: str, *, log_tail: str = "") -> None:
        text = f"service {service!r}: {message}"
        if log_tail:
            text += "\n--- last lines of its log ---\n" + log_tail
        super().__init__(text)
        self.service = service
        self.log_tail = log_tail


@dataclass(frozen=True)
class RuntimeEvent:
    """Something the runtime itself reports about a space (a cluster's Warning event)."""

    id: str
    at: datetime
    message: str


@dataclass(frozen=True)
class SpaceRef:
    """What a runtime needs to know of a space to find and label its resources."""

    name: SpaceName
    owner: str
    template: str
    expires_at: datetime | None = None


Progress = Callable[[ServiceName, Observed], None]
"""Told what the runtime sees of each service while it starts them together."""


def ignore_progress(name: ServiceName, seen: Observed) -> None:
    """A `Progress` for callers that only wait for the end."""


class Runtime(abc.ABC):
    """One place where spaces run. A new runtime is one module implementing this."""

    name: str
    # Whether what it runs lives on this machine (processes, a local Docker Engine): then
    # only the server that created a space can act on it, and its jobs are pinned there.
    machine_local: bool = True

    @abc.abstractmethod
    def check(self) -> str:
        """A line saying the runtime is usable; raises RuntimeUnavailable saying why not."""

    @abc.abstractmethod
    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        """Where each service answers inside the space; stable for the life of the space."""

    @abc.abstractmethod
    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        """The service's endpoints as URLs a person can open, by endpoint name."""

    def domain(self, space: SpaceRef) -> str:
        """`${space.domain}`: the DNS name under which the space's hosts are reached."""
        return "localhost"

    @abc.abstractmethod
    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        """Run the service (or wake it). A no-op if it already runs as specified."""

    def starts_together(self, template: Template) -> bool:
        """Whether this runtime starts the template's services itself, in one call that
        orders and gates them (Compose running a team's own file); then the engine calls
        `start_all` instead of `start` for each."""
        return False

    def start_all(
        self,
        space: SpaceRef,
        template: Template,
        services: Sequence[ResolvedService],
        params: Mapping[str, str],
        progress: Progress = ignore_progress,
    ) -> None:
        """Start `services` in the order and with the gates their own definition says,
        returning once they are up, telling `progress` of each as it comes up. Only for
        runtimes whose `starts_together` says so."""
        raise Refused(f"the {self.name} runtime cannot start a template's services together")

    @abc.abstractmethod
    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        """Is it running, and does its health check pass right now?"""

    def observe(
        self, space: SpaceRef, services: Sequence[ResolvedService]
    ) -> dict[ServiceName, Observed]:
        """Every service's state; raises RuntimeUnavailable rather than guess."""
        return {service.name: self.probe(space, service) for service in services}

    @abc.abstractmethod
    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        """Stop one service, keeping its data. Idempotent."""

    def sleep(self, space: SpaceRef, services: Sequence[ServiceName]) -> None:
        """Stop everything, keeping state, so that `start` can wake it."""
        for name in services:
            self.stop(space, name)

    @abc.abstractmethod
    def destroy(self, space: SpaceRef) -> None:
        """Remove everything the space has in this runtime. Idempotent."""

    @abc.abstractmethod
    def spaces(self) -> set[SpaceName]:
        """Names of the spaces this runtime holds anything for (labelled as Launchbay's)."""

    @abc.abstractmethod
    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        """The service's log lines, the last `tail` of them, then new ones if `follow`
        until `stop` is set: a follow must notice `stop` within about a second, even while
        the log is quiet (the server ends follows whose client went away)."""

    def warnings(self, space: SpaceRef) -> list[RuntimeEvent]:
        """Warnings the runtime reports for the space, for its timeline. Optional."""
        return []

    def unconfined(self) -> str | None:
        """Why this runtime's services run with the server's own identity on its machine
        (then only admins may use it), or None: they cannot reach the server."""
        return None

    def check_template(self, template: Template) -> None:  # noqa: B027 - optional
        """Raise Invalid if this runtime cannot run the template as it is now (a Compose
        file Compose rejects, a bind source that is missing): before anything is written."""

    def check_space(self, name: SpaceName) -> None:  # noqa: B027 - optional: most runtimes hold any name
        """Raise Invalid if this runtime cannot hold a space of that name (e.g. too long)."""

    def close(self) -> None:  # noqa: B027 - optional: only runtimes with connections need it
        """Release connections (the server is stopping)."""

    def adopt(self, spaces: Collection[SpaceName]) -> None:  # noqa: B027 - optional
        """Take as this installation's what these live spaces have that was made before
        everything carried the installation's id (once, at the server's start)."""

    def destroy_orphan(self, name: SpaceName) -> None:
        """Remove what the runtime holds for a space that has no live record."""
        self.destroy(SpaceRef(name=name, owner="", template=""))


RuntimeRegistry = Mapping[str, Runtime]


@dataclass(frozen=True)
class RuntimeContext:
    """What a runtime is made from: the server's data folder, its installation id (carried
    by everything the runtime makes), its templates folder, the paths no service may see
    (the server's secrets),
    and each runtime's own settings by name (absent: that runtime is not configured)."""

    data_dir: Path
    installation: str = ""
    templates: Path | None = None
    private: tuple[Path, ...] = ()
    settings: Mapping[str, object] = field(default_factory=dict)

    def folder(self, name: str) -> Path:
        return self.data_dir / "runtime" / name


@dataclass(frozen=True)
class RuntimeKind:
    name: str
    # The key under a template's service that this runtime runs (`process:`, `helm:`...).
    section: str
    summary: str
    # The runtime for this server, or None when its settings do not enable it.
    make: Callable[[RuntimeContext], Runtime | None]
    # What it can say of a template without a server's settings (`bay template validate`);
    # None: the runtime made with no settings checks it (`Runtime.check_template`).
    validate: Callable[[Template], list[str]] | None = None


class Unloadable(Runtime):
    """A runtime that could not be loaded (its package missing): every call says why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def _fail(self) -> RuntimeUnavailable:
        return RuntimeUnavailable(self.reason)

    def check(self) -> str:
        raise self._fail()

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        raise self._fail()

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        raise self._fail()

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        raise self._fail()

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        raise self._fail()

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        raise self._fail()

    def destroy(self, space: SpaceRef) -> None:
        raise self._fail()

    def spaces(self) -> set[SpaceName]:
        raise self._fail()

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        raise self._fail()


@contextlib.contextmanager
def closed_on(stop: threading.Event | None, stream: Any) -> Iterator[None]:
    """Close `stream` (a blocking log stream) from another thread once `stop` is set, so
    that a follow waiting for the next line ends anyway."""
    if stop is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(0.5):
                with contextlib.suppress(Exception):  # whatever the library raises on close
                    stream.close()
                return

    watcher = threading.Thread(target=watch, name="launchbay-log-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
