"""The process runtime, the embedded default: each service is a local process group.

Layout under the runtime's root folder, one folder per space:
    <root>/<space>/ports.json        ports allocated to its services (stable across restarts)
    <root>/<space>/<service>.pid     {"pid", "start_time"} of the service's group leader
    <root>/<space>/<service>.log     its output
    <root>/<space>/uid               the space's own user id (a root server's sandbox)
    <root>/<space>/work/             the space's own folder: its services' `/space`

Services run in a sandbox of their own (`sandbox.py`) where the machine can make one;
where it cannot, they run as the server, and `unconfined` says why (only admins may then
use the runtime).

Every process carries LAUNCHBAY_ROOT, LAUNCHBAY_INSTALLATION, LAUNCHBAY_SPACE and
LAUNCHBAY_SERVICE in its environment, inherited by its children: those are its labels.
After a restart the runtime re-adopts a service only if the recorded pid is alive with the
recorded start time (a pid reused by a stranger has another start time), and it stops a
service by signalling only processes that carry its labels.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from launchbay.domain.durations import instant
from launchbay.domain.errors import Invalid, LaunchbayError, Refused, TemporaryError
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.plan import Observed
from launchbay.domain.spec import Address, ResolvedService
from launchbay.domain.template import Service
from launchbay.runtimes import hostports, probes, proc
from launchbay.runtimes.base import (
    Runtime,
    RuntimeContext,
    RuntimeKind,
    RuntimeUnavailable,
    ServiceFailed,
    SpaceRef,
)
from launchbay.runtimes.sandbox import Sandbox, detect
from launchbay.runtimes.statefiles import read_json, write_json

LABEL_ROOT = "LAUNCHBAY_ROOT"
LABEL_INSTALLATION = "LAUNCHBAY_INSTALLATION"
LABEL_SPACE = "LAUNCHBAY_SPACE"
LABEL_SERVICE = "LAUNCHBAY_SERVICE"
# A service starts with a clean environment: these of the server's, then what the
# template and the space give it. Anything else (tokens, database URLs, cloud credentials)
# is the server's business, not the services'.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME")
# A root server's spaces get user ids from here, one each (well above any account's and
# systemd's dynamic users', below the 2^31 that tools take as negative).
DEFAULT_UIDS = range(600_000, 700_000)


@dataclass(frozen=True)
class ProcessSettings:
    """`sandbox`: services run confined, or the server does not start; `none`: as the
    server's user (a developer's own laptop); `auto`: confined where the machine can."""

    isolation: Literal["auto", "sandbox", "none"] = "auto"
    uids: range = DEFAULT_UIDS


class ProcessSection(BaseModel):
    """The server settings' `process:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    isolation: Literal["auto", "sandbox", "none"] = ProcessSettings.isolation
    service_uids: str = Field(
        default=f"{DEFAULT_UIDS.start}-{DEFAULT_UIDS.stop - 1}",
        description="user ids a root server gives spaces, one each: FIRST-LAST",
    )

    @field_validator("service_uids")
    @classmethod
    def _uids(cls, value: str) -> str:
        first, dash, last = value.partition("-")
        if not (
            dash and first.isdigit() and last.isdigit() and 1000 <= int(first) < int(last) < 2**31
        ):
            raise ValueError(f"{value!r}: write FIRST-LAST, from 1000 up, e.g. 600000-699999")
        return value

    def settings(self) -> ProcessSettings:
        first, _, last = self.service_uids.partition("-")
        return ProcessSettings(isolation=self.isolation, uids=range(int(first), int(last) + 1))


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        stop_grace: float = 5.0,
        sandbox: Sandbox | None = None,
        unconfined: str | None = None,
        installation: str = "",
    ) -> None:
        """`sandbox`: where services run (None: as the server, for the reason `unconfined`)."""
        self.root = root.resolve()
        self.host = host
        self.stop_grace = stop_grace
        self.sandbox = sandbox
        self.installation = installation
        self._unconfined = None if sandbox else unconfined or "services run as the server"
        self._pids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    # -- the interface -------------------------------------------------------------------

    def check(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        how = "each in a sandbox" if self.sandbox else f"unconfined ({self._unconfined})"
        return f"process runtime: spaces run as local processes under {self.root}, {how}"

    def unconfined(self) -> str | None:
        return self._unconfined

    def addresses(
        self, space: SpaceRef, services: Mapping[ServiceName, Service]
    ) -> dict[ServiceName, Address]:
        folder = self._folder(space.name)
        with self._lock:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                ports: dict[str, int] = read_json(folder / "ports.json") or {}
                new = [name for name in services if name not in ports]
                taken = hostports.held(self.root) if new else set()
                for name in new:
                    ports[name] = hostports.pick(self.host, taken)
                    taken.add(ports[name])
                write_json(folder / "ports.json", ports)
            except OSError as e:
                raise _os_error(e, f"write the space's folder {folder}") from e
        return {name: Address(self.host, ports[name]) for name in services}

    def endpoints(self, space: SpaceRef, service: ResolvedService) -> dict[str, str]:
        address = self.addresses(space, {service.name: service.spec})[service.name]
        return {e.name: address.url + e.path for e in service.spec.endpoints}

    def start(self, space: SpaceRef, service: ResolvedService) -> None:
        if self._alive_record(space.name, service.name) is not None:
            return
        section = service.spec.process
        if section is None:
            raise ServiceFailed(
                service.name, "has no process section; it cannot run on the process runtime"
            )
        # Labelled processes without a live record are left from a start that a crash
        # interrupted before the pid was written: stop them rather than run two copies.
        self._terminate(space.name, service.name)
        folder = self._folder(space.name)
        address = self.addresses(space, {service.name: service.spec})[service.name]
        env = self._environment(space, service, address)
        log_path = folder / f"{service.name}.log"
        if self.sandbox and not _findable(section.command[0], env.get("PATH", "")):
            raise ServiceFailed(service.name, f"command not found: {section.command[0]}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            argv, cwd = self._confined(space.name, section.command, env, section.cwd)
            log_file = log_path.open("ab")
        except OSError as e:
            raise _os_error(e, f"write the space's folder {folder}") from e
        with log_file as log:
            stamp = instant(datetime.now(UTC))
            log.write(
                f"--- {stamp} launchbay: starting {service.name} at {service.version}\n".encode()
            )
            log.flush()
            try:
                pid = proc.spawn(argv, env=env, cwd=cwd, log=log)
            except FileNotFoundError as e:
                raise ServiceFailed(service.name, f"command not found: {section.command[0]}") from e
            except PermissionError as e:
                raise ServiceFailed(
                    service.name, f"command not executable: {section.command[0]}"
                ) from e
            except NotADirectoryError as e:
                raise ServiceFailed(service.name, f"working folder does not exist: {cwd}") from e
            except OSError as e:  # E2BIG (arguments or environment too long), EAGAIN, ...
                if e.errno in TEMPORARY_ERRNOS:  # the machine is out of something, for now
                    raise _os_error(e, f"start {section.command[0]}") from e
                raise ServiceFailed(
                    service.name, f"cannot start {section.command[0]}: {e.strerror or e}"
                ) from e
        with self._lock:
            self._pids[(space.name, service.name)] = pid
        write_json(folder / f"{service.name}.pid", {"pid": pid, "start_time": _start_time(pid)})

    def probe(self, space: SpaceRef, service: ResolvedService) -> Observed:
        if self._alive_record(space.name, service.name) is None:
            return Observed(
                running=False, healthy=None, detail=self._exit_detail(space.name, service.name)
            )
        health = service.spec.health
        if health is None:
            return Observed(running=True, healthy=None, detail="running (no health check)")
        address = self.addresses(space, {service.name: service.spec})[service.name]
        cwd = service.spec.process.cwd if service.spec.process else None
        env = self._environment(space, service, address)
        passed, detail = probes.check(
            health,
            host=address.host,
            port=address.port,
            env=env,
            confine=lambda argv: self._confined(space.name, argv, env, cwd),
        )
        return Observed(running=True, healthy=passed, detail=detail)

    def stop(self, space: SpaceRef, service: ServiceName) -> None:
        self._terminate(space.name, service)
        with contextlib.suppress(FileNotFoundError):
            (self._folder(space.name) / f"{service}.pid").unlink()

    def destroy(self, space: SpaceRef) -> None:
        self._terminate(space.name, None)
        with self._lock:
            gone = [key for key in self._pids if key[0] == space.name]
            for key in gone:
                del self._pids[key]  # reaped by _terminate; one entry a service was a leak
        _remove_folder(self._folder(space.name))

    def spaces(self) -> set[SpaceName]:
        found = (
            {SpaceName(p.name) for p in self.root.iterdir() if p.is_dir()}
            if self.root.exists()
            else set()
        )
        found.update(SpaceName(labels[LABEL_SPACE]) for _, labels in self._labelled())
        return found

    def logs(
        self,
        space: SpaceRef,
        service: ServiceName,
        *,
        tail: int,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> Iterator[str]:
        path = self._folder(space.name) / f"{service}.log"
        if not path.exists():
            return
        with path.open("rb") as f:
            yield from _last_lines(f, tail)
            stop = stop or threading.Event()
            while follow and path.exists() and not stop.is_set():
                line = f.readline()
                if line:
                    yield line.decode(errors="replace")
                else:
                    stop.wait(0.2)

    def log_tail(self, space: SpaceName, service: str, lines: int = 20) -> str:
        path = self._folder(space) / f"{service}.log"
        if not path.exists():
            return ""
        with path.open("rb") as f:
            return "".join(_last_lines(f, lines)).rstrip("\n")

    # -- processes -----------------------------------------------------------------------

    def _folder(self, space: str) -> Path:
        return self.root / space

    def _confined(
        self, space: str, argv: Sequence[str], env: Mapping[str, str], cwd: str | None
    ) -> tuple[list[str], Path]:
        """The command as it runs (in the space's sandbox), and the folder it starts in."""
        work = self._folder(space) / "work"
        if self.sandbox is None:
            work.mkdir(parents=True, exist_ok=True)
            return list(argv), Path(cwd) if cwd else work
        uid = self._uid(space)
        self.sandbox.prepare(work, uid)
        wrapped = self.sandbox.command(
            argv, work=work, uid=uid, path_env=env.get("PATH", ""), cwd=cwd
        )
        return wrapped, Path("/")

    def _uid(self, space: str) -> int | None:
        """The space's own user id (a root server): kept for the life of the space, free
        again once it is destroyed; none that another space or a running process has."""
        uids = self.sandbox.uids if self.sandbox else None
        if uids is None:
            return None
        path = self._folder(space) / "uid"
        with self._lock:
            recorded = read_json(path)
            if isinstance(recorded, int):
                return recorded
            taken = {read_json(p) for p in self.root.glob("*/uid")} | _running_uids()
            digest = hashlib.sha256(f"{self.installation}/{space}".encode()).digest()
            first = int.from_bytes(digest[:4], "big") % len(uids)
            for i in range(len(uids)):
                uid = uids[(first + i) % len(uids)]
                if uid not in taken:
                    write_json(path, uid)
                    return uid
        raise RuntimeUnavailable(f"no free user id for a space in {uids.start}-{uids.stop - 1}")

    def _environment(
        self, space: SpaceRef, service: ResolvedService, address: Address
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith("LC_")}
        if self.sandbox is not None:  # the space's folder is its home; it has no account
            for name in ("HOME", "USER", "LOGNAME", "TMPDIR"):
                env.pop(name, None)
        env |= {"PORT": str(address.port), "HOST": address.host}
        if service.spec.process is not None:
            env.update(service.spec.process.env)
        # Launchbay's labels last: nothing the template or a space sets may change them.
        env |= {
            "LAUNCHBAY_VERSION": service.version,
            LABEL_ROOT: str(self.root),
            LABEL_INSTALLATION: self.installation,
            LABEL_SPACE: space.name,
            LABEL_SERVICE: service.name,
        }
        return env

    def _alive_record(self, space: str, service: str) -> dict[str, Any] | None:
        """The service's pid record if that exact process (pid and start time) still runs."""
        self._reap(space, service)
        record = read_json(self._folder(space) / f"{service}.pid")
        if not record:
            return None
        started = _start_time(record["pid"])
        if started is None or started != record.get("start_time"):
            return None
        return dict(record)

    def _reap(self, space: str, service: str) -> None:
        with self._lock:
            pid = self._pids.get((space, service))
        if pid is not None:
            proc.reap(pid)

    def _exit_detail(self, space: str, service: str) -> str:
        with self._lock:
            pid = self._pids.get((space, service))
        code = proc.reap(pid) if pid is not None else None
        if code is None:
            return "not running"
        return f"exited with code {code}" if code >= 0 else f"killed by signal {-code}"

    def _labelled(
        self, space: str | None = None, service: str | None = None
    ) -> list[tuple[int, dict[str, str]]]:
        """Processes carrying this runtime's labels (optionally of one space / service)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            labels = _labels(entry / "environ")
            if labels.get(LABEL_ROOT) != str(self.root):
                continue
            if labels.get(LABEL_INSTALLATION, self.installation) != self.installation:
                continue  # a process of a server that had this folder before (not adopted)
            if space is not None and labels.get(LABEL_SPACE) != space:
                continue
            if service is not None and labels.get(LABEL_SERVICE) != service:
                continue
            found.append((int(entry.name), labels))
        return found

    def _terminate(self, space: str, service: str | None) -> None:
        """SIGTERM to the service's group and every labelled process, SIGKILL after the grace."""
        leaders = []
        names = [service] if service else [p.stem for p in self._folder(space).glob("*.pid")]
        for name in names:
            record = self._alive_record(space, name)
            if record is not None:
                leaders.append(record["pid"])
        deadline = time.monotonic() + self.stop_grace
        sig = signal.SIGTERM
        while True:
            targets = {pid for pid, _ in self._labelled(space, service)}
            for leader in leaders:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(leader, sig)
            for pid in targets:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            proc.reap_all()
            leaders = [p for p in leaders if _start_time(p) is not None]
            if not targets and not leaders:
                return
            if time.monotonic() > deadline:
                sig = signal.SIGKILL
            time.sleep(0.05)


def _remove_folder(folder: Path) -> None:
    """Remove a space's folder, or say why not: a process that was still writing its last
    lines as it died can refill a folder between rmtree's listing and its rmdir, which
    `ignore_errors` once hid (about one delete in thirty left its folder behind)."""
    for attempt in range(5):
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            if not folder.exists():
                return
            continue  # an entry went away under the walk: walk again
        except OSError as e:
            if attempt == 4:  # this space's trouble, not the runtime's: retried
                said = e.strerror or str(e)
                raise TemporaryError(f"cannot remove {folder} yet: {said}", delay=1) from e
            time.sleep(0.05 * (attempt + 1))
        else:
            return


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _findable(program: str, path_env: str) -> bool:
    if "/" in program:
        return Path(program).exists()
    return shutil.which(program, path=path_env) is not None


def _running_uids() -> set[int]:
    """The real user ids of every process on the machine."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            line = next(x for x in entry.read_text().splitlines() if x.startswith("Uid:"))
            found.add(int(line.split()[1]))
    return found


def _labels(path: Path) -> dict[str, str]:
    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    if LABEL_ROOT.encode() not in raw:
        return {}
    labels = {}
    for item in raw.split(b"\0"):
        key, _, value = item.decode(errors="replace").partition("=")
        if key in (LABEL_ROOT, LABEL_INSTALLATION, LABEL_SPACE, LABEL_SERVICE):
            labels[key] = value
    return labels


def _last_lines(f: Any, count: int) -> list[str]:
    """The last `count` lines of a binary file, leaving it positioned at its end."""
    f.seek(0, os.SEEK_END)
    end = f.tell()
    size = min(end, 64 * 1024)
    while True:
        f.seek(end - size)
        data = f.read(size)
        if data.count(b"\n") > count or size == end:
            break
        size = min(end, size * 4)
    lines = data.decode(errors="replace").splitlines(keepends=True)
    return lines[-count:] if count > 0 else []


# The machine is short of something that may come back: retried later.
TEMPORARY_ERRNOS = frozenset(
    {errno.EAGAIN, errno.ENOMEM, errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.EDQUOT}
)


def _os_error(error: OSError, what: str) -> LaunchbayError:
    """The one translation of the operating system's answers: out of something for now
    (unavailable: retried), or no right to it (refused: not retried, says which)."""
    said = error.strerror or str(error)
    if error.errno in TEMPORARY_ERRNOS:
        return RuntimeUnavailable(f"cannot {what} now: {said}")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return Refused(f"no right to {what}: {said}")
    return RuntimeUnavailable(f"cannot {what}: {said}")


KIND = RuntimeKind(
    name=ProcessRuntime.name,
    section="process",
    summary="local processes on the server's machine (no install needed)",
    make=lambda context: make(context),
)


def make(context: RuntimeContext) -> ProcessRuntime:
    """The runtime, confined as its settings ask and the machine allows."""
    settings = context.settings.get("process") or ProcessSettings()
    assert isinstance(settings, ProcessSettings)
    sandbox: Sandbox | str = "isolation: none"
    if settings.isolation != "none":
        sandbox = detect(templates=context.templates, hidden=context.private, uids=settings.uids)
        if isinstance(sandbox, str) and settings.isolation == "sandbox":
            raise Invalid(f"process runtime: isolation is sandbox, but {sandbox}")
    return ProcessRuntime(
        context.folder("process"),
        sandbox=sandbox if isinstance(sandbox, Sandbox) else None,
        unconfined=sandbox if isinstance(sandbox, str) else None,
        installation=context.installation,
    )
