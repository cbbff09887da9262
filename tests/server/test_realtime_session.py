"""``tts_session.updated`` with Together's fields (extra_params, context_id) and the socket's locales."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import InvalidStatus

from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.realtime import append, commit, connect, recv, until

DONE = "conversation.item.audio_output.done"


@pytest.fixture(scope="module")
def server():
    from tests.support.servers import serve_app

    engine = FakeEngine(chunks=1)
    app = create_app(Settings(realtime_idle_timeout_s=30), engines={engine.model_id: engine})
    with serve_app(app) as base:
        yield base, engine


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def update(ws, session: dict, **event) -> dict:
    await ws.send(json.dumps({"type": "tts_session.updated", "session": session, **event}))
    return await recv(ws)


async def say(ws, text: str) -> list[dict]:
    await append(ws, text)
    await commit(ws)
    return await until(ws, DONE)


def test_extra_params_pronunciation_dict_applies_to_the_next_items(server):
    base, engine = server

    async def talk():
        async with connect(base, voice="alpha") as ws:
            created = await recv(ws)
            await say(ws, "omg before.")
            before = engine.last_request.pronunciations
            updated = await update(ws, {"voice": "alpha", "extra_params": {"pronunciation_dict": ["omg/oh my god"]}})
            await say(ws, "omg after.")
            after = engine.last_request.pronunciations
            await update(ws, {"speed": 1.1})  # other fields change; the dictionary stays
            await say(ws, "omg still.")
            kept = engine.last_request.pronunciations
            await update(ws, {"extra_params": {}})  # a new extra_params replaces the old one
            await say(ws, "omg gone.")
            return created, updated, before, after, kept, engine.last_request.pronunciations

    created, updated, before, after, kept, cleared = run(talk())
    assert created["session"]["extra_params"] == {}
    assert updated["type"] == "session.updated"
    assert updated["session"]["extra_params"] == {"pronunciation_dict": ["omg/oh my god"]}
    assert before == () and cleared == ()
    assert after == kept == (("omg", "oh my god"),)


@pytest.mark.parametrize(
    "entries",
    [["omg"], ["/oh my god"], "omg/oh my god", [42]],
)
def test_a_malformed_pronunciation_dict_is_refused_and_the_session_keeps_its_settings(server, entries):
    base, engine = server

    async def talk():
        async with connect(base, voice="alpha") as ws:
            await recv(ws)
            failed = await update(ws, {"extra_params": {"pronunciation_dict": entries}})
            await say(ws, "Still fine.")
            return failed, engine.last_request.pronunciations

    failed, pronunciations = run(talk())
    assert failed["type"] == "conversation.item.tts.failed" and failed["item_id"] is None
    assert failed["error"]["param"] == "extra_params.pronunciation_dict"
    assert failed["error"]["type"] == "invalid_request_error"
    assert pronunciations == ()


def test_an_update_without_context_id_updates_the_session_a_foreign_one_is_refused(server):
    base, engine = server

    async def talk():
        async with connect(base, voice="alpha") as ws:
            session_id = (await recv(ws))["session"]["id"]
            plain = await update(ws, {"speed": 1.2})
            named = await update(ws, {"speed": 1.3}, context_id=session_id)
            foreign = await update(ws, {"speed": 2.0}, context_id="ctx_other")
            await say(ws, "Which speed?")
            return plain, named, foreign, engine.last_request.speed

    plain, named, foreign, speed = run(talk())
    assert plain["type"] == named["type"] == "session.updated"
    assert (plain["session"]["speed"], named["session"]["speed"]) == (1.2, 1.3)
    assert foreign["type"] == "conversation.item.tts.failed" and foreign["error"]["param"] == "context_id"
    assert speed == 1.3


def test_lowercase_locales_like_post_and_an_unknown_one_is_refused(server):
    base, engine = server

    async def talk():
        async with connect(base, voice="alpha", language="en-us") as ws:
            created = await recv(ws)
            await say(ws, "Locale.")
            spoken = engine.last_request.language
            changed = await update(ws, {"language": "fr"})
            refused = await update(ws, {"language": "xx-zz"})
        return created, spoken, changed, refused

    created, spoken, changed, refused = run(talk())
    assert created["session"]["language"] == "en-us" and spoken == "en-us"
    assert changed["session"]["language"] == "fr"
    assert refused["type"] == "conversation.item.tts.failed" and refused["error"]["param"] == "language"

    async def connect_with(language):
        with pytest.raises(InvalidStatus) as error:
            async with connect(base, voice="alpha", language=language):
                pass
        return error.value.response.status_code, json.loads(error.value.response.body)["error"]

    for language in ("xx-zz", "EN-US"):
        status, error = run(connect_with(language))
        assert status == 400 and error["param"] == "language", (language, error)
