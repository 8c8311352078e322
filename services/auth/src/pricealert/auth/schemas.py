"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, StringConstraints, field_validator

from pricealert.auth.settings import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

NewPassword = Annotated[
    str,
    Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    ),
]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,64}$")]
MAX_TOKEN_LENGTH = 4096
MAX_VERIFY_TOKEN_LENGTH = 256


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _NewUser(_Body):
    email: EmailStr
    password: NewPassword
    username: Username | None = Field(default=None, description="3 to 64 of A-Z a-z 0-9 _ . -; unique.")

    @field_validator("password")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the password must not be only whitespace")
        return value


class RegisterRequest(_NewUser):
    """A new account: email, password and an optional username."""


class SignupAccepted(BaseModel):
    """The answer to a registration or a request for a new link: the same whether or not the address is known."""

    status: Literal["verification_sent", "registered"]
    message: str


class VerifyRequest(_Body):
    """The token from the verification mail."""

    token: str = Field(min_length=1, max_length=MAX_VERIFY_TOKEN_LENGTH)


class VerifyResult(BaseModel):
    """The outcome of a verification."""

    status: Literal["verified", "already_verified"]
    message: str


class ResendRequest(_Body):
    """The address of an account that waits for verification."""

    email: EmailStr


class AdminUserCreate(_NewUser):
    """An account created by an admin, who may make it an admin or inactive."""

    is_admin: StrictBool = False
    is_active: StrictBool = True


class UserUpdate(_Body):
    """Fields an admin may change on a user."""

    is_active: StrictBool | None = None
    is_admin: StrictBool | None = None


class LoginRequest(_Body):
    """Credentials: the email and the password."""

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginForm(BaseModel):
    """The OAuth2 password form: `username` holds the email."""

    model_config = ConfigDict(extra="ignore")

    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    grant_type: Literal["password"] | None = None
    scope: str = ""


class RefreshRequest(_Body):
    """A refresh token, for /auth/refresh and /auth/logout."""

    refresh_token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)


class TokenPair(BaseModel):
    """A fresh access token and refresh token."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class SessionToken(BaseModel):
    """An access token for the page; the refresh token travels only in the session cookie."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserPublic(BaseModel):
    """A user as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    username: str | None
    is_admin: bool
    is_active: bool
    email_verified: bool = Field(
        description="Whether the owner verified the address (alert emails go only to "
        "verified addresses); accounts made by an admin are verified."
    )
    created_at: datetime


class UserPage(BaseModel):
    """One page of users."""

    items: list[UserPublic]
    total: int
    page: int
    page_size: int
    next: str | None
    previous: str | None


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a human message and optional details."""

    code: str
    message: str
    details: object | None = None


class ErrorResponse(BaseModel):
    """The stable error shape of every non-2xx answer."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entries documenting the error shape for `statuses`."""
    return {status: {"model": ErrorResponse} for status in statuses}
