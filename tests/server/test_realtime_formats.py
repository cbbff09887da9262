"""The websocket's audio options: containers streamed per item, sample rate, speed, segment, alignment.

The stand-in engine speaks a known tone of known length, so every container can be decoded (PyAV,
i.e. FFmpeg) and its length compared with what was spoken; engines are tested elsewhere.
"""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.fake_engine import RATE, FakeEngine
from tests.support.realtime import (
    append,
    commit,
    connect,
    decoded_seconds,
    pcm_of,
    recv,
    until,
    word_times_of,
)
from tests.support.servers import serve_app

CHUNKS, CHUNK_SAMPLES = 10, 2400  # one second of audio per item, in ten pieces
SPOKEN_S = CHUNKS * CHUNK_SAMPLES / RATE
DONE = "conversation.item.audio_output.done"


@pytest.fixture(scope="module")
def server():
    engine = FakeEngine(chunks=CHUNKS, chunk_samples=CHUNK_SAMPLES, delay_s=0.02)
    app = create_app(Settings(realtime_idle_timeout_s=30), engines={engine.model_id: engine})
    with serve_app(app) as base:
        yield base, engine


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def speak(base: str, texts: list[str], **query) -> list[dict]:
    """Connect, speak each text as its own item, and return every event after session.created."""
    async with connect(base, voice="alpha", **query) as ws:
        assert (await recv(ws))["type"] == "session.created"
        events: list[dict] = []
        for text in texts:
            await append(ws, text)
            await commit(ws)
        for _ in texts:
            events += await until(ws, DONE)
        return events


def deltas(events: list[dict], item_id: str) -> list[bytes]:
    return [
        base64.b64decode(e["delta"])
        for e in events
        if e["type"] == "conversation.item.audio_output.delta" and e["item_id"] == item_id
    ]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "wav", "flac"])
def test_each_item_is_one_file_in_the_container_and_decodes_to_its_length(server, fmt):
    base, _ = server
    events = run(speak(base, ["First item.", "Second item."], response_format=fmt))
    for item_id in ("tts_1", "tts_2"):  # a container per item: each decodes on its own
        parts = deltas(events, item_id)
        seconds = decoded_seconds(b"".join(parts))
        # MP3 and AAC carry their encoder's priming and padding (at most ~2 frames) when streamed.
        assert SPOKEN_S - 0.01 <= seconds <= SPOKEN_S + 0.1, (fmt, seconds)
        if fmt != "flac":  # FLAC's header needs the length, so it is sent whole (see containers.py)
            assert len(parts) >= 3, (fmt, len(parts))  # sent as the muxer releases it, not at the end


@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_container_audio_leaves_while_the_item_is_still_generating(server, fmt):
    base, engine = server

    async def talk():
        async with connect(base, voice="alpha", response_format=fmt) as ws:
            await recv(ws)
            await append(ws, "Streamed.")
            produced_before = engine.produced
            await commit(ws)
            first = await until(ws, "conversation.item.audio_output.delta")
            produced_at_first = engine.produced - produced_before
            rest = await until(ws, DONE)
            return first + rest, produced_at_first

    events, produced_at_first = run(talk())
    assert produced_at_first < CHUNKS  # the first bytes went out before the last chunk was made
    assert SPOKEN_S - 0.01 <= decoded_seconds(b"".join(deltas(events, "tts_1"))) <= SPOKEN_S + 0.1


def test_pcm_is_raw_samples_at_the_sample_rate_asked_for(server):
    base, engine = server
    default = run(speak(base, ["Plain."], response_format="pcm"))
    narrow = run(speak(base, ["Narrow."], response_format="pcm", sample_rate=16000))
    assert len(pcm_of(default)) == 2 * CHUNKS * CHUNK_SAMPLES  # 24 kHz s16le, Together's default
    assert abs(len(pcm_of(narrow)) - 2 * 16000 * SPOKEN_S) <= 32
    assert engine.last_request.output.sample_rate == 16000
    tone = np.frombuffer(pcm_of(narrow), "<i2").astype(np.float32) / 32768
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spectrum) * 16000 / len(tone) - 440) < 5  # resampled, not just relabelled


def test_a_container_at_another_sample_rate(server):
    base, _ = server
    events = run(speak(base, ["Wideband opus."], response_format="opus", sample_rate=16000))
    import io

    import av

    data = b"".join(deltas(events, "tts_1"))
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
    assert SPOKEN_S - 0.01 <= decoded_seconds(data) <= SPOKEN_S + 0.1


def test_speed_segment_and_max_partial_length_reach_the_engine(server):
    base, engine = server
    run(speak(base, ["Quick."], speed=1.5, segment="immediate", max_partial_length=40))
    params = engine.last_request
    assert (params.speed, params.segment, params.max_partial_chars) == (1.5, "immediate", 40)


@pytest.mark.parametrize(
    "query, param",
    [
        ({"response_format": "ogg"}, "response_format"),
        ({"sample_rate": 100}, "sample_rate"),
        ({"speed": 9}, "speed"),
        ({"alignment": "char"}, "alignment"),
        ({"segment": "paragraph"}, "segment"),
    ],
)
def test_bad_options_are_refused_before_the_upgrade(server, query, param):
    from websockets.exceptions import InvalidStatus

    base, _ = server

    async def attempt():
        with pytest.raises(InvalidStatus) as refused:
            async with connect(base, voice="alpha", **query):
                pass
        return refused.value.response

    import json

    response = run(attempt())
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["param"] == param


def test_word_timestamps_in_togethers_shape(server):
    base, _ = server
    events = run(speak(base, ["Hello big world."], alignment="word"))
    words = [e for e in events if e["type"] == "conversation.item.word_timestamps"]
    assert words and set(words[0]) == {"event_id", "type", "item_id", "words", "start_seconds", "end_seconds"}
    assert words[0]["item_id"] == "tts_1"
    timed = word_times_of(events)
    assert [w for w, _, _ in timed] == ["Hello", "big", "world."]
    starts = [s for _, s, _ in timed]
    assert starts == sorted(starts) and all(s <= e for _, s, e in timed)
    without = run(speak(base, ["Hello big world."], alignment="none"))
    assert not [e for e in without if e["type"] == "conversation.item.word_timestamps"]


class NoRateControl(FakeEngine):
    native_speed = False  # as Orpheus: the server time-stretches


def test_a_model_without_rate_control_is_time_stretched_on_the_socket():
    from websockets.exceptions import InvalidStatus

    engine = NoRateControl(chunks=CHUNKS, chunk_samples=CHUNK_SAMPLES)
    app = create_app(Settings(), engines={engine.model_id: engine})

    async def talk(base):
        normal = await speak(base, ["Plain."], alignment="word")
        fast = await speak(base, ["Fast."], speed=2.0, alignment="word")
        slow_mp3 = await speak(base, ["Slow."], speed=0.5, response_format="mp3")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(base, voice="alpha", speed=2.0, response_encoding="pcm_f32le"):
                pass
        return normal, fast, slow_mp3, refused.value.response

    with serve_app(app) as base:
        normal, fast, slow_mp3, refused = run(talk(base))
    assert engine.last_request.speed == 1.0  # the model was asked for its own pace
    assert abs(len(pcm_of(fast)) - len(pcm_of(normal)) / 2) <= 2 * 1024  # atempo's frame granularity
    assert abs(decoded_seconds(b"".join(deltas(slow_mp3, "tts_1"))) - 2 * SPOKEN_S) <= 0.15
    assert [round(s, 3) for _, s, _ in word_times_of(fast)] == [0.0]  # "Fast." at 0-0.1 s, halved
    assert [round(e, 3) for _, _, e in word_times_of(fast)] == [0.05]
    assert refused.status_code == 400 and b'"param":"speed"' in refused.body.replace(b" ", b"")


def test_hosted_compat_keeps_24khz_s16le_and_the_session_says_so():
    engine = FakeEngine(chunks=CHUNKS, chunk_samples=CHUNK_SAMPLES)
    app = create_app(Settings(hosted_compat=True), engines={engine.model_id: engine})

    async def talk(base):
        async with connect(base, voice="alpha", sample_rate=16000, response_encoding="pcm_f32le") as ws:
            created = await recv(ws)
            await append(ws, "As hosted.")
            await commit(ws)
            return created, await until(ws, DONE)

    with serve_app(app) as base:
        created, events = run(talk(base))
    assert (created["session"]["sample_rate"], created["session"]["response_encoding"]) == (24000, "pcm_s16le")
    assert len(pcm_of(events)) == 2 * CHUNKS * CHUNK_SAMPLES
