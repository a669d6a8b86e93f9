"""`bay`: the command line, a client of the server's API."""

from __future__ import annotations

import sys


def main() -> None:
    """The `bay` entry point. `bay --version` answers before the command framework is
    imported (it is most of the start-up); everything else goes through it."""
    if sys.argv[1:] == ["--version"]:
        from launchbay import __version__

        print(f"bay {__version__}")
        return
    from launchbay.cli.main import main as run

    run()
