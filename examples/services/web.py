"""The web front: a page that shows what the API (and, behind it, the store) answered."""

import html
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_URL = os.environ["API_URL"]
SPACE = os.environ.get("SPACE_NAME", "?")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{space} - Launchbay demo</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>{greeting} from space <code>{space}</code></h1>
<p id="visits">Visits: <strong>{visits}</strong></p>
<p>Counted by the API (<code>{api_version}</code>) in the key-value store at <code>{kv}</code>.</p>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            return self.reply(200, "text/plain", "ok")
        if self.path == "/":
            try:
                with urllib.request.urlopen(f"{API_URL}/api/greeting", timeout=3) as response:
                    data = json.load(response)
            except OSError as e:
                return self.reply(502, "text/plain", f"the API at {API_URL} did not answer: {e}")
            page = PAGE.format(
                space=html.escape(SPACE), **{k: html.escape(str(v)) for k, v in data.items()}
            )
            return self.reply(200, "text/html; charset=utf-8", page)
        self.reply(404, "text/plain", "not found")

    def reply(self, status: int, content_type: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"web: {self.command} {self.path}", flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"web listening on 127.0.0.1:{port}, API at {API_URL}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
