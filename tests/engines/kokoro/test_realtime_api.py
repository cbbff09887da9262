"""The realtime websocket with Kokoro (full-size, random weights) behind a real uvicorn server."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.realtime import append, clear, commit, connect, pcm_of, recv, until, wait_for_stats, words_of
from tests.support.servers import serve_app

MODEL = "hexgrad/Kokoro-82M"


@pytest.fixture(scope="module")
def base(kokoro_dir):
    settings = Settings(
        kokoro_source=str(kokoro_dir), device="cpu", warmup=False, max_batch_size=2, realtime_idle_timeout_s=60
    )
    with serve_app(create_app(settings)) as url:
        yield url


def run(coro, timeout: float = 240):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_text_in_small_pieces_is_spoken_before_the_commit(base):
    async def talk():
        async with connect(base, model=MODEL, voice="af_heart", alignment="word") as ws:
            await recv(ws)
            for word in ("Hello ", "there, ", "friend. ", "And then ", "some"):
                await append(ws, word)
            # No commit yet: the finished sentence is already being spoken.
            before_commit = await until(ws, "conversation.item.audio_output.delta")
            await append(ws, " more.")
            committed_at = time.monotonic()
            await commit(ws)
            rest = await until(ws, "conversation.item.audio_output.done")
            return before_commit, rest, committed_at

    before, rest, _ = run(talk())
    acks = [e["text"] for e in before + rest if e["type"] == "conversation.item.input_text.received"]
    assert acks == ["Hello ", "there, ", "friend. ", "And then ", "some", " more."]
    assert pcm_of(before) and len(pcm_of(before + rest)) > len(pcm_of(before))
    words = [w.strip(".,").lower() for w in words_of(before + rest)]
    assert words == ["hello", "there", "friend", "and", "then", "some", "more"]
    assert rest[-1]["item_id"] == "tts_1"


def test_clear_drops_buffered_text_and_items_come_in_order(base):
    async def talk():
        async with connect(base, model=MODEL, voice="af_bella", alignment="word", max_partial_length=100) as ws:
            await recv(ws)
            await append(ws, "Kept words. Dropped words without an end")
            await clear(ws)
            await commit(ws)
            await append(ws, "Second item.")
            await commit(ws)
            first = await until(ws, "conversation.item.audio_output.done")
            second = await until(ws, "conversation.item.audio_output.done")
            return first, second

    first, second = run(talk())
    assert [w.strip(".").lower() for w in words_of(first)] == ["kept", "words"]
    assert [w.strip(".").lower() for w in words_of(second)] == ["second", "item"]
    # The second item's text may be acknowledged meanwhile, but its audio waits for the first's done.
    audio = ("conversation.item.audio_output.delta", "conversation.item.word_timestamps")
    assert {e["item_id"] for e in first if e["type"] in audio} == {"tts_1"}
    assert {e["item_id"] for e in second if e["type"] in audio} == {"tts_2"}
    assert pcm_of(first) and pcm_of(second)


def test_disconnecting_mid_item_frees_its_batch_slot(base):
    text = "This sentence is spoken first. " + "Then a much longer passage follows, on and on. " * 6

    async def talk():
        before = await wait_for_stats(base, MODEL, lambda s: s["active"] == 0)
        async with connect(base, model=MODEL, voice="af_heart") as ws:
            await recv(ws)
            await append(ws, text)
            await commit(ws)
            await until(ws, "conversation.item.audio_output.delta")
        # The socket is closed: its job leaves the batch at the next step.
        after = await wait_for_stats(
            base, MODEL, lambda s: s["jobs_cancelled"] > before["jobs_cancelled"] and s["active"] == 0
        )
        return before, after

    before, after = run(talk())
    assert after["queued"] == 0 and after["jobs_completed"] == before["jobs_completed"]
