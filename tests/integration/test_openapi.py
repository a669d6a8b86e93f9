"""The published OpenAPI description matches what the API answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import ROOT

CONFIG = ROOT / "tests" / "schemathesis" / "schemathesis.toml"


def test_schemathesis_with_every_check_finds_nothing_to_report(server, tmp_path):
    """Generated requests over every operation, every check on, including the conformance of
    status codes, content types, headers and bodies to the description; bounded in time."""
    st = Path(sys.executable).parent / "st"
    result = subprocess.run(
        [
            str(st), "--config-file", str(CONFIG), "--no-color", "run",
            f"{server.url}/openapi.json",
            "--header", f"Authorization: Bearer {server.admin_token}",
            "--checks", "all", "--max-time", "45", "--workers", "1",
        ],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "generated" in result.stdout


def documented(spec: dict, method: str, path: str) -> set[str]:
    return set(spec["paths"][path][method.lower()]["responses"])


def test_every_status_the_api_answers_is_documented_for_its_operation(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    seen: list[tuple[str, str, int]] = []
    with server.client() as c, server.client("lb_not-a-token") as stranger:
        calls = [
            (c, "POST", "/api/v1/spaces", {"json": {"name": "doc", "template": "demo"}}),
            (c, "POST", "/api/v1/spaces", {"json": {"name": "doc", "template": "demo"}}),
            (c, "POST", "/api/v1/spaces", {"json": {"name": "Bad", "template": "demo"}}),
            (c, "POST", "/api/v1/spaces", {"content": b"x" * 2_000_000}),
            (c, "GET", "/api/v1/spaces/{name}", {"name": "nowhere"}),
            (stranger, "GET", "/api/v1/spaces", {}),
            (c, "POST", "/api/v1/spaces/{name}/extend", {"name": "doc", "json": {"by": "99999w"}}),
            (c, "GET", "/api/v1/spaces", {"headers": {"Host": "elsewhere.example"}}),
            (c, "POST", "/api/v1/spaces",
             {"json": {"name": "k8s", "template": "demo", "runtime": "kubernetes"}}),
        ]  # fmt: skip
        for client, method, path, options in calls:
            url = path.replace("{name}", options.pop("name", ""))
            response = client.request(method, url, **options)
            seen.append((method, path, response.status_code))
    assert {status for _, _, status in seen} >= {201, 400, 401, 404, 409, 413, 422}
    for method, path, status in seen:
        assert str(status) in documented(spec, method, path), (method, path, status)
    # The caps on followed logs (tests/integration/test_shared_server.py) answer 429:
    assert "429" in documented(spec, "GET", "/api/v1/spaces/{name}/logs/{service}")
