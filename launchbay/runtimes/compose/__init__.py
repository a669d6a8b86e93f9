"""The compose runtime (Local Spaces): each space is a Docker Compose v2 project.

The runtime writes one Compose file per space under its root folder and runs it as the
project `<prefix><space>`, with its own network and named volumes. Every container,
network and volume carries Launchbay's labels (managed-by, root, space, service), which is
how the runtime finds what is its own after a crash and how it never touches anything
else. Host ports are allocated free on 127.0.0.1, so two spaces of one template run side by
side; inside the project, `${services.S.host}` is the Compose service name.

Compose (the CLI) creates and starts; the Docker SDK reads state, health and logs and
removes by label, so no table output is ever parsed.

One module per concern: labels.py (what marks an object as a space's), client.py (the
Docker SDK, its errors translated; the only module that imports `docker`), projects.py
(each space's folder, project name and the files Launchbay writes), ports.py (host ports),
commands.py (`docker compose`, through `runtimes.proc`), teamfile.py (the team's own
Compose file, read and checked), status.py (containers' state and events) and runtime.py
(`ComposeRuntime`, which holds one of each).
"""

from launchbay.runtimes.compose.runtime import KIND, ComposeRuntime

__all__ = ["KIND", "ComposeRuntime"]
