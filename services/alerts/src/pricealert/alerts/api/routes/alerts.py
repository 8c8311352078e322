"""Alert routes: create, list, get, change, firings, soft delete (and the old projects' paths, deprecated)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response, status

from pricealert.alerts.api.exactjson import ExactJSONRoute
from pricealert.alerts.api.render import alert_json, page_json
from pricealert.alerts.deliveryviews import ChannelDeliveryOut
from pricealert.alerts.deps import CurrentUser, ServiceDep
from pricealert.alerts.models import AlertStatus
from pricealert.alerts.schemas import AlertCreate, AlertPatch
from pricealert.alerts.views import EXAMPLE_ID, AlertOut, AlertPage, ErrorBody, FiringOut, FiringPage
from pricealert.common.events import Condition

MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 100
MAX_SYMBOL = 40

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or expired access token."},
    422: {"model": ErrorBody, "description": "Invalid input."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such alert of yours."}}
_PATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such alert of yours."},
    409: {
        "model": ErrorBody,
        "description": "alert_not_editable: the alert is triggered, expired or deleted; "
        "alert_limit_reached: resuming it would exceed your active alerts.",
    },
    503: {"model": ErrorBody, "description": "catalog_unavailable: the symbol catalog is not loaded yet."},
}
_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "alert_limit_reached: too many active alerts."},
    503: {"model": ErrorBody, "description": "catalog_unavailable: the symbol catalog is not loaded yet."},
}

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=_ERRORS, route_class=ExactJSONRoute)

AlertId = Annotated[uuid.UUID, Path(description="The alert's id.", examples=[EXAMPLE_ID])]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number.", examples=[1])]


def _json(body: bytes, status_code: int = status.HTTP_200_OK) -> Response:
    """Serialised bytes as a JSON response (FastAPI would validate a returned model again first)."""
    return Response(body, status_code=status_code, media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, responses=_CREATE_ERRORS, response_model=AlertOut)
async def create_alert(body: AlertCreate, user: CurrentUser, service: ServiceDep) -> Response:
    """Create an alert on a TRADING symbol; it is watched from the moment this answers."""
    return _json(alert_json(await service.create(user, body)), status.HTTP_201_CREATED)


@router.get("", response_model=AlertPage)
async def read_alerts(
    request: Request,
    user: CurrentUser,
    service: ServiceDep,
    page: Page = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Alerts per page.", examples=[20])] = 20,
    status: Annotated[
        AlertStatus | None, Query(description="Only alerts with this status.", examples=["active"])
    ] = None,
    symbol: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_SYMBOL, description="Only alerts on this symbol.", examples=["BTCUSDT"]),
    ] = None,
    condition: Annotated[
        Condition | None, Query(description="Only alerts with this condition.", examples=["pct_up"])
    ] = None,
) -> Response:
    """List your alerts, newest first."""
    result = await service.list(user, status=status, symbol=symbol, page=page, page_size=page_size, condition=condition)
    return _json(
        page_json(
            result.items,
            total=result.total,
            page=page,
            page_size=page_size,
            path=request.url.path,
            status=None if status is None else status.value,
            symbol=symbol,
            condition=None if condition is None else condition.value,
        )
    )


@router.get("/{alert_id}", responses=_NOT_FOUND, response_model=AlertOut)
async def read_alert(alert_id: AlertId, user: CurrentUser, service: ServiceDep) -> Response:
    """One of your alerts, with its trigger and delivery state."""
    return _json(alert_json(await service.get(user, str(alert_id))))


@router.patch("/{alert_id}", responses=_PATCH_ERRORS, response_model=AlertOut)
async def update_alert(alert_id: AlertId, body: AlertPatch, user: CurrentUser, service: ServiceDep) -> Response:
    """Change one of your alerts: each field given replaces the old value (a new version); `status` pauses or
    resumes it. The condition and the symbol stay (field_not_patchable)."""
    return _json(alert_json(await service.update(user, str(alert_id), body)))


@router.get("/{alert_id}/firings", responses=_NOT_FOUND, response_model=FiringPage)
async def read_firings(
    request: Request,
    alert_id: AlertId,
    user: CurrentUser,
    service: ServiceDep,
    page: Page = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Firings per page.", examples=[20])] = 20,
) -> FiringPage:
    """Every firing of one of your alerts, newest first, with its delivery's state on each channel."""
    result = await service.firings(user, str(alert_id), page=page, page_size=page_size)

    def link(to_page: int) -> str:
        return f"{request.url.path}?{urlencode({'page': to_page, 'page_size': page_size})}"

    last_page = max(1, -(-result.total // page_size))
    return FiringPage(
        items=[
            FiringOut(
                id=f.trigger_id,
                firing=f.firing,
                fired_at=f.fired_at,
                price=f.price,
                trade_id=f.trade_id,
                exchange_time=f.exchange_time,
                version=f.version,
                paused=f.paused,
                delivery_status=f.delivery_status,
                delivery_error=f.delivery_error,
                channels=[ChannelDeliveryOut.of(t) for t in result.channels.get(f.trigger_id, [])],
            )
            for f in result.items
        ],
        total=result.total,
        page=page,
        page_size=page_size,
        next=link(page + 1) if page * page_size < result.total else None,
        previous=link(min(page - 1, last_page)) if page > 1 else None,
    )


@router.delete("/{alert_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_alert(alert_id: AlertId, user: CurrentUser, service: ServiceDep) -> Response:
    """Soft-delete one of your alerts (status `deleted`); deleting it again is harmless."""
    await service.delete(user, str(alert_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Paths of the replaced projects, kept so their clients keep working.
for _path in ("/create", "/create/"):
    router.add_api_route(
        _path,
        create_alert,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        responses=_CREATE_ERRORS,
        response_model=AlertOut,
        deprecated=True,
        summary="Create Alert (deprecated alias)",
        operation_id=f"create_alert_alias{'_slash' if _path.endswith('/') else ''}",
    )
for _path in ("/delete/{alert_id}", "/delete/{alert_id}/"):
    router.add_api_route(
        _path,
        delete_alert,
        methods=["DELETE"],
        status_code=status.HTTP_204_NO_CONTENT,
        responses=_NOT_FOUND,
        deprecated=True,
        summary="Delete Alert (deprecated alias)",
        operation_id=f"delete_alert_alias{'_slash' if _path.endswith('/') else ''}",
    )
