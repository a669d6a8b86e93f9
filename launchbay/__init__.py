"""Launchbay: ephemeral, production-like developer environments with a time-to-live."""

__version__ = "0.1.0"
