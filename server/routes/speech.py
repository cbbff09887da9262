"""POST /v1/audio/speech: thin; the work is in SpeechService and the engine's worker."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from server.audio import fix_wav_sizes
from server.auth import require_api_key
from server.protocol import SpeechRequest
from server.services.speech import SpeechService
from server.streaming import (
    SSE_HEADERS,
    ClientDisconnected,
    collect,
    first_chunk,
    prepend,
    sse_stream,
    unless_disconnected,
)

router = APIRouter(dependencies=[Depends(require_api_key)])


def get_speech_service(request: Request) -> SpeechService:
    return request.app.state.speech_service


@router.post("/v1/audio/speech", response_model=None)
async def create_speech(
    body: SpeechRequest, request: Request, service: SpeechService = Depends(get_speech_service)
) -> Response:
    prepared = await service.prepare(body)
    audio = service.audio_bytes(prepared)
    try:
        first = await unless_disconnected(request, first_chunk(audio))
        if body.stream:
            events = sse_stream(prepared.engine.model_id, prepared.request.request_id, first, audio)
            return StreamingResponse(events, headers=SSE_HEADERS)
        if prepared.request.output.format == "wav":
            # The RIFF header carries the length, so a WAV body is complete before it is sent.
            data = await unless_disconnected(request, collect(first, audio))
            return Response(fix_wav_sizes(data), media_type=prepared.content_type)
        return StreamingResponse(prepend(first, audio), media_type=prepared.content_type)
    except ClientDisconnected:
        await audio.aclose()
        return Response(status_code=499)
