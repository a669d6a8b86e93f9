"""A thin HTTP client of the API that turns every failure into a CliError.

It speaks through the standard library's `urllib` (which honours HTTP(S)_PROXY and
NO_PROXY as httpx and kubectl do): importing httpx alone costs a CLI command about 80 ms,
more than the command itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from launchbay.cli.context import Context
from launchbay.cli.errors import HTTP_EXIT, CliError, ExitStatus

if TYPE_CHECKING:
    from collections.abc import Iterator
    from http.client import HTTPResponse

# An answer bigger than this is not one the API gives: refuse it rather than fill memory.
MAX_ANSWER = 64 * 1024 * 1024


class Client:
    def __init__(self, context: Context, *, timeout: float = 30.0) -> None:
        self.context = context
        self._timeout = timeout
        self._headers = {"Accept": "application/json", "User-Agent": "bay"}
        if context.token:
            self._headers["Authorization"] = f"Bearer {context.token}"

    def close(self) -> None:
        """Nothing to close: each request has its own connection."""

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self._request("POST", path, body=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self._request("PUT", path, body=body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    def stream_lines(self, path: str, **params: Any) -> Iterator[str]:
        with self._open("GET", path, params=params, timeout=None) as response:
            try:
                for raw in response:
                    yield raw.decode("utf-8", "replace").rstrip("\r\n")
            except OSError as e:
                raise self._unreachable(e) from e

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        with self._open(method, path, params=params, body=body) as response:
            try:
                content = response.read(MAX_ANSWER + 1)
            except OSError as e:
                raise self._unreachable(e) from e
        if len(content) > MAX_ANSWER:
            raise CliError(f"the server's answer to {path} is over {MAX_ANSWER} bytes")
        return json.loads(content) if content else None

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
    ) -> HTTPResponse:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = self.context.server.rstrip("/") + path
        if query:
            url += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        # The server's URL comes from the user's own context or flags; any scheme but
        # http(s) fails in urlopen and is said to be unreachable.
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        wait = self._timeout if timeout == -1.0 else timeout
        try:
            response: HTTPResponse = urllib.request.urlopen(request, timeout=wait)  # noqa: S310
        except urllib.error.HTTPError as e:
            with e:
                raise self._error(e.code, e.reason, e.read(MAX_ANSWER)) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise self._unreachable(e) from e
        return response

    def _unreachable(self, error: Exception) -> CliError:
        cause = getattr(error, "reason", error)
        return CliError(
            f"cannot reach the Launchbay server at {self.context.server} ({cause}): "
            "is `bay server` running? (context, BAY_SERVER or --server say where)",
            ExitStatus.UNREACHABLE,
        )

    def _error(self, status: int, reason: str, content: bytes) -> CliError:
        text = content.decode("utf-8", "replace")
        try:
            answer = json.loads(text)
            detail = answer.get("detail", text) if isinstance(answer, dict) else text
        except ValueError:
            detail = text or reason
        if status == 401:
            return CliError(refused(self.context, str(detail)), ExitStatus.UNAUTHORIZED)
        return CliError(str(detail), HTTP_EXIT.get(status, ExitStatus.ERROR))


def refused(context: Context, detail: str) -> str:
    """A 401 as one line: which token, from where, was refused by which server, and how to
    mend it. Every command's 401 comes through here, `bay login`'s too."""
    server, origin = context.server, context.token_origin
    login = f"bay login {server} --with-token"
    if context.name != "default":
        login += f" --name {context.name}"
    fix = {
        "flag": "pass a token it knows to --token, or leave --token out",
        "env": "unset BAY_TOKEN to use the context's, or set it to a token the server knows",
        "input": f"check the token, then run `{login}` again",
    }.get(origin.kind, f"run `{login}`, or set BAY_TOKEN")
    if context.server_origin.kind in ("flag", "env") and origin.kind == "context":
        fix += f" (the server comes from {context.server_origin}, the token does not)"
    if origin.kind == "none":
        return f"no token for {server}: {fix}"  # the server's detail speaks of headers
    return f"the token from {origin} is not accepted by {server} ({detail}): {fix}"


def answers(url: str, *, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers at `url` (any status will do): a GET on /healthz."""
    request = urllib.request.Request(url.rstrip("/") + "/healthz", method="GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310
            return True
    except urllib.error.HTTPError as e:
        with e:
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _param(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
