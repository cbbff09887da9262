"""The realtime websocket's protocol, through uvicorn with the stand-in engine (engines are tested elsewhere)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app

VOICE = "alpha"


@pytest.fixture(scope="module")
def server():
    engine = FakeEngine(chunks=2, chunk_samples=2400)
    settings = Settings(api_keys="k1", realtime_idle_timeout_s=30)
    with serve_app(create_app(settings, engines={engine.model_id: engine})) as base:
        yield base.replace("http://", "ws://") + "/v1/audio/speech/websocket", engine


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def recv(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def until(ws, kind: str) -> list[dict]:
    """Events up to and including the first of ``kind``."""
    seen = [await recv(ws)]
    while seen[-1]["type"] != kind:
        seen.append(await recv(ws))
    return seen


def connect(url: str, query: str = f"voice={VOICE}", key: str | None = "k1"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return websockets.connect(f"{url}?{query}", additional_headers=headers)


@pytest.mark.parametrize(
    "query, key, status, code",
    [
        (f"voice={VOICE}", None, 401, "missing_api_key"),
        (f"voice={VOICE}", "wrong", 401, "invalid_api_key"),
        (f"voice={VOICE}&api_key=wrong", None, 401, "invalid_api_key"),
        ("voice=nobody", "k1", 400, "invalid_voice"),
        ("model=acme/none", "k1", 404, "model_not_available"),
        ("max_partial_length=0", "k1", 400, "invalid_request"),
    ],
)
def test_refused_before_the_upgrade_with_togethers_error(server, query, key, status, code):
    url, _ = server

    async def attempt():
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, query, key):
                pass
        return refused.value.response

    response = run(attempt())
    assert response.status_code == status
    assert json.loads(response.body)["error"]["code"] == code


def test_key_in_the_query_and_session_created_first(server):
    url, _ = server

    async def talk():
        async with connect(url, f"voice={VOICE}&api_key=k1&max_partial_length=80", key=None) as ws:
            return await recv(ws)

    created = run(talk())
    assert created["type"] == "session.created" and created["event_id"]
    session = created["session"]
    assert session["object"] == "realtime.tts.session" and session["modalities"] == ["text", "audio"]
    assert (session["model"], session["voice"], session["max_partial_length"]) == ("hexgrad/Kokoro-82M", VOICE, 80)
    assert (session["response_encoding"], session["sample_rate"]) == ("pcm_s16le", 24000)


def test_an_item_is_acknowledged_spoken_and_done(server):
    url, engine = server

    async def talk():
        async with connect(url) as ws:
            await recv(ws)
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": "Hello there."}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            return await until(ws, "conversation.item.audio_output.done")

    events = run(talk())
    assert [e["type"] for e in events] == [
        "conversation.item.input_text.received",
        "conversation.item.audio_output.delta",
        "conversation.item.audio_output.delta",
        "conversation.item.audio_output.done",
    ]
    assert events[0]["text"] == "Hello there." and {e["item_id"] for e in events} == {"tts_1"}
    pcm = b"".join(base64.b64decode(e["delta"]) for e in events[1:3])
    assert len(pcm) == 2 * 2 * 2400  # two chunks of 24 kHz s16le
    assert engine.last_text == "Hello there."


def test_bad_events_fail_and_the_socket_stays_usable(server):
    url, _ = server
    bad = [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"type": "input_text_buffer.explode"}),
        json.dumps({"type": "input_text_buffer.append", "text": 42}),
        json.dumps({"type": "tts_session.updated", "session": {"voice": "nobody"}}),
        json.dumps({"type": "tts_session.updated", "session": {"speed": 99}}),
        "[" * 100_000,  # nested past TTS_MAX_JSON_DEPTH: refused before the JSON decoder recurses
    ]

    async def talk():
        async with connect(url) as ws:
            await recv(ws)
            failures = []
            for message in bad:
                await ws.send(message)
                failures.append(await recv(ws))
            await ws.send(b"\x00binary")
            failures.append(await recv(ws))
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": "Still here."}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            return failures, await until(ws, "conversation.item.audio_output.done")

    failures, events = run(talk())
    assert {f["type"] for f in failures} == {"conversation.item.tts.failed"}
    codes = [f["error"]["code"] for f in failures]
    assert codes == ["invalid_event"] * 4 + ["invalid_voice", "invalid_request", "invalid_event", "invalid_event"]
    assert "TTS_MAX_JSON_DEPTH" in failures[-2]["error"]["message"]
    assert failures[5]["error"]["param"] == "speed"
    assert events[-1]["type"] == "conversation.item.audio_output.done"


def test_session_update_applies_to_the_next_item(server):
    url, engine = server

    async def talk():
        async with connect(url) as ws:
            await recv(ws)
            update = {"voice": VOICE, "sample_rate": 8000, "response_encoding": "pcm_mulaw", "extra_params": {}}
            await ws.send(json.dumps({"type": "tts_session.updated", "session": update}))
            updated = await recv(ws)
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": "Narrowband."}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            return updated, await until(ws, "conversation.item.audio_output.done")

    updated, events = run(talk())
    assert updated["type"] == "session.updated" and updated["session"]["sample_rate"] == 8000
    pcm = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"].endswith(".delta"))
    assert abs(len(pcm) - 2 * 2400 // 3) <= 16  # 0.2 s at 8 kHz, one byte a sample
    assert engine.last_request.output.encoding == "pcm_mulaw"


def test_two_items_in_order_and_clear(server):
    url, engine = server

    async def talk():
        async with connect(url) as ws:
            await recv(ws)
            send = ws.send
            await send(json.dumps({"type": "input_text_buffer.append", "text": "Dropped "}))
            await send(json.dumps({"type": "input_text_buffer.clear"}))
            await send(json.dumps({"type": "input_text_buffer.append", "text": "First."}))
            await send(json.dumps({"type": "input_text_buffer.commit"}))
            await send(json.dumps({"type": "input_text_buffer.append", "text": "Second."}))
            await send(json.dumps({"type": "input_text_buffer.commit"}))
            first = await until(ws, "conversation.item.audio_output.done")
            second = await until(ws, "conversation.item.audio_output.done")
            return first, second

    spoken = len(engine.committed_texts)
    first, second = run(talk())
    assert first[1]["type"] == "input_text_buffer.cleared"
    # What was cleared never reached the engine: exactly the two items' texts were spoken.
    assert engine.committed_texts[spoken:] == ["First.", "Second."]
    received = [e["text"] for e in first + second if e["type"] == "conversation.item.input_text.received"]
    assert received == ["Dropped ", "First.", "Second."]
    assert first[-1]["item_id"] == "tts_1" and second[-1]["item_id"] == "tts_2"
    # The second item's audio comes only after the first item is done.
    assert all(e.get("item_id") != "tts_2" for e in first if e["type"].endswith(".delta"))
    assert [e["item_id"] for e in second if e["type"].endswith(".delta")] == ["tts_2", "tts_2"]


def test_idle_connections_are_closed():
    engine = FakeEngine()
    app = create_app(Settings(realtime_idle_timeout_s=0.3), engines={engine.model_id: engine})

    async def talk(url):
        async with websockets.connect(f"{url}?voice={VOICE}") as ws:
            await recv(ws)
            failed = await recv(ws)
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            return failed, ws.close_reason

    with serve_app(app) as base:
        failed, reason = run(talk(base.replace("http://", "ws://") + "/audio/speech/websocket"))  # no /v1 works too
    assert failed["type"] == "conversation.item.tts.failed" and failed["error"]["code"] == "idle_timeout"
    assert reason == "idle_timeout"


def test_a_busy_session_is_closed_at_the_overall_session_limit():
    engine = FakeEngine()
    settings = Settings(realtime_max_session_s=0.5, realtime_idle_timeout_s=30)
    app = create_app(settings, engines={engine.model_id: engine})

    async def talk(url):
        async with websockets.connect(f"{url}?voice={VOICE}") as ws:
            await recv(ws)
            opened = asyncio.get_running_loop().time()
            busy = True

            async def keep_busy():  # an event every 0.1 s: never idle
                while busy:
                    await ws.send(json.dumps({"type": "input_text_buffer.clear"}))
                    await asyncio.sleep(0.1)

            sender = asyncio.create_task(keep_busy())
            try:
                replies = await until(ws, "conversation.item.tts.failed")
            finally:
                busy = False
                await asyncio.gather(sender, return_exceptions=True)
            lasted = asyncio.get_running_loop().time() - opened
            with pytest.raises(ConnectionClosedOK):  # the failure is final: nothing after it but the close
                raise AssertionError(f"after the final event: {await ws.recv()}")
            return replies, lasted, ws.close_code, ws.close_reason

    with serve_app(app) as base:
        replies, lasted, code, reason = run(talk(base.replace("http://", "ws://") + "/v1/audio/speech/websocket"))
    failed = replies[-1]
    assert {e["type"] for e in replies[:-1]} == {"input_text_buffer.cleared"} and len(replies) > 2  # it was busy
    assert failed["error"]["code"] == "session_expired" and failed["item_id"] is None
    assert "TTS_REALTIME_MAX_SESSION_S" in failed["error"]["message"]
    assert (code, reason) == (1000, "session_expired")
    assert 0.4 <= lasted < 10, lasted  # the session limit, not the 30 s idle timeout


def test_a_message_over_the_body_limit_closes_the_socket_with_1009():
    engine = FakeEngine()
    app = create_app(Settings(max_body_bytes=1024), engines={engine.model_id: engine})

    def append(text: str) -> str:
        return json.dumps({"type": "input_text_buffer.append", "text": text})

    async def talk(url):
        async with websockets.connect(f"{url}?voice={VOICE}") as ws:
            await recv(ws)
            await ws.send(append("a" * 900))  # under the limit: accepted
            received = await recv(ws)
            await ws.send(append("a" * 1100))
            with pytest.raises(ConnectionClosedError) as closed:
                while True:
                    await recv(ws)
            return received, closed.value.rcvd

    with serve_app(app) as base:
        received, close = run(talk(base.replace("http://", "ws://") + "/v1/audio/speech/websocket"))
    assert received["type"] == "conversation.item.input_text.received" and len(received["text"]) == 900
    assert close is not None and close.code == 1009


def test_one_socket_may_hold_only_so_many_unspoken_items():
    engine = FakeEngine(chunks=2, chunk_samples=2400, delay_s=0.2)
    app = create_app(Settings(realtime_max_pending_items=2), engines={engine.model_id: engine})

    async def talk(url):
        async with websockets.connect(f"{url}?voice={VOICE}") as ws:
            await recv(ws)
            for text in ("One.", "Two.", "Three."):
                await ws.send(json.dumps({"type": "input_text_buffer.append", "text": text}))
                await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            refused = await until(ws, "conversation.item.tts.failed")
            first_done = await until(ws, "conversation.item.audio_output.done")
            # One item spoken: room for another.
            await ws.send(json.dumps({"type": "input_text_buffer.append", "text": "Four."}))
            await ws.send(json.dumps({"type": "input_text_buffer.commit"}))
            rest = [await recv(ws)]
            while not (rest[-1]["type"].endswith("audio_output.done") and rest[-1]["item_id"] == "tts_3"):
                rest.append(await recv(ws))
            return refused, first_done, rest

    with serve_app(app) as base:
        refused, first_done, rest = run(talk(base.replace("http://", "ws://") + "/v1/audio/speech/websocket"))
    failed = refused[-1]
    assert failed["error"]["code"] == "server_overloaded" and failed["item_id"] is None
    assert "TTS_REALTIME_MAX_PENDING_ITEMS" in failed["error"]["message"]
    received = [e["text"] for e in refused + first_done + rest if e["type"].endswith("input_text.received")]
    assert received == ["One.", "Two.", "Four."]  # "Three." was refused, nothing else
    done = [e["item_id"] for e in first_done + rest if e["type"].endswith("audio_output.done")]
    assert done == ["tts_1", "tts_2", "tts_3"]
