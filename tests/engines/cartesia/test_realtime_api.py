"""cartesia/sonic behind this server's realtime websocket (the fake Cartesia upstream): Together's
word-timestamp events and per-item containers."""

from __future__ import annotations

import asyncio
import base64

from server.app import create_app
from tests.engines.cartesia.conftest import settings_for
from tests.engines.cartesia.fake_cartesia import FakeCartesia
from tests.support.realtime import append, commit, connect, decoded_seconds, pcm_of, recv, until, word_times_of
from tests.support.servers import serve_app

MODEL = "cartesia/sonic"
DONE = "conversation.item.audio_output.done"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def item(base: str, pieces: list[str], **query) -> list[dict]:
    async with connect(base, model=MODEL, voice="friendly sidekick", **query) as ws:
        await recv(ws)
        for piece in pieces:
            await append(ws, piece)
        await commit(ws)
        return await until(ws, DONE)


def test_word_timestamps_in_togethers_shape_in_order_and_covering_the_audio(fake: FakeCartesia) -> None:
    with serve_app(create_app(settings_for(fake))) as base:
        events = run(item(base, ["Hello there. ", "Second ", "sentence."], alignment="word"))
    word_events = [e for e in events if e["type"] == "conversation.item.word_timestamps"]
    assert word_events
    for event in word_events:
        assert set(event) == {"event_id", "type", "item_id", "words", "start_seconds", "end_seconds"}
        assert event["item_id"] == "tts_1"
        assert len(event["words"]) == len(event["start_seconds"]) == len(event["end_seconds"])
    timed = word_times_of(events)
    assert [w for w, _, _ in timed] == ["Hello", "there.", "Second", "sentence."]
    starts, ends = [s for _, s, _ in timed], [e for _, _, e in timed]
    assert starts == sorted(starts) and ends == sorted(ends) and all(s < e for s, e in zip(starts, ends))
    audio_s = len(pcm_of(events)) / 2 / 24000  # the socket's default: 24 kHz s16le
    assert 0.8 * audio_s <= ends[-1] <= audio_s + 1e-6, (ends[-1], audio_s)


def test_an_mp3_item_decodes_to_the_length_of_its_pcm(fake: FakeCartesia) -> None:
    with serve_app(create_app(settings_for(fake))) as base:
        pcm = run(item(base, ["One item, spoken twice."]))
        mp3 = run(item(base, ["One item, spoken twice."], response_format="mp3"))
    data = b"".join(base64.b64decode(e["delta"]) for e in mp3 if e["type"].endswith("audio_output.delta"))
    expected = len(pcm_of(pcm)) / 2 / 24000
    assert expected > 0.1 and abs(decoded_seconds(data) - expected) <= 0.1
