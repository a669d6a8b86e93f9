"""Telling the outside world about spaces: pull requests on GitHub, for now. Each
reporter translates its service's answers into Launchbay's errors at its boundary, as the
runtimes do."""
