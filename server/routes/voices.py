"""GET /v1/voices and GET /v1/models."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from server.auth import require_api_key
from server.protocol import ListVoicesResponse, ModelCard, ModelList, ModelVoices, VoiceEntry

router = APIRouter(dependencies=[Depends(require_api_key)])


# None fields are left out: the v1 SDK types each voice as Dict[str, str] and rejects nulls.
@router.get("/v1/voices", response_model=ListVoicesResponse, response_model_exclude_none=True)
async def list_voices(request: Request, model: str | None = Query(None)) -> ListVoicesResponse:
    pool = request.app.state.engine_pool
    engines = [pool.lookup(model)] if model else list(pool.engines.values())
    return ListVoicesResponse(
        data=[
            ModelVoices(
                model=engine.model_id,
                voices=[
                    VoiceEntry(id=v.id, name=v.name, language=v.language, gender=v.gender) for v in engine.voices()
                ],
            )
            for engine in engines
        ]
    )


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    pool = request.app.state.engine_pool
    return ModelList(data=[ModelCard(id=name, available=e.available) for name, e in pool.engines.items()])
