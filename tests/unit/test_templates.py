import textwrap
from datetime import timedelta

import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.template import parse_template
from launchbay.domain.yamlsource import YamlError
from tests.support import EXAMPLES

GOOD = """\
name: shop
description: a shop
ttl:
  default: 1h
  max: 4h
params:
  color:
    default: blue
services:
  db:
    health: {tcp: true}
    process: {command: "python3 -m http.server ${services.db.port}"}
  api:
    depends_on: [db]
    health:
      http: /healthz
      interval: 1s
      timeout: 5s
    endpoints: [{name: api, path: /}]
    process:
      command: [python3, api.py]
      env:
        DB: ${services.db.url}
        COLOR: ${params.color}
        NAME: ${space.name}
"""


def parse(text: str):
    return parse_template(textwrap.dedent(text), file="t.yaml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(YamlError) as caught:
        parse(text)
    return caught.value.problems


def test_a_good_template_parses_into_typed_models():
    t = parse(GOOD)
    assert t.name == "shop"
    assert t.ttl.default == timedelta(hours=1)
    assert t.services["api"].health.timeout == timedelta(seconds=5)
    assert t.services["db"].process.command == [
        "python3",
        "-m",
        "http.server",
        "${services.db.port}",
    ]
    assert t.dependency_order() == [["db"], ["api"]]
    assert t.sections() == ["process"]


def test_the_example_template_is_valid_and_runs_on_processes():
    t = parse_template((EXAMPLES / "demo.yaml").read_text(), file="demo.yaml")
    assert len(t.services) >= 3
    assert "process" in t.sections()
    assert all(s.health is not None for s in t.services.values())


def test_unknown_keys_are_named_with_file_and_line():
    problems = problems_of(
        GOOD.replace("    depends_on: [db]", "    depends_on: [db]\n    replicas: 2")
    )
    assert problems == ["t.yaml:15: services.api.replicas: unknown key 'replicas'"]


def test_bad_durations_name_the_field_and_line():
    problems = problems_of(GOOD.replace("interval: 1s", "interval: soon"))
    assert len(problems) == 1
    assert problems[0].startswith(
        "t.yaml:17: services.api.health.interval: 'soon' is not a duration"
    )


def test_a_duration_without_unit_is_refused():
    problems = problems_of(GOOD.replace("default: 1h", "default: 3600"))
    assert "t.yaml:4: ttl.default:" in problems[0]


def test_a_dependency_cycle_is_named():
    text = GOOD.replace("  db:\n    health", "  db:\n    depends_on: [api]\n    health")
    problems = problems_of(text)
    assert any("dependency cycle: api -> db -> api" in p for p in problems), problems


def test_unknown_references_are_refused_with_their_field():
    problems = problems_of(GOOD.replace("${services.db.url}", "${services.cache.url}"))
    assert problems == [
        "t.yaml:23: services.api.process.env.DB: unknown service 'cache' in ${services.cache.url}"
    ]
    problems = problems_of(GOOD.replace("${params.color}", "${params.colour}"))
    assert "unknown parameter 'colour'" in problems[0]
    problems = problems_of(GOOD.replace("${space.name}", "${space.nam}"))
    assert "unknown reference ${space.nam}" in problems[0]
    problems = problems_of(GOOD.replace("${services.db.url}", "${services.db.ip}"))
    assert "unknown attribute 'ip'" in problems[0]


def test_duplicate_service_names_are_refused_with_the_line():
    text = GOOD + "  db:\n    process: {command: x}\n"
    assert problems_of(text) == ["t.yaml:26: services.db: duplicate key 'db'"]


def test_unknown_dependency_is_refused():
    problems = problems_of(GOOD.replace("depends_on: [db]", "depends_on: [dbx]"))
    assert problems == ["t.yaml:14: services.api.depends_on.0: unknown service 'dbx'"]


def test_default_ttl_over_the_maximum_is_refused():
    assert "longer than the maximum" in problems_of(GOOD.replace("max: 4h", "max: 30m"))[0]


def test_short_ttls_are_valid_for_tests_and_demos():
    t = parse(GOOD.replace("default: 1h", "default: 5s"))
    assert t.ttl.default == timedelta(seconds=5)


def test_a_health_check_needs_exactly_one_kind():
    problems = problems_of(GOOD.replace("health: {tcp: true}", "health: {tcp: true, http: /x}"))
    assert "exactly one of http, tcp or command" in problems[0]


def test_a_service_without_any_runtime_section_is_refused():
    text = GOOD.replace(
        '    process: {command: "python3 -m http.server ${services.db.port}"}\n', ""
    )
    assert "has no runtime section" in problems_of(text)[0]


def test_compose_and_helm_sections_are_accepted_for_later_runtimes():
    text = GOOD.replace(
        "    health: {tcp: true}\n",
        "    health: {tcp: true}\n    compose: {image: postgres:16, ports: ['5432']}\n"
        "    helm: {chart: ./charts/db, values: {auth: {password: x}}}\n",
    )
    t = parse(text)
    assert t.services["db"].compose == {"image": "postgres:16", "ports": ["5432"]}
    assert t.services["db"].helm.chart == "./charts/db"


def test_invalid_yaml_names_the_line():
    problems = problems_of("name: x\nttl: [unclosed\n")
    assert problems[0].startswith("t.yaml:3: not valid YAML")


def test_several_problems_are_reported_at_once():
    text = GOOD.replace("interval: 1s", "interval: soon").replace(
        "    depends_on: [db]", "    depends_on: [db]\n    x: 1"
    )
    assert len(problems_of(text)) == 2


def test_bad_names_are_refused():
    assert "template name 'Shop'" in problems_of(GOOD.replace("name: shop", "name: Shop"))[0]
    assert (
        "service name '2db'"
        in problems_of(GOOD.replace("  db:\n    health", "  2db:\n    health"))[0]
    )


def test_empty_and_non_mapping_files_are_refused():
    with pytest.raises(Invalid, match="empty"):
        parse("")
    with pytest.raises(Invalid, match="mapping"):
        parse("- a\n- b\n")
