"""Saved voices: POST /v1/voices (a mix or an uploaded voicepack), GET and DELETE /v1/voices/{name}.

Saving and deleting change what every client can use, so they need an admin key
(:func:`server.auth.require_admin`); describing a voice needs only a key. The engine stores the
voice (in the directory the server gave it, under ``TTS_DATA_DIR``) and serves it at once, on every
route and inside mixes; see README.md (Custom voices).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from engines.base import Engine, NewVoice, Voice
from server.auth import require_admin, require_api_key
from server.errors import InvalidRequest, VoiceNotFound

router = APIRouter(dependencies=[Depends(require_api_key)])

MULTIPART = "multipart/form-data"


class SaveVoiceRequest(BaseModel):
    """A voice to save under ``name``: a voice or weighted mix of the model's voices, blended once."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="The model the voice is for, e.g. hexgrad/Kokoro-82M.")
    name: str = Field(min_length=1, max_length=64, description="The new voice's name: letters, digits, '_' and '-'.")
    voice: str = Field(
        min_length=1, max_length=1000, description="What to save: a voice or a mix, e.g. af_bella(2)+af_heart(1)."
    )
    language: str | None = Field(
        None, max_length=16, description="Accent or language (en-US, en-GB, es...); default: the mix's first voice's."
    )
    gender: str | None = Field(None, max_length=32, description="female or male, for the listing.")
    description: str | None = Field(None, max_length=500, description="Free text for the listing.")


class VoiceDetails(BaseModel):
    """One voice of one model, as ``GET /v1/voices/{name}`` describes it."""

    id: str = Field(description="What a request's `voice` names.")
    object: str = Field("voice", description="Always voice.")
    model: str = Field(description="The model that speaks it.")
    name: str = Field(description="Display name.")
    kind: str = Field(
        description="builtin (the model's own), directory (an operator's voicepack), saved (over this API) or "
        "adapter (an Orpheus fine-tune)."
    )
    language: str | None = Field(None, description="Accent or language, e.g. en-US.")
    gender: str | None = Field(None, description="female or male, where known.")
    description: str | None = Field(None, description="Free text.")
    source: str | None = Field(None, description="A saved mix: the voices and weights it was blended from.")

    @classmethod
    def of(cls, engine: Engine, voice: Voice) -> VoiceDetails:
        return cls(model=engine.model_id, **dataclasses.asdict(voice))


class DeletedVoice(BaseModel):
    """The answer to a deletion."""

    id: str = Field(description="The deleted voice.")
    object: str = Field("voice", description="Always voice.")
    model: str = Field(description="The model it belonged to.")
    deleted: bool = Field(True, description="Always true (a failure is an error).")


SAVE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SaveVoiceRequest"}},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "description": "A voicepack file to save as a voice.",
                    "required": ["model", "name", "file"],
                    "properties": {
                        "model": {"type": "string", "description": "The model, e.g. hexgrad/Kokoro-82M."},
                        "name": {"type": "string", "description": "The new voice's name."},
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A [510, 1, 256] float tensor: *.pt (torch.save) or *.safetensors.",
                        },
                        "language": {"type": "string", "description": "Accent or language, e.g. en-GB."},
                        "gender": {"type": "string", "description": "female or male."},
                        "description": {"type": "string", "description": "Free text."},
                    },
                }
            },
        },
    }
}


@router.post(
    "/v1/voices",
    status_code=201,
    response_model=VoiceDetails,
    response_model_exclude_none=True,
    dependencies=[Depends(require_admin)],
    openapi_extra=SAVE_BODY,
)
async def save_voice(request: Request) -> VoiceDetails:
    """Save a voice: JSON `{model, name, voice}` blends a mix of the model's voices and stores it; a multipart
    upload (`model`, `name`, `file`) stores a voicepack file. The voice serves at once and survives restarts
    (it lives in TTS_DATA_DIR). Needs an admin key when keys are configured."""
    new, model = await _new_voice(request)
    engine = request.app.state.engine_pool.get_ready(model)
    voice = await engine.add_voice(new)
    return VoiceDetails.of(engine, voice)


@router.get("/v1/voices/{name}", response_model=VoiceDetails, response_model_exclude_none=True)
async def describe_voice(
    name: str, request: Request, model: str | None = Query(None, description="The model (default: any that has it).")
) -> VoiceDetails:
    """One voice: its model, kind (builtin, directory, saved, adapter), language and, for a saved mix, what it
    was blended from."""
    engine, voice = _find(request, name, model)
    return VoiceDetails.of(engine, voice)


@router.delete("/v1/voices/{name}", response_model=DeletedVoice, dependencies=[Depends(require_admin)])
async def delete_voice(
    name: str, request: Request, model: str | None = Query(None, description="The model (default: any that has it).")
) -> DeletedVoice:
    """Delete a saved voice (the model's own voices and voicepack directories' cannot be). Needs an admin key
    when keys are configured."""
    engine, voice = _find(request, name, model)
    await engine.remove_voice(voice.id)
    return DeletedVoice(id=voice.id, model=engine.model_id)


# -- helpers ----------------------------------------------------------------------------------------
def _find(request: Request, name: str, model: str | None) -> tuple[Engine, Voice]:
    pool = request.app.state.engine_pool
    engines = [pool.lookup(model)] if model else list(pool.engines.values())
    for engine in engines:
        try:
            return engine, engine.describe_voice(name)
        except VoiceNotFound:
            continue
    where = f"model '{engines[0].model_id}'" if model else "any served model"
    raise VoiceNotFound(f"There is no voice '{name}' in {where}.")


async def _new_voice(request: Request) -> tuple[NewVoice, str]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == MULTIPART:
        return await _from_upload(request)
    try:
        body: Any = await request.json()
    except ValueError:
        raise InvalidRequest("Request body must be a JSON object, or a multipart/form-data upload.") from None
    try:
        parsed = SaveVoiceRequest.model_validate(body)
    except ValidationError as exc:
        raise _invalid(exc) from None
    fields = parsed.model_dump(exclude={"model", "voice"})
    return NewVoice(mix=parsed.voice, **fields), parsed.model


async def _from_upload(request: Request) -> tuple[NewVoice, str]:
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception as exc:  # starlette's MultiPartException, or python-multipart's parse errors
        raise InvalidRequest(f"Malformed multipart body: {exc}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("A multipart upload needs the voicepack as a file field named 'file'.", param="file")
    text = {key: value for key, value in form.items() if isinstance(value, str)}
    unknown = set(form.keys()) - {"file", *SaveVoiceRequest.model_fields}
    if unknown:
        raise InvalidRequest(f"Unknown form field(s): {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    try:
        # The same checks as the JSON body; the file stands in for `voice`.
        parsed = SaveVoiceRequest.model_validate({**text, "voice": "upload"})
    except ValidationError as exc:
        raise _invalid(exc) from None
    data = await upload.read()
    await form.close()
    fields = parsed.model_dump(exclude={"model", "voice"})
    return NewVoice(data=data, filename=upload.filename, **fields), parsed.model


def _invalid(exc: ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or None
    message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
    return InvalidRequest(message, param=param)
