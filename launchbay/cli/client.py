"""A thin HTTP client of the API that turns every failure into a CliError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from launchbay.cli.context import Context
from launchbay.cli.errors import HTTP_EXIT, CliError, ExitStatus

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx


class Client:
    def __init__(self, context: Context, *, timeout: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {context.token}"} if context.token else {}
        self.context = context
        self._http = httpx.Client(base_url=context.server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self._request("POST", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self._request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    def stream_lines(self, path: str, **params: Any) -> Iterator[str]:
        import httpx

        try:
            with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._error(response)
                yield from response.iter_lines()
        except httpx.TransportError as e:
            raise self._unreachable(e) from e

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise self._unreachable(e) from e
        if response.status_code >= 400:
            raise self._error(response)
        return response.json() if response.content else None

    def _unreachable(self, error: Exception) -> CliError:
        return CliError(
            f"cannot reach the Launchbay server at {self.context.server} "
            f"({error.__class__.__name__}): "
            "is `bay server` running? (context, BAY_SERVER or --server say where)",
            ExitStatus.UNREACHABLE,
        )

    def _error(self, response: httpx.Response) -> CliError:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text or response.reason_phrase
        if response.status_code == 401 and not self.context.token:
            detail = f"{detail} (no token found: run `bay login` or set BAY_TOKEN)"
        status = HTTP_EXIT.get(response.status_code, ExitStatus.ERROR)
        return CliError(str(detail), status)
