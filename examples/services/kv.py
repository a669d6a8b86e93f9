"""A tiny in-memory key-value store over HTTP: GET/PUT /kv/<key>, GET /healthz."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA: dict[str, str] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            return self.reply(200, {"status": "ok", "keys": len(DATA)})
        if self.path.startswith("/kv/"):
            with LOCK:
                value = DATA.get(self.path[4:])
            return self.reply(200 if value is not None else 404, {"value": value})
        self.reply(404, {"error": "not found"})

    def do_PUT(self) -> None:
        if not self.path.startswith("/kv/"):
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length", "0"))
        with LOCK:
            DATA[self.path[4:]] = self.rfile.read(length).decode()
        self.reply(204, None)

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"kv: {self.command} {self.path}", flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"kv listening on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
