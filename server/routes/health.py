"""Liveness, readiness and counters (no auth: these are for orchestrators and operators)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process is up and its event loop answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: 200 only once every configured model is loaded and warmed up."""
    pool = request.app.state.engine_pool
    body = {"status": pool.state, "models": list(pool.engines)}
    if pool.error:
        body["error"] = pool.error
    return JSONResponse(body, status_code=200 if pool.state == "ready" else 503)


@router.get("/stats")
async def stats(request: Request) -> dict:
    return request.app.state.engine_pool.stats()
