"""Workers: run the jobs the store holds, on this server, under a lease.

A dispatcher claims jobs while a slot is free (woken when this server queues one, and
polling for the others'); a heartbeat renews the leases of the jobs running here and
cancels those whose space is being deleted or that another worker took over. Every job
runs through `_run`, the one place that records its outcome: done, retried later with
backoff (temporary failures), or failed with the reason.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from launchbay.domain.errors import Conflict, LaunchbayError, TemporaryError
from launchbay.domain.events import EventKind
from launchbay.domain.jobs import MAX_ATTEMPTS, JobKind, JobState, backoff
from launchbay.domain.phases import Phase
from launchbay.engine.metrics import EngineMetrics
from launchbay.engine.threads import Threads
from launchbay.store import jobs as store_jobs
from launchbay.store.db import Store
from launchbay.store.models import Space

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """A job stopped because its space is being deleted or the server is stopping."""


@dataclass(frozen=True)
class Claimed:
    """A job this server is running."""

    id: int
    space_id: int
    space: str
    kind: JobKind
    args: Mapping[str, Any]
    attempts: int


Handler = Callable[[Claimed], None]
# Records a line in the space's timeline: (space id, event kind, message).
Recorder = Callable[[int, EventKind, str], None]


def wall_clock() -> datetime:
    """Leases and backoff use the real time, whatever clock the engine's policies use."""
    return datetime.now(UTC)


class Workers:
    def __init__(
        self,
        store: Store,
        *,
        node: str,
        slots: int,
        record: Recorder,
        metrics: EngineMetrics | None = None,
        threads: Threads | None = None,
        lease: timedelta = timedelta(seconds=30),
        poll: float = 0.5,
        heartbeat: float = 2.0,
    ) -> None:
        self.store = store
        self.node = node
        self.owner = f"{node}/{uuid.uuid4().hex[:12]}"
        self._record = record
        self._metrics = metrics or EngineMetrics()
        self.threads = threads or Threads(stopping=threading.Event(), metrics=self._metrics)
        self.stopping = self.threads.stopping
        self._slots = slots
        self._lease, self._poll, self._heartbeat_every = lease, poll, heartbeat
        self._handlers: dict[JobKind, Handler] = {}
        self._give_up: dict[JobKind, Callable[[Claimed, str], None]] = {}
        self._lock = threading.Lock()
        self._running: dict[int, Claimed] = {}
        # The cancel event of each space's current job (a new one per job, so that a
        # cancel meant for one job never reaches the next), and of each running job.
        self._cancels: dict[int, threading.Event] = {}
        self._job_cancels: dict[int, threading.Event] = {}
        self._wake = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="launchbay-job")
        self._started = False

    def handle(
        self,
        kind: JobKind,
        handler: Handler,
        *,
        give_up: Callable[[Claimed, str], None] | None = None,
    ) -> None:
        """Run `handler` for jobs of `kind`; `give_up` is told when retries ran out."""
        self._handlers[kind] = handler
        if give_up is not None:
            self._give_up[kind] = give_up

    def start(self) -> None:
        """Take back what an earlier run of this server left running, then start working."""
        if self._started:
            return
        self._started = True
        with self.store.write() as s:
            stale = store_jobs.stale_owners(s, node=self.node, current=self.owner)
            released = store_jobs.release(s, owners=stale, now=wall_clock())
        if released:
            log.info(
                "%d job(s) left running by an earlier run of this server queued again", released
            )
        self.threads.start("dispatcher", self._dispatch)
        self.threads.start("heartbeat", self._beat)

    def stop(self) -> None:
        """Stop claiming, let running jobs notice (they check `stopping`), and put back
        what they left unfinished so that the next server start runs it again."""
        self.stopping.set()
        self._wake.set()
        self.threads.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            with self.store.write() as s:
                store_jobs.release(s, owners=[self.owner], now=wall_clock())
        except LaunchbayError as e:
            log.warning("unfinished jobs not put back (their leases will lapse): %s", e.message)

    def wake_after_commit(self, session: Session) -> None:
        """Wake the dispatcher once the transaction that queued a job has committed."""
        event.listen(session, "after_commit", lambda _s: self._wake.set(), once=True)

    def cancel(self, space_id: int) -> threading.Event:
        """Set while the space's current job should stop (the space is being deleted)."""
        with self._lock:
            return self._cancels.setdefault(space_id, threading.Event())

    def forget(self, space_id: int) -> None:
        with self._lock:
            self._cancels.pop(space_id, None)

    def running(self) -> list[Claimed]:
        with self._lock:
            return list(self._running.values())

    # -- the dispatcher and the heartbeat --------------------------------------------------

    def _dispatch(self) -> None:
        while not self.stopping.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            while not self.stopping.is_set():
                with self._lock:
                    if len(self._running) >= self._slots:
                        break
                claimed = self._claim()
                if claimed is None:
                    break
                with self._lock:
                    self._running[claimed.id] = claimed
                self._pool.submit(self._run, claimed)

    def _claim(self) -> Claimed | None:
        try:
            if not self._anything_to_claim():
                return None
            with self.store.write() as s:
                job = store_jobs.claim(
                    s, node=self.node, owner=self.owner, clock=wall_clock, lease=self._lease
                )
                if job is None:
                    return None
                name = s.scalar(select(Space.name).where(Space.id == job.space_id)) or "?"
                return Claimed(job.id, job.space_id, name, job.kind, dict(job.args), job.attempts)
        except LaunchbayError as e:
            log.warning("cannot claim jobs now: %s", e.message)
            self.stopping.wait(self._poll)
            return None

    def _anything_to_claim(self) -> bool:
        try:
            with self.store.read() as s:
                return store_jobs.claimable(s, node=self.node, now=wall_clock())
        except OperationalError:
            return True  # the claim's write says what is wrong with the store

    def _beat(self) -> None:
        while not self.stopping.wait(self._heartbeat_every):
            running = self.running()
            if not running:
                continue
            try:
                with self.store.write() as s:
                    held = store_jobs.renew(
                        s,
                        owner=self.owner,
                        job_ids=[c.id for c in running],
                        now=wall_clock(),
                        lease=self._lease,
                    )
                    deleting = set(
                        s.scalars(
                            select(Space.id).where(
                                Space.id.in_({c.space_id for c in running}),
                                Space.phase == Phase.DELETING.value,
                            )
                        )
                    )
            except LaunchbayError as e:
                log.warning("job leases not renewed this time: %s", e.message)
                continue
            for claimed in running:
                lost = claimed.id not in held
                if not lost and not (
                    claimed.space_id in deleting and claimed.kind is not JobKind.DELETE
                ):
                    continue
                with self._lock:
                    event = self._job_cancels.get(claimed.id)
                if event is None:
                    continue  # it ended since `running` was read: nothing was lost
                if lost:
                    log.warning(
                        "job %s of space %s: its lease lapsed and another worker took it over; "
                        "stopping it here",
                        claimed.id,
                        claimed.space,
                    )
                event.set()

    # -- the one wrapper -------------------------------------------------------------------

    def _run(self, claimed: Claimed) -> None:
        what = f"job {claimed.id} ({claimed.kind}) of space {claimed.space}"
        with self._lock:
            cancel = self._cancels[claimed.space_id] = threading.Event()
            self._job_cancels[claimed.id] = cancel
        try:
            try:
                self._handlers[claimed.kind](claimed)
            finally:  # from here on the heartbeat has nothing of this job to stop
                with self._lock:
                    self._job_cancels.pop(claimed.id, None)
        except Cancelled:
            if self.stopping.is_set():
                return  # put back by stop(): the next start runs it again
            self._end(claimed, JobState.DONE, "stopped: the space is being deleted")
        except (TemporaryError, Conflict) as e:
            # Unavailable (retry after its delay) or changed meanwhile (retry re-reads).
            if claimed.attempts >= MAX_ATTEMPTS:
                reason = f"gave up after {claimed.attempts} attempts: {e.message}"
                log.warning("%s: %s", what, reason)
                self._end(claimed, JobState.FAILED, reason, give_up=True)
            else:
                self._retry(claimed, e)
        except LaunchbayError as e:
            log.warning("%s failed: %s", what, e.message.splitlines()[0])
            self._end(claimed, JobState.FAILED, e.message)
        except Exception as e:  # the job boundary: one job's bug must not stop the others
            log.exception("%s failed unexpectedly", what)
            self._end(claimed, JobState.FAILED, f"unexpected error: {type(e).__name__}: {e}")
        else:
            self._end(claimed, JobState.DONE, "")
        finally:
            with self._lock:
                self._running.pop(claimed.id, None)
            self._wake.set()

    def _retry(self, claimed: Claimed, error: TemporaryError | Conflict) -> None:
        delay = backoff(claimed.attempts, asked=getattr(error, "delay", 0.0))
        after = wall_clock() + delay
        message = (
            f"{claimed.kind} will be tried again in {delay.total_seconds():.0f}s "
            f"(attempt {claimed.attempts} of {MAX_ATTEMPTS}): {error.message}"
        )
        log.info("space %s: %s", claimed.space, message)
        self._metrics.jobs_retried.labels(claimed.kind.value).inc()
        with self.store.write() as s:
            store_jobs.retry(s, claimed.id, owner=self.owner, after=after, reason=error.message)
            self.wake_after_commit(s)
        self._safely_record(claimed, EventKind.RETRY, message)

    def _end(
        self, claimed: Claimed, state: JobState, reason: str, *, give_up: bool = False
    ) -> None:
        self._metrics.jobs_finished.labels(claimed.kind.value, state.value).inc()
        if give_up and claimed.kind in self._give_up:
            try:
                self._give_up[claimed.kind](claimed, reason)
            except LaunchbayError as e:
                reason += f" (and recording it failed: {e.message})"
        try:
            with self.store.write() as s:
                store_jobs.finish(
                    s,
                    claimed.id,
                    owner=self.owner,
                    state=state,
                    reason=reason,
                    now=wall_clock(),
                    forget=claimed.kind is JobKind.RECONCILE and state is JobState.DONE,
                )
        except LaunchbayError as e:
            log.warning(
                "job %s: outcome not recorded (its lease will lapse): %s", claimed.id, e.message
            )
            return
        if state is JobState.FAILED:
            self._safely_record(claimed, EventKind.JOB_FAILED, f"{claimed.kind} failed: {reason}")

    def _safely_record(self, claimed: Claimed, kind: EventKind, message: str) -> None:
        try:
            self._record(claimed.space_id, kind, message)
        except LaunchbayError as e:
            log.warning("space %s: event not recorded: %s", claimed.space, e.message)
