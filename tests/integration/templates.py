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


LONG = f"""\
name: long
description: one fast service that lives for days
ttl: {{default: 2d, max: 3d}}
services:
  web:
    health: {{tcp: true, interval: 100ms, timeout: 20s}}
    process:
      command: [{PY}, -m, http.server, "${{services.web.port}}", --bind, 127.0.0.1]
"""

# Answers its health check with 503 and why, until a file `cured` appears beside the
# template; logs one line per check.
CURABLE_SERVICE = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

CURE = Path(os.environ["CURE"])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = CURE.exists()
        body = b"ok\\n" if ok else b"database unreachable: connection refused\\n"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        print("api: GET /healthz", flush=True)


print("api: starting", flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

CURABLE = f"""\
name: curable
description: an API that is unhealthy until its database (a file) is there
ttl: {{default: 1h, max: 2h}}
services:
  api:
    health: {{http: /healthz, interval: 100ms, timeout: 2s}}
    endpoints: [{{name: home, path: /}}]
    process:
      command: [{PY}, "${{template.dir}}/curable.py"]
      env: {{CURE: "${{template.dir}}/cured"}}
"""


def install_curable(folder) -> None:
    (folder / "curable.py").write_text(CURABLE_SERVICE)
    (folder / "curable.yaml").write_text(CURABLE)
