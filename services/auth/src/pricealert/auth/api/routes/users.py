"""Admin-only user management."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from pricealert.auth.deps import AdminUser, ServiceDep
from pricealert.auth.schemas import AdminUserCreate, UserPage, UserPublic, UserUpdate, error_responses

router = APIRouter(prefix="/auth/users", tags=["users"])


def _page_link(request: Request, page: int, page_size: int) -> str:
    return f"{request.url.path}?page={page}&page_size={page_size}"


@router.get("", response_model=UserPage, responses=error_responses(401, 403, 422))
async def read_users(
    request: Request,
    service: ServiceDep,
    _admin: AdminUser,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UserPage:
    """Every user, oldest first, one page at a time."""
    users, total = await service.list_users(page=page, page_size=page_size)
    last_page = max(1, -(-total // page_size))
    return UserPage(
        items=[UserPublic.model_validate(user) for user in users],
        total=total,
        page=page,
        page_size=page_size,
        next=_page_link(request, page + 1, page_size) if page < last_page else None,
        previous=_page_link(request, min(page - 1, last_page), page_size) if page > 1 else None,
    )


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=UserPublic, responses=error_responses(401, 403, 409, 422)
)
async def create_user(body: AdminUserCreate, service: ServiceDep, _admin: AdminUser) -> UserPublic:
    """Create a user, optionally an admin or an inactive one."""
    user = await service.create_user(
        email=body.email,
        password=body.password,
        username=body.username,
        is_admin=body.is_admin,
        is_active=body.is_active,
    )
    return UserPublic.model_validate(user)


@router.get("/{user_id}", response_model=UserPublic, responses=error_responses(401, 403, 404, 422))
async def read_user(user_id: uuid.UUID, service: ServiceDep, _admin: AdminUser) -> UserPublic:
    """One user."""
    return UserPublic.model_validate(await service.get_user(user_id))


@router.patch("/{user_id}", response_model=UserPublic, responses=error_responses(401, 403, 404, 409, 422))
async def update_user(user_id: uuid.UUID, body: UserUpdate, service: ServiceDep, admin: AdminUser) -> UserPublic:
    """Activate, deactivate, promote or demote a user; deactivating ends their sessions."""
    return UserPublic.model_validate(await service.update_user(admin, user_id, body))
