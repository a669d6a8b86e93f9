"""What a space may override is what its template allows; every value has a size limit."""

import textwrap

import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.overrides import Limits
from launchbay.domain.spec import parse_sets, resolve_params, resolve_services
from launchbay.domain.template import parse_template

OPEN = """\
name: open
ttl: {default: 1h, max: 2h}
params: {note: {default: ""}}
services:
  kv:
    overridable: {env: ["*"], values: ["image.*"]}
    process: {command: [python3, kv.py]}
    compose: {image: kv, environment: [A=1]}
  web:
    overridable: {version: false, env: [DEBUG, "FEATURE_*"]}
    process: {command: [python3, web.py]}
"""


def template(*, trusted: bool = False):
    text = OPEN if not trusted else OPEN.replace("name: open\n", "name: open\ntrusted: true\n")
    return parse_template(textwrap.dedent(text), file="open.yaml")


def test_only_what_overridable_lists_may_be_set_and_the_refusal_names_what_is_allowed():
    t = template()
    assert parse_sets({"web.env.FEATURE_X": "1", "web.env.DEBUG": "1"}, t) == {
        "web": {"env.FEATURE_X": "1", "env.DEBUG": "1"}
    }
    with pytest.raises(
        Invalid, match=r"web\.env\.OTHER: not overridable; .*env\.DEBUG, env\.FEATURE_\*"
    ):
        parse_sets({"web.env.OTHER": "1"}, t)
    with pytest.raises(Invalid, match="does not let spaces change it"):
        parse_sets({"web.version": "pr-1"}, t)
    with pytest.raises(Invalid, match="not overridable"):
        parse_sets({"kv.values.replicas": "2"}, t)
    assert parse_sets({"kv.values.image.tag": "pr-1"}, t) == {"kv": {"values.image.tag": "pr-1"}}


@pytest.mark.parametrize(
    "name",
    ["PYTHONWARNINGS", "BROWSER", "LD_PRELOAD", "BASH_ENV", "ENV", "PATH", "NODE_OPTIONS",
     "PERL5OPT", "RUBYOPT", "JAVA_TOOL_OPTIONS", "PAGER"],
)  # fmt: skip
def test_variables_that_change_how_programs_load_are_refused_unless_the_template_is_trusted(
    name,
):
    with pytest.raises(Invalid, match="trusted: true"):
        parse_sets({f"kv.env.{name}": "x"}, template())
    assert parse_sets({f"kv.env.{name}": "x"}, template(trusted=True)) == {
        "kv": {f"env.{name}": "x"}
    }


def test_launchbays_own_labels_are_refused_even_on_a_trusted_template():
    with pytest.raises(Invalid, match="Launchbay's own"):
        parse_sets({"kv.env.LAUNCHBAY_ROOT": "/"}, template(trusted=True))


def test_values_and_counts_over_the_limits_are_refused_naming_the_limit():
    limits = Limits(value_bytes=16, entries=2)
    with pytest.raises(Invalid, match="at most 16 bytes"):
        parse_sets({"web.env.DEBUG": "x" * 17}, template(), limits)
    with pytest.raises(Invalid, match="at most 16 bytes"):
        resolve_params(template(), {"note": "y" * 17}, limits)
    with pytest.raises(Invalid, match="at most 2 are allowed"):
        parse_sets({"web.env.DEBUG": "1", "web.env.FEATURE_A": "1", "web.env.FEATURE_B": "1"},
                   template(), limits)  # fmt: skip


def test_an_env_override_reaches_a_compose_service_as_well():
    t = template()
    services = resolve_services(
        t, space="s", owner="o", params={}, overrides={"kv": {"env.B": "2", "env.A": "3"}},
        addresses={},
    )  # fmt: skip
    assert services["kv"].spec.compose["environment"] == ["B=2", "A=3"]
    assert services["kv"].spec.process.env == {"B": "2", "A": "3"}
