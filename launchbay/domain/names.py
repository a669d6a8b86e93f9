"""Names of spaces, services, templates and parameters, with the rules they must follow."""

from __future__ import annotations

import re
from typing import NewType

from launchbay.domain.errors import Invalid

SpaceName = NewType("SpaceName", str)
ServiceName = NewType("ServiceName", str)
TemplateName = NewType("TemplateName", str)
UserName = NewType("UserName", str)

# A Kubernetes namespace is a DNS-1123 label of at most 63 characters. A space name is
# used inside such labels with a prefix ("lb-", "team-a-spaces-", ...), so it keeps
# room for one: 40 characters leaves 23 for the prefix.
MAX_SPACE_NAME = 40
# Service names become Compose service names, Helm release name suffixes and DNS labels.
MAX_SERVICE_NAME = 30

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The rules above as JSON Schema, for the API's description.
LABEL_PATTERN = _DNS_LABEL.pattern
LETTER_LABEL_PATTERN = _DNS_1035_LABEL.pattern


def _check_label(raw: str, *, what: str, max_length: int, pattern: re.Pattern[str]) -> str:
    if not raw:
        raise Invalid(f"{what} must not be empty")
    if len(raw) > max_length:
        raise Invalid(f"{what} {raw!r} is {len(raw)} characters long; the maximum is {max_length}")
    if not pattern.match(raw):
        first = (
            "a lowercase letter" if pattern is _DNS_1035_LABEL else "a lowercase letter or digit"
        )
        raise Invalid(
            f"{what} {raw!r} is not valid: use lowercase letters, digits and '-', "
            f"starting with {first} and ending with a letter or digit"
        )
    return raw


def parse_space_name(raw: str) -> SpaceName:
    """A DNS-1123 label short enough to carry a namespace prefix."""
    return SpaceName(
        _check_label(raw, what="space name", max_length=MAX_SPACE_NAME, pattern=_DNS_LABEL)
    )


def parse_service_name(raw: str) -> ServiceName:
    """A DNS-1035 label (Kubernetes Service names must start with a letter)."""
    return ServiceName(
        _check_label(raw, what="service name", max_length=MAX_SERVICE_NAME, pattern=_DNS_1035_LABEL)
    )


def parse_template_name(raw: str) -> TemplateName:
    return TemplateName(_check_label(raw, what="template name", max_length=63, pattern=_DNS_LABEL))


def parse_user_name(raw: str) -> UserName:
    return UserName(_check_label(raw, what="user name", max_length=63, pattern=_DNS_LABEL))


def parse_team_name(raw: str) -> str:
    return _check_label(raw, what="team name", max_length=63, pattern=_DNS_LABEL)


def parse_key_name(raw: str) -> str:
    return _check_label(raw, what="key name", max_length=63, pattern=_DNS_LABEL)


def is_identifier(raw: str) -> bool:
    """Parameter names and environment variable names."""
    return bool(_IDENTIFIER.match(raw))
