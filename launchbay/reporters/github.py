"""A pull request's space, told to GitHub: a deployment of the environment
`launchbay/<space>` at the PR's head commit, whose status follows the space (in progress,
success with the environment's URL, failure with the reason, inactive once deleted), and
optionally one PR comment kept up to date (edited, never repeated).

Through githubkit, which checks each request body against GitHub's own schema before it
is sent. GitHub's answers are translated once, here: 5xx, rate limits and no answer are
`TemporaryError` (tried again later), any other refusal is `Refused` with what GitHub said.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub
from githubkit.exception import GitHubException, RequestFailed
from pydantic import ValidationError

from launchbay.domain.errors import Refused, TemporaryError
from launchbay.domain.webhooks import SpaceReport


@dataclass(frozen=True)
class Held:
    """What GitHub gave back that the next report needs: the deployment of the head
    commit, and the comment to edit."""

    deployment_id: int | None = None
    deployment_sha: str = ""
    comment_id: int | None = None


class GitHubReporter:
    def __init__(self, *, token: str, api_url: str, comment: bool, timeout: float = 10) -> None:
        self.comment = comment
        self._github = GitHub(
            token,
            base_url=api_url.rstrip("/") + "/",
            timeout=timeout,
            http_cache=False,
            auto_retry=False,  # the caller tries again later, with backoff
            user_agent="launchbay",
        )

    def report(self, report: SpaceReport, held: Held) -> Held:
        """Tell the pull request about its space; what to keep for the next report."""
        owner, _, repo = report.repository.partition("/")
        rest = self._github.rest
        with _translated(f"{report.repository}#{report.number}"):
            deployment_id, sha = held.deployment_id, held.deployment_sha
            if report.state is not None:
                if deployment_id is None or sha != report.head_sha:
                    made = rest.repos.create_deployment(
                        owner,
                        repo,
                        data={
                            "ref": report.head_sha,
                            "environment": report.environment,
                            "description": f"Launchbay space {report.space}",
                            "auto_merge": False,
                            "required_contexts": [],
                            "transient_environment": True,
                            "production_environment": False,
                        },
                    )
                    deployment_id, sha = _id(made.json()), report.head_sha
                rest.repos.create_deployment_status(
                    owner,
                    repo,
                    deployment_id,
                    state=report.state,
                    environment_url=report.environment_url,
                    log_url=report.link,
                    description=report.description,
                    environment=report.environment,
                )
            comment_id = held.comment_id
            if self.comment:
                if comment_id is None:
                    posted = rest.issues.create_comment(
                        owner, repo, report.number, data={"body": report.comment()}
                    )
                    comment_id = _id(posted.json())
                else:
                    rest.issues.update_comment(
                        owner, repo, comment_id, data={"body": report.comment()}
                    )
        return Held(deployment_id, sha, comment_id)

    def close(self) -> None:
        self._github.__exit__(None, None, None)


def _id(answer: Any) -> int:
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
        raise Refused("GitHub answered without an id")
    return int(answer["id"])


@contextmanager
def _translated(where: str) -> Iterator[None]:
    """GitHub's answers as Launchbay's errors, naming the pull request."""
    try:
        yield
    except RequestFailed as e:
        status, said = e.response.status_code, _message(e.response)
        if status >= 500 or status == 429 or "rate limit" in said.lower():
            raise TemporaryError(f"GitHub answered {status} for {where}: {said}", delay=30) from e
        raise Refused(
            f"GitHub refused the report for {where} ({status}: {said}); the token needs "
            "write access to deployments and to issues or pull requests"
        ) from e
    except ValidationError as e:
        raise Refused(f"a report for {where} is not what GitHub accepts: {e}") from e
    except GitHubException as e:
        raise TemporaryError(f"GitHub did not answer for {where}: {e}", delay=30) from e


def _message(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text)[:200]
    return str(body.get("message", ""))[:200] if isinstance(body, dict) else ""
