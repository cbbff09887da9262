"""The websocket examples of Together's documentation (../shared/reference/together-docs-2026.md), sent as
written, with the documented event shapes asserted field by field.

Each event may carry fields the docs do not show (``event_id`` everywhere, ``item_id`` on
acknowledgements, the full session settings); they are listed here, so any other change of shape fails.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from engines.base import Voice
from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.realtime import recv, until, ws_url
from tests.support.servers import serve_app

KEY = "sk-docs-example"
ORPHEUS = "canopylabs/orpheus-3b-0.1-ft"
SESSION_SETTINGS = {  # this server's session object beyond the documented id/object/modalities/model/voice
    "max_partial_length",
    "language",
    "speed",
    "alignment",
    "response_format",
    "response_encoding",
    "sample_rate",
    "segment",
    "extra_params",
}


class TaraEngine(FakeEngine):
    """The stand-in engine under the docs' model and voice names (the API layer is what is tested)."""

    def voices(self) -> list[Voice]:
        return [Voice(id="tara", name="tara", language="en-US", gender="female"), *super().voices()]

    async def open_session(self, params):
        if params.voice == "tara":
            params.voice = "alpha"
        return await super().open_session(params)


@pytest.fixture(scope="module")
def base():
    engines = {ORPHEUS: TaraEngine(ORPHEUS, chunks=2), "hexgrad/Kokoro-82M": FakeEngine(chunks=2)}
    with serve_app(create_app(Settings(api_keys=KEY), engines=engines)) as url:
        yield url


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def connect(base: str, **query):
    import websockets

    return websockets.connect(ws_url(base, api_key=KEY, **query))


async def send(ws, event: dict) -> None:
    await ws.send(json.dumps(event))


def test_session_created_text_received_audio_delta_and_done(base):
    async def talk():
        async with connect(base, model=ORPHEUS, voice="tara") as ws:
            created = await recv(ws)
            await send(ws, {"type": "input_text_buffer.append", "text": "Hello, this is a test sentence."})
            await send(ws, {"type": "input_text_buffer.commit"})
            return created, await until(ws, "conversation.item.audio_output.done")

    created, events = run(talk())
    assert set(created) == {"event_id", "type", "session"} and created["type"] == "session.created"
    assert isinstance(created["event_id"], str) and created["event_id"]
    session = created["session"]
    assert set(session) == {"id", "object", "modalities", "model", "voice"} | SESSION_SETTINGS
    assert isinstance(session["id"], str) and session["id"]
    assert (session["object"], session["modalities"]) == ("realtime.tts.session", ["text", "audio"])
    assert (session["model"], session["voice"]) == (ORPHEUS, "tara")

    received, *deltas, done = events
    assert set(received) == {"type", "text"} | {"event_id", "item_id"}
    assert received["type"] == "conversation.item.input_text.received"
    assert received["text"] == "Hello, this is a test sentence."
    assert deltas
    for delta in deltas:
        assert set(delta) == {"type", "item_id", "delta"} | {"event_id"}
        assert (delta["type"], delta["item_id"]) == ("conversation.item.audio_output.delta", "tts_1")
        assert base64.b64decode(delta["delta"], validate=True)
    assert set(done) == {"type", "item_id"} | {"event_id"}
    assert (done["type"], done["item_id"]) == ("conversation.item.audio_output.done", "tts_1")


def test_tts_session_updated_examples(base):
    async def talk():
        async with connect(base, model=ORPHEUS, voice="tara") as ws:
            await recv(ws)
            await send(ws, {"type": "tts_session.updated", "session": {"voice": "alpha"}})
            voice = await recv(ws)
            example = {"voice": "tara", "extra_params": {"pronunciation_dict": ["omg/oh my god"]}}
            await send(ws, {"type": "tts_session.updated", "session": example})
            return voice, await recv(ws)

    voice, dictionary = run(talk())
    for event in (voice, dictionary):
        assert set(event) == {"event_id", "type", "session"} and event["type"] == "session.updated"
    assert voice["session"]["voice"] == "alpha"
    assert dictionary["session"]["voice"] == "tara"
    assert dictionary["session"]["extra_params"] == {"pronunciation_dict": ["omg/oh my god"]}


def test_clear_and_word_timestamps_with_alignment_word(base):
    async def talk():
        async with connect(base, model="hexgrad/Kokoro-82M", voice="alpha", alignment="word") as ws:
            await recv(ws)
            await send(ws, {"type": "input_text_buffer.append", "text": "Dropped text"})
            await send(ws, {"type": "input_text_buffer.clear"})
            await send(ws, {"type": "input_text_buffer.append", "text": "Hello world"})
            await send(ws, {"type": "input_text_buffer.commit"})
            return await until(ws, "conversation.item.audio_output.done")

    events = run(talk())
    words = [e for e in events if e["type"] == "conversation.item.word_timestamps"]
    assert len(words) == 1
    assert set(words[0]) == {"type", "words", "start_seconds", "end_seconds"} | {"event_id", "item_id"}
    assert (words[0]["words"], words[0]["item_id"]) == (["Hello", "world"], "tts_1")
    assert words[0]["start_seconds"] == [0.0, 0.1] and words[0]["end_seconds"] == [0.1, 0.2]


def test_tts_failed_carries_togethers_error_object(base):
    async def talk():
        async with connect(base, model=ORPHEUS, voice="tara") as ws:
            await recv(ws)
            await send(ws, {"type": "tts_session.updated", "session": {"voice": "nobody"}})
            return await recv(ws)

    failed = run(talk())
    assert set(failed) == {"type", "error"} | {"event_id", "item_id"}
    assert failed["type"] == "conversation.item.tts.failed" and failed["item_id"] is None
    assert set(failed["error"]) == {"message", "type", "param", "code"}
    assert (failed["error"]["type"], failed["error"]["code"]) == ("invalid_request_error", "invalid_voice")
