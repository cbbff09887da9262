"""POST /v1/audio/speech: thin; the work is in SpeechService and the engine's session."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from server.audio import fix_wav_sizes
from server.auth import require_api_key
from server.deadline import bounded
from server.protocol import SpeechRequest, SpeechWithTimestamps, WordEntry
from server.services.speech import SpeechService
from server.streaming import (
    SSE_HEADERS,
    ClientDisconnected,
    audio_only,
    collect,
    first_item,
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
    """Speak ``input`` (Together's API). The answer is the audio file (``audio/wav``, ``audio/mpeg``,
    ``application/octet-stream`` for raw), server-sent events with ``stream: true``, or JSON with the audio
    and its words with ``alignment: "word"`` (an extension). OpenAI-style bodies are served as OpenAI's API (see
    ``/v1/audio/speech/openai``). Errors before the first byte have their status; after it, a final SSE
    error event."""
    prepared = await service.prepare(body)
    # The deadline and the shutdown cut-off apply to the whole response, first byte to last.
    items = bounded(request.app.state, service.audio_events(prepared))
    output = prepared.output
    try:
        first = await unless_disconnected(request, first_item(items))
        if output.stream:
            events = sse_stream(prepared.engine.model_id, prepared.params.request_id, first, items)
            return StreamingResponse(events, headers=SSE_HEADERS)
        if body.wants_words or output.format == "wav":
            # The RIFF header carries the length, so a WAV body is complete before it is sent.
            audio, words = await unless_disconnected(request, collect(first, items))
            if output.format == "wav":
                audio = fix_wav_sizes(audio)
            if not body.wants_words:
                return Response(audio, media_type=prepared.content_type)
            return JSONResponse(
                SpeechWithTimestamps(
                    id=prepared.params.request_id,
                    model=prepared.engine.model_id,
                    content_type=prepared.content_type,
                    sample_rate=output.sample_rate,
                    encoding=output.encoding if output.format == "raw" else None,
                    audio=base64.b64encode(audio).decode(),
                    words=[WordEntry.of(w) for w in words],
                ).model_dump()
            )
        return StreamingResponse(audio_only(first, items), media_type=prepared.content_type)
    except ClientDisconnected:
        await items.aclose()
        return Response(status_code=499)
