"""Shell completion: `bay completion SHELL` prints the script, and the completers below
answer it with the server's space, template and service names."""

from typing import Annotated, Any

import typer

from launchbay.cli import context as ctx
from launchbay.cli.common import G
from launchbay.cli.errors import CliError, ExitStatus

COMPLETE_VAR = "_BAY_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish")],
) -> None:
    """Print the shell completion script: commands, options, and the server's space,
    template and service names. bash: `source <(bay completion bash)`; zsh: the same in
    ~/.zshrc; fish: `bay completion fish | source`."""
    if shell not in SHELLS:
        raise CliError(f"SHELL must be bash, zsh or fish, not {shell!r}", ExitStatus.USAGE)
    from typer._completion_shared import get_completion_script

    print(get_completion_script(prog_name="bay", complete_var=COMPLETE_VAR, shell=shell))


def _ask(path: str, **params: Any) -> Any:
    """The server's answer for completion; None when it cannot be asked (completion never
    prints an error into the shell)."""
    from launchbay.cli.client import Client

    try:
        resolved = ctx.resolve(name=G.context, server=G.server, token=G.token)
        return Client(resolved, timeout=3).get(path, **params)
    except (CliError, ValueError):
        return None


def _starting(items: Any, incomplete: str) -> list[str]:
    names = [str(i["name"]) for i in items or [] if isinstance(i, dict) and "name" in i]
    return sorted(n for n in names if n.startswith(incomplete))


def complete_space(incomplete: str) -> list[str]:
    return _starting((_ask("/api/v1/spaces", limit=500) or {}).get("items"), incomplete)


def complete_phase(incomplete: str) -> list[str]:
    from launchbay.domain.phases import Phase

    return [p.value for p in Phase if p.value.startswith(incomplete)]


def complete_template(incomplete: str) -> list[str]:
    return _starting(_ask("/api/v1/templates"), incomplete)


def complete_service(context: typer.Context, incomplete: str) -> list[str]:
    space = context.params.get("name")
    answer = _ask(f"/api/v1/spaces/{space}") if space else None
    return _starting((answer or {}).get("services"), incomplete)
