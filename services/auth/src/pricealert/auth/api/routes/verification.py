"""Email verification: the link from the mail (GET), the same as JSON (POST), and a new link on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from pricealert.auth.api.routes.auth import client_address
from pricealert.auth.deps import RegistrationDep
from pricealert.auth.schemas import (
    MAX_VERIFY_TOKEN_LENGTH,
    ResendRequest,
    SignupAccepted,
    VerifyRequest,
    VerifyResult,
    error_responses,
)

router = APIRouter(prefix="/auth/verify", tags=["auth"])


@router.post("", response_model=VerifyResult, responses=error_responses(400, 422, 503))
async def verify(body: VerifyRequest, registration: RegistrationDep) -> VerifyResult:
    """Verify the account's address with the token from the verification mail (each token works once)."""
    return await registration.verify(body.token)


@router.get("", response_model=VerifyResult, responses=error_responses(400, 422, 503))
async def verify_link(
    registration: RegistrationDep,
    token: Annotated[str, Query(min_length=1, max_length=MAX_VERIFY_TOKEN_LENGTH)],
) -> VerifyResult:
    """The link in the verification mail: the same as POST /auth/verify."""
    return await registration.verify(token)


@router.post(
    "/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignupAccepted,
    responses=error_responses(422, 429, 503),
)
async def resend(request: Request, body: ResendRequest, registration: RegistrationDep) -> SignupAccepted:
    """Mail a new verification link to an account that waits for one; the same answer for any address."""
    return await registration.resend(str(body.email), address=client_address(request))
