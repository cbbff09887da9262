"""Liveness and readiness (no auth: orchestrators probe them) and counters (behind the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from server.auth import require_api_key

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """Liveness: the process is up and its event loop answers (200 also while it drains for shutdown)."""
    return {"status": "draining" if request.app.state.drain.draining else "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only while every configured model serves (loaded, warmed up, its workers alive and
    making progress) and the server is not draining for shutdown; else 503 with each model's status."""
    pool = request.app.state.engine_pool
    state = "draining" if request.app.state.drain.draining else pool.state
    body = {"status": state, "models": dict(pool.status)}
    if pool.errors:
        body["errors"] = dict(pool.errors)
    return JSONResponse(body, status_code=200 if state == "ready" else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format); the names are listed in README.md."""
    from server.metrics import CONTENT_TYPE

    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/stats", dependencies=[Depends(require_api_key)])
async def stats(request: Request) -> dict:
    """Per-model counters: queue depth, batch-size histogram, audio and synthesis seconds."""
    return request.app.state.engine_pool.stats()
