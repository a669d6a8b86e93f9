"""What every command group shares: the run's global options, the API client, the output
format, and the parsing of durations and KEY=VALUE pairs. Annotations are evaluated at import
(no `from __future__ import annotations`), as in every module that declares commands: typer
reads each command's signature on every run."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from launchbay.cli import context as ctx
from launchbay.cli.errors import CliError, ExitStatus


class _Globals:
    server: str | None = None
    token: str | None = None
    context: str | None = None
    traceback: bool = False
    clients: list[Any] = []  # closed by main() when the command ends
    output: str = "table"


G = _Globals()

FORMATS = ("table", "wide", "name", "json", "yaml")
Output = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        help="table, wide, name, json or yaml",
        autocompletion=lambda incomplete: [f for f in FORMATS if f.startswith(incomplete)],
    ),
]
Duration = Annotated[str, typer.Option(metavar="DURATION", help="how long --wait waits")]
WaitFlag = Annotated[bool, typer.Option(help="wait until it is done, showing progress")]


def api_client() -> Any:
    """A client of the server that --server and --token name, else BAY_SERVER and
    BAY_TOKEN, else the context; closed by main() when the command ends."""
    from launchbay.cli.client import Client

    client = Client(ctx.resolve(name=G.context, server=G.server, token=G.token))
    G.clients.append(client)
    return client


def check_output(output: str) -> bool:
    """Whether the answer is printed as data (json, yaml, name) rather than as a table."""
    if output not in FORMATS:
        *rest, last = FORMATS
        raise CliError(
            f"--output must be {', '.join(rest)} or {last}, not {output!r}", ExitStatus.USAGE
        )
    G.output = output
    return output in ("json", "yaml", "name")


def emit(data: Any) -> None:
    """Data in the format asked for: JSON, YAML, or the names it holds one per line."""
    from launchbay.cli.output import print_data

    print_data(data, G.output)


def console() -> Any:
    from launchbay.cli.output import console

    return console()


def check_phase(phase: str) -> None:
    """Checked here, not only by the server, to name the option in the error."""
    from launchbay.domain.phases import Phase  # an enum, nothing more

    if phase not in {p.value for p in Phase}:
        *rest, last = (p.value for p in Phase)
        message = f"--phase must be {', '.join(rest)} or {last}, not {phase!r}"
        raise CliError(message, ExitStatus.USAGE)


def pairs(items: list[str], flag: str) -> dict[str, str]:
    """`KEY=VALUE` items as a dict; a malformed one is a usage error naming `flag`."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{flag} {item!r}: write KEY=VALUE", ExitStatus.USAGE)
        result[key] = value
    return result


def spec_body(
    *,
    template: str,
    runtime: str | None,
    ttl: str | None,
    params: list[str] | None,
    sets: list[str] | None,
) -> dict[str, Any]:
    """A space's spec as `bay space create` and `bay ci up` send it; a malformed --param or
    --set is a usage error."""
    return {
        "template": template,
        "runtime": runtime,
        "ttl": ttl,
        "params": pairs(params or [], "--param"),
        "set": pairs(sets or [], "--set"),
    }


@contextmanager
def invalid_is_usage() -> Iterator[None]:
    """Launchbay's `Invalid` (a bad duration, config file or setting) as a usage error."""
    from launchbay.domain.errors import Invalid

    try:
        yield
    except Invalid as e:
        raise CliError(e.message, ExitStatus.USAGE) from e


def to_seconds(text: str) -> float:
    """A duration such as `15m` in seconds; a malformed one is a usage error."""
    from launchbay.domain.durations import parse_duration

    with invalid_is_usage():
        return parse_duration(text).total_seconds()


def counted(items: Any, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read {path}: {e}", ExitStatus.USAGE) from e
