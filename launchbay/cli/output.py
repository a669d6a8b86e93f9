"""Tables for people, JSON for scripts, and the live progress view."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from launchbay.cli.errors import CliError, ExitStatus

SETTLED = {"ready", "degraded", "failed", "sleeping", "deleted"}
PHASE_STYLE = {
    "ready": "green",
    "degraded": "yellow",
    "failed": "red",
    "deleting": "magenta",
    "deleted": "dim",
    "sleeping": "blue",
    "provisioning": "cyan",
    "pending": "cyan",
}


def console(stderr: bool = False) -> Any:
    """Rich's console. Piped, a table is as wide as its widest row: no name or URL is ever
    cut to fit 80 columns (scripts and `grep` read it)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 100_000
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def print_data(data: Any, fmt: str) -> None:
    """`json`, `yaml`, or `name`: the `name` of each item, one per line (for xargs)."""
    if fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    elif fmt == "name":
        for item in data if isinstance(data, list) else [data]:
            keys = ("name", "id", "check", "kind")
            name = (
                next((item[k] for k in keys if item.get(k)), "") if isinstance(item, dict) else item
            )
            sys.stdout.write(f"{name}\n")
    else:
        print_json(data)


def relative(iso: str | None, *, now: datetime | None = None) -> str:
    if not iso:
        return "-"
    from launchbay.domain.durations import format_duration  # pure, light

    moment = datetime.fromisoformat(iso)
    delta = moment - (now or datetime.now(UTC))
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "now"
    text = _coarse(format_duration(timedelta(seconds=abs(seconds))))
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _coarse(text: str) -> str:
    """`1d2h3m4s` -> `1d2h`: two units are enough for people."""
    out, units = "", 0
    number = ""
    for char in text:
        if char.isdigit():
            number += char
            continue
        out += number + char
        number = ""
        units += 1
        if units == 2:
            break
    return out


def space_table(spaces: list[dict[str, Any]], *, wide: bool = False, headers: bool = True) -> Any:
    """The spaces as a table; `wide` adds the expiry time, every endpoint and the reason."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold", show_header=headers)
    columns = ["NAME", "TEMPLATE", "RUNTIME", "OWNER", "PHASE", "SERVICES", "CREATED", "EXPIRES"]
    if wide:
        columns += ["EXPIRES AT", "ENDPOINTS", "REASON"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for space in spaces:
        services = space["services"]
        ready = sum(1 for s in services if s["status"] in ("ready", "completed"))
        phase = space["phase"]
        row = [
            escape(space["name"]),
            escape(space["template"]),
            space["runtime"],
            escape(space["owner"]),
            f"[{PHASE_STYLE.get(phase, 'white')}]{phase}[/]",
            f"{ready}/{len(services)}",
            relative(space["created_at"]),
            _ended(space) if space["phase"] == "deleted" else _expiry(space),
        ]
        if wide:
            endpoints = [u for s in services for u in s["endpoints"].values()]
            row += [
                "-" if space["phase"] == "deleted" else space["expires_at"],
                escape(" ".join(endpoints)) or "-",
                escape((space["reason"] or "-").splitlines()[0]),
            ]
        table.add_row(*row)
    return table


def _expiry(space: dict[str, Any]) -> str:
    from launchbay.domain.expiry import expiring  # pure, as the portal marks it

    text = relative(space["expires_at"])
    soon = expiring(
        created_at=datetime.fromisoformat(space["created_at"]),
        expires_at=datetime.fromisoformat(space["expires_at"]),
        now=datetime.now(UTC),
    )
    return f"[bold yellow]{text} (expiring)[/]" if soon else text


def _ended(space: dict[str, Any]) -> str:
    from rich.markup import escape

    why = (space["reason"] or "deleted").splitlines()[0]
    return f"ended {relative(space['deleted_at'])}: {escape(why)}"


def service_table(space: dict[str, Any]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("SERVICE", "STATUS", "VERSION", "RESTARTS", "ENDPOINTS", "DETAIL"):
        table.add_column(column, overflow="fold")
    for s in space["services"]:
        table.add_row(
            s["name"],
            f"[{_status_style(s['status'])}]{s['status']}[/]",
            escape(s["version"]),
            str(s["restarts"]),
            escape(" ".join(s["endpoints"].values())),
            escape(s["detail"][:80]),
        )
    return table


def _status_style(status: str) -> str:
    return {
        "ready": "green",
        "completed": "green",
        "failed": "red",
        "unhealthy": "yellow",
        "starting": "cyan",
    }.get(status, "white")


def show_space(space: dict[str, Any]) -> None:
    from rich.markup import escape

    out = console()
    phase = space["phase"]
    out.print(
        f"[bold]{escape(space['name'])}[/]  [{PHASE_STYLE.get(phase, 'white')}]{phase}[/]  "
        f"template {escape(space['template'])} on {space['runtime']}, "
        f"owner {escape(space['owner'])}"
        + (f", made for {escape(space['origin'])}" if space.get("origin") else "")
    )
    ready = ""
    if space.get("ready_seconds") and phase in ("ready", "degraded"):
        ready = f", ready in {space['ready_seconds']:.1f}s"
    if phase == "deleted":
        out.print(
            f"created {relative(space['created_at'])} ({space['created_at']}){ready}, "
            + _ended(space)
        )
    else:
        out.print(
            f"created {relative(space['created_at'])} ({space['created_at']}){ready}, "
            f"expires {_expiry(space)} ({space['expires_at']})"
        )
    made_with = [f"{k}={v}" for k, v in space.get("params", {}).items()]
    for svc, keys in space.get("overrides", {}).items():
        made_with += [f"{svc}.{k}={v}" for k, v in keys.items()]
    if made_with:
        out.print("made with " + " ".join(made_with), markup=False)
    if space.get("reason") and phase != "deleted":
        out.print(space["reason"], style="red", markup=False)
    out.print(service_table(space))
    for line in work_lines(space.get("jobs", [])):
        out.print(line, markup=False, highlight=False)


def work_lines(jobs: list[dict[str, Any]]) -> list[str]:
    """What the engine is doing for the space and what waits, one line each."""
    lines = []
    for job in jobs:
        if job["state"] == "running":
            where = f" on {job['node']}" if job.get("node") else ""
            lines.append(
                f"{job['kind']} running{where} since {relative(job['started_at'])}"
                f" (attempt {job['attempts']})"
            )
        elif job["state"] == "queued":
            retry = f", retrying {relative(job['run_after'])}: {job['reason']}"
            lines.append(f"{job['kind']} queued" + (retry if job["reason"] else ""))
    return [("work: " if i == 0 else "      ") + line for i, line in enumerate(lines)]


def wait_for(
    client: Any,
    name: str,
    *,
    until: set[str],
    timeout: float,
    live: bool,
    generation: int = 0,
) -> dict[str, Any]:
    """Poll the space until its phase is in `until` ("settled": any settled phase) and the
    engine has applied `generation`, showing per-service progress."""

    def done(space: dict[str, Any]) -> bool:
        reached = space["phase"] in until or (space["phase"] in SETTLED and "settled" in until)
        return reached and space.get("observed_generation", 0) >= generation

    started = time.monotonic()
    deadline = started + timeout
    if live and sys.stderr.isatty():
        from rich.live import Live

        with Live(console=console(stderr=True), refresh_per_second=4, transient=False) as view:
            while True:
                space = client.get(f"/api/v1/spaces/{name}")
                view.update(_progress(space, time.monotonic() - started))
                if done(space) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    else:
        seen: dict[str, str] = {}
        while True:
            space = client.get(f"/api/v1/spaces/{name}")
            for s in space["services"]:
                state = f"{s['status']}: {s['detail']}" if s["detail"] else s["status"]
                if live and seen.get(s["name"]) != state:
                    seen[s["name"]] = state
                    took = f"[{time.monotonic() - started:.0f}s]"
                    print(f"{took} {name}: {s['name']} {state}", file=sys.stderr, flush=True)
            if done(space) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    if not done(space):
        raise CliError(
            f"space {name!r} is still {space['phase']} after {timeout:.0f}s", ExitStatus.TIMEOUT
        )
    return dict(space)


def _progress(space: dict[str, Any], elapsed: float) -> Any:
    from rich.console import Group
    from rich.text import Text

    phase = space["phase"]
    header = Text.assemble(
        (space["name"], "bold"),
        "  ",
        (phase, PHASE_STYLE.get(phase, "white")),
        f"  {elapsed:.0f}s",
    )
    return Group(header, service_table(space))
