"""``?api_key=`` on the websocket: checked before the upgrade, and never written to a log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.realtime import append, commit, connect, recv, until
from tests.support.servers import serve_app

KEY = "sk-secret-4f9a1c"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def every_log_line():
    """Everything uvicorn and this server log, at every level (uvicorn's handshake lines are INFO)."""
    handler = Collect()
    # The server's loggers, not the test client's (which logs its own request line).
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "tts_server", "server", "engines")
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in names]
    for logger, _ in saved:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def refused(base: str, **query) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as error:
        async with connect(base, **query):
            pass
    return error.value.response.status_code, json.loads(error.value.response.body)


def test_query_key_opens_the_socket_a_wrong_one_is_refused_and_neither_is_logged():
    engine = FakeEngine()
    app = create_app(Settings(api_keys=KEY), engines={engine.model_id: engine})

    async def talk(base):
        async with connect(base, voice="alpha", api_key=KEY, speed=1.25) as ws:
            created = await recv(ws)
            await append(ws, "Authorised.")
            await commit(ws)
            spoken = await until(ws, "conversation.item.audio_output.done")
            speed = engine.last_request.speed
        unversioned = base.replace("http://", "ws://") + f"/audio/speech/websocket?voice=alpha&api_key={KEY}"
        async with websockets.connect(unversioned) as ws:  # the path without /v1 is served (and logged) too
            assert (await recv(ws))["type"] == "session.created"
        wrong = await refused(base, voice="alpha", api_key=KEY + "x")
        missing = await refused(base, voice="alpha")
        return created, spoken, speed, wrong, missing

    with serve_app(app) as base, every_log_line() as lines:  # after uvicorn set its levels
        created, spoken, speed, wrong, missing = run(talk(base))
    assert created["type"] == "session.created" and spoken[-1]["item_id"] == "tts_1"
    assert speed == 1.25  # the other query parameters survive the key's removal
    assert wrong == (401, {"error": wrong[1]["error"]}) and wrong[1]["error"]["code"] == "invalid_api_key"
    assert missing[0] == 401 and missing[1]["error"]["code"] == "missing_api_key"
    handshakes = [line for line in lines if "WebSocket /v1/audio/speech/websocket" in line]
    handshakes += [line for line in lines if '"WebSocket /audio/speech/websocket' in line]
    assert len(handshakes) >= 4, lines  # uvicorn logged each handshake (accepted twice, 401, 401)...
    assert "speed=1.25" in " ".join(handshakes)  # ...with its query string...
    assert not [line for line in handshakes if KEY[3:] in line]  # ...without the key
    assert not [line for line in lines if KEY[3:] in line]  # and no line at any level has the key
    assert any("api_key=[redacted]" in line for line in lines)  # uvicorn's raw request lines (DEBUG), filtered
