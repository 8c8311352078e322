"""The report's notes under the tables: the floors in words, and the ceilings issue 21 added."""

from __future__ import annotations

from typing import Any


def get(data: dict[str, Any], *path: str) -> Any:
    """The value at `path` in `data`, or None where a step is missing."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def floor_note(results: dict[str, Any]) -> str:
    """The floors in words, each latency row as a multiple of the stream hop ('' without a hop)."""
    hop = get(results, "floors", "redis_stream_hop_ms", "p99")
    e2e = get(results, "e2e", "latency_ms", "p99")
    tick = get(results, "evaluator", "latency_ms", "p99")
    if not hop:
        return ""
    parts = [f"One Redis stream hop (XADD → blocked XREADGROUP) is {hop} ms p99 here."]
    if tick:
        parts.append(f"tick → trigger p99 is {tick / hop:.1f} times that floor.")
    if e2e:
        parts.append(f"trade → email p99 is {e2e / hop:.1f} times that floor.")
    hook = get(results, "e2e", "webhook", "latency_ms", "p99")
    if hook:
        parts.append(f"trade → webhook p99 is {hook / hop:.1f} times that floor.")
    post = get(results, "floors", "webhook_post_ms", "p99")
    if post:
        parts.append(f"One signed webhook POST to the local receiver is {post} ms p99.")
    smtp = get(results, "floors", "smtp_accept_ms", "p99")
    ws = get(results, "floors", "websocket_frame_ms", "p99")
    if smtp and ws:
        parts.append(f"One SMTP accept is {smtp} ms p99, one loopback WebSocket frame {ws} ms p99.")
    return " ".join(parts)


def ceilings_note(results: dict[str, Any]) -> str:
    """The floors and ceilings issue 21 added, in one paragraph ('' when none was measured)."""
    parts = []
    read = get(results, "floors", "read_ceiling")
    if read and "entries_per_s" in read:
        parts.append(
            f"Read ceiling ({read.get('streams', 1):g} streams read at once, XREADGROUP of {read['batch']:g} + XACK, "
            f"redis-py): {read['entries_per_s']:g} entries/s "
            f"(a batch p50 {read['batch_ms']['p50']} / p99 {read['batch_ms']['p99']} ms)."
        )
    smtp = get(results, "floors", "smtp_accept_ceiling")
    if smtp and "mails_per_s" in smtp:
        parts.append(
            f"SMTP accept ceiling ({smtp['connections']} connections, {smtp['mail_bytes']}-byte mails): "
            f"{smtp['mails_per_s']} mails/s."
        )
    hop = get(results, "floors", "http_hop")
    if hop and "median" in hop:
        parts.append(
            f"HTTP hop (nginx + uvicorn, a trivial GET): capacity {hop['median']['requests_per_s']} req/s, "
            f"p99 {hop['paced']['median']['p99_ms']} ms at {hop['paced']['rate']:g} req/s paced."
        )
    composite = get(results, "floors", "trade_to_mail_floor_ms", "p99")
    if composite:
        parts.append(f"Composite trade → mail floor (2 hops + 1 frame + 1 accept, a sum of p99s): {composite} ms.")
    return " ".join(parts)
