"""GET /v1/voices, GET /v1/models and GET /v1/models/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from engines.base import Engine
from engines.registry import listed_names
from server.auth import require_api_key
from server.errors import ModelNotFound
from server.protocol import ListVoicesResponse, ModelCard, ModelList, ModelVoices, VoiceEntry

router = APIRouter(dependencies=[Depends(require_api_key)])


# None fields are left out: the v1 SDK types each voice as Dict[str, str] and rejects nulls.
@router.get("/v1/voices", response_model=ListVoicesResponse, response_model_exclude_none=True)
async def list_voices(
    request: Request, model: str | None = Query(None, description="Only this model's voices.")
) -> ListVoicesResponse:
    """The voices of every served model (or of ``model``)."""
    pool = request.app.state.engine_pool
    if model:
        engine = pool.lookup(model)
        named = [n for n in listed_names(engine.model_id) if n.lower() == model.strip().lower()]
        models = [(named[0] if named else engine.model_id, engine)]
    else:
        models = listed_models(request)
    return ListVoicesResponse(
        data=[
            ModelVoices(
                model=name,
                voices=[
                    VoiceEntry(id=v.id, name=v.name, language=v.language, gender=v.gender) for v in engine.voices()
                ],
            )
            for name, engine in models
        ]
    )


def listed_models(request: Request) -> list[tuple[str, Engine]]:
    """Every name the served models are listed under (``cartesia/sonic-2``... beside ``cartesia/sonic``)."""
    pool = request.app.state.engine_pool
    return [(name, engine) for model_id, engine in pool.engines.items() for name in listed_names(model_id)]


def wants_openai_shape(request: Request, format: str | None) -> bool:
    """OpenAI's SDKs identify themselves in User-Agent (``OpenAI/Python 2.x``, ``OpenAI/JS 5.x``).

    Together's SDKs (``Together/Python ...``) and Together's own API use a bare JSON array, so that is
    the default; ``?format=openai`` (or ``together``) forces a shape for any other client.
    """
    if format in ("openai", "together"):
        return format == "openai"
    return request.headers.get("user-agent", "").lower().startswith("openai/")


def cards(request: Request) -> list[ModelCard]:
    return [ModelCard.for_model(name, engine.available) for name, engine in listed_models(request)]


def alias_cards(request: Request) -> list[ModelCard]:
    """OpenAI's model names (``tts-1``...) whose target is served here: listed in OpenAI's shape only,
    so Together's clients see exactly the served models."""
    pool = request.app.state.engine_pool
    out = []
    for alias, target in request.app.state.settings.openai_model_aliases.items():
        try:
            engine = pool.lookup(target)
        except ModelNotFound:
            continue
        out.append(ModelCard(id=alias, display_name=alias, organization="openai-compatible", owned_by=engine.model_id))
    return out


@router.get("/v1/models", response_model=None)
async def list_models(
    request: Request, format: str | None = Query(None, description="openai or together: force a response shape.")
) -> list[dict] | dict:
    """The served models: a bare array (Together's shape), or OpenAI's list for OpenAI clients."""
    models = cards(request)
    if wants_openai_shape(request, format):
        return ModelList(data=models + alias_cards(request)).model_dump()
    return [card.model_dump() for card in models]


@router.get("/v1/models/{model_id:path}", response_model=ModelCard)
async def get_model(model_id: str, request: Request) -> ModelCard:
    """One served model (or an OpenAI alias of one)."""
    for card in alias_cards(request):
        if card.id.lower() == model_id.lower():
            return card
    engine = request.app.state.engine_pool.lookup(model_id)
    listed = cards(request)
    for card in listed:  # a listed name as asked (cartesia/sonic-2), else the engine's own card
        if card.id.lower() == model_id.lower():
            return card
    for card in listed:
        if card.id == engine.model_id:
            return card
    raise ModelNotFound(f"Model '{model_id}' is not served here.")
