"""The server's one settings tree: a file, the environment and flags, in that order of
strength; every mistake named with where it came from; secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from launchbay.domain.yamlsource import YamlError
from launchbay.runtimes import registry
from launchbay.settings import Given, SettingsTree, Sources, load, printable

FULL = """\
server:
  host: 0.0.0.0
  port: 9000
  templates: {templates}
  log_level: debug
  allowed_hosts: [bay.example.com]
  max_body: 2048
database:
  url: postgresql://launchbay:hunter2-secret@db.example.com/launchbay
engine:
  reconcile_interval: 2
  min_ttl: 5m
  workers: 4
process:
  isolation: none
  service_uids: 700000-700999
kubernetes:
  namespace_prefix: team-
notifications:
  channels:
    - kind: slack
      url: https://hooks.slack.com/services/T000/B000/very-secret-path
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    path = tmp_path / "launchbay.yaml"
    path.write_text(text.format(templates=tmp_path / "templates"))
    return path


def test_every_section_is_read_from_the_file(tmp_path):
    tree = load(Sources(file=write(tmp_path, FULL), environ={}))
    assert (tree.server.host, tree.server.port, tree.server.log_level) == ("0.0.0.0", 9000, "debug")
    assert tree.database.url and tree.database.url.endswith("@db.example.com/launchbay")
    engine = tree.engine.engine()
    assert engine.reconcile_interval == 2 and engine.workers == 4
    assert engine.min_ttl.total_seconds() == 300
    assert tree.process.settings().uids == range(700000, 701000)
    assert tree.kubernetes.namespace_prefix == "team-"


def test_without_a_file_every_default_is_the_one_the_parts_define(tmp_path):
    from launchbay.engine.engine import EngineSettings
    from launchbay.runtimes.process import ProcessSettings

    tree = load(Sources(environ={}))
    assert tree.engine.engine() == EngineSettings()
    assert tree.process.settings() == ProcessSettings()
    assert tree.kubernetes.settings({}) is None  # off outside a cluster without a kubeconfig


def test_flags_beat_the_environment_which_beats_the_file(tmp_path):
    file = write(tmp_path, FULL)
    environ = {"LAUNCHBAY_SERVER__PORT": "9100", "LAUNCHBAY_DB": "sqlite:////tmp/x.db"}
    tree = load(Sources(file=file, environ=environ))
    assert tree.server.port == 9100 and tree.database.url == "sqlite:////tmp/x.db"
    flags = [Given(("server", "port"), 9200, "--port")]
    assert load(Sources(file=file, environ=environ, flags=flags)).server.port == 9200


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("server:\n  port: 0\n", "launchbay.yaml:2: server.port: Input should be greater"),
        ("server:\n  prot: 9000\n", "launchbay.yaml:2: server.prot: unknown key 'prot'"),
        ("engine:\n  min_ttl: soon\n", "launchbay.yaml:2: engine.min_ttl:"),
        ("process:\n  service_uids: 5-1\n", "launchbay.yaml:2: process.service_uids:"),
        ("servers:\n  port: 1\n", "launchbay.yaml:1: servers: unknown key 'servers'"),
        ("server: [1]\n", "launchbay.yaml:1: server:"),
        ("server:\n  port: 1\n  port: 2\n", "launchbay.yaml:3: server.port: duplicate key"),
        ("- a list\n", "launchbay.yaml:1: (top): must be a mapping"),
    ],
)
def test_a_mistake_in_the_file_names_the_file_the_line_and_the_key(tmp_path, text, said):
    with pytest.raises(YamlError) as raised:
        load(Sources(file=write(tmp_path, text), environ={}))
    assert said in raised.value.message


def test_an_environment_value_is_read_as_its_key_wants_it():
    tree = load(
        Sources(
            environ={
                "LAUNCHBAY_KUBERNETES__NAMESPACE_PREFIX": "093849",
                "LAUNCHBAY_SERVER__ALLOWED_HOSTS": "[a.example.com, b.example.com]",
                "LAUNCHBAY_ENGINE__COPILOT": "true",
                "LAUNCHBAY_SERVER__DATA_DIR": "~",
                "LAUNCHBAY_SERVER__TEMPLATES": "",  # empty: not given
            }
        )
    )
    assert str(tree.server.data_dir) == "~" and str(tree.server.templates) == "templates"
    assert tree.kubernetes.namespace_prefix == "093849"
    assert tree.server.allowed_hosts == ("a.example.com", "b.example.com")
    assert tree.engine.copilot is True


def test_a_text_key_of_an_optional_section_takes_its_environment_value_as_written():
    environ = {"LAUNCHBAY_GITHUB__SECRET_ENV": "0123", "LAUNCHBAY_GITHUB__SECRET_FILE": "yes"}
    tree = load(Sources(environ=environ))
    assert tree.github is not None
    assert (tree.github.secret_env, tree.github.secret_file) == ("0123", "yes")


def test_a_mistake_from_the_environment_or_a_flag_names_the_variable_or_the_flag(tmp_path):
    with pytest.raises(YamlError, match=r"LAUNCHBAY_ENGINE__WORKERS: engine.workers: Input"):
        load(Sources(environ={"LAUNCHBAY_ENGINE__WORKERS": "0"}))
    with pytest.raises(YamlError, match=r"--port: server.port: Input should be"):
        load(Sources(environ={}, flags=[Given(("server", "port"), 70000, "--port")]))


def test_every_mistake_is_reported_at_once(tmp_path):
    text = "server:\n  port: 0\n  prot: 1\nengine:\n  workers: 0\n"
    with pytest.raises(YamlError) as raised:
        load(Sources(file=write(tmp_path, text), environ={}))
    assert len(raised.value.problems) == 3


def test_print_config_redacts_every_secret_and_reads_back_as_the_same_settings(tmp_path):
    tree = load(Sources(file=write(tmp_path, FULL), environ={}))
    printed = printable(tree)
    assert "hunter2" not in printed and "very-secret-path" not in printed
    assert "postgresql://launchbay:***@db.example.com/launchbay" in printed
    assert "https://hooks.slack.com/***" in printed
    again = SettingsTree.model_validate(yaml.safe_load(printed))
    assert again.server == tree.server and again.engine == tree.engine


def test_each_runtime_with_settings_has_its_section_in_the_tree():
    sections = set(SettingsTree.model_fields)
    assert {"process", "kubernetes"} <= sections
    assert set(registry.KINDS) - sections <= {"compose"}  # compose has no settings yet


def test_the_settings_page_names_every_key_with_its_default():
    from tests.support import ROOT

    page = (ROOT / "docs" / "settings.md").read_text()
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    documented = yaml.safe_load(block)
    defaults = SettingsTree().model_dump(mode="json")
    for section, keys in defaults.items():
        assert section in documented, section
        for key, value in (keys or {}).items():
            assert key in (documented[section] or {}), f"{section}.{key}"
            shown = documented[section][key]
            assert str(shown) == str(value), f"{section}.{key}: {shown!r} != {value!r}"
