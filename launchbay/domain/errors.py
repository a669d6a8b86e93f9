"""Launchbay's own errors. Each outer layer maps them once (HTTP status, CLI exit code)."""

from __future__ import annotations


class LaunchbayError(Exception):
    """Base of every error Launchbay raises on purpose; its message is shown to people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(LaunchbayError):
    """The request or a file is malformed; nothing was changed."""


class NotFound(LaunchbayError):
    """The thing named does not exist."""


class Forbidden(LaunchbayError):
    """The caller is known but may not do this."""


class OverQuota(Forbidden):
    """The request would take more than a quota allows; the message names the quota, its
    value, what uses it now and how to free it."""


class Unauthorized(LaunchbayError):
    """The caller is not known (missing or invalid token). `challenge`: the scheme the
    answer asks for (`WWW-Authenticate`); None where no token would help (a webhook's
    signature)."""

    def __init__(self, message: str, *, challenge: str | None = "Bearer") -> None:
        super().__init__(message)
        self.challenge = challenge


class Conflict(LaunchbayError):
    """The request clashes with the current state (a name in use, a space being deleted)."""


class TemporaryError(LaunchbayError):
    """Worth retrying after `delay` seconds: the outside world is not ready yet."""

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(LaunchbayError):
    """Retrying will not help; the message is stored and shown as the reason."""


class Refused(PermanentError):
    """A backend refused the request: the input or the permissions are wrong, and retrying
    will not help until someone changes them. The message says which."""


# What each error means over HTTP, for the API and the portal alike.
HTTP_STATUS: dict[type[LaunchbayError], int] = {
    Invalid: 422,
    NotFound: 404,
    Forbidden: 403,
    Unauthorized: 401,
    Conflict: 409,
    TemporaryError: 503,
    PermanentError: 422,
}


def http_status(error: LaunchbayError, table: dict[type[LaunchbayError], int] = HTTP_STATUS) -> int:
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return 400
