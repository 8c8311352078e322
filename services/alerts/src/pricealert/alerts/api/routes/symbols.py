"""Symbol routes: search the catalog of TRADING symbols, or show one, each with its current price."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pricealert.alerts.deps import CurrentUser, StateDep
from pricealert.alerts.symbolviews import SymbolPage, SymbolView, one_symbol, symbol_page
from pricealert.alerts.views import ErrorBody
from pricealert.common.errors import InvalidInput, NotFound

MAX_QUERY = 20
MAX_LIMIT = 100
MAX_SYMBOL = 40

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or expired access token."},
    422: {"model": ErrorBody, "description": "Invalid input."},
    503: {
        "model": ErrorBody,
        "description": "catalog_unavailable: there is no symbol catalog yet (the message says when the exchange "
        "is unreachable from the server).",
    },
}

router = APIRouter(prefix="/symbols", tags=["symbols"], responses=_RESPONSES)


@router.get("", response_model=SymbolPage)
async def list_symbols(
    _user: CurrentUser,
    state: StateDep,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY,
            pattern="^[A-Za-z0-9]*$",
            description="Letters and digits of the name, any case: names starting with them first, then names "
            "containing them. Empty: the first symbols by name.",
            examples=["btc"],
        ),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many symbols.", examples=[20])] = 20,
) -> SymbolPage:
    """TRADING symbols matching `q`, each with its price filter and its current price (null when none is at
    most 10 s old)."""
    return await symbol_page(state.catalog, state.redis, q, limit)


@router.get(
    "/{symbol}",
    response_model=SymbolView,
    responses={404: {"model": ErrorBody, "description": "unknown_symbol: details.close_matches lists near names."}},
)
async def read_symbol(
    _user: CurrentUser,
    state: StateDep,
    symbol: Annotated[str, Path(min_length=1, max_length=MAX_SYMBOL, examples=["BTCUSDT"])],
) -> SymbolView:
    """One TRADING symbol (any case): its price filter and its current price (null when none is at most 10 s
    old)."""
    try:
        return await one_symbol(state.catalog, state.redis, symbol)
    except InvalidInput as exc:
        if exc.code != "unknown_symbol":
            raise
        raise NotFound(exc.message, code=exc.code, details=exc.details) from None
