"""Reading a team's Compose file, and a template built on it (pure: no Docker)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from launchbay.domain.composefile import Port, read_compose_file
from launchbay.domain.errors import Invalid
from launchbay.domain.names import ServiceName, SpaceName
from launchbay.domain.spec import parse_sets, resolve_services
from launchbay.domain.template import RunsOn, parse_template
from launchbay.domain.yamlsource import YamlError, load_yaml

COMPOSE = textwrap.dedent("""\
    x-base: &base
      image: base:1
      init: true
    services:
      migrate:
        <<: *base
        restart: "no"
      api:
        <<: *base
        ports: ["8000", "127.0.0.1:9000-9001:9000-9001", {target: 53, protocol: udp}]
        depends_on:
          migrate: {condition: service_completed_successfully}
      worker:
        <<: [*base]
        expose: ["7000"]
        depends_on: [api]
        volumes: ["./src:/src", "data:/data", {type: bind, source: /etc/hosts, target: /h}]
      debug:
        <<: *base
        profiles: [debug]
        depends_on: [worker]
    volumes:
      data:
      shared: {external: true}
    """)


def read(text: str):
    document, source = load_yaml(text, file="compose.yaml")
    return read_compose_file(document, source)


def test_merge_keys_anchors_and_every_port_form_are_read():
    found = read(COMPOSE)
    api = found.services["api"]
    assert api.ports == (Port(8000), Port(9000), Port(9001), Port(53, "udp"))
    assert found.services["worker"].first_port == 7000  # only exposed
    assert [b.source for b in found.services["worker"].binds] == ["./src", "/etc/hosts"]
    assert found.services["worker"].depends_on == {"api": "service_started"}
    assert found.one_shot() == {"migrate"}
    assert found.profiles() == {"debug"}
    assert found.volumes == ("data",)  # the external one is not Launchbay's


def test_a_later_key_overrides_a_merged_one_and_a_real_duplicate_is_still_refused():
    data, _ = load_yaml("a: &a {x: 1, y: 2}\nb: {<<: *a, y: 3}\n", file="f")
    assert data["b"] == {"x": 1, "y": 3}
    with pytest.raises(YamlError, match="duplicate key 'y'"):
        load_yaml("b: {<<: {x: 1}, y: 3, y: 4}\n", file="f")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "services:\n  a:\n    depends_on: [b]\n",
            "compose.yaml:3: services.a.depends_on: unknown service 'b'",
        ),
        (
            "services:\n  a:\n    ports: ['x:y']\n",
            "compose.yaml:3: services.a.ports.0: 'x:y' names no container port",
        ),
        (
            "services:\n  a: {}\n  b:\n    depends_on: {a: {condition: done}}\n",
            "unknown condition 'done'",
        ),
        ("image: x\n", "a Compose file has a `services` mapping"),
    ],
)
def test_what_cannot_be_read_is_said_with_its_line(text, problem):
    with pytest.raises(YamlError) as caught:
        read(text)
    assert problem in caught.value.message


def template(tmp_path: Path, body: str = ""):
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    text = textwrap.dedent("""\
        name: app
        ttl: {default: 1h, max: 2h}
        params: {profiles: {default: ""}}
        compose: {file: compose.yaml, profiles: ["${params.profiles}"]}
        """) + textwrap.dedent(body)
    path = tmp_path / "app.yaml"
    path.write_text(text)
    return parse_template(text, file=str(path), read=lambda p: p.read_text())


def test_a_template_takes_its_services_from_the_file_and_the_profiles_from_the_space(tmp_path):
    t = template(tmp_path, "services:\n  api:\n    endpoints: [{name: docs, port: 9000}]\n")
    assert list(t.services) == ["migrate", "api", "worker", "debug"]
    assert t.services[ServiceName("migrate")].one_shot
    assert t.services[ServiceName("api")].endpoints[0].port == 9000
    assert t.sections() == ["compose"]
    assert list(t.for_space({"profiles": ""}).services) == ["migrate", "api", "worker"]
    assert "debug" in t.for_space({"profiles": "debug"}).services
    with pytest.raises(Invalid, match="unknown Compose profile 'debgu'; template 'app' has debug"):
        t.for_space({"profiles": "debgu"})


def test_a_template_naming_a_service_the_file_lacks_or_a_missing_file_is_refused(tmp_path):
    with pytest.raises(
        YamlError, match=r"app.yaml:6: services.nope: not a service of compose.yaml"
    ):
        template(tmp_path, "services:\n  nope: {}\n")
    (tmp_path / "gone.yaml").write_text(
        "name: gone\nttl: {default: 1h, max: 2h}\ncompose: {file: none.yml}\n"
    )
    with pytest.raises(YamlError, match=r"gone.yaml:3: compose.file: cannot read .*none.yml"):
        parse_template(
            (tmp_path / "gone.yaml").read_text(),
            file=str(tmp_path / "gone.yaml"),
            read=lambda p: p.read_text(),
        )


def test_overrides_a_runtime_would_drop_are_refused(tmp_path):
    t = template(tmp_path, "services:\n  api:\n    overridable: {env: [A], values: [x]}\n")
    assert parse_sets({"api.env.A": "1"}, t, on=RunsOn("compose", "compose")) == {
        "api": {"env.A": "1"}
    }
    with pytest.raises(Invalid, match="runs what its Compose file says"):
        parse_sets({"api.version": "pr-1"}, t, on=RunsOn("compose", "compose"))
    with pytest.raises(Invalid) as refused:
        parse_sets({"worker.env.A": "1"}, t, on=RunsOn("compose", "compose"))
    assert "allows version" not in refused.value.message  # a file's service never does
    with pytest.raises(
        Invalid, match="helm values apply to runtimes of Helm charts only, not on compose"
    ):
        parse_sets({"api.values.x": "1"}, t, on=RunsOn("compose", "compose"))


def test_compose_sections_keep_compose_escapes_and_other_sections_do_not(tmp_path):
    text = textwrap.dedent("""\
        x-health: &health {interval: 1s}
        name: esc
        ttl: {default: 1h, max: 2h}
        services:
          a:
            process: {command: ["echo", "$${HOME}"]}
            compose:
              image: i
              healthcheck: {<<: *health, test: ["CMD-SHELL", "[ $${HOSTNAME} = $$(hostname) ]"]}
              environment: {SPACE: "${space.name}"}
        """)
    t = parse_template(text, file=str(tmp_path / "esc.yaml"))
    (a,) = resolve_services(
        t, space=SpaceName("s1"), owner="o", params={}, overrides={}, addresses={}
    ).values()
    assert a.spec.process is not None and a.spec.process.command == ["echo", "${HOME}"]
    compose = a.spec.compose or {}
    assert compose["healthcheck"] == {
        "interval": "1s",
        "test": ["CMD-SHELL", "[ $${HOSTNAME} = $$(hostname) ]"],
    }
    assert compose["environment"] == {"SPACE": "s1"}


def test_a_failure_reason_is_the_line_that_says_what_went_wrong_not_the_last_ones():
    from launchbay.runtimes.compose.commands import telling_lines

    said = textwrap.dedent("""\
        time="2026-12-01T10:00:00Z" level=warning msg="Docker Compose is configured to build using Bake, but buildx isn't installed"
        invalid interpolation format for services.init.command.[]: "sh -c 'echo ${X'"
         Container lb-s-db-1  Creating
         Container lb-s-db-1  Created
        """)
    assert telling_lines(said) == (
        "invalid interpolation format for services.init.command.[]: \"sh -c 'echo ${X'\""
    )


def test_a_template_waiting_for_its_compose_file_is_read_again_once_the_file_is_there(tmp_path):
    from launchbay.engine.catalog import TemplateCatalog

    (tmp_path / "app.yaml").write_text(
        "name: app\nttl: {default: 1h, max: 2h}\ncompose: {file: compose.yaml}\n"
    )
    catalog = TemplateCatalog(tmp_path)
    assert (
        catalog.all() == [] and "cannot read" in catalog.problems()[str(tmp_path / "app.yaml")][0]
    )
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: web:1}\n")
    assert [t.name for t in catalog.all()] == ["app"]
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: web:1, depends_on: [db]}\n")
    assert catalog.all() == []  # a change to the file alone is seen


def test_a_profile_the_file_lacks_is_a_problem_of_the_template_with_its_line(tmp_path):
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    text = (
        "name: app\nttl: {default: 1h, max: 2h}\ncompose: {file: compose.yaml, profiles: [debgu]}\n"
    )
    with pytest.raises(
        YamlError,
        match=r"app.yaml:3: compose.profiles.0: unknown Compose profile 'debgu'; compose.yaml has debug",
    ):
        parse_template(text, file=str(tmp_path / "app.yaml"), read=lambda p: p.read_text())
