"""GitHub webhooks: configuration, signatures, and what a delivery asks for. Pure."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from launchbay.domain.errors import Invalid
from launchbay.domain.interpolation import interpolate
from launchbay.domain.names import MAX_SPACE_NAME, SpaceName, parse_space_name

MAX_BODY = 1024 * 1024  # bytes; GitHub caps payloads at 25 MB, PR events are far smaller


class RepoMapping(BaseModel):
    """What a repository's pull requests become."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str
    service: str = Field(description="the service this repository builds")
    version: str = Field(default="sha-${head_sha}", description="its version for a commit")
    space: str = Field(default="pr-${number}-${repo}", description="the space name pattern")
    runtime: str | None = Field(
        default=None, description="the first of the server's runtimes that can run the template"
    )
    ttl: str | None = None
    allow_forks: bool = False
    follow_main: bool = Field(default=False, description="redeploy on pushes to the default branch")


class GitHubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str | None = Field(default=None, description="environment variable with the secret")
    secret_file: str | None = Field(default=None, description="file with the secret")
    max_body: int = MAX_BODY
    repositories: dict[str, RepoMapping] = {}


class Verdict(StrEnum):
    APPLY = "apply"  # create or update the PR's space
    DELETE = "delete"  # the PR closed
    REDEPLOY_MAIN = "redeploy-main"  # a push to the default branch
    IGNORE = "ignore"


@dataclass(frozen=True)
class PullRequestEvent:
    repository: str
    number: int
    action: str
    head_sha: str
    updated_at: datetime
    from_fork: bool


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    space: SpaceName | None = None
    version: str | None = None


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def repository_of(payload: dict[str, Any]) -> str:
    repo = payload.get("repository")
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name if isinstance(name, str) else ""


def parse_pull_request(payload: dict[str, Any]) -> PullRequestEvent:
    try:
        pr = payload["pull_request"]
        base_repo = payload["repository"]["full_name"]
        head_repo = (pr["head"].get("repo") or {}).get("full_name", "")
        return PullRequestEvent(
            repository=base_repo,
            number=int(payload.get("number", pr["number"])),
            action=str(payload["action"]),
            head_sha=str(pr["head"]["sha"]),
            updated_at=datetime.fromisoformat(str(pr["updated_at"]).replace("Z", "+00:00")),
            from_fork=bool(head_repo) and head_repo != base_repo,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise Invalid(f"not a pull_request payload: missing or bad {e}") from e


def space_name(pattern: str, *, number: int, repository: str) -> SpaceName:
    """The space name for a PR: the pattern filled in, then made a valid DNS label."""
    owner, _, repo = repository.partition("/")
    raw = interpolate(pattern, {"number": str(number), "repo": repo, "owner": owner})
    label = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:MAX_SPACE_NAME].rstrip("-")
    return parse_space_name(label)


def decide(
    event: PullRequestEvent,
    mapping: RepoMapping,
    *,
    recorded_state: str | None,
    recorded_updated_at: datetime | None,
) -> Decision:
    """What a pull_request delivery asks for, given the state the newest delivery recorded.

    GitHub may deliver late or out of order: a delivery older than the recorded state
    changes nothing, so a late `synchronize` never brings back the space of a closed PR.
    """
    name = space_name(mapping.space, number=event.number, repository=event.repository)
    if recorded_updated_at is not None and event.updated_at < recorded_updated_at:
        return Decision(
            Verdict.IGNORE,
            f"stale delivery: PR #{event.number} changed since ({recorded_state})",
            name,
        )
    if event.action == "closed":
        return Decision(Verdict.DELETE, f"PR #{event.number} closed", name)
    if event.action not in ("opened", "reopened", "synchronize"):
        return Decision(Verdict.IGNORE, f"pull_request action {event.action!r} needs nothing", name)
    if recorded_state == "closed" and event.action == "synchronize":
        return Decision(Verdict.IGNORE, f"PR #{event.number} is closed", name)
    if event.from_fork and not mapping.allow_forks:
        return Decision(
            Verdict.IGNORE, "pull requests from forks are not allowed for this repository", name
        )
    version = interpolate(
        mapping.version,
        {"head_sha": event.head_sha, "number": str(event.number), "short_sha": event.head_sha[:7]},
    )
    return Decision(
        Verdict.APPLY, f"PR #{event.number} {event.action} at {event.head_sha[:7]}", name, version
    )
