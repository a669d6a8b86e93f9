"""GitHub deliveries: verified, de-duplicated, recorded, then acted on in the background.

`accept` does everything that decides the HTTP answer and is quick (signature, replay,
parsing, recording the pull request's newest state); the returned work, run after the
answer, creates, updates or deletes the space.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from launchbay.domain.auth import Actor
from launchbay.domain.errors import Invalid, LaunchbayError, NotFound, Unauthorized
from launchbay.domain.webhooks import (
    Decision,
    GitHubConfig,
    RepoMapping,
    Verdict,
    decide,
    parse_pull_request,
    repository_of,
    signature_matches,
)
from launchbay.engine.deploys import Deploys
from launchbay.engine.engine import Engine
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.store import queries as q
from launchbay.store.models import Delivery, PullRequest

log = logging.getLogger(__name__)

# Webhooks act with the authority of the server's configuration, which an admin wrote.
GITHUB = Actor(name="github", is_admin=True)


@dataclass(frozen=True)
class Accepted:
    delivery: str
    status: str  # accepted, duplicate, ignored
    reason: str
    work: Callable[[], None] | None = None


class GitHubHooks:
    def __init__(
        self,
        *,
        engine: Engine,
        requests: Requests,
        deploys: Deploys,
        config: GitHubConfig,
        secret: bytes,
    ) -> None:
        self.engine = engine
        self.requests = requests
        self.deploys = deploys
        self.config = config
        self.secret = secret

    def accept(self, *, body: bytes, headers: Mapping[str, str]) -> Accepted:
        if not signature_matches(self.secret, body, headers.get("x-hub-signature-256")):
            raise Unauthorized("X-Hub-Signature-256 is missing or does not match the body")
        delivery_id = headers.get("x-github-delivery", "").strip()
        if not delivery_id or len(delivery_id) > 64:
            raise Invalid("X-GitHub-Delivery header missing or too long")
        event = headers.get("x-github-event", "").strip()
        with self.engine.store.read() as s:
            seen = q.delivery(s, delivery_id)
        if seen is not None:
            return Accepted(
                delivery_id, "duplicate", f"already received at {seen.received_at.isoformat()}"
            )
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self._record(delivery_id, event, "", "rejected", f"malformed JSON: {e}")
            raise Invalid(f"the body is not a JSON object: {e}") from e
        repository = repository_of(payload)
        mapping = self.config.repositories.get(repository)
        if mapping is None:
            return self._ignore(
                delivery_id,
                event,
                repository,
                f"repository {repository or '?'!r} is not configured",
            )
        if event == "pull_request":
            return self._pull_request(delivery_id, payload, mapping)
        if event == "push":
            return self._push(delivery_id, payload, mapping, repository)
        return self._ignore(delivery_id, event, repository, f"event {event or '?'!r} needs nothing")

    # -- pull requests ---------------------------------------------------------------------

    def _pull_request(
        self, delivery_id: str, payload: dict[str, Any], mapping: RepoMapping
    ) -> Accepted:
        try:
            event = parse_pull_request(payload)
        except Invalid as e:
            self._record(delivery_id, "pull_request", repository_of(payload), "rejected", e.message)
            raise
        with self.engine.store.write() as s:
            if q.delivery(s, delivery_id) is not None:  # a concurrent replay won the race
                return Accepted(delivery_id, "duplicate", "already received")
            pr = q.pull_request(s, event.repository, event.number)
            decision = decide(
                event,
                mapping,
                recorded_state=pr.state if pr else None,
                recorded_updated_at=pr.updated_at if pr else None,
            )
            if decision.verdict is not Verdict.IGNORE and decision.space is not None:
                state = "closed" if decision.verdict is Verdict.DELETE else "open"
                self._remember(
                    s,
                    pr,
                    event.repository,
                    event.number,
                    state=state,
                    head_sha=event.head_sha,
                    updated_at=event.updated_at,
                    space=decision.space,
                )
            status = "ignored" if decision.verdict is Verdict.IGNORE else "accepted"
            s.add(
                Delivery(
                    id=delivery_id,
                    event="pull_request",
                    repository=event.repository,
                    received_at=self.engine.clock(),
                    status=status,
                    reason=decision.reason,
                )
            )
        if decision.verdict is Verdict.IGNORE:
            return Accepted(delivery_id, "ignored", decision.reason)
        source = f"github {event.repository}#{event.number} ({event.action} {event.head_sha[:7]})"
        return Accepted(
            delivery_id,
            "accepted",
            decision.reason,
            lambda: self._act(
                delivery_id, decision, mapping, event.repository, event.number, source
            ),
        )

    def _act(
        self,
        delivery_id: str,
        decision: Decision,
        mapping: RepoMapping,
        repository: str,
        number: int,
        source: str,
    ) -> None:
        """Run after the answer. Looks at the PR's state once more: a close recorded since this
        delivery was accepted wins, so a late `synchronize` never resurrects the space."""
        assert decision.space is not None
        with self.engine.store.read() as s:
            pr = q.pull_request(s, repository, number)
        if decision.verdict is Verdict.APPLY and pr is not None and pr.state == "closed":
            return self._finish(delivery_id, "ignored", "the pull request closed meanwhile")
        try:
            if decision.verdict is Verdict.DELETE:
                self._delete(decision.space, reason=source)
            else:
                want = CreateSpace(
                    name=decision.space,
                    template=mapping.template,
                    runtime=mapping.runtime,
                    ttl=mapping.ttl,
                    sets={f"{mapping.service}.version": decision.version or ""},
                )
                self.deploys.apply(want, actor=GITHUB, source=source)
        except LaunchbayError as e:
            log.warning("delivery %s: %s failed: %s", delivery_id, decision.verdict, e.message)
            return self._finish(delivery_id, "failed", e.message)
        self._finish(delivery_id, "done", decision.reason)

    def _delete(self, space: str, *, reason: str) -> None:
        # NotFound: nothing to delete, the space never came up or is gone already.
        with contextlib.suppress(NotFound):
            self.requests.delete(space, actor=GITHUB, reason=reason)

    # -- pushes ----------------------------------------------------------------------------

    def _push(
        self, delivery_id: str, payload: dict[str, Any], mapping: RepoMapping, repository: str
    ) -> Accepted:
        default = (payload.get("repository") or {}).get("default_branch", "main")
        ref = payload.get("ref", "")
        if not mapping.follow_main or ref != f"refs/heads/{default}":
            why = (
                "follow_main is off for this repository"
                if not mapping.follow_main
                else f"{ref} is not the default branch"
            )
            return self._ignore(delivery_id, "push", repository, why)
        after = str(payload.get("after", ""))[:7]
        self._record(delivery_id, "push", repository, "accepted", f"push {after} to {default}")
        return Accepted(
            delivery_id,
            "accepted",
            f"push {after} to {default}",
            lambda: self._redeploy_main(
                delivery_id, mapping, f"push {after} to {repository}@{default}"
            ),
        )

    def _redeploy_main(self, delivery_id: str, mapping: RepoMapping, source: str) -> None:
        """Redeploy the service in every space of the template that follows main (no override)."""
        with self.engine.store.read() as s:
            names = [
                x.name
                for x in q.spaces_of_template(s, mapping.template)
                if "version" not in x.overrides.get(mapping.service, {})
            ]
        failures = []
        for name in names:
            try:
                self.deploys.deploy(
                    name,
                    service=mapping.service,
                    version=None,
                    sets={},
                    actor=GITHUB,
                    source=source,
                )
            except LaunchbayError as e:
                failures.append(f"{name}: {e.message}")
        self._finish(
            delivery_id,
            "failed" if failures else "done",
            "; ".join(failures) or f"redeployed {mapping.service} in {len(names)} space(s)",
        )

    # -- records ---------------------------------------------------------------------------

    def _ignore(self, delivery_id: str, event: str, repository: str, reason: str) -> Accepted:
        self._record(delivery_id, event, repository, "ignored", reason)
        return Accepted(delivery_id, "ignored", reason)

    def _record(
        self, delivery_id: str, event: str, repository: str, status: str, reason: str
    ) -> None:
        with self.engine.store.write() as s:
            if q.delivery(s, delivery_id) is None:
                s.add(
                    Delivery(
                        id=delivery_id,
                        event=event or "?",
                        repository=repository,
                        received_at=self.engine.clock(),
                        status=status,
                        reason=reason,
                    )
                )

    def _finish(self, delivery_id: str, status: str, reason: str) -> None:
        with self.engine.store.write() as s:
            delivery = q.delivery(s, delivery_id)
            if delivery is not None:
                delivery.status, delivery.reason = status, reason

    def _remember(
        self,
        s: Session,
        pr: PullRequest | None,
        repository: str,
        number: int,
        *,
        state: str,
        head_sha: str,
        updated_at: Any,
        space: str,
    ) -> None:
        if pr is None:
            pr = PullRequest(repository=repository, number=number)
            s.add(pr)
        pr.state, pr.head_sha, pr.updated_at, pr.space = state, head_sha, updated_at, space
