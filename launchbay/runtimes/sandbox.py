"""Where the process runtime's services run: a bubblewrap sandbox per service, and on a
server running as root a user id of the space's own.

Inside the sandbox a service sees the system's programs and libraries read-only (`/usr`,
`/etc`, the server's Python, what its PATH names), the templates' tree read-only (the
templates folder and the folder holding it), its space's own folder as `/space` (also its
home and, as `/tmp`, its temporary folder), a `/proc` of its own pid namespace and a
minimal `/dev`. It does not see the server's data folder, its configuration or secret
files, any other space's folder, or any process outside its sandbox, so it can neither
read another process's environment nor signal it. The network is the machine's: services
of a space reach each other, and are probed, on loopback.

As root, bubblewrap keeps two capabilities only to hand them to `setpriv`, which drops to
the space's uid with no groups, no capabilities and `no_new_privs` before the service's
command runs. As another user, bubblewrap makes an unprivileged user namespace; the
service runs as the server's user, but in a world holding nothing of the server's.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from launchbay.runtimes import proc

# Where the space's folder is inside its sandbox.
SPACE = PurePosixPath("/space")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Hidden even if a visible folder holds them: where daemons keep their sockets.
SOCKETS = ("/run", "/var/run")
# Of a PATH entry with one of these names, its parent is the tool's prefix (a virtualenv,
# pyenv's root, /usr/local): the interpreter's libraries live beside it.
_PREFIXED = frozenset({"bin", "sbin", "shims"})
SETPRIV = "/usr/bin/setpriv"
TMP = "/tmp"  # noqa: S108 - the sandbox's own: the space's folder's .tmp


@dataclass(frozen=True)
class Sandbox:
    """How this machine confines a service. Made by `detect`."""

    bwrap: str
    # The templates' tree: the server's templates folder and the folder holding it (where
    # the programs they run live beside them, as `${template.dir}/../services`).
    templates: Path | None = None
    # Paths never visible inside (the server's data dir, config and secret files), even
    # under a folder that is.
    hidden: tuple[Path, ...] = ()
    # On a root server: the user ids spaces get, one each.
    uids: range | None = None

    def command(
        self,
        argv: Sequence[str],
        *,
        work: Path,
        uid: int | None,
        path_env: str,
        cwd: str | None = None,
    ) -> list[str]:
        """`argv` wrapped to run in a sandbox whose `/space` is `work` (writable)."""
        tree = [self.templates, self.templates.parent] if self.templates else []
        visible = _outermost([*_existing(SYSTEM), *visible_for(argv, path_env), *_existing(tree)])
        # No --die-with-parent: its signal comes when the *thread* that forked bwrap ends,
        # and a service outlives the worker thread that started it (and the server).
        args = [self.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args += ["--unshare-cgroup-try"]
        # /tmp first, so that what is visible under /tmp (a templates folder) is bound over it.
        args += ["--bind", str(work / ".tmp"), TMP]
        for path in visible:
            args += _parents(path, visible)
            if path.is_symlink() and str(path) in SYSTEM:  # /bin -> usr/bin on merged /usr
                args += ["--symlink", str(path.readlink()), str(path)]
            else:
                args += ["--ro-bind", str(path), str(path)]
        for path in (*self.hidden, *(Path(p) for p in SOCKETS)):
            if any(path.is_relative_to(v) for v in visible) and path.exists():
                mask = ["--tmpfs"] if path.is_dir() else ["--ro-bind", "/dev/null"]
                args += [*mask, str(path)]
        args += [
            "--perms", "0755", "--dir", str(SPACE),
            "--bind", str(work), str(SPACE),
            "--proc", "/proc",
            "--dev", "/dev",
            "--chdir", cwd or str(SPACE),
            "--setenv", "HOME", str(SPACE),
            "--setenv", "TMPDIR", TMP,
        ]  # fmt: skip
        if uid is not None:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", SETPRIV]
            args += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
            args += ["--bounding-set=-all", "--no-new-privs"]
        return [*args, "--", *argv]

    def prepare(self, work: Path, uid: int | None) -> None:
        """The space's folder and its temporary folder, the space's own."""
        for folder in (work, work / ".tmp"):
            folder.mkdir(parents=True, exist_ok=True)
            if uid is not None:
                os.chown(folder, uid, uid)
            folder.chmod(0o700 if folder == work else 0o1777)


def detect(*, templates: Path | None, hidden: Sequence[Path], uids: range) -> Sandbox | str:
    """The sandbox this machine can make, or why it cannot (no bubblewrap, no user
    namespaces for an unprivileged server)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (Debian: apt install bubblewrap)"
    root = os.geteuid() == 0
    if root and not Path(SETPRIV).exists():
        return f"{SETPRIV} (util-linux) is missing"
    sandbox = Sandbox(
        bwrap=bwrap, templates=templates, hidden=tuple(hidden), uids=uids if root else None
    )
    trial = Path(tempfile.mkdtemp(prefix="launchbay-sandbox-"))
    try:
        uid = uids.start if root else None
        sandbox.prepare(trial, uid)
        argv = sandbox.command(["/bin/true"], work=trial, uid=uid, path_env="")
        result = proc.run(argv, env={"PATH": "/usr/bin:/bin"}, timeout=20)
    except (OSError, proc.TimeoutExpired) as e:
        return f"bubblewrap cannot run here: {e}"
    finally:
        shutil.rmtree(trial, ignore_errors=True)
    if result.code != 0:
        said = (result.stderr.strip().splitlines() or [f"exit {result.code}"])[-1]
        return f"bubblewrap cannot make a sandbox here: {said}"
    return sandbox


def visible_for(argv: Sequence[str], path_env: str) -> list[Path]:
    """What a command needs to see besides the system and the templates: the server's own
    Python (`sys.executable` in a template), each PATH entry (a tool's prefix for `bin`,
    `sbin`, `shims`), and the prefix its program really lives in when PATH finds it.
    Nothing a space's params name: a path in them is seen only if it is in something
    visible already."""
    found: list[Path] = [Path(sys.prefix), Path(sys.base_prefix)]  # the server's own Python
    for entry in path_env.split(os.pathsep):
        if entry.startswith("/"):
            found.append(_prefix(Path(entry)))
    program = shutil.which(argv[0], path=path_env) if argv and "/" not in argv[0] else None
    if program:
        found += [_prefix(Path(program).resolve().parent), _prefix(Path(program).parent)]
    return _existing(found)


def _prefix(folder: Path) -> Path:
    return folder.parent if folder.name in _PREFIXED and folder.parent != Path("/") else folder


def _existing(paths: Iterable[str | Path]) -> list[Path]:
    return [Path(p) for p in paths if os.path.lexists(p)]


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Each path once, leaving out those inside another (bound with it already)."""
    unique = sorted({Path(os.path.normpath(p)) for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(k) for k in kept if not k.is_symlink()):
            kept.append(path)
    return kept


def _parents(path: Path, visible: Sequence[Path]) -> list[str]:
    """Folders above `path` made in the sandbox's root, open to every user (bubblewrap would
    copy the mode of the folder outside, and a per-space uid could not pass `/root`)."""
    args = []
    for parent in reversed(path.parents[:-1]):
        if not any(parent.is_relative_to(v) for v in visible if v != path):
            args += ["--perms", "0755", "--dir", str(parent)]
    return args
