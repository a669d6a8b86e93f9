import pytest

from launchbay.domain.auth import Actor, may_change, require_owner_or_admin
from launchbay.domain.errors import Forbidden


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
        require_owner_or_admin(Actor("bob"), owner="ann", space="web", action="delete")
