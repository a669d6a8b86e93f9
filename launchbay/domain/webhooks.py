"""GitHub webhooks: configuration, signatures, payloads, and what a delivery asks for. Pure.

A pull request's deliveries may come late, twice or out of order. Each one is read into
the state it tells (open at a head commit, or closed); the newest state wins, and one job
per pull request makes its space match it (`engine.webhooks`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from launchbay.domain.durations import instant
from launchbay.domain.errors import Invalid
from launchbay.domain.interpolation import interpolate
from launchbay.domain.names import MAX_SPACE_NAME, SpaceName, parse_space_name

MAX_BODY = 1024 * 1024  # bytes; GitHub caps payloads at 25 MB, PR events are far smaller
# The variables a mapping's `space` and `version` patterns may name.
SPACE_VARIABLES = ("number", "repo", "owner")
VERSION_VARIABLES = ("head_sha", "short_sha", "number")
REPOSITORY = r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"


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

    @field_validator("space")
    @classmethod
    def _space_variables(cls, value: str) -> str:
        return _only(value, SPACE_VARIABLES)

    @field_validator("version")
    @classmethod
    def _version_variables(cls, value: str) -> str:
        return _only(value, VERSION_VARIABLES)


def _only(pattern: str, allowed: tuple[str, ...]) -> str:
    for name in re.findall(r"\$\{([^}]*)\}", pattern):
        if name not in allowed:
            raise ValueError(
                f"unknown ${{{name}}}; use {', '.join('${' + a + '}' for a in allowed)}"
            )
    return pattern


class ReportConfig(BaseModel):
    """Telling each pull request about its space, through GitHub's API (as a deployment of
    an environment `launchbay/<space>`, and optionally one comment kept up to date)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_env: str | None = Field(default=None, description="environment variable with a token")
    token_file: str | None = Field(default=None, description="file with a token")
    api_url: str = Field(
        default="https://api.github.com",
        pattern=r"^https?://[^\s]+$",
        description="GitHub Enterprise Server: https://HOST/api/v3",
    )
    comment: bool = Field(default=True, description="keep one comment on the PR up to date")
    portal_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="the portal's address as people reach it (default: the server's)",
    )


class GitHubConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str | None = Field(default=None, description="environment variable with the secret")
    secret_file: str | None = Field(default=None, description="file with the secret")
    max_body: int = Field(default=MAX_BODY, ge=1024, le=25 * 1024 * 1024)
    report: ReportConfig | None = None
    # By "owner/name", matched as GitHub does: without regard to case.
    repositories: dict[str, RepoMapping] = {}

    @field_validator("repositories")
    @classmethod
    def _case_insensitive(cls, value: dict[str, RepoMapping]) -> dict[str, RepoMapping]:
        folded: dict[str, RepoMapping] = {}
        for name, mapping in value.items():
            if not re.match(REPOSITORY, name):
                raise ValueError(f"{name!r} is not a repository's owner/name")
            if name.lower() in folded:
                raise ValueError(f"{name!r} is listed twice (names are not case-sensitive)")
            folded[name.lower()] = mapping
        return folded

    def mapping(self, repository: str) -> RepoMapping | None:
        return self.repositories.get(repository.lower())


class DeliveryStatus(StrEnum):
    ACCEPTED = "accepted"  # recorded; its work is queued or running
    DONE = "done"
    FAILED = "failed"
    IGNORED = "ignored"  # nothing to do, and why
    REJECTED = "rejected"  # the payload was malformed

    @property
    def redeliverable(self) -> bool:
        """GitHub's Redeliver sends the same id again: processed anew unless it was done
        or is being done."""
        return self in (DeliveryStatus.FAILED, DeliveryStatus.REJECTED, DeliveryStatus.IGNORED)


class PrState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


# -- payloads: only what Launchbay reads, each field checked ---------------------------------

Sha = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")]
Number = Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Repo(_Payload):
    full_name: Annotated[StrictStr, Field(pattern=REPOSITORY)]


class _BaseRepo(_Repo):
    default_branch: Annotated[StrictStr, Field(max_length=255)] = "main"


class _Head(_Payload):
    sha: Sha
    # null once the fork it came from was deleted; unknown is treated as a fork.
    repo: _Repo | None = None


class _PullRequest(_Payload):
    number: Number
    updated_at: AwareDatetime
    head: _Head


class PullRequestPayload(_Payload):
    action: Annotated[StrictStr, Field(max_length=64)]
    number: Number
    pull_request: _PullRequest
    repository: _BaseRepo


class PushPayload(_Payload):
    ref: Annotated[StrictStr, Field(max_length=255)]
    after: Sha
    repository: _BaseRepo


T = TypeVar("T", bound=BaseModel)


def read_payload(kind: type[T], data: dict[str, Any], event: str) -> T:
    """The payload as `kind`, or Invalid naming each field that is missing or wrong."""
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        problems = [
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg'].lower()}"
            for item in e.errors(include_url=False)[:5]
        ]
        raise Invalid(f"not a valid {event} payload: {'; '.join(problems)}") from e


def repository_of(payload: dict[str, Any]) -> str:
    repo = payload.get("repository")
    name = repo.get("full_name") if isinstance(repo, dict) else None
    return name[:255] if isinstance(name, str) else ""


@dataclass(frozen=True)
class PullRequestEvent:
    repository: str  # lower case: GitHub's names are not case-sensitive
    number: int
    action: str
    head_sha: str
    updated_at: datetime
    from_fork: bool

    @classmethod
    def of(cls, payload: PullRequestPayload) -> PullRequestEvent:
        base = payload.repository.full_name.lower()
        head = payload.pull_request.head.repo
        return cls(
            repository=base,
            number=payload.number,
            action=payload.action,
            head_sha=payload.pull_request.head.sha,
            updated_at=payload.pull_request.updated_at,
            # Fails closed: a head repository GitHub no longer names is someone else's.
            from_fork=head is None or head.full_name.lower() != base,
        )

    @property
    def origin(self) -> str:
        return origin_of(self.repository, self.number)


def origin_of(repository: str, number: int) -> str:
    """What a space made for a pull request records as where it came from."""
    return f"github:{repository.lower()}#{number}"


# -- signatures ------------------------------------------------------------------------------


def signature_matches(secret: bytes, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex>` over the raw body, compared in constant time, as
    bytes (a header with any other character simply does not match)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").encode("utf-8", "replace"))


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


# -- names -----------------------------------------------------------------------------------


def space_name(pattern: str, *, number: int, repository: str) -> SpaceName:
    """The space name for a PR: the pattern filled in, then made a valid DNS label. A name
    too long is cut and ends in a hash of the whole, so two long names never meet."""
    owner, _, repo = repository.partition("/")
    raw = interpolate(pattern, {"number": str(number), "repo": repo, "owner": owner})
    label = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    if len(label) > MAX_SPACE_NAME:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
        label = f"{label[: MAX_SPACE_NAME - 7].rstrip('-')}-{digest}"
    return parse_space_name(label)


def version_of(mapping: RepoMapping, *, head_sha: str, number: int) -> str:
    """The service's version for a pull request's head commit (the mapping's pattern)."""
    return interpolate(
        mapping.version,
        {"head_sha": head_sha, "number": str(number), "short_sha": head_sha[:7]},
    )


# -- what a delivery asks for ------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A pull request's state as recorded: which delivery told it, and when."""

    state: PrState
    action: str
    head_sha: str
    updated_at: datetime


@dataclass(frozen=True)
class Decision:
    """What to record of a delivery: the state it tells, or None and why not."""

    state: PrState | None
    reason: str


STATE_OF = {
    "opened": PrState.OPEN,
    "reopened": PrState.OPEN,
    "synchronize": PrState.OPEN,
    "closed": PrState.CLOSED,
}


def newer(event: PullRequestEvent, recorded: Recorded | None) -> bool:
    """Whether the delivery tells a state no older than the recorded one.

    GitHub's `updated_at` has one-second resolution. Within one second an `opened` is never
    newer than anything else (a PR's first state: a `synchronize` of the same second came
    after it); otherwise the later arrival wins. The same state told again (a redelivery)
    counts as newer, so it is converged once more."""
    if recorded is None or event.updated_at > recorded.updated_at:
        return True
    if event.updated_at < recorded.updated_at:
        return False
    return event.action != "opened" or recorded.action == "opened"


def decide(event: PullRequestEvent, mapping: RepoMapping, recorded: Recorded | None) -> Decision:
    """What a pull_request delivery asks for, given the state recorded so far."""
    state = STATE_OF.get(event.action)
    if state is None:
        return Decision(None, f"pull_request action {event.action!r} needs nothing")
    if event.from_fork and not mapping.allow_forks:
        return Decision(None, "pull requests from forks are not allowed for this repository")
    if not newer(event, recorded):
        assert recorded is not None
        return Decision(
            None,
            f"stale delivery: PR #{event.number} is {recorded.state} since "
            f"{instant(recorded.updated_at)} ({recorded.action})",
        )
    if state is PrState.CLOSED:
        return Decision(state, f"PR #{event.number} closed")
    return Decision(state, f"PR #{event.number} {event.action} at {event.head_sha[:7]}")


# -- telling a pull request about its space ----------------------------------------------------

DeploymentState = Literal["error", "failure", "inactive", "in_progress", "success"]
# A deployment's state on GitHub for each phase of the space (None: nothing to tell).
DEPLOYMENT_STATE: dict[str, DeploymentState] = {
    "pending": "in_progress",
    "provisioning": "in_progress",
    "ready": "success",
    "degraded": "success",
    "failed": "failure",
    "deleting": "inactive",
    "deleted": "inactive",
}


@dataclass(frozen=True)
class SpaceReport:
    """What a pull request is told of its space, at its head commit."""

    repository: str
    number: int
    head_sha: str
    space: str
    phase: str  # the space's phase, or "refused" when no space could be made
    reason: str
    endpoints: tuple[tuple[str, str], ...]  # (service/endpoint, url)
    expires_at: datetime | None
    link: str  # the space's page in the portal

    @property
    def state(self) -> DeploymentState | None:
        return "error" if self.phase == "refused" else DEPLOYMENT_STATE.get(self.phase)

    @property
    def key(self) -> str:
        """What was told: a report is sent again only when this changes."""
        return f"{self.head_sha}:{self.phase}"

    @property
    def environment(self) -> str:
        return f"launchbay/{self.space}"

    @property
    def environment_url(self) -> str:
        """The first endpoint, else the space's page."""
        return self.endpoints[0][1] if self.endpoints and self.phase == "ready" else self.link

    @property
    def description(self) -> str:
        """One line, within GitHub's 140 characters."""
        said = {
            "ready": "ready",
            "degraded": f"degraded: {self.reason}",
            "failed": f"failed: {self.reason}",
            "refused": f"no space: {self.reason}",
            "deleting": "being deleted",
            "deleted": "deleted",
        }.get(self.phase, f"{self.phase}")
        line = said.splitlines()[0] if said else self.phase
        return line if len(line) <= 140 else line[:139] + "…"

    def comment(self) -> str:
        """The PR comment: phase, endpoints, expiry and a link, in Markdown."""
        lines = [
            f"**Launchbay** space [`{self.space}`]({self.link}): **{self.phase}** "
            f"at {self.head_sha[:7]}"
        ]
        if self.reason and self.phase not in ("ready", "deleted"):
            lines.append(f"> {self.reason.splitlines()[0][:500]}")
        if self.endpoints and self.phase in ("ready", "degraded"):
            lines.append("")
            lines += [f"- {name}: {url}" for name, url in self.endpoints]
        if self.expires_at is not None and self.phase not in ("deleting", "deleted"):
            lines.append("")
            lines.append(f"Expires {self.expires_at.strftime('%Y-%m-%d %H:%M UTC')}.")
        lines.append(f"<!-- launchbay:{self.space} -->")
        return "\n".join(lines)
