"""An ASGI middleware that sends OpenAI-style ``POST .../audio/speech`` bodies to the OpenAI route.

Together's route stays exactly as it was: a request goes there unless the rule in
``server/openai/protocol.py`` says it is OpenAI's. The body is read once here and replayed to
whichever route handles it.
"""

from __future__ import annotations

import json
from typing import Any

from server.openai.protocol import is_openai_request

#: Where OpenAI-style requests are routed (also callable directly to force the OpenAI dialect).
OPENAI_SPEECH_PATH = "/v1/audio/speech/openai"


class OpenAIDialect:
    def __init__(self, app: Any, aliases: frozenset[str]) -> None:
        self.app = app
        self.aliases = aliases

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.rstrip("/").endswith("/audio/speech"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the route see it
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if is_openai_request(parsed, headers.get("user-agent", ""), self.aliases):
            new_path = path.rstrip("/")[: -len("/audio/speech")] + "/audio/speech/openai"
            scope = dict(scope, path=new_path, raw_path=new_path.encode())
        await self.app(scope, _replay(chunks, None, receive), send)


def _replay(chunks: list[bytes], pending: dict | None, receive: Any) -> Any:
    """A receive callable that hands back the body already read, then the client's later messages."""
    queue: list[dict] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}] if chunks else []
    if pending is not None:
        queue.append(pending)

    async def replay() -> dict:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
