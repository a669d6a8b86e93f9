"""Request dependencies: the engine's parts, the accounts and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from launchbay.domain.auth import Actor
from launchbay.engine.accounts import Accounts
from launchbay.engine.assembly import Launchbay
from launchbay.engine.deploys import Deploys
from launchbay.engine.notices import Notifier
from launchbay.engine.queries import Queries
from launchbay.engine.requests import Requests


def bay(request: Request) -> Launchbay:
    value: Launchbay = request.app.state.bay
    return value


def requests(request: Request) -> Requests:
    return bay(request).requests


def queries(request: Request) -> Queries:
    return bay(request).queries


def deploys(request: Request) -> Deploys:
    return bay(request).deploys


def notifier(request: Request) -> Notifier:
    return bay(request).notifier


def accounts(request: Request) -> Accounts:
    value: Accounts = request.app.state.accounts
    return value


BEARER = HTTPBearer(auto_error=False, description="an API token: `bay user create` prints one")


def actor(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Actor:
    """The caller, from `Authorization: Bearer <token>`; 401 without a valid one. (BEARER
    only puts the scheme into the OpenAPI description; the header is read here.)"""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    found = accounts(request).authenticate(token.strip() if scheme.lower() == "bearer" else None)
    request.state.actor = found  # whom the audit trail names (api/audit.py)
    return found


RequestsDep = Annotated[Requests, Depends(requests)]
QueriesDep = Annotated[Queries, Depends(queries)]
DeploysDep = Annotated[Deploys, Depends(deploys)]
NotifierDep = Annotated[Notifier, Depends(notifier)]
AccountsDep = Annotated[Accounts, Depends(accounts)]
ActorDep = Annotated[Actor, Depends(actor)]
