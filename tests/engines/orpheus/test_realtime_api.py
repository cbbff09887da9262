"""The realtime websocket with the tiny Orpheus behind a real uvicorn server."""

from __future__ import annotations

import asyncio
import json

import pytest

from engines.orpheus.settings import ORPHEUS_MODEL
from server.app import create_app
from tests.engines.orpheus.conftest import settings_for
from tests.support.realtime import append, commit, connect, pcm_of, recv, until, wait_for_stats
from tests.support.servers import serve_app


@pytest.fixture(scope="module")
def base(orpheus_dirs):
    with serve_app(create_app(settings_for(orpheus_dirs, max_batch_size=2))) as url:
        yield url


def run(coro, timeout: float = 240):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_a_finished_sentence_is_spoken_before_the_commit_and_items_follow_in_order(base):
    async def talk():
        async with connect(base, model=ORPHEUS_MODEL, voice="tara") as ws:
            created = await recv(ws)
            for word in ("Hi ", "there. ", "Still "):
                await append(ws, word)
            before_commit = await until(ws, "conversation.item.audio_output.delta")
            await append(ws, "typing.")
            await commit(ws)
            first = await until(ws, "conversation.item.audio_output.done")
            await append(ws, "Next one.")
            await commit(ws)
            second = await until(ws, "conversation.item.audio_output.done")
            return created, before_commit, first, second

    created, before, first, second = run(talk())
    assert created["session"]["voice"] == "tara"
    assert pcm_of(before) and first[-1]["item_id"] == "tts_1" and second[-1]["item_id"] == "tts_2"
    assert len(pcm_of(before + first)) % 2 == 0 and pcm_of(second, "tts_2")


def test_disconnecting_mid_item_frees_its_batch_slot(base):
    async def talk():
        before = await wait_for_stats(base, ORPHEUS_MODEL, lambda s: s["active"] == 0)
        async with connect(base, model=ORPHEUS_MODEL, voice="tara") as ws:
            await recv(ws)
            await append(ws, "One. Two. Three. Four. Five. Six. Seven. Eight.")
            await commit(ws)
            await until(ws, "conversation.item.audio_output.delta")
        return before, await wait_for_stats(
            base, ORPHEUS_MODEL, lambda s: s["jobs_cancelled"] > before["jobs_cancelled"] and s["active"] == 0
        )

    before, after = run(talk())
    assert after["queued"] == 0 and after["jobs_completed"] == before["jobs_completed"]


def test_word_timestamps_are_refused_for_orpheus_before_the_upgrade(base):
    from websockets.exceptions import InvalidStatus

    async def attempt():
        with pytest.raises(InvalidStatus) as refused:
            async with connect(base, model=ORPHEUS_MODEL, voice="tara", alignment="word"):
                pass
        return refused.value.response

    response = run(attempt())
    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert error["param"] == "alignment" and "no word timestamps" in error["message"]
