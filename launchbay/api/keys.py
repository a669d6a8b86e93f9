"""`/api/v1/keys`: the caller's API keys (an admin's: anyone's, with `user`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from launchbay.api.deps import ActorDep, accounts
from launchbay.api.schemas import ERROR_RESPONSES, LABEL, KeyIn, KeyOut, NewKeyOut
from launchbay.engine.keys import Keys, KeyView, NewKey

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=ERROR_RESPONSES)


def keys(request: Request) -> Keys:
    return accounts(request).keys


KeysDep = Annotated[Keys, Depends(keys)]
UserQuery = Annotated[
    str | None, Query(description="whose keys (admins only)", json_schema_extra=LABEL)
]


@router.get("", response_model=list[KeyOut])
def list_keys(keys: KeysDep, caller: ActorDep, user: UserQuery = None) -> list[KeyOut]:
    """The keys, with their limits, expiry and last use; never their secrets."""
    return [_out(view) for view in keys.list(actor=caller, user=user)]


@router.post("", response_model=NewKeyOut, status_code=201)
def create_key(body: KeyIn, request: Request, keys: KeysDep, caller: ActorDep) -> NewKeyOut:
    """A new key. Its token is in this answer only. A key may make only keys that may do
    no more than it."""
    request.state.audit_target = body.name
    new = NewKey(
        name=body.name,
        scopes=body.scopes,
        expires_in=body.expires_in,
        templates=body.templates,
        repositories=body.repositories,
    )
    view, token = keys.create(new, actor=caller, user=body.user)
    return NewKeyOut(**_out(view).model_dump(), token=token)


@router.delete("/{name}", response_model=KeyOut)
def revoke_key(name: str, keys: KeysDep, caller: ActorDep, user: UserQuery = None) -> KeyOut:
    """Revoke the key: it stops working at once."""
    return _out(keys.revoke(name, actor=caller, user=user))


@router.post("/{name}/rotate", response_model=NewKeyOut, status_code=201)
def rotate_key(name: str, keys: KeysDep, caller: ActorDep, user: UserQuery = None) -> NewKeyOut:
    """A new secret for the key, with its limits and a fresh life as long as its last; the
    old secret stops working at once."""
    view, token = keys.rotate(name, actor=caller, user=user)
    return NewKeyOut(**_out(view).model_dump(), token=token)


def _out(view: KeyView) -> KeyOut:
    return KeyOut.model_validate(view)
