"""`/api/v1/quotas`: a user's quota and what uses it (their own; an admin's, anyone's), and
an admin setting it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from launchbay.api.deps import ActorDep, bay
from launchbay.api.schemas import ERROR_RESPONSES, LABEL, Body
from launchbay.engine.quotas import Quotas

router = APIRouter(prefix="/api/v1/quotas", tags=["quotas"], responses=ERROR_RESPONSES)
UserIn = Annotated[str, Path(json_schema_extra=LABEL)]


def quotas(request: Request) -> Quotas:
    found: Quotas = bay(request).quotas
    return found


QuotasDep = Annotated[Quotas, Depends(quotas)]


class QuotaIn(Body):
    spaces: int | None = Field(
        default=None, ge=0, le=100_000, description="spaces at once; null: the server's default"
    )
    exempt: bool = False


class UsageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user: str
    spaces: int | None = Field(description="the limit; null: none")
    set_by_admin: bool
    exempt: bool
    using: list[str] = Field(description="the live spaces that count, oldest first")


@router.get("/users/{name}", response_model=UsageOut)
def user_quota(name: UserIn, limits: QuotasDep, caller: ActorDep) -> UsageOut:
    """A user's quota and what uses it: their own, or anyone's for an admin."""
    return UsageOut.model_validate(limits.usage(name, viewer=caller))


@router.put("/users/{name}", response_model=UsageOut)
def set_quota(name: UserIn, body: QuotaIn, limits: QuotasDep, caller: ActorDep) -> UsageOut:
    """Admins only. A quota below what the user has now is taken: their creates are
    refused until they are under it."""
    return UsageOut.model_validate(
        limits.set(name, spaces=body.spaces, exempt=body.exempt, actor=caller)
    )
