"""The OpenAPI description as the server really behaves, and Swagger UI served without a CDN.

FastAPI's generated schema claims 422 validation errors (this server answers 400 in Together's
shape) and JSON success bodies (speech is audio or ``text/event-stream``), and names no security
scheme. :func:`install_openapi` rewrites those parts once, when the schema is first asked for;
:func:`install_docs` serves ``/docs`` from the ``swagger-ui-bundle`` package, so it works offline.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from server.paths import needs_key

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error, in Together's shape.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "description": "What went wrong.",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string", "description": "Human-readable explanation."},
                "type": {"type": "string", "description": "Error class, e.g. invalid_request_error."},
                "param": {"type": ["string", "null"], "description": "The request field at fault, if any."},
                "code": {"type": ["string", "null"], "description": "Stable machine-readable code."},
            },
        }
    },
}
ERRORS = {
    400: "Invalid request: a field out of range, an unknown voice or language, input too long.",
    401: "Missing or wrong API key (with `WWW-Authenticate: Bearer`).",
    404: "The model is not served here (the message names the loaded models), or the voice is unknown.",
    408: "The request body did not arrive in time.",
    413: "The request body is too large.",
    429: "The model's queue is full; retry after `Retry-After` seconds.",
    503: "The model is loading, restarting or failed, or the server is shutting down.",
    504: "The request ran past its deadline (TTS_REQUEST_TIMEOUT_S), or the upstream provider timed out.",
}
BINARY = {"type": "string", "format": "binary"}
SSE_TEXT = (
    "Server-sent events: `data: {json}` per audio chunk (`object: audio.tts.chunk`, `model`, `b64`, and the "
    "same audio as `type: conversation.item.audio_output.delta`, `item_id`, `delta`), with `alignment: word` "
    "also `type: conversation.item.word_timestamps` events (`item_id`, `words`, `start_seconds`, `end_seconds`), "
    'then `data: [DONE]`. A failure after the first chunk arrives as a final `data: {"error": {...}}` event '
    "before `[DONE]`."
)


def sse_schema(text: str) -> dict[str, Any]:
    """One server-sent event (how validators such as schemathesis read a stream: event by event)."""
    return {
        "type": "object",
        "description": text,
        "required": ["data"],
        "properties": {"data": {"type": "string", "description": "A JSON object, or [DONE] last."}},
    }


# (path, method) -> success content types and which errors the operation can answer.
OPERATIONS: dict[tuple[str, str], tuple[dict[str, Any] | None, tuple[int, ...]]] = {
    ("/v1/audio/speech", "post"): (
        {
            "audio/wav": {"schema": BINARY},
            "audio/mpeg": {"schema": BINARY},
            "application/octet-stream": {"schema": BINARY},
            "text/event-stream": {"schema": sse_schema(SSE_TEXT)},
            "application/json": {"schema": {"$ref": "#/components/schemas/SpeechWithTimestamps"}},
        },
        (400, 401, 404, 408, 413, 429, 503, 504),
    ),
    ("/v1/audio/speech/openai", "post"): (
        {
            **{t: {"schema": BINARY} for t in ("audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav")},
            "audio/pcm": {"schema": BINARY},
            "text/event-stream": {"schema": sse_schema("`speech.audio.delta` events, then `speech.audio.done`.")},
        },
        (400, 401, 404, 408, 413, 429, 503, 504),
    ),
    ("/v1/voices", "get"): (None, (400, 401, 404)),
    ("/v1/voices", "post"): (None, (400, 401, 404, 408, 413, 503)),
    ("/v1/voices/{name}", "get"): (None, (401, 404)),
    ("/v1/voices/{name}", "delete"): (None, (400, 401, 404, 503)),
    ("/v1/models", "get"): (None, (401,)),
    ("/v1/models/{model_id}", "get"): (None, (401, 404)),
    ("/stats", "get"): (None, (401,)),
    ("/ready", "get"): (None, (503,)),
    ("/metrics", "get"): ({"text/plain": {"schema": {"type": "string"}}}, ()),
    ("/v1/audio/speech/websocket", "get"): (None, (400, 401, 404, 503)),
}
WEBSOCKET_DOC = {
    "get": {
        "summary": "Realtime text-to-speech websocket",
        "description": (
            "Together's realtime socket (upgrade with `Connection: Upgrade`, `Upgrade: websocket`). Text streams in "
            "as `input_text_buffer.append` events while audio streams out as `conversation.item.audio_output.delta`; "
            "see README.md (Realtime websocket). A wrong key, an unknown or unready model or a bad option is "
            "refused before the upgrade with the usual error body."
        ),
        "operationId": "speech_websocket",
        "tags": ["speech"],
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
            for n, t, d in (
                ("model", "string", "The model (default: the first served)."),
                ("voice", "string", "The voice."),
                ("max_partial_length", "integer", "Characters of unfinished text released at once."),
                ("language", "string", "Together language code."),
                ("api_key", "string", "The key, for clients that cannot set headers."),
            )
        ],
        "responses": {"101": {"description": "Switching to the websocket protocol."}},
    }
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


#: Descriptions for fields of models defined elsewhere without them (shared response shapes).
FIELD_DOCS = {
    "ModelCard": {
        "id": "The model's canonical name (what `model` takes).",
        "object": "Always model.",
        "created": "Unix time the card was made.",
        "type": "Always audio.",
        "display_name": "Short name.",
        "organization": "Who made the model.",
        "owned_by": "Who made the model (OpenAI's field).",
        "link": "Where the weights come from.",
        "pricing": "Per-token prices: zero for a self-hosted model.",
        "available": "False when the model cannot serve (e.g. no Cartesia key).",
    },
    "ModelList": {"object": "Always list.", "data": "The models."},
}


def build(app: FastAPI) -> dict[str, Any]:
    from server.protocol import SpeechWithTimestamps

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorResponse"] = ERROR_SCHEMA
    extra = SpeechWithTimestamps.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(extra.pop("$defs", {}))
    schemas["SpeechWithTimestamps"] = extra
    from server.routes.saved_voices import SaveVoiceRequest  # POST /v1/voices reads its body itself (JSON or upload)

    schemas["SaveVoiceRequest"] = SaveVoiceRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, docs in FIELD_DOCS.items():
        for field, text in docs.items():
            schemas.get(name, {}).get("properties", {}).get(field, {}).setdefault("description", text)
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "A key from TTS_API_KEYS (if set)."}
    }
    schema["paths"]["/v1/audio/speech/websocket"] = WEBSOCKET_DOC
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            content, errors = OPERATIONS.get((path, method), (None, ()))
            if content is not None:
                ok = responses.setdefault("200", {"description": "Success."})
                ok["content"] = content
            public = not needs_key(path)
            operation["security"] = [] if public else [{"bearerAuth": []}]
            codes = set(errors) | (set() if public else {401})
            for status in sorted(codes):
                responses[str(status)] = {
                    "description": ERRORS[status],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                }
                if status == 429:
                    responses["429"]["headers"] = {
                        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
                    }
    return schema


def install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its assets from the swagger-ui-bundle package (no CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )
