"""`bay template`: the templates the server offers, and validating template files locally."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from launchbay.cli.common import Output, api_client, check_output, console, counted, emit, read_text
from launchbay.cli.completion import complete_template
from launchbay.cli.errors import ExitStatus

if TYPE_CHECKING:
    from launchbay.domain.template import Template

template_app = typer.Typer(
    no_args_is_help=True, help="Templates the server offers, and validating files."
)


@template_app.command("list")
def template_list(output: Output = "table") -> None:
    """Templates the server offers."""
    as_json = check_output(output)
    templates = api_client().get("/api/v1/templates")
    if as_json:
        return emit(templates)
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NAME", "SERVICES", "RUNTIMES", "TTL", "DESCRIPTION"):
        table.add_column(column, overflow="fold")
    for t in templates:
        table.add_row(
            t["name"],
            str(len(t["services"])),
            ",".join(t["runtimes"]),
            f"{t['ttl_default']} (max {t['ttl_max']})",
            t["description"],
        )
    console().print(table)


@template_app.command("show")
def template_show(
    name: Annotated[str, typer.Argument(metavar="TEMPLATE", autocompletion=complete_template)],
    output: Output = "table",
) -> None:
    """A template's services, dependency order, parameters and TTL policy."""
    as_json = check_output(output)
    template = api_client().get(f"/api/v1/templates/{name}")
    if as_json:
        return emit(template)
    out = console()
    out.print(f"{template['name']}: {template['description']}", markup=False)
    out.print(
        f"TTL {template['ttl_default']} by default, at most {template['ttl_max']}; "
        f"runtimes: {', '.join(template['runtimes'])}",
        markup=False,
    )
    for layer, names in enumerate(template["order"], start=1):
        out.print(f"  step {layer}: {', '.join(names)}", markup=False)
    for pname, param in template["params"].items():
        out.print(f"  param {pname} = {param['default']!r}  {param['description']}", markup=False)
    for service in template["services"]:
        for source, kind in service.get("binds", {}).items():
            out.print(f"  {service['name']} mounts {source}: {kind}", markup=False)
    if template["runtimes"]:
        out.print(
            f"create one: bay space create NAME --template {template['name']} --wait",
            markup=False,
        )
    else:
        out.print(
            "no runtime this server enables can run it (`bay doctor` lists them)", markup=False
        )


@template_app.command("validate")
def template_validate(files: Annotated[list[Path], typer.Argument(help="template files")]) -> None:
    """Validate template files locally; every problem is shown with file, line and field."""
    from launchbay.domain.template import parse_template
    from launchbay.domain.yamlsource import YamlError

    failed = False
    for file in files:
        try:
            template = parse_template(
                read_text(file), file=str(file), read=lambda p: p.read_text(encoding="utf-8")
            )
        except YamlError as e:
            failed = True
            for problem in e.problems:
                print(problem, file=sys.stderr)
            continue
        problems = _runtime_problems(template)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            failed = True
        else:
            count = counted(template.services, "service")
            print(f"{file}: template {template.name!r} is valid ({count})")
    if failed:
        raise typer.Exit(ExitStatus.USAGE)


def _runtime_problems(template: "Template") -> list[str]:
    """The runtimes' own validation of a template (Compose's of a Compose file), where
    they are installed; a note on stderr for each that could not look."""
    from launchbay.server import runtime_problems

    problems, notes = runtime_problems(template)
    for note in notes:
        print(f"{template.source}: {note}", file=sys.stderr)
    return problems
