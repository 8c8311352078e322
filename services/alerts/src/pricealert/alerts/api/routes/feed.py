"""The live feed's routes: POST /events/ticket (a one-use ticket for EventSource) and GET /events (SSE)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from pricealert.alerts.auth import authenticate
from pricealert.alerts.deps import AppState, CurrentUser, StateDep, oauth2_scheme
from pricealert.alerts.feedstream import Feeds, parse_last_event_id
from pricealert.alerts.views import ErrorBody
from pricealert.common import names
from pricealert.common.errors import InvalidInput, ServiceUnavailable, Unauthorized
from pricealert.common.redisconn import TRANSIENT_REDIS_ERRORS

TICKET_TTL_S = 30
EXAMPLE_TICKET = "q3Jx7cY0m2Vb8rKfN1sT4wLhP6dZ9uAeG5oI0jXkR2c"
EXAMPLE_EVENT_ID = "1765022400000-0"
TICKET_BYTES = 32
# Access tokens never travel in a URL (they would land in access logs and browser history).
TOKEN_PARAMS = ("access_token", "token")

router = APIRouter(tags=["feed"])


class FeedTicket(BaseModel):
    """A single-use ticket that opens one feed: `GET /events?ticket=…` within `expires_in` seconds."""

    ticket: str = Field(
        description="Opaque; pass it as the `ticket` query parameter of GET /events.", examples=[EXAMPLE_TICKET]
    )
    expires_in: int = Field(description="Seconds it stays valid (if unused).", examples=[TICKET_TTL_S])


def redis_unavailable() -> ServiceUnavailable:
    """What the feed's routes answer while Redis cannot be reached."""
    return ServiceUnavailable(
        "The live feed is not reachable right now; try again shortly.",
        code="feed_unavailable",
        headers={"Retry-After": "2"},
    )


def ticket_hash(ticket: str) -> str:
    """What Redis keeps of a ticket: its SHA-256 (a leaked key name opens nothing)."""
    return hashlib.sha256(ticket.encode()).hexdigest()


@router.post(
    "/events/ticket",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedTicket,
    responses={401: {"model": ErrorBody, "description": "Missing, invalid or expired access token."}},
)
async def create_ticket(user: CurrentUser, state: StateDep) -> FeedTicket:
    """A ticket for a browser's EventSource (which cannot send an Authorization header): valid once, for 30 s."""
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    try:
        await state.redis.set(names.feed_ticket_key(ticket_hash(ticket)), user.id, ex=TICKET_TTL_S)
    except TRANSIENT_REDIS_ERRORS as exc:
        raise redis_unavailable() from exc
    return FeedTicket(ticket=ticket, expires_in=TICKET_TTL_S)


async def _user_id(request: Request, state: AppState, token: str | None, ticket: str | None) -> str:
    """The caller: the bearer token if sent, else the ticket (spent here, whatever comes next)."""
    if any(name in request.query_params for name in TOKEN_PARAMS):
        raise InvalidInput(
            "Access tokens are never accepted in the URL: send 'Authorization: Bearer <token>', "
            "or a ticket from POST /events/ticket as ?ticket=.",
            code="token_in_url",
            status_code=400,
        )
    if token:
        return (await authenticate(token, state.keys, state.verified_tokens)).id
    if ticket:
        try:
            owner = await state.redis.getdel(names.feed_ticket_key(ticket_hash(ticket)))
        except TRANSIENT_REDIS_ERRORS as exc:
            raise redis_unavailable() from exc
        if owner is None:
            raise Unauthorized("The ticket is unknown, used or expired.", code="invalid_ticket")
        return owner.decode() if isinstance(owner, bytes) else str(owner)
    raise Unauthorized("Not authenticated: send 'Authorization: Bearer <token>' or ?ticket=.", code="not_authenticated")


_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A Server-Sent Events stream: each event's `id` is its feed entry id (resume with "
        "Last-Event-ID), its `event` the type (alert.created, alert.updated, alert.deleted, alert.expired, "
        "alert.paused, alert.fired, delivery.sent, delivery.failed, delivery.retrying, or feed.gap), its `data` "
        "a JSON object; comment lines are heartbeats.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    400: {"model": ErrorBody, "description": "invalid_last_event_id, or token_in_url."},
    401: {"model": ErrorBody, "description": "not_authenticated, invalid_token, or invalid_ticket."},
    429: {"model": ErrorBody, "description": "too_many_feeds: this user has the most feeds open already."},
    503: {
        "model": ErrorBody,
        "description": "feeds_full: this server serves the most feeds it may; "
        "feed_unavailable: Redis cannot be reached.",
    },
}


@router.get("/events", responses=_SSE_DOC, response_class=Response)
async def read_events(
    request: Request,
    state: StateDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    ticket: Annotated[
        str | None, Query(max_length=100, description="A ticket from POST /events/ticket.", examples=[EXAMPLE_TICKET])
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Resume after this event (its id).", examples=[EXAMPLE_EVENT_ID]),
    ] = None,
    resume_after: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            max_length=41,
            description="As the Last-Event-ID header (which wins), for a browser's new EventSource with a ticket.",
            examples=[EXAMPLE_EVENT_ID],
        ),
    ] = None,
) -> Response:
    """Your live feed of alert events as Server-Sent Events: new ones only, or those after Last-Event-ID."""
    after = parse_last_event_id(last_event_id if last_event_id is not None else resume_after)
    user_id = await _user_id(request, state, token, ticket)
    feeds: Feeds = request.app.state.feeds
    feeds.admit(user_id)
    try:
        start, gap = await feeds.start(user_id, after)
    except TRANSIENT_REDIS_ERRORS as exc:
        feeds.release(user_id)
        raise redis_unavailable() from exc
    except BaseException:
        feeds.release(user_id)
        raise
    return feeds.response(user_id, start, gap)
