"""A real HTTP server that receives notices and checks their signatures with its own code
(the Standard Webhooks library, not Launchbay's), as a team's webhook endpoint would."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    """A real HTTP server that records what it is sent and checks JSON signatures."""

    def __init__(self, secret: bytes | str = b"") -> None:
        self.secret = secret  # a JSON channel's signing key
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        # (path, webhook-id) of every request, answered or not.
        self.ids: list[tuple[str, str]] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.ids.append((self.path, self.headers.get("webhook-id", "")))
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
        """With the Standard Webhooks library itself (raw bytes, or a `whsec_` key)."""
        try:
            Webhook(self.secret).verify(body, dict(headers.items()))
        except WebhookVerificationError:
            return False
        return True

    def kinds(self, path: str) -> list[str]:
        return [body.get("type", "slack") for p, body in self.got if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
