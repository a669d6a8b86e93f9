"""A local stand-in for GitHub's REST API that holds every request to GitHub's published
OpenAPI description (the npm package @octokit/openapi, fetched once from the npm registry
and cached): the operation must exist for the method and path, its path parameters must
have their types, and its JSON body must validate against the operation's schema. A
request GitHub would refuse is answered 422 as GitHub does, and recorded as a problem.
A valid one is answered with the operation's own example from the description.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

PACKAGE = "@octokit/openapi"
VERSION = "23.0.2"
DESCRIPTION = "package/generated/api.github.com.json"
CACHE = Path.home() / ".cache" / "launchbay-tests"


def description() -> dict[str, Any]:
    """GitHub's OpenAPI description of api.github.com, as the npm package ships it."""
    cached = CACHE / f"octokit-openapi-{VERSION}.json"
    if not cached.exists():
        url = f"https://registry.npmjs.org/{PACKAGE}/-/openapi-{VERSION}.tgz"
        with urllib.request.urlopen(url, timeout=120) as answer:
            packed = answer.read()
        with tarfile.open(fileobj=io.BytesIO(packed)) as tar:
            member = tar.extractfile(DESCRIPTION)
            assert member is not None, f"{PACKAGE} {VERSION} has no {DESCRIPTION}"
            data = member.read()
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(cached)
    loaded: dict[str, Any] = json.loads(cached.read_text())
    return loaded


@dataclass
class Call:
    method: str
    path: str
    operation: str
    body: Any
    problems: list[str] = field(default_factory=list)


class GitHubStandIn:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", r"([^/]+)", path) + "$"), path)
            for path in spec["paths"]
        ]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def problems(self) -> list[str]:
        with self._lock:
            return [f"{c.method} {c.path}: {p}" for c in self.calls for p in c.problems]

    def of(self, operation: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.operation == operation]

    # -- one request -------------------------------------------------------------------------

    def answer(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        call = Call(method, path, "", None)
        with self._lock:
            self.calls.append(call)
        for pattern, template in self._routes:
            match = pattern.match(path)
            if match and method.lower() in self.spec["paths"][template]:
                break
        else:
            call.problems.append("no such operation in GitHub's API")
            return 404, {"message": "Not Found"}
        operation = self.spec["paths"][template][method.lower()]
        call.operation = operation.get("operationId", "")
        names = re.findall(r"\{([^}]+)\}", template)
        params = {p["name"]: p for p in self._parameters(template, operation)}
        for name, value in zip(names, match.groups(), strict=True):
            schema = params.get(name, {}).get("schema", {})
            if schema.get("type") == "integer" and not value.isdigit():
                call.problems.append(f"path parameter {name}={value!r} is not an integer")
        body_spec = operation.get("requestBody")
        if raw:
            try:
                call.body = json.loads(raw)
            except ValueError:
                call.problems.append("the body is not JSON")
        if body_spec is not None:
            schema = body_spec["content"]["application/json"]["schema"]
            if call.body is None and body_spec.get("required"):
                call.problems.append("the operation needs a body")
            elif call.body is not None:
                validator = jsonschema.Draft4Validator(
                    {**schema, "components": self.spec["components"]}
                )
                for error in validator.iter_errors(call.body):
                    where = "/".join(str(p) for p in error.absolute_path) or "body"
                    call.problems.append(f"{where}: {error.message}")
        if call.problems:
            return 422, {"message": "Validation Failed", "errors": call.problems}
        return self._example(operation)

    def _parameters(self, template: str, operation: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for p in [
            *self.spec["paths"][template].get("parameters", []),
            *operation.get("parameters", []),
        ]:
            if "$ref" in p:
                p = self._resolve(p["$ref"])
            found.append(p)
        return found

    def _example(self, operation: dict[str, Any]) -> tuple[int, Any]:
        status = next(code for code in operation["responses"] if code.startswith("2"))
        response = operation["responses"][status]
        if "$ref" in response:
            response = self._resolve(response["$ref"])
        content = response.get("content", {}).get("application/json", {})
        for example in content.get("examples", {}).values():
            if "$ref" in example:
                example = self._resolve(example["$ref"])
            return int(status), example.get("value")
        return int(status), content.get("example")

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        resolved: dict[str, Any] = node
        return resolved

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                if path.startswith("/api/v3/"):  # GitHub Enterprise Server's prefix
                    path = path.removeprefix("/api/v3")
                status, body = standin.answer(self.command, path, raw)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
