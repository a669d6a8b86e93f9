"""`bay ci`: what a pipeline runs. Create-or-update, wait, print endpoints; clear failures."""

import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from launchbay.cli.common import api_client, spec_body, to_seconds
from launchbay.cli.errors import RUNTIME_HELP, CliError, ExitStatus

ci_app = typer.Typer(no_args_is_help=True, help="For CI/CD pipelines: a space per pull request.")


@ci_app.command("up")
def up(
    name: str,
    template: Annotated[str, typer.Option("--template", "-t", help="template name")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="SERVICE.KEY=VALUE, e.g. api.version=$SHA")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE")] = None,
    runtime: Annotated[str | None, typer.Option(help=RUNTIME_HELP)] = None,
    ttl: Annotated[
        str | None, typer.Option(help="keep the space at least this long, e.g. 4h")
    ] = None,
    timeout: Annotated[str, typer.Option(help="how long to wait for it to be ready")] = "15m",
) -> None:
    """Create the space or update it to these versions, wait until it is ready, print its
    endpoints. Exits non-zero with the failing service's reason and log tail."""
    from launchbay.cli.output import wait_for

    seconds = to_seconds(timeout)
    client = api_client()
    spec = spec_body(template=template, runtime=runtime, ttl=ttl, params=param, sets=set_)
    space = client.put(f"/api/v1/spaces/{name}", {**spec, "source": pipeline_source()})
    space = wait_for(
        client,
        name,
        until={"ready", "settled"},
        timeout=seconds,
        live=True,
        generation=space["generation"],
    )
    failed = failure(client, space)
    if failed:
        write_github_files(space, ok=False)
        print(failed, file=sys.stderr)
        raise CliError(failed.splitlines()[0], ExitStatus.SPACE_FAILED)
    endpoints = endpoint_rows(space)
    for service, version, endpoint, url in endpoints:
        print(f"{service}\t{version}\t{endpoint}\t{url}")
    write_github_files(space, ok=True)


@ci_app.command("down")
def down(
    name: str,
    timeout: Annotated[str, typer.Option(help="how long to wait for it to be gone")] = "10m",
) -> None:
    """Delete the space and wait until it is gone. A space that does not exist is fine."""
    from launchbay.cli.output import wait_for

    seconds = to_seconds(timeout)
    client = api_client()
    try:
        client.delete(f"/api/v1/spaces/{name}")
    except CliError as e:
        if e.status is ExitStatus.NOT_FOUND:
            print(f"{name}: nothing to delete")
            return
        raise
    wait_for(client, name, until={"deleted"}, timeout=seconds, live=False)
    print(f"{name} deleted")


def pipeline_source() -> str:
    env = os.environ.get
    if env("GITHUB_ACTIONS") == "true":
        return f"github-actions {env('GITHUB_REPOSITORY', '')} run {env('GITHUB_RUN_ID', '')}"
    if env("GITLAB_CI") == "true":
        return f"gitlab {env('CI_PROJECT_PATH', '')} pipeline {env('CI_PIPELINE_ID', '')}"
    return "bay ci"


def failure(client: Any, space: dict[str, Any]) -> str | None:
    """Why the space is not ready for this change, with the failing service's log tail."""
    deploys = client.get(f"/api/v1/spaces/{space['name']}/deploys", limit=50)
    failed_deploys = [
        d for d in deploys if d["generation"] == space["generation"] and d["result"] == "failed"
    ]
    failed_services = [s for s in space["services"] if s["status"] in ("failed", "unhealthy")]
    if space["phase"] == "ready" and not failed_deploys:
        return None
    if failed_deploys:
        service, reason = failed_deploys[0]["service"], failed_deploys[0]["detail"]
    elif failed_services:
        service, reason = (
            failed_services[0]["name"],
            space["reason"] or failed_services[0]["detail"],
        )
    else:
        why = space["reason"] or "see `bay space events`"
        return f"space {space['name']!r} is {space['phase']}: {why}"
    tail = "\n".join(
        client.stream_lines(f"/api/v1/spaces/{space['name']}/logs/{service}", tail=20, follow=False)
    )
    why = reason.splitlines()[0] if reason else space["phase"]
    text = f"space {space['name']!r}: service {service!r} failed: {why}"
    return text + (f"\n--- last lines of {service}'s log ---\n{tail}" if tail else "")


def endpoint_rows(space: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (s["name"], s["version"], endpoint, url)
        for s in space["services"]
        for endpoint, url in s["endpoints"].items()
    ]


def write_github_files(space: dict[str, Any], *, ok: bool) -> None:
    """On GitHub Actions: endpoints to $GITHUB_OUTPUT, a short table to $GITHUB_STEP_SUMMARY."""
    output, summary = os.environ.get("GITHUB_OUTPUT"), os.environ.get("GITHUB_STEP_SUMMARY")
    rows = endpoint_rows(space)
    if output:
        lines = [f"space={space['name']}", f"phase={space['phase']}"]
        lines += [
            f"{_key(service)}_{_key(endpoint)}_url={url}" for service, _, endpoint, url in rows
        ]
        lines.append("endpoints=" + json.dumps({f"{s}.{e}": u for s, _, e, u in rows}))
        with Path(output).open("a") as f:
            f.write("\n".join(lines) + "\n")
    if summary:
        state = "is ready" if ok else f"is {space['phase']}"
        table = ["| service | version | endpoint |", "| --- | --- | --- |"]
        table += [f"| {s} | `{v}` | [{e}]({u}) |" for s, v, e, u in rows]
        with Path(summary).open("a") as f:
            f.write(f"### Launchbay space `{space['name']}` {state}\n\n" + "\n".join(table) + "\n")


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)
