"""A test send: the request on the notifier's channel-tests stream, then its outcome waited for on a reply list."""

from __future__ import annotations

import time
import uuid

from pricealert.common import names
from pricealert.common.channels import ChannelTestOutcome, ChannelTestRequest
from pricealert.common.errors import AppError
from pricealert.common.events import utc_now
from pricealert.common.publisher import publish
from pricealert.common.redisconn import RedisClient

# Each BLPOP waits at most this long: well inside the client's socket timeout (redisconn.SOCKET_TIMEOUT_S), so the
# shared client serves a 15 s wait as a few short ones.
BLPOP_SLICE_S = 2.0


async def send_test(
    redis: RedisClient, *, channel_id: str, user_id: str, email: str, timeout_s: float
) -> ChannelTestOutcome:
    """Ask the notifier for a test delivery on the channel; its outcome, or 504 channel_test_timeout."""
    request = ChannelTestRequest(
        request_id=str(uuid.uuid4()), channel_id=channel_id, user_id=user_id, email=email, requested_at=utc_now()
    )
    reply_key = names.channel_test_reply_key(request.request_id)
    await publish(redis, names.CHANNEL_TESTS, request)
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        popped = await redis.blpop([reply_key], timeout=min(BLPOP_SLICE_S, max(left, 0.01)))
        if popped is not None:
            return ChannelTestOutcome.model_validate_json(popped[1])
    raise AppError(
        f"The notifier did not answer within {timeout_s:g} s; try again shortly.",
        code="channel_test_timeout",
        status_code=504,
        details={"request_id": request.request_id},
    )
