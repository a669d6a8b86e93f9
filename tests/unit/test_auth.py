from datetime import UTC, datetime, timedelta

import pytest

from launchbay.domain.auth import (
    Action,
    Actor,
    Key,
    Scope,
    SpaceFacts,
    may_change,
    parse_repository,
    parse_scopes,
    require_admin,
    require_owner_or_admin,
)
from launchbay.domain.errors import Forbidden, Invalid

ANNS = SpaceFacts(name="web", owner="ann", template="shop", repository="acme/shop")
NOW = datetime(2026, 12, 8, tzinfo=UTC)


def key(*scopes: Scope, templates=(), repositories=(), days: int | None = 30) -> Key:
    return Key(
        name="k",
        scopes=frozenset(scopes),
        templates=frozenset(templates),
        repositories=frozenset(repositories),
        expires_at=NOW + timedelta(days=days) if days is not None else None,
    )


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (Actor("ann"), True),
        (Actor("bob"), False),
        (Actor("root", is_admin=True), True),
        (None, False),
    ],
)
def test_only_the_owner_or_an_admin_may_change_a_space(actor, allowed):
    assert may_change(actor, owner="ann") is allowed


def test_a_refusal_names_who_what_and_whose():
    with pytest.raises(Forbidden, match="bob may not delete space 'web': it belongs to ann"):
        require_owner_or_admin(Actor("bob"), ANNS, action="delete", does=Action.DELETE)


WHAT_EACH_SCOPE_ALLOWS = {
    Scope.READ: {Action.READ},
    Scope.DEPLOY: {Action.READ, Action.DEPLOY},
    Scope.SPACES: {Action.READ, Action.CREATE, Action.DEPLOY, Action.CHANGE, Action.DELETE},
    Scope.ADMIN: set(Action),
}


@pytest.mark.parametrize("scope", list(Scope))
@pytest.mark.parametrize("action", [a for a in Action if a is not Action.ADMIN])
def test_a_key_of_one_scope_does_to_its_owners_space_exactly_what_the_scope_allows(scope, action):
    actor = Actor("ann", key=key(scope))
    if action in WHAT_EACH_SCOPE_ALLOWS[scope]:
        require_owner_or_admin(actor, ANNS, action=action.value, does=action)
    else:
        with pytest.raises(Forbidden, match=f"key 'k' may not {action.value}: its scopes are"):
            require_owner_or_admin(actor, ANNS, action=action.value, does=action)


def test_a_key_never_gives_more_than_its_user_has():
    with pytest.raises(Forbidden, match="bob may not delete space 'web'"):
        require_owner_or_admin(
            Actor("bob", key=key(Scope.ADMIN)), ANNS, action="delete", does=Action.DELETE
        )


def test_an_admins_key_without_the_admin_scope_is_refused_admin_work():
    with pytest.raises(Forbidden, match="with a key of the admin scope"):
        require_admin(Actor("root", is_admin=False, key=key(Scope.SPACES)), action="add users")


@pytest.mark.parametrize(
    ("limits", "allowed"),
    [
        ({"templates": {"shop"}}, True),
        ({"templates": {"blog"}}, False),
        ({"repositories": {"acme/shop"}}, True),
        ({"repositories": {"acme/blog"}}, False),
        ({"templates": {"shop"}, "repositories": {"acme/blog"}}, False),
    ],
)
def test_a_key_limited_to_templates_or_repositories_acts_only_on_their_spaces(limits, allowed):
    actor = Actor("ann", key=key(Scope.SPACES, **limits))
    if allowed:
        require_owner_or_admin(actor, ANNS, action="delete", does=Action.DELETE)
    else:
        with pytest.raises(Forbidden, match=r"key 'k' may not delete .* it is for .* only"):
            require_owner_or_admin(actor, ANNS, action="delete", does=Action.DELETE)


@pytest.mark.parametrize(
    ("made", "allowed"),
    [
        (key(Scope.DEPLOY, templates={"shop"}, days=10), True),
        (key(Scope.SPACES, templates={"shop"}, days=10), False),  # a wider scope
        (key(Scope.DEPLOY, days=10), False),  # no template limit: any template
        (key(Scope.DEPLOY, templates={"shop", "blog"}, days=10), False),
        (key(Scope.DEPLOY, templates={"shop"}, days=40), False),  # lives longer
        (key(Scope.DEPLOY, templates={"shop"}, days=None), False),  # never expires
    ],
)
def test_a_key_makes_only_keys_that_may_do_no_more_than_it(made, allowed):
    maker = key(Scope.DEPLOY, Scope.READ, templates={"shop"}, days=30)
    assert maker.covers(made) is allowed


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ([], "at least one scope"),
        (["write"], "unknown scope 'write'"),
    ],
)
def test_bad_scopes_are_refused_by_name(raw, said):
    with pytest.raises(Invalid, match=said):
        parse_scopes(raw)


@pytest.mark.parametrize("raw", ["acme", "acme/", "/shop", "acme/shop/x", "a b/c", "x" * 300])
def test_a_repository_is_owner_slash_name(raw):
    with pytest.raises(Invalid, match="write OWNER/NAME"):
        parse_repository(raw)
    assert parse_repository("Acme/Shop.js") == "acme/shop.js"
