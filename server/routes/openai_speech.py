"""OpenAI-style ``POST /v1/audio/speech`` (routed here by server/openai/dialect.py); thin, like Together's."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from server.auth import require_api_key
from server.deadline import bounded
from server.errors import as_tts_error, error_body
from server.openai.dialect import OPENAI_SPEECH_PATH
from server.openai.protocol import OpenAISpeechRequest, audio_delta, audio_done
from server.openai.speech import OpenAISpeech, OpenAISpeechService
from server.request_log import current
from server.streaming import SSE_HEADERS, ClientDisconnected, audio_only, first_item, sse_event, unless_disconnected

logger = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(require_api_key)])


def get_openai_service(request: Request) -> OpenAISpeechService:
    return OpenAISpeechService(request.app.state.speech_service)


@router.post(OPENAI_SPEECH_PATH, response_model=None)
async def create_openai_speech(
    body: OpenAISpeechRequest, request: Request, service: OpenAISpeechService = Depends(get_openai_service)
) -> Response:
    """Speak ``input`` in OpenAI's dialect: the file in ``response_format``, streamed as it is encoded, or
    ``speech.audio.delta`` events with ``stream_format: sse``. ``POST /v1/audio/speech`` comes here too
    when its body is OpenAI's."""
    trace = current()
    if trace is not None:
        trace.route = OPENAI_SPEECH_PATH  # the dialect switch kept the client's path
    speech = await service.start(body)
    items = bounded(request.app.state, speech.encoded())
    try:
        # Wait for the first bytes, so a failure before any audio still gets a proper status code.
        first = await unless_disconnected(request, first_item(items))
    except ClientDisconnected:
        await items.aclose()
        speech.encoder.discard()  # idempotent: also when the stream never started
        return Response(status_code=499)
    except BaseException:
        speech.encoder.discard()
        raise
    if body.stream_format == "sse":
        return StreamingResponse(_sse(speech, first, items), headers=SSE_HEADERS)
    # No Content-Length: the body goes out with chunked transfer, each piece as the muxer releases it.
    return StreamingResponse(audio_only(first, items), media_type=speech.encoder.content_type)


async def _sse(speech: OpenAISpeech, first: bytes, rest: AsyncIterator) -> AsyncIterator[bytes]:
    """OpenAI's events: ``speech.audio.delta`` with base64 audio (in the response_format), then ``done``."""
    async with contextlib.aclosing(rest):  # a client that leaves closes the source (and its encoder) now
        try:
            if first:
                yield sse_event(audio_delta(base64.b64encode(first).decode()))
            async for item in rest:
                if isinstance(item, bytes) and item:
                    yield sse_event(audio_delta(base64.b64encode(item).decode()))
        except Exception as exc:  # the status line is gone: report in-band
            error = as_tts_error(exc)
            if (trace := current()) is not None:
                trace.error_code = error.code
            yield sse_event({"type": "error", **error_body(error)})
            return
        yield sse_event(audio_done(speech.input_chars, speech.audio_seconds))
