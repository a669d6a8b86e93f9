"""Templates the integration tests add next to the examples."""

import sys

PY = sys.executable

SLOW = f"""\
name: slow
description: two services that each take a few seconds to answer
ttl: {{default: 1h, max: 2h}}
services:
  first:
    health: {{http: /, interval: 100ms, timeout: 30s}}
    process:
      command: [sh, -c, "sleep 2; exec {PY} -m http.server ${{services.first.port}} --bind 127.0.0.1"]
  second:
    depends_on: [first]
    health: {{http: /, interval: 100ms, timeout: 30s}}
    process:
      command: [sh, -c, "sleep 2; exec {PY} -m http.server ${{services.second.port}} --bind 127.0.0.1"]
"""

SICK = f"""\
name: sick
description: a service that runs but never passes its health check
ttl: {{default: 1h, max: 2h}}
services:
  web:
    health: {{http: /healthz, interval: 100ms, timeout: 2s}}
    process:
      command: [sh, -c, "echo about to serve without /healthz; exec {PY} -m http.server ${{services.web.port}} --bind 127.0.0.1"]
"""

GHOST = """\
name: ghost
description: a service whose command does not exist
ttl: {default: 1h, max: 2h}
services:
  web:
    process:
      command: [/nonexistent/launchbay-ghost]
"""

QUICK = f"""\
name: quick
description: one fast service
ttl: {{default: 1h, max: 2h}}
services:
  web:
    health: {{tcp: true, interval: 100ms, timeout: 20s}}
    endpoints: [{{name: home, path: /}}]
    process:
      command: [{PY}, -m, http.server, "${{services.web.port}}", --bind, 127.0.0.1]
"""


def install(folder, *names: str) -> None:
    for name in names:
        (folder / f"{name.lower()}.yaml").write_text(globals()[name])
