"""Where the server is and which token to use: contexts, like kubectl's.

The config file lives in the XDG config folder. `bay server` records itself as the
`local` context, pointing at its admin token file rather than copying the token.
BAY_SERVER and BAY_TOKEN override whatever the context says.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launchbay.cli.errors import CliError, ExitStatus

DEFAULT_SERVER = "http://127.0.0.1:8470"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "launchbay" / "config.json"


def default_token_file() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "launchbay" / "admin-token"


@dataclass(frozen=True)
class Context:
    name: str
    server: str
    token: str | None


def load() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"current": "local", "contexts": {}}
    except (OSError, json.JSONDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise CliError(f"{path} is not a Launchbay config file")
    data.setdefault("contexts", {})
    return data


def save(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    tmp.replace(path)


def set_context(
    name: str,
    *,
    server: str,
    token: str | None = None,
    token_file: str | None = None,
    use: bool = True,
) -> None:
    data = load()
    entry: dict[str, str] = {"server": server.rstrip("/")}
    if token:
        entry["token"] = token
    if token_file:
        entry["token_file"] = token_file
    data["contexts"][name] = entry
    if use:
        data["current"] = name
    save(data)


def resolve(
    *, name: str | None = None, server: str | None = None, token: str | None = None
) -> Context:
    """The context to use: flags, then BAY_* variables, then the config file, then defaults."""
    data = load()
    chosen = name or os.environ.get("BAY_CONTEXT") or data.get("current") or "local"
    entry = data["contexts"].get(chosen)
    if entry is None and chosen != "local":
        raise CliError(f"no context named {chosen!r}; see `bay context list`", ExitStatus.USAGE)
    entry = entry or {}
    url = server or os.environ.get("BAY_SERVER") or entry.get("server") or DEFAULT_SERVER
    secret = token or os.environ.get("BAY_TOKEN") or entry.get("token") or _read_token_file(entry)
    return Context(name=chosen, server=url.rstrip("/"), token=secret)


def _read_token_file(entry: dict[str, str]) -> str | None:
    path = Path(entry["token_file"]) if "token_file" in entry else default_token_file()
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
