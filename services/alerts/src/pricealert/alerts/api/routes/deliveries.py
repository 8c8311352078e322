"""The delivery log's route: every attempt to deliver one firing of one of your alerts, on each of its channels."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request

from pricealert.alerts.api.exactjson import ExactJSONRoute
from pricealert.alerts.deliverylog import read_deliveries
from pricealert.alerts.deliveryviews import ChannelDeliveryOut, DeliveryOut, DeliveryPage
from pricealert.alerts.deps import CurrentUser, ServiceDep
from pricealert.alerts.views import EXAMPLE_ID, ErrorBody

MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 100

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or expired access token."},
    404: {
        "model": ErrorBody,
        "description": "alert_not_found: no such alert of yours; firing_not_found: the alert has no such firing.",
    },
    422: {"model": ErrorBody, "description": "Invalid input."},
}

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=_RESPONSES, route_class=ExactJSONRoute)

AlertId = Annotated[uuid.UUID, Path(description="The alert's id.", examples=[EXAMPLE_ID])]
FiringId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=80,
        description="The firing's id, as GET /alerts/{alert_id}/firings shows it.",
        examples=[f"{EXAMPLE_ID}:3"],
    ),
]


@router.get("/{alert_id}/firings/{firing_id}/deliveries", response_model=DeliveryPage)
async def read_firing_deliveries(
    request: Request,
    alert_id: AlertId,
    firing_id: FiringId,
    user: CurrentUser,
    service: ServiceDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number.", examples=[1])] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Attempts per page.", examples=[50])] = 50,
) -> DeliveryPage:
    """Every attempt to deliver one firing of one of your alerts, oldest first (channel, attempt, time, outcome,
    the receiver's reply or HTTP status, the next retry), with each channel's state and the firing's."""
    log = await read_deliveries(service, user, str(alert_id), firing_id, page=page, page_size=page_size)

    def link(to_page: int) -> str:
        return f"{request.url.path}?{urlencode({'page': to_page, 'page_size': page_size})}"

    last_page = max(1, -(-log.total // page_size))
    return DeliveryPage(
        firing_id=log.firing.trigger_id,
        delivery_status=log.firing.delivery_status,
        delivery_error=log.firing.delivery_error,
        delivery_attempts=log.firing.delivery_attempts,
        channels=[ChannelDeliveryOut.of(t) for t in log.channels],
        items=[DeliveryOut.of(row) for row in log.items],
        total=log.total,
        page=page,
        page_size=page_size,
        next=link(page + 1) if page * page_size < log.total else None,
        previous=link(min(page - 1, last_page)) if page > 1 else None,
    )
