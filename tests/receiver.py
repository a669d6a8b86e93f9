"""A real HTTP server that receives notices and checks their signatures with its own code
(not Launchbay's), as a team's webhook endpoint would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A real HTTP server that records what it is sent and checks JSON signatures."""

    def __init__(self, secret: bytes = b"") -> None:
        self.secret = secret  # a JSON channel's signing key
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if self.path == "/json" and not receiver.verify(self.headers, body):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.got.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verify(self, headers: Any, body: bytes) -> bool:
        """Standard Webhooks: v1,base64(HMAC-SHA256(key, "id.timestamp.body"))."""
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(self.secret, signed, hashlib.sha256).digest()).decode()
        given = [s.removeprefix("v1,") for s in headers["webhook-signature"].split()]
        return any(hmac.compare_digest(expected, g) for g in given)

    def kinds(self, path: str) -> list[str]:
        return [body.get("type", "slack") for p, body in self.got if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
