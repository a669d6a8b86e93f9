"""A template whose service's version picks the script it runs, so a version can be missing."""

import sys

APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s " + os.environ.get("LAUNCHBAY_VERSION", "")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

print("app %s starting", flush=True)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

TEMPLATE = f"""\
name: versioned
description: an app whose version is the script it runs, behind a front that calls it
ttl: {{default: 1h, max: 4h}}
services:
  app:
    version: v1
    health: {{http: /, interval: 100ms, timeout: 10s}}
    endpoints: [{{name: home, path: /}}]
    process:
      command: [{sys.executable}, "${{template.dir}}/app-${{services.app.version}}.py"]
  front:
    depends_on: [app]
    health: {{tcp: true, interval: 100ms, timeout: 10s}}
    process:
      command: [{sys.executable}, -m, http.server, "${{services.front.port}}", --bind, 127.0.0.1]
      env: {{APP_URL: "${{services.app.url}}"}}
"""


def install(folder, versions=("v1", "v2", "main")):
    (folder / "versioned.yaml").write_text(TEMPLATE)
    for version in versions:
        (folder / f"app-{version}.py").write_text(APP.replace("%s", version))
