"""GET /v1/usage: what each tenant used, per model, between two times (admin keys only)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Query, Request

from server.auth import require_admin
from server.errors import InvalidRequest

router = APIRouter(dependencies=[Depends(require_admin)])


def parse_time(value: str | None, name: str, default: float) -> float:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it names its offset)."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"'{name}' must be unix seconds or an ISO 8601 time such as 2026-01-31T00:00:00Z.", param=name
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


@router.get("/v1/usage")
async def usage_report(
    request: Request,
    start: str | None = Query(None, alias="from", description="Unix seconds or ISO 8601 (default: the beginning)."),
    end: str | None = Query(None, alias="to", description="Unix seconds or ISO 8601 (default: now)."),
) -> dict:
    """Per tenant and model: requests by status, input characters, seconds of audio sent and the mean
    time to first audio, over the hours that start in ``[from, to)``. Admin keys only (see README: Tenants)."""
    now = time.time()
    since, until = parse_time(start, "from", 0.0), parse_time(end, "to", now + 1)
    if until <= since:
        raise InvalidRequest("'to' must be later than 'from'.", param="to")
    data = await asyncio.to_thread(request.app.state.usage.store.query, since, until)
    return {"object": "usage", "from": iso(since), "to": iso(until), "resolution": "hour", "data": data}
