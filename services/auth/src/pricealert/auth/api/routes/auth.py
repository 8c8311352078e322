"""Registration, login, token refresh, logout and the current user."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from pricealert.auth.deps import CurrentUser, RegistrationDep, ServiceDep
from pricealert.auth.schemas import (
    LoginForm,
    LoginRequest,
    RefreshRequest,
    RegisterRequest,
    SignupAccepted,
    TokenPair,
    UserPublic,
    error_responses,
)
from pricealert.common.errors import AppError

router = APIRouter(prefix="/auth", tags=["auth"])

M = TypeVar("M", bound=BaseModel)

_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
        },
    }
}


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignupAccepted,
    responses=error_responses(422, 429, 503),
)
async def register(request: Request, body: RegisterRequest, registration: RegistrationDep) -> SignupAccepted:
    """Create an account and mail a link to verify its address; log in to get tokens.

    The answer is the same whether or not the address or username is taken: a taken address gets a
    notice by mail instead, so this route tells nobody which addresses have an account.
    """
    return await registration.register(
        email=body.email, password=body.password, username=body.username, address=client_address(request)
    )


@router.post(
    "/login", response_model=TokenPair, openapi_extra=_LOGIN_BODY, responses=error_responses(401, 403, 415, 422, 429)
)
async def login(request: Request, service: ServiceDep) -> TokenPair:
    """Exchange email and password (JSON, or the OAuth2 password form) for an access and a refresh token."""
    email, password = await read_credentials(request)
    return await service.login(email, password, address=client_address(request))


@router.post("/refresh", response_model=TokenPair, responses=error_responses(401, 403, 422))
async def refresh(body: RefreshRequest, service: ServiceDep) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token stops working."""
    return await service.refresh(body.refresh_token)


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=error_responses(401, 422)
)
async def logout(body: RefreshRequest, service: ServiceDep) -> Response:
    """End the login session of a refresh token; no access token needed."""
    await service.logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserPublic, responses=error_responses(401, 403))
async def read_me(user: CurrentUser) -> UserPublic:
    """The user the access token belongs to."""
    return UserPublic.model_validate(user)


def client_address(request: Request) -> str:
    """The client's address, as the trusted proxy reported it (uvicorn's proxy headers)."""
    return request.client.host if request.client is not None else "unknown"


async def read_credentials(request: Request, *, forms: bool = True) -> tuple[str, str]:
    """Email and password from a JSON body (or, with `forms`, the OAuth2 password form); 415 or 422 otherwise."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if forms and content_type in _FORM_TYPES:
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        credentials = _validate(LoginForm, fields)
        return credentials.username, credentials.password
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        wanted = "JSON or an OAuth2 password form" if forms else "JSON"
        raise AppError(f"Send {wanted}.", code="unsupported_media_type", status_code=415)
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "The body is not valid JSON."}]
        ) from exc
    body = _validate(LoginRequest, data)
    return body.email, body.password


def _validate(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc
