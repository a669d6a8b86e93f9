"""The `/api/v1` routes. Handlers only translate HTTP to engine calls and back."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from launchbay.api.deps import (
    AccountsDep,
    ActorDep,
    DeploysDep,
    NotifierDep,
    QueriesDep,
    RequestsDep,
    actor,
)
from launchbay.api.follows import Follows
from launchbay.api.schemas import (
    DURATION,
    ERROR_RESPONSES,
    LABEL,
    RUNTIME,
    SERVICE_NAME,
    SPACE_NAME,
    ApplySpaceIn,
    ChannelIn,
    ChannelOut,
    CreateSpaceIn,
    DeployIn,
    DeployOut,
    EventOut,
    ExtendIn,
    SigninLinkOut,
    SpaceList,
    SpaceOut,
    TemplateOut,
    TemplateProblems,
    UserIn,
    UserOut,
)
from launchbay.domain.durations import instant, parse_duration
from launchbay.domain.errors import Invalid
from launchbay.domain.phases import Phase
from launchbay.engine.accounts import SIGNIN_LINK_LIFE
from launchbay.engine.queries import SpaceFilter
from launchbay.engine.requests import CreateSpace
from launchbay.runtimes import registry

SpaceNameIn = Annotated[str, Path(json_schema_extra=SPACE_NAME)]
TemplateNameIn = Annotated[str, Path(json_schema_extra=LABEL)]
ServiceNameIn = Annotated[str, Path(json_schema_extra=SERVICE_NAME)]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(actor)], responses=ERROR_RESPONSES)


@router.get("/templates", response_model=list[TemplateOut], tags=["templates"])
def list_templates(queries: QueriesDep) -> list[TemplateOut]:
    return [TemplateOut.of(t, runtimes=queries.runs_on()) for t in queries.templates()]


@router.get("/templates/-/problems", response_model=TemplateProblems, tags=["templates"])
def template_problems(queries: QueriesDep) -> TemplateProblems:
    """Files in the templates folder that are not valid, with every problem in each."""
    return TemplateProblems(problems=queries.template_problems())


@router.get("/templates/{name}", response_model=TemplateOut, tags=["templates"])
def get_template(name: TemplateNameIn, queries: QueriesDep) -> TemplateOut:
    return TemplateOut.of(queries.template(name), runtimes=queries.runs_on())


@router.post("/spaces", response_model=SpaceOut, status_code=201, tags=["spaces"])
def create_space(
    body: CreateSpaceIn, request: Request, requests: RequestsDep, caller: ActorDep
) -> SpaceOut:
    request.state.audit_target = body.name
    want = CreateSpace(
        name=body.name,
        template=body.template,
        runtime=body.runtime,
        ttl=body.ttl,
        params=body.params,
        sets=body.overrides,
        repository=body.repository,
        team=body.team,
    )
    return SpaceOut.of(requests.create(want, actor=caller))


@router.get("/spaces", response_model=SpaceList, tags=["spaces"])
def list_spaces(
    queries: QueriesDep,
    notifier: NotifierDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            description="next_cursor of the previous page",
            json_schema_extra={"pattern": "^[0-9]{1,18}$"},
        ),
    ] = None,
    owner: str | None = None,
    phase: Phase | None = None,
    template: str | None = None,
    runtime: Annotated[str | None, Query(json_schema_extra=RUNTIME)] = None,
    q: Annotated[str | None, Query(description="part of the name")] = None,
    include_deleted: bool = False,
    ended: Annotated[
        bool, Query(description="only the spaces that ended lately (notifications.keep_ended)")
    ] = False,
) -> SpaceList:
    before = _cursor(cursor)
    if runtime is not None:
        registry.check_names([runtime], what="runtime")
    where = SpaceFilter(
        owner=owner,
        phase=phase.value if phase else None,
        template=template,
        runtime=runtime,
        search=q,
        include_deleted=include_deleted,
        ended_since=notifier.ended_since() if ended else None,
    )
    items, total = queries.spaces(where, limit=limit, before_id=before)
    more = len(items) == limit and items[-1].id > 0
    next_cursor = str(items[-1].id) if more else None
    return SpaceList(items=[SpaceOut.of(s) for s in items], total=total, next_cursor=next_cursor)


@router.put("/spaces/{name}", response_model=SpaceOut, tags=["spaces"])
def apply_space(
    name: SpaceNameIn,
    body: ApplySpaceIn,
    queries: QueriesDep,
    deploys: DeploysDep,
    caller: ActorDep,
    response: Response,
) -> SpaceOut:
    """Create the space, or change only what differs (parameters, service versions).
    Idempotent. 201 when created, 200 otherwise; wait for `observed_generation` to reach
    `generation` to know the change is applied."""
    want = CreateSpace(
        name=name,
        template=body.template,
        runtime=body.runtime,
        ttl=body.ttl,
        params=body.params,
        sets=body.overrides,
        repository=body.repository,
        team=body.team,
    )
    space, created = deploys.apply(want, actor=caller, source=body.source)
    response.status_code = 201 if created else 200
    return SpaceOut.of(space)


@router.post("/spaces/{name}/deploy", response_model=DeployOut, tags=["spaces"])
def deploy_service(
    name: SpaceNameIn,
    body: DeployIn,
    deploys: DeploysDep,
    caller: ActorDep,
    response: Response,
    wait: bool = False,
    timeout: Annotated[
        str, Query(description="how long ?wait=true waits, e.g. 15m", json_schema_extra=DURATION)
    ] = "15m",
) -> DeployOut:
    """Redeploy one service. 202 at once, or with ?wait=true the finished deploy (200)."""
    seconds = parse_duration(timeout).total_seconds()
    sets = {k.removeprefix(f"{body.service}."): v for k, v in body.overrides.items()}
    deploy = deploys.deploy(
        name,
        service=body.service,
        version=body.version,
        sets=sets,
        actor=caller,
        source=body.source,
    )
    if wait:
        deploy = deploys.wait(deploy.id, timeout=seconds)
    response.status_code = 200 if deploy.result not in ("pending", "running") else 202
    return DeployOut.of(deploy)


@router.get("/spaces/{name}/deploys", response_model=list[DeployOut], tags=["spaces"])
def deploy_history(
    name: SpaceNameIn, queries: QueriesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeployOut]:
    """Newest first: which service, from which version to which, who, when, result, duration."""
    return [DeployOut.of(d) for d in queries.deploys(name, limit=limit)]


@router.get("/spaces/{name}", response_model=SpaceOut, tags=["spaces"])
def get_space(name: SpaceNameIn, queries: QueriesDep) -> SpaceOut:
    return SpaceOut.of(queries.space(name), jobs=queries.jobs(name))


@router.delete("/spaces/{name}", response_model=SpaceOut, status_code=202, tags=["spaces"])
def delete_space(name: SpaceNameIn, requests: RequestsDep, caller: ActorDep) -> SpaceOut:
    """Idempotent: a space already being deleted, or deleted, is returned as it is."""
    return SpaceOut.of(requests.delete(name, actor=caller))


@router.post("/spaces/{name}/extend", response_model=SpaceOut, tags=["spaces"])
def extend_space(
    name: SpaceNameIn, body: ExtendIn, requests: RequestsDep, caller: ActorDep
) -> SpaceOut:
    return SpaceOut.of(requests.extend(name, by=body.by, actor=caller))


@router.post("/spaces/{name}/retry", response_model=SpaceOut, status_code=202, tags=["spaces"])
def retry_space(name: SpaceNameIn, requests: RequestsDep, caller: ActorDep) -> SpaceOut:
    """Provision a failed or degraded space again with the same spec (409 otherwise)."""
    return SpaceOut.of(requests.retry(name, actor=caller))


@router.post("/spaces/{name}/recreate", response_model=SpaceOut, status_code=202, tags=["spaces"])
def recreate_space(name: SpaceNameIn, requests: RequestsDep, caller: ActorDep) -> SpaceOut:
    """Remove everything the space runs, its data too, and make it again with the same
    spec, name and expiry (only once the engine is done with it: 409 otherwise)."""
    return SpaceOut.of(requests.recreate(name, actor=caller))


@router.get("/me/channels", response_model=list[ChannelOut], tags=["notifications"])
def my_channels(notifier: NotifierDep, caller: ActorDep) -> list[ChannelOut]:
    """The caller's own notification channels (told of the caller's spaces)."""
    return [ChannelOut(id=c.id, kind=c.kind, url=c.url) for c in notifier.channels_of(caller)]


@router.post("/me/channels", response_model=ChannelOut, status_code=201, tags=["notifications"])
def add_channel(body: ChannelIn, notifier: NotifierDep, caller: ActorDep) -> ChannelOut:
    """A Slack incoming webhook or a JSON webhook, at a URL the server's config allows; a
    JSON channel's signing secret is in the answer, once."""
    channel, secret = notifier.add_channel(caller, kind=body.kind, url=body.url)
    return ChannelOut(id=channel.id, kind=channel.kind, url=channel.url, secret=secret or None)


@router.delete("/me/channels/{channel_id}", status_code=204, tags=["notifications"])
def remove_channel(channel_id: int, notifier: NotifierDep, caller: ActorDep) -> Response:
    notifier.remove_channel(caller, channel_id)
    return Response(status_code=204)


@router.post("/spaces/{name}/sleep", response_model=SpaceOut, status_code=202, tags=["spaces"])
def sleep_space(name: SpaceNameIn, requests: RequestsDep, caller: ActorDep) -> SpaceOut:
    return SpaceOut.of(requests.sleep(name, actor=caller))


@router.post("/spaces/{name}/wake", response_model=SpaceOut, status_code=202, tags=["spaces"])
def wake_space(name: SpaceNameIn, requests: RequestsDep, caller: ActorDep) -> SpaceOut:
    return SpaceOut.of(requests.wake(name, actor=caller))


@router.get("/spaces/{name}/events", response_model=list[EventOut], tags=["spaces"])
def space_events(
    name: SpaceNameIn, queries: QueriesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[EventOut]:
    """Newest first."""
    return [EventOut.model_validate(e) for e in queries.events(name, limit=limit)]


@router.get(
    "/spaces/{name}/logs/{service}",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "lines"}
    },
    tags=["spaces"],
)
async def service_logs(
    request: Request,
    name: SpaceNameIn,
    service: ServiceNameIn,
    queries: QueriesDep,
    caller: ActorDep,
    tail: Annotated[int, Query(ge=0, le=100_000)] = 200,
    follow: bool = False,
) -> StreamingResponse:
    """The service's last `tail` log lines; with `follow`, new ones as they come, until the
    client goes away (429 beyond the server's caps on concurrent follows)."""
    stop = threading.Event()
    lines = await run_in_threadpool(
        lambda: queries.logs(name, service, tail=tail, follow=follow, stop=stop)
    )
    media = "text/plain; charset=utf-8"
    if not follow:
        return StreamingResponse(lines, media_type=media)
    follows: Follows = request.app.state.follows
    follows.acquire(caller.name)
    stream = follows.stream(caller.name, lines, stop=stop, gone=request.is_disconnected)
    return StreamingResponse(stream, media_type=media)


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(body: UserIn, request: Request, accounts: AccountsDep, caller: ActorDep) -> UserOut:
    """Admins only. The token is shown once; the server keeps only its digest."""
    request.state.audit_target = body.name
    token = accounts.create_user(body.name, admin=body.admin, actor=caller)
    return UserOut(name=body.name, admin=body.admin, token=token)


@router.get("/runtimes", tags=["runtimes"])
def runtimes(queries: QueriesDep) -> dict[str, dict[str, object]]:
    """Each enabled runtime: usable or not, and why."""
    return queries.runtimes()


@router.get("/whoami", tags=["users"])
def whoami(request: Request, caller: ActorDep) -> dict[str, object]:
    """The caller, and the installation the server belongs to (its id is on everything
    its runtimes make)."""
    key = caller.key
    return {
        "name": caller.name,
        "admin": caller.is_admin,
        "installation": request.app.state.installation,
        "key": None
        if key is None
        else {
            "name": key.name,
            "scopes": sorted(key.scopes),
            "templates": sorted(key.templates),
            "repositories": sorted(key.repositories),
            "expires_at": instant(key.expires_at) if key.expires_at else None,
        },
    }


@router.post("/me/signin-link", response_model=SigninLinkOut, status_code=201, tags=["users"])
def signin_link(request: Request, accounts: AccountsDep, caller: ActorDep) -> SigninLinkOut:
    """A link that signs the caller in to the portal once, within a minute (`bay portal`
    opens it): no process on the server's machine signs in without one."""
    token = accounts.signin_link(caller)
    url = str(request.base_url).rstrip("/") + f"/signin/link/{token}"
    return SigninLinkOut(url=url, valid_seconds=int(SIGNIN_LINK_LIFE.total_seconds()))


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid(f"cursor {raw[:40]!r} is not one this server gave out")
    return int(raw)
