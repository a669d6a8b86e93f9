"""Jobs: the work the engine owes a space, kept in the store until it is done.

A request writes what it wants and a job in one transaction; workers on any replica claim
jobs, one running job per space at a time, and a job whose worker died is taken over once
its lease lapses. These are the kinds, the states and the retry rule.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class JobKind(StrEnum):
    PROVISION = "provision"
    DELETE = "delete"
    SLEEP = "sleep"
    RESTART = "restart"
    REDEPLOY = "redeploy"
    # The reconciler found something to correct; the job looks again and corrects it.
    RECONCILE = "reconcile"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


# A temporary failure is retried this many times in all before the job fails for good.
MAX_ATTEMPTS = 6
BACKOFF_CAP = timedelta(seconds=60)


def backoff(attempt: int, *, asked: float = 0.0) -> timedelta:
    """How long to wait after failed attempt `attempt` (1, 2, ...): 1 s doubling per
    attempt, at least what the error asked for, never more than a minute."""
    seconds = max(float(2 ** min(max(attempt - 1, 0), 16)), asked)
    return min(timedelta(seconds=seconds), BACKOFF_CAP)
