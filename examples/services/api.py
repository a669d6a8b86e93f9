"""The API: counts visits in the key-value store and says hello. GET /api/greeting, /healthz."""

import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KV_URL = os.environ["KV_URL"]
GREETING = os.environ.get("GREETING", "Hello")
VERSION = os.environ.get("LAUNCHBAY_VERSION", "dev")


def kv_get(key: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{KV_URL}/kv/{key}", timeout=2) as response:
            return json.load(response)["value"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def kv_put(key: str, value: str) -> None:
    request = urllib.request.Request(f"{KV_URL}/kv/{key}", data=value.encode(), method="PUT")
    urllib.request.urlopen(request, timeout=2).close()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            if self.path == "/healthz":
                with urllib.request.urlopen(f"{KV_URL}/healthz", timeout=2):
                    return self.reply(200, {"status": "ok", "kv": KV_URL})
            if self.path == "/api/greeting":
                visits = int(kv_get("visits") or "0") + 1
                kv_put("visits", str(visits))
                return self.reply(
                    200,
                    {"greeting": GREETING, "visits": visits, "api_version": VERSION, "kv": KV_URL},
                )
        except OSError as e:
            return self.reply(503, {"error": f"key-value store unreachable: {e}"})
        self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"api: {self.command} {self.path}", flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"api {VERSION} listening on 127.0.0.1:{port}, key-value store at {KV_URL}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
