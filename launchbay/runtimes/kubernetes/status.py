"""How a release stands, judged by Kubernetes' status conventions (kstatus): every workload
observed at its generation with all its replicas updated and available, Jobs complete,
claims bound; and, when not, the reason a person can act on (an image that cannot be
pulled, a crash loop, a pod that cannot be scheduled, a rollout that gave up)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from launchbay.domain.plan import Observed
from launchbay.runtimes.kubernetes.release import ObjectRef
from launchbay.runtimes.kubernetes.workloads import PLURAL, WORKLOADS, Workloads

PULL_FAILURES = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")
CRASHES = (
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)


def observed(namespace: str, objects: Sequence[ObjectRef], workloads: Workloads) -> Observed:
    """The release's own objects, as its manifest names them (`objects`, not empty), as
    the watches see them; claims are read only when all else is settled."""
    found = workloads.of(namespace, objects)
    pods = workloads.pods_of(namespace, found)
    trouble = _pod_trouble(pods)
    if trouble and any(reason in trouble for reason in (*PULL_FAILURES, *CRASHES)):
        return Observed(running=False, healthy=False, detail=trouble)
    failed = next((why for w in found["jobs"] if (why := _job_failure(w))), "") or next(
        (why for d in found["deployments"] if (why := _deadline_exceeded(d))), ""
    )
    if failed:
        return Observed(running=False, healthy=False, detail=failed)
    missing = [r for r in objects if r.kind in PLURAL and not _named(found, r)]
    if missing:
        return Observed(running=True, healthy=False, detail=f"waiting for {missing[0]}")
    jobs_only = bool(found["jobs"]) and not any(found[k] for k in WORKLOADS if k != "jobs")
    if jobs_only and all(_job_complete(j) for j in found["jobs"]):
        return Observed(running=False, healthy=True, detail="jobs complete", completed=True)
    scalable = found["deployments"] + found["statefulsets"]
    wanted = sum(w.spec.replicas or 0 for w in scalable)
    if scalable and wanted == 0 and not found["daemonsets"] and not found["jobs"]:
        return Observed(running=False, healthy=None, detail="scaled to zero")
    if not any(found.values()):
        kinds = sorted({r.kind for r in objects})
        return Observed(running=True, healthy=True, detail=f"no workloads ({', '.join(kinds)})")
    unbound = workloads.unbound_claims(namespace, objects)
    ready = (
        all(_rolled_out(d) for d in found["deployments"])
        and all(_statefulset_ready(x) for x in found["statefulsets"])
        and all(_daemonset_ready(x) for x in found["daemonsets"])
        and all(_job_complete(x) for x in found["jobs"])
        and not unbound
    )
    restarts = sum(_restarts(p) for p in pods)
    detail = _summary(found) + (f", {restarts} restarts" if restarts else "")
    detail += f"; claim {unbound[0]} not bound" if unbound else ""
    return Observed(
        running=True, healthy=ready, detail=detail + (f"; {trouble}" if trouble else "")
    )


def _named(found: Mapping[str, Sequence[Any]], ref: ObjectRef) -> bool:
    return any(x.metadata.name == ref.name for x in found[PLURAL[ref.kind]])


def _deadline_exceeded(deployment: Any) -> str:
    """A Deployment whose rollout gave up (its progressDeadlineSeconds passed)."""
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return f"deployment {deployment.metadata.name}: {condition.message or condition.reason}"
    return ""


def _rolled_out(deployment: Any) -> bool:
    status = deployment.status
    wanted = deployment.spec.replicas or 0
    if status is None:
        return False
    generation = deployment.metadata.generation
    observed = status.observed_generation
    return (
        (generation is None or (observed or 0) >= generation)
        and (status.updated_replicas or 0) >= wanted
        and (status.available_replicas or 0) >= wanted
    )


def _statefulset_ready(sts: Any) -> bool:
    status, wanted = sts.status, sts.spec.replicas or 0
    return (
        bool(status)
        and (status.ready_replicas or 0) >= wanted
        and (status.updated_replicas or 0) >= wanted
    )


def _daemonset_ready(ds: Any) -> bool:
    status = ds.status
    if status is None:
        return False
    wanted = status.desired_number_scheduled or 0
    return (status.number_ready or 0) >= wanted and (status.updated_number_scheduled or 0) >= wanted


def _job_complete(job: Any) -> bool:
    return bool(job.status) and (job.status.succeeded or 0) >= (job.spec.completions or 1)


def _job_failure(job: Any) -> str:
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type == "Failed" and condition.status == "True":
            why = f"{condition.reason or ''} {condition.message or ''}".strip()
            return f"job {job.metadata.name} failed: {why}"
    return ""


def _summary(found: dict[str, list[Any]]) -> str:
    parts = []
    deployments = found["deployments"]
    if deployments:
        available = sum((d.status.available_replicas or 0) if d.status else 0 for d in deployments)
        parts.append(f"{available}/{sum(d.spec.replicas or 0 for d in deployments)} available")
    for sts in found["statefulsets"]:
        ready = (sts.status.ready_replicas or 0) if sts.status else 0
        parts.append(f"statefulset {ready}/{sts.spec.replicas or 0} ready")
    for ds in found["daemonsets"]:
        status = ds.status
        parts.append(
            f"daemonset {status.number_ready or 0}/{status.desired_number_scheduled or 0} ready"
            if status
            else "daemonset starting"
        )
    for job in found["jobs"]:
        parts.append(f"job {'complete' if _job_complete(job) else 'running'}")
    return ", ".join(parts)


def _restarts(pod: Any) -> int:
    return (
        sum(c.restart_count or 0 for c in (pod.status.container_statuses or []))
        if pod.status
        else 0
    )


def _pod_trouble(pods: Sequence[Any]) -> str:
    """Why the pods are not ready: a waiting reason with its message, or unschedulable."""
    for pod in pods:
        status = pod.status
        if status is None:
            continue
        for container in status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting and waiting.reason:
                image = f" (image {container.image})" if waiting.reason in PULL_FAILURES else ""
                return f"{waiting.reason}{image}: {waiting.message or ''}".rstrip(": ")
        for condition in status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                return f"pending: {condition.reason}: {condition.message or ''}".rstrip(": ")
    return ""
