"""GitHub deliveries: verified, recorded as durable work, then converged.

`accept` does what decides the HTTP answer, in one transaction: the signature, the
delivery id (a done one is a duplicate; a failed, refused or ignored one is processed
again, which is what GitHub's Redeliver asks), the payload's fields, and the state the
delivery tells. A pull request's state is recorded per repository and number, newest
wins (`domain.webhooks.newer`), and bumps the PR's generation: the PR row is the job.
Workers on every replica claim PRs owed work under a lease and make the PR's space match
its newest state, one PR at a time, so a close that comes before its open, or a reopen
right after a close, ends as the PR is. Push deliveries are jobs of their own. Nothing
owed is lost by a crash: it is in the store, and is claimed again after a restart.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from launchbay.domain.auth import Actor
from launchbay.domain.durations import format_duration, instant, parse_duration
from launchbay.domain.errors import (
    Conflict,
    Invalid,
    LaunchbayError,
    Refused,
    TemporaryError,
    Unauthorized,
)
from launchbay.domain.jobs import backoff
from launchbay.domain.template import Template
from launchbay.domain.webhooks import (
    DeliveryStatus,
    GitHubConfig,
    PrState,
    PullRequestEvent,
    PullRequestPayload,
    PushPayload,
    Recorded,
    RepoMapping,
    SpaceReport,
    decide,
    origin_of,
    read_payload,
    repository_of,
    signature_matches,
    space_name,
    version_of,
)
from launchbay.engine.audit import Audit
from launchbay.engine.catalog import TemplateCatalog
from launchbay.engine.deploys import Deploys
from launchbay.engine.engine import Engine
from launchbay.engine.requests import CreateSpace, Requests
from launchbay.reporters.github import GitHubReporter, Held
from launchbay.store import deliveries as store
from launchbay.store import queries as q
from launchbay.store.models import Delivery, PullRequest

log = logging.getLogger(__name__)

# Webhooks act with the authority of the server's configuration, which an admin wrote.
GITHUB = Actor(name="github", is_admin=True)
LEASE = timedelta(seconds=30)
# A PR whose space is busy (being deleted before a reopen) waits this many times, with
# backoff up to a few seconds each: minutes in all.
MAX_WAITS = 60
WAIT_CAP = timedelta(seconds=5)
# Work starts once deliveries have paused for BURST_GAP seconds, or after BURST_WAIT.
BURST_GAP, BURST_WAIT = 0.02, 0.2
DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
EVENT = re.compile(r"^[a-z_]{1,64}$")


@dataclass(frozen=True)
class Accepted:
    delivery: str
    status: str  # accepted, duplicate, ignored
    reason: str


@dataclass(frozen=True)
class _Owed:
    """What a claimed pull request asks for, read once."""

    id: int
    repository: str
    number: int
    state: PrState
    action: str
    head_sha: str
    space: str
    generation: int
    attempts: int

    @classmethod
    def of(cls, pr: PullRequest) -> _Owed:
        return cls(
            pr.id,
            pr.repository,
            pr.number,
            pr.state,
            pr.action,
            pr.head_sha,
            pr.space,
            pr.generation,
            pr.attempts,
        )

    @property
    def origin(self) -> str:
        return origin_of(self.repository, self.number)

    @property
    def source(self) -> str:
        return f"github {self.repository}#{self.number} ({self.action} {self.head_sha[:7]})"


class GitHubHooks:
    def __init__(
        self,
        *,
        engine: Engine,
        requests: Requests,
        deploys: Deploys,
        config: GitHubConfig,
        secret: bytes,
        reporter: GitHubReporter | None = None,
        portal_url: str = "",
        audit: Audit | None = None,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.requests = requests
        self.deploys = deploys
        self.config = config
        self.secret = secret
        self.reporter = reporter
        self.portal_url = portal_url.rstrip("/")
        self.owner = f"{engine.settings.node}/{secrets.token_hex(4)}"
        self._wake = threading.Event()
        self._stopping = threading.Event()

    # -- the configuration, checked before the server starts ---------------------------------

    def problems(self) -> list[str]:
        """Each repository mapping that could never work, with the key that is wrong."""
        return mapping_problems(self.config, self.engine.catalog, self.requests.runtime_for)

    # -- the answer ------------------------------------------------------------------------

    def accept(self, *, body: bytes, headers: Mapping[str, str]) -> Accepted:
        if not signature_matches(self.secret, body, headers.get("x-hub-signature-256")):
            raise Unauthorized(
                "X-Hub-Signature-256 is missing or does not match the body", challenge=None
            )
        delivery_id = headers.get("x-github-delivery", "").strip()
        if not DELIVERY_ID.match(delivery_id):
            raise Invalid("X-GitHub-Delivery must be 1 to 64 letters, digits, '.', ':' or '-'")
        event = headers.get("x-github-event", "").strip()
        if not EVENT.match(event):
            raise Invalid("X-GitHub-Event must name an event, e.g. pull_request")
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except RecursionError:
            return self._reject(delivery_id, event, "", "the body nests too deeply")
        except ValueError as e:
            return self._reject(delivery_id, event, "", f"the body is not a JSON object: {e}")
        repository = repository_of(payload)
        mapping = self.config.mapping(repository)
        if event == "ping":
            return self._ignore(delivery_id, event, repository, "ping: the hook reaches Launchbay")
        if mapping is None:
            why = f"repository {repository or '?'!r} is not configured"
            return self._ignore(delivery_id, event, repository, why)
        if event == "pull_request":
            return self._pull_request(delivery_id, payload, mapping)
        if event == "push":
            return self._push(delivery_id, payload, mapping)
        return self._ignore(delivery_id, event, repository, f"event {event!r} needs nothing")

    def _pull_request(
        self, delivery_id: str, payload: dict[str, Any], mapping: RepoMapping
    ) -> Accepted:
        try:
            event = PullRequestEvent.of(read_payload(PullRequestPayload, payload, "pull_request"))
        except Invalid as e:
            return self._reject(delivery_id, "pull_request", repository_of(payload), e.message)
        name = space_name(mapping.space, number=event.number, repository=event.repository)
        with self.engine.store.write(urgent=True) as s:
            row = self._take(s, delivery_id, "pull_request", event.repository)
            if row is None:
                return self._duplicate(delivery_id)
            pr = store.pull_request(s, event.repository, event.number)
            if pr is None:
                pr = store.add_pull_request(s, event.repository, event.number)
            decision = decide(event, mapping, _recorded(pr))
            row.reason = decision.reason
            if decision.state is None:
                row.status = DeliveryStatus.IGNORED
                return Accepted(delivery_id, "ignored", decision.reason)
            pr.state, pr.head_sha, pr.action = decision.state, event.head_sha, event.action
            pr.updated_at, pr.space = event.updated_at, name
            pr.generation += 1
            pr.run_after, pr.attempts, pr.reason = self.engine.clock(), 0, ""
            s.flush()
            row.status = DeliveryStatus.ACCEPTED
            row.pull_request_id, row.generation = pr.id, pr.generation
        self._wake.set()
        return Accepted(delivery_id, "accepted", decision.reason)

    def _push(self, delivery_id: str, payload: dict[str, Any], mapping: RepoMapping) -> Accepted:
        try:
            push = read_payload(PushPayload, payload, "push")
        except Invalid as e:
            return self._reject(delivery_id, "push", repository_of(payload), e.message)
        repository = push.repository.full_name.lower()
        branch = push.repository.default_branch
        if not mapping.follow_main:
            why = "follow_main is off for this repository"
            return self._ignore(delivery_id, "push", repository, why)
        if push.ref != f"refs/heads/{branch}":
            why = f"{push.ref} is not the default branch ({branch})"
            return self._ignore(delivery_id, "push", repository, why)
        reason = f"push {push.after[:7]} to {repository}@{branch}"
        with self.engine.store.write(urgent=True) as s:
            row = self._take(s, delivery_id, "push", repository)
            if row is None:
                return self._duplicate(delivery_id)
            row.status, row.reason = DeliveryStatus.ACCEPTED, reason
            row.work = {"repository": repository, "source": reason}
        self._wake.set()
        return Accepted(delivery_id, "accepted", reason)

    def _take(self, s: Session, delivery_id: str, event: str, repository: str) -> Delivery | None:
        """The delivery's row, new or taken again for a redelivery; None if it is a
        duplicate (done, or being done). Of concurrent copies of one id exactly one gets
        the row: the others wait for its transaction, then see it."""
        now = self.engine.clock()
        row = store.delivery(s, delivery_id, for_update=True)
        if row is not None and not row.status.redeliverable:
            return None
        if row is None:
            row = Delivery(id=delivery_id, status=DeliveryStatus.ACCEPTED, received_at=now)
            row.event, row.repository, row.reason = event, repository[:255], ""
            return row if store.add(s, row) else None
        row.event, row.repository, row.received_at = event, repository[:255], now
        row.finished_at = row.pull_request_id = row.generation = None
        row.work = row.lease_owner = row.lease_until = None
        return row

    def _duplicate(self, delivery_id: str) -> Accepted:
        with self.engine.store.read() as s:
            row = store.delivery(s, delivery_id)
            said = f"{row.status} at {instant(row.received_at)}" if row else "received"
        return Accepted(delivery_id, "duplicate", f"already {said}")

    def _ignore(self, delivery_id: str, event: str, repository: str, reason: str) -> Accepted:
        return self._settle(delivery_id, event, repository, DeliveryStatus.IGNORED, reason)

    def _reject(self, delivery_id: str, event: str, repository: str, reason: str) -> Accepted:
        self._settle(delivery_id, event, repository, DeliveryStatus.REJECTED, reason)
        raise Invalid(reason)

    def _settle(
        self,
        delivery_id: str,
        event: str,
        repository: str,
        status: DeliveryStatus,
        reason: str,
    ) -> Accepted:
        with self.engine.store.write(urgent=True) as s:
            row = self._take(s, delivery_id, event, repository)
            if row is None:
                return self._duplicate(delivery_id)
            row.status, row.reason, row.finished_at = status, reason, self.engine.clock()
        return Accepted(delivery_id, status.value, reason)

    # -- the work ----------------------------------------------------------------------------

    def start(self) -> None:
        with self.engine.store.write() as s:
            store.release(s, node=self.engine.settings.node)
        self.engine.threads.start("github", self._run)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()  # its thread returns; the engine's stop joins it
        if self.reporter is not None:
            self.reporter.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.work_once()
            except LaunchbayError as e:
                log.warning("webhook work: %s; trying again shortly", e.message)
                busy = False
            except Exception:  # the loop's boundary: log, and go on at the next tick
                log.exception("webhook work failed; trying again shortly")
                busy = False
            if not busy and self._wake.wait(0.5):
                self._settle_burst()

    def _settle_burst(self) -> None:
        """Woken by a delivery: let the rest of a burst be answered first (GitHub waits
        for those answers; the work can wait a moment), up to a fifth of a second."""
        deadline = time.monotonic() + BURST_WAIT
        self._wake.clear()
        while time.monotonic() < deadline and self._wake.wait(BURST_GAP):
            self._wake.clear()

    def work_once(self) -> bool:
        """Converge one pull request or run one push delivery; False if nothing is owed."""
        now = self.engine.clock()
        with self.engine.store.read() as s:
            if not store.owed(s, now=now):
                return self.report_once()
        with self.engine.store.write() as s:
            pr = store.claim_pull_request(s, owner=self.owner, now=now, lease=LEASE)
            owed = _Owed.of(pr) if pr is not None else None
        if owed is not None:
            self._converge(owed)
            return True
        with self.engine.store.write() as s:
            push = store.claim_push(s, owner=self.owner, now=now, lease=LEASE)
            work = (push.id, dict(push.work or {})) if push is not None else None
        if work is not None:
            self._redeploy_main(*work)
            return True
        return self.report_once()

    def _converge(self, owed: _Owed) -> None:
        mapping = self.config.mapping(owed.repository)
        try:
            if mapping is None:
                raise Refused(f"repository {owed.repository!r} is no longer configured")
            reason = self._open(owed, mapping) if owed.state is PrState.OPEN else self._close(owed)
        except (TemporaryError, Conflict) as e:
            if owed.attempts + 1 >= MAX_WAITS:
                self._converged(owed, DeliveryStatus.FAILED, f"gave up waiting: {e.message}")
            else:
                self._wait(owed, e)
        except LaunchbayError as e:
            log.warning("%s: %s", owed.source, e.message)
            self._converged(owed, DeliveryStatus.FAILED, e.message)
        except Exception:  # a bug fails this pull request's work only, with its traceback
            log.exception("%s: converging failed unexpectedly", owed.source)
            self._converged(owed, DeliveryStatus.FAILED, "internal error; see the server log")
        else:
            self._converged(owed, DeliveryStatus.DONE, reason)

    def _open(self, owed: _Owed, mapping: RepoMapping) -> str:
        version = version_of(mapping, head_sha=owed.head_sha, number=owed.number)
        want = CreateSpace(
            name=owed.space,
            template=mapping.template,
            runtime=mapping.runtime,
            ttl=mapping.ttl,
            sets={f"{mapping.service}.version": version},
            origin=owed.origin,
            repository=owed.repository,
        )
        _, created = self.deploys.apply(want, actor=GITHUB, source=owed.source)
        return f"{'created' if created else 'updated'} space {owed.space} at {owed.head_sha[:7]}"

    def _close(self, owed: _Owed) -> str:
        with self.engine.store.read() as s:
            space = q.live_space(s, owed.space)
            origin = space.origin if space is not None else None
        if space is None:
            return f"PR #{owed.number} closed; it has no space"
        if origin != owed.origin:
            raise Refused(_not_ours(owed.space, owed.number, origin))
        self.requests.delete(
            owed.space, actor=GITHUB, reason=f"PR #{owed.number} closed", origin=owed.origin
        )
        return f"PR #{owed.number} closed; deleting space {owed.space}"

    def _wait(self, owed: _Owed, error: LaunchbayError) -> None:
        # Quick at first (a delete takes seconds), then as any job's retries.
        asked = error.delay if isinstance(error, TemporaryError) else 0.0
        delay = min(backoff(owed.attempts + 1, asked=asked), WAIT_CAP)
        with self.engine.store.write() as s:
            pr = s.get(PullRequest, owed.id)
            if pr is None or pr.lease_owner != self.owner:
                return
            pr.lease_owner = pr.lease_until = None
            pr.attempts += 1
            pr.run_after = self.engine.clock() + delay
            pr.reason = f"waiting: {error.message}"

    def _converged(self, owed: _Owed, status: DeliveryStatus, reason: str) -> None:
        now = self.engine.clock()
        with self.engine.store.write() as s:
            pr = s.get(PullRequest, owed.id)
            if pr is None or pr.lease_owner != self.owner:
                return  # its lease lapsed and another worker took it
            pr.lease_owner = pr.lease_until = None
            pr.applied = max(pr.applied, owed.generation)
            pr.attempts = 0
            pr.reason = "" if status is DeliveryStatus.DONE else reason
            store.settle_deliveries(
                s, pr, generation=owed.generation, status=status, reason=reason, now=now
            )
        if self.audit is not None:
            self.audit.pull_request(
                owed.origin,
                space=owed.space,
                opened=owed.state is PrState.OPEN,
                now=now,
                ok=status is DeliveryStatus.DONE,
            )

    def _redeploy_main(self, delivery_id: str, work: dict[str, Any]) -> None:
        """Redeploy the service in every space of the template that follows main (no
        override of its version)."""
        mapping = self.config.mapping(str(work.get("repository", "")))
        failures = []
        names: list[str] = []
        if mapping is None:
            failures.append("the repository is no longer configured")
        else:
            with self.engine.store.read() as s:
                names = [
                    x.name
                    for x in q.spaces_of_template(s, mapping.template)
                    if "version" not in x.overrides.get(mapping.service, {})
                ]
            for name in names:
                try:
                    self.deploys.deploy(
                        name,
                        service=mapping.service,
                        version=None,
                        sets={},
                        actor=GITHUB,
                        source=str(work.get("source", "push")),
                    )
                except LaunchbayError as e:
                    failures.append(f"{name}: {e.message}")
        service = mapping.service if mapping else "?"
        with self.engine.store.write() as s:
            row = store.delivery(s, delivery_id)
            if row is None or row.lease_owner != self.owner:
                return
            row.lease_owner = row.lease_until = None
            row.finished_at = self.engine.clock()
            row.status = DeliveryStatus.FAILED if failures else DeliveryStatus.DONE
            row.reason = "; ".join(failures) or f"redeployed {service} in {len(names)} space(s)"

    # -- telling each pull request about its space ---------------------------------------------

    def report_once(self) -> bool:
        """Tell one pull request what became of its space since it was last told; False if
        none has news (or nothing is configured to tell)."""
        if self.reporter is None:
            return False
        now = self.engine.clock()
        news: tuple[int, SpaceReport] | None = None
        ended: list[int] = []  # closed pull requests that never had a space: nothing to tell
        with self.engine.store.read() as s:  # an idle pass takes no write lock
            for pr in store.to_report(s, now=now):
                report = self._report_of(s, pr)
                if report is None and pr.state is PrState.CLOSED:
                    ended.append(pr.id)
                elif report is not None and report.key != pr.reported:
                    news = (pr.id, report)
                    break
        if news is None and not ended:
            return False
        with self.engine.store.write() as s:
            for done_id in ended:
                if (done := s.get(PullRequest, done_id)) is not None:
                    done.reported = f"{done.head_sha}:deleted"
            if news is None:
                return False
            pr_id, report = news
            leased = store.lease(s, pr_id, owner=self.owner, now=now, ttl=LEASE)
            if leased is None or leased.head_sha != report.head_sha:
                return True  # another worker has it, or it moved on: look again
            held = Held(leased.deployment_id, leased.deployment_sha, leased.comment_id)
        try:
            held = self.reporter.report(report, held)
        except TemporaryError as e:
            log.warning("telling %s: %s; trying again later", report.repository, e.message)
            self._reported(pr_id, None, held, after=now + timedelta(seconds=e.delay))
        except LaunchbayError as e:
            log.warning("telling %s#%s: %s", report.repository, report.number, e.message)
            self._reported(pr_id, report.key, held)  # not again for this state
        else:
            self._reported(pr_id, report.key, held)
        return True

    def _report_of(self, s: Session, pr: PullRequest) -> SpaceReport | None:
        space = q.space_of_origin(s, pr.space, origin_of(pr.repository, pr.number))
        if space is not None:
            phase, reason, expires_at = space.phase.value, space.reason, space.expires_at
            if phase == "ready" and space.observed_generation < space.generation:
                phase = "provisioning"  # the head commit is still being deployed
            endpoints = tuple(
                (f"{x.name}/{name}", url)
                for x in space.services
                for name, url in sorted(x.endpoints.items())
            )
        elif pr.state is PrState.OPEN and pr.reason:  # no space could be made: say why
            phase, reason, expires_at, endpoints = "refused", pr.reason, None, ()
        else:
            return None
        return SpaceReport(
            repository=pr.repository,
            number=pr.number,
            head_sha=pr.head_sha,
            space=pr.space,
            phase=phase,
            reason=reason,
            endpoints=endpoints,
            expires_at=expires_at,
            link=f"{self.portal_url}/spaces/{pr.space}",
        )

    def _reported(
        self, pr_id: int, key: str | None, held: Held, *, after: datetime | None = None
    ) -> None:
        with self.engine.store.write() as s:
            pr = s.get(PullRequest, pr_id)
            if pr is None or pr.lease_owner != self.owner:
                return
            pr.lease_owner = pr.lease_until = None
            pr.deployment_id, pr.deployment_sha = held.deployment_id, held.deployment_sha
            pr.comment_id, pr.report_after = held.comment_id, after
            if key is not None:
                pr.reported = key


def _recorded(pr: PullRequest) -> Recorded | None:
    if not pr.generation:  # a row just made: nothing recorded yet
        return None
    return Recorded(pr.state, pr.action, pr.head_sha, pr.updated_at)


def _not_ours(name: str, number: int, origin: str | None) -> str:
    made = f"by {origin}" if origin else "by hand"
    return (
        f"space {name!r} was made {made}, not for PR #{number}: it is left alone "
        "(change the repository's `space` pattern to give PR spaces other names)"
    )


def mapping_problems(
    config: GitHubConfig,
    catalog: TemplateCatalog,
    runtime_for: Callable[[Template, str | None], object] | None = None,
) -> list[str]:
    """Each repository mapping that could never work, with the key that is wrong; the
    runtimes are asked only when `runtime_for` is given (a server that has made them)."""
    problems = []
    for repository, mapping in config.repositories.items():
        where = f"github.repositories.{repository}"
        try:
            template = catalog.get(mapping.template)
        except LaunchbayError as e:
            problems.append(f"{where}.template: {e.message}")
            continue
        if mapping.service not in template.services:
            known = ", ".join(template.services)
            problems.append(
                f"{where}.service: template {template.name!r} has no service "
                f"{mapping.service!r} (it has {known})"
            )
        if runtime_for is not None:
            try:
                runtime_for(template, mapping.runtime)
            except LaunchbayError as e:
                problems.append(f"{where}.runtime: {e.message}")
        if mapping.ttl is not None:
            try:
                ttl = parse_duration(mapping.ttl)
            except Invalid as e:
                problems.append(f"{where}.ttl: {e.message}")
            else:
                if ttl > template.ttl.max:
                    problems.append(
                        f"{where}.ttl: {mapping.ttl} is over template {template.name!r}'s "
                        f"maximum of {format_duration(template.ttl.max)}"
                    )
    return problems
