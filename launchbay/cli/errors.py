"""Exit codes and the CLI's own error (HTTPie style: one enum, one translator)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    UNREACHABLE = 3
    UNAUTHORIZED = 4
    NOT_FOUND = 5
    SPACE_FAILED = 6
    TIMEOUT = 7
    CONFLICT = 8


HTTP_EXIT = {
    401: ExitStatus.UNAUTHORIZED,
    403: ExitStatus.UNAUTHORIZED,
    404: ExitStatus.NOT_FOUND,
    409: ExitStatus.CONFLICT,
    422: ExitStatus.USAGE,
    # The server answers but what it needs does not (a runtime's backend, its store).
    503: ExitStatus.UNREACHABLE,
}


class CliError(Exception):
    """Shown as one line on stderr, then exit with `status`."""

    def __init__(self, message: str, status: ExitStatus = ExitStatus.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# The server knows its runtimes (`bay doctor` lists them); the CLI names none itself.
RUNTIME_HELP = (
    "a runtime the server enables (`bay doctor` lists them); "
    "default: the first that can run the template"
)
