"""`bay audit`: who changed what, when, from where, and how it ended (an admin reads every
record, anyone else their own)."""

import json
import sys
from typing import Annotated, Any

import typer

from launchbay.cli.common import api_client
from launchbay.cli.errors import CliError, ExitStatus

FORMATS = ("table", "json", "jsonl")


def audit(
    actor: Annotated[str | None, typer.Option(help="only this user's records")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. space.delete, key.create")] = None,
    target: Annotated[str | None, typer.Option(help="e.g. a space's name")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, refused, invalid, ...")] = None,
    since: Annotated[str | None, typer.Option(help="only newer than this, e.g. 24h")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
    every: Annotated[bool, typer.Option("--all", help="every record that matches")] = False,
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="FORMAT", help="table, json or jsonl")
    ] = "table",
) -> None:
    """The audit trail, newest first. `-o jsonl --all` exports it as JSON lines."""
    if output not in FORMATS:
        raise CliError(f"--output must be table, json or jsonl, not {output!r}", ExitStatus.USAGE)
    if not 1 <= limit <= 100_000:
        raise CliError("--limit must be between 1 and 100000", ExitStatus.USAGE)
    query = {
        k: v
        for k, v in {
            "actor": actor,
            "action": action,
            "target": target,
            "outcome": outcome,
            "since": since,
        }.items()
        if v is not None
    }
    records = list(_records(query, limit=None if every else limit))
    if output == "json":
        print(json.dumps(records, indent=2))
    elif output == "jsonl":
        sys.stdout.writelines(json.dumps(r) + "\n" for r in records)
    else:
        print(f"{'AT':<21} {'ACTOR':<14} {'ACTION':<15} {'TARGET':<20} {'OUTCOME':<12} VIA")
        for r in records:
            via = f"{r['via']} ({r['credential']})" + (
                f" from {r['address']}" if r["address"] else ""
            )
            print(
                f"{r['at']:<21} {r['actor']:<14} {r['action']:<15} {r['target']:<20} "
                f"{r['outcome']:<12} {via}"
            )


def _records(query: dict[str, str], *, limit: int | None) -> Any:
    client = api_client()
    cursor: str | None = None
    left = limit
    while left is None or left > 0:
        page_size = 500 if left is None else min(left, 500)
        page = client.get(
            "/api/v1/audit", **query, limit=page_size, **({"cursor": cursor} if cursor else {})
        )
        yield from page["items"]
        if left is not None:
            left -= len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return
