"""The websocket's Together options with Kokoro (full-size, random weights): containers, speed,
word alignment and ``extra_params.pronunciation_dict`` in ``tts_session.updated``."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.realtime import append, commit, connect, decoded_seconds, pcm_of, recv, until, word_times_of
from tests.support.servers import serve_app

MODEL = "hexgrad/Kokoro-82M"
DONE = "conversation.item.audio_output.done"
FRAME_S = 600 / 24000  # one predicted duration frame


@pytest.fixture(scope="module")
def base(kokoro_dir):
    settings = Settings(
        kokoro_source=str(kokoro_dir), device="cpu", warmup=False, max_batch_size=1, realtime_idle_timeout_s=120
    )
    with serve_app(create_app(settings)) as url:
        yield url


def run(coro, timeout: float = 300):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def items(base: str, texts: list[str], *, update: dict | None = None, **query) -> list[list[dict]]:
    """Each text as one item (after an optional session update); the events of each item."""
    async with connect(base, model=MODEL, voice="af_heart", **query) as ws:
        await recv(ws)
        if update is not None:
            await ws.send(json.dumps({"type": "tts_session.updated", "session": update}))
            assert (await recv(ws))["type"] == "session.updated"
        spoken = []
        for text in texts:
            await append(ws, text)
            await commit(ws)
            spoken.append(await until(ws, DONE))
        return spoken


def seconds_of_pcm(events: list[dict]) -> float:
    return len(pcm_of(events)) / 2 / 24000


def test_mp3_and_opus_items_decode_to_the_length_of_the_pcm_item(base):
    text = "A short sentence, spoken three ways."
    [pcm] = run(items(base, [text]))
    [mp3] = run(items(base, [text], response_format="mp3"))
    [opus] = run(items(base, [text], response_format="opus"))
    expected = seconds_of_pcm(pcm)
    assert expected > 0.5
    for events in (mp3, opus):
        data = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"].endswith("audio_output.delta"))
        assert abs(decoded_seconds(data) - expected) <= 0.1, (decoded_seconds(data), expected)


def test_speed_two_halves_the_audio(base):
    text = "Speed changes how long this takes."
    [normal] = run(items(base, [text]))
    [fast] = run(items(base, [text], speed=2.0))
    ratio = seconds_of_pcm(fast) / seconds_of_pcm(normal)
    assert 0.4 <= ratio <= 0.6, ratio


def test_sample_rate_resamples_the_audio(base):
    text = "Narrowband audio."
    [wide] = run(items(base, [text]))
    [narrow] = run(items(base, [text], sample_rate=16000))
    assert abs(len(pcm_of(narrow)) / 2 / 16000 - seconds_of_pcm(wide)) <= 0.01


def test_word_timestamps_in_order_monotonic_and_covering_the_audio(base):
    [events] = run(items(base, ["The quick brown fox jumps. Over the lazy dog."], alignment="word"))
    word_events = [e for e in events if e["type"] == "conversation.item.word_timestamps"]
    assert word_events and all(set(e) >= {"item_id", "words", "start_seconds", "end_seconds"} for e in word_events)
    timed = word_times_of(events)
    assert [w.strip(".").lower() for w, _, _ in timed] == "the quick brown fox jumps over the lazy dog".split()
    starts, ends = [s for _, s, _ in timed], [e for _, _, e in timed]
    assert starts == sorted(starts) and ends == sorted(ends) and all(s <= e for s, e in zip(starts, ends))
    audio_s = seconds_of_pcm(events)
    assert starts[0] < 0.5 and 0.5 * audio_s <= ends[-1] <= audio_s + FRAME_S, (starts[0], ends[-1], audio_s)
    # Each word event comes before the audio it describes is finished: they interleave with deltas.
    kinds = [e["type"] for e in events]
    assert kinds.index("conversation.item.word_timestamps") < len(kinds) - 2


def test_pronunciation_dict_in_a_session_update_changes_what_is_spoken(base):
    plain, spelled = run(items(base, ["Well omg.", "Well oh my god."]))
    [replaced] = run(
        items(base, ["Well omg."], update={"extra_params": {"pronunciation_dict": ["omg/oh my god"]}}, alignment="word")
    )
    # Durations are predicted deterministically: the replaced item is as long as the spelled-out text.
    assert abs(seconds_of_pcm(replaced) - seconds_of_pcm(spelled)) <= 2 * FRAME_S
    assert abs(seconds_of_pcm(replaced) - seconds_of_pcm(plain)) > 4 * FRAME_S
    a, b = (np.frombuffer(pcm_of(x), "<i2") for x in (replaced, plain))
    assert a.size != b.size or not np.array_equal(a, b)
    # The word timings still name what the input said.
    assert [w.strip(".") for w, _, _ in word_times_of(replaced)] == ["Well", "omg"]


def test_segment_immediate_speaks_each_append_without_waiting_for_a_sentence_end(base):
    async def talk():
        async with connect(base, model=MODEL, voice="af_heart", segment="immediate", max_partial_length=200) as ws:
            created = await recv(ws)
            await append(ws, "Hello there my ")  # no sentence end, far below max_partial_length
            before_commit = await until(ws, "conversation.item.audio_output.delta")
            await append(ws, "friend.")
            await commit(ws)
            return created, before_commit, await until(ws, DONE)

    created, before, rest = run(talk())
    assert created["session"]["segment"] == "immediate"
    assert pcm_of(before) and len(pcm_of(before + rest)) > len(pcm_of(before))
