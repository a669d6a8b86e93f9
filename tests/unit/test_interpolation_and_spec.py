from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.errors import Invalid
from launchbay.domain.interpolation import interpolate, interpolate_tree, references
from launchbay.domain.spec import (
    Address,
    choose_ttl,
    extended_expiry,
    parse_sets,
    resolve_params,
    resolve_services,
)
from launchbay.domain.template import TtlPolicy, parse_template
from tests.unit.test_templates import GOOD

TEMPLATE = parse_template(GOOD, file="/templates/shop.yaml")
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
POLICY = TtlPolicy(default="1h", max="4h")


def test_references_are_found_but_escaped_ones_are_not():
    assert list(references("${a.b} and $${c.d} and ${ e.f }")) == ["a.b", "e.f"]


def test_interpolation_replaces_values_and_unescapes():
    assert interpolate("${x}:$${y}", {"x": "1"}) == "1:${y}"


def test_interpolation_of_a_missing_value_is_an_error():
    with pytest.raises(Invalid, match=r"\$\{nope\}"):
        interpolate("${nope}", {})


def test_interpolation_walks_nested_values_and_keys():
    assert interpolate_tree({"${k}": ["${v}", 3]}, {"k": "key", "v": "val"}) == {"key": ["val", 3]}


def test_services_are_resolved_with_addresses_params_and_overrides():
    services = resolve_services(
        TEMPLATE,
        space="pr-1",
        owner="ann",
        params={"color": "red"},
        overrides={"api": {"version": "pr-1", "env.EXTRA": "1"}},
        addresses={"db": Address("127.0.0.1", 5000), "api": Address("127.0.0.1", 5001)},
    )
    api = services["api"]
    assert api.version == "pr-1"
    assert api.spec.process.env == {
        "DB": "http://127.0.0.1:5000",
        "COLOR": "red",
        "NAME": "pr-1",
        "EXTRA": "1",
    }
    assert services["db"].spec.process.command[-1] == "5000"
    assert services["db"].version == "main"


def test_set_overrides_are_parsed_and_checked_against_the_template():
    assert parse_sets({"api.version": "x", "db.version": "y"}, TEMPLATE) == {
        "api": {"version": "x"},
        "db": {"version": "y"},
    }
    with pytest.raises(Invalid, match="unknown service 'cache'"):
        parse_sets({"cache.version": "x"}, TEMPLATE)
    with pytest.raises(Invalid, match="unknown key 'replicas'"):
        parse_sets({"api.replicas": "3"}, TEMPLATE)
    with pytest.raises(Invalid, match=r"SERVICE\.KEY=VALUE"):
        parse_sets({"api": "3"}, TEMPLATE)


def test_params_default_and_unknown_params_are_refused():
    assert resolve_params(TEMPLATE, {}) == {"color": "blue"}
    with pytest.raises(Invalid, match="unknown parameter 'size'"):
        resolve_params(TEMPLATE, {"size": "xl"})


def test_ttl_is_the_default_or_what_was_asked_within_the_maximum():
    assert choose_ttl(POLICY, None) == timedelta(hours=1)
    assert choose_ttl(POLICY, "10s") == timedelta(seconds=10)
    with pytest.raises(Invalid, match="over this template's maximum of 4h"):
        choose_ttl(POLICY, "5h")
    with pytest.raises(Invalid, match="not a duration"):
        choose_ttl(POLICY, "forever")


def test_extend_adds_time_within_the_maximum_life():
    created = NOW
    expires = NOW + timedelta(hours=1)
    assert extended_expiry(
        expires_at=expires, created_at=created, by=timedelta(hours=2), policy=POLICY, now=NOW
    ) == NOW + timedelta(hours=3)
    with pytest.raises(Invalid, match="at most 4h in all, 3h more"):
        extended_expiry(
            expires_at=expires, created_at=created, by=timedelta(hours=4), policy=POLICY, now=NOW
        )


def test_extending_an_expired_space_counts_from_now():
    expired = NOW - timedelta(minutes=5)
    result = extended_expiry(
        expires_at=expired,
        created_at=NOW - timedelta(hours=1),
        by=timedelta(minutes=30),
        policy=POLICY,
        now=NOW,
    )
    assert result == NOW + timedelta(minutes=30)


def test_a_users_override_is_passed_as_written_and_escaped_for_compose():
    """A `--set` value is the user's text: never interpolated (`${template.dir}` stays), and
    on Compose `$` is doubled, so Compose does not expand `$HOME` either."""
    from launchbay.domain.names import SpaceName
    from launchbay.domain.spec import Address, resolve_services
    from launchbay.domain.template import parse_template

    template = parse_template(
        "name: lit\nttl: {default: 1h, max: 2h}\nservices:\n  api:\n"
        "    overridable: {env: [GREETING]}\n"
        "    process: {command: [sleep, '1'], env: {DIR: '${template.dir}'}}\n"
        "    compose: {image: busybox}\n",
        file="/t/lit.yaml",
    )
    resolved = resolve_services(
        template,
        space=SpaceName("s"),
        owner="ann",
        params={},
        overrides={"api": {"env.GREETING": "${template.dir}-$HOME"}},
        addresses={"api": Address("127.0.0.1", 1)},  # type: ignore[dict-item]
    )["api"].spec
    assert resolved.process is not None
    assert resolved.process.env == {"DIR": "/t", "GREETING": "${template.dir}-$HOME"}
    assert resolved.compose is not None
    assert resolved.compose["environment"]["GREETING"] == "$${template.dir}-$$HOME"
