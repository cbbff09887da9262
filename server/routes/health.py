"""Liveness and readiness (no auth: orchestrators probe them) and counters (behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from server.auth import require_api_key

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only once every configured model is loaded and warmed up."""
    pool = request.app.state.engine_pool
    body = {"status": pool.state, "models": dict(pool.status)}
    if pool.errors:
        body["errors"] = dict(pool.errors)
    return JSONResponse(body, status_code=200 if pool.state == "ready" else 503)


@router.get("/stats", dependencies=[Depends(require_api_key)])
async def stats(request: Request) -> dict:
    """Per-model counters: queue depth, batch-size histogram, audio and synthesis seconds."""
    return request.app.state.engine_pool.stats()
