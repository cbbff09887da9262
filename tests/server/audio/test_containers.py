"""FFmpeg encoders never outlive their response: every one built is closed, whatever way the request ends.

The OpenAI route's ``ContainerEncoder`` is swapped for a subclass that records each instance, so a test
counts the encoders built and the ones still holding FFmpeg state.
"""

from __future__ import annotations

import time

import httpx
import pytest

import server.openai.speech as openai_speech
from server.app import create_app
from server.audio.containers import ContainerEncoder
from server.settings import Settings
from tests.support.fake_engine import FakeEngine
from tests.support.servers import serve_app


@pytest.fixture
def encoders(monkeypatch) -> list[ContainerEncoder]:
    built: list[ContainerEncoder] = []

    class Recorded(ContainerEncoder):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(openai_speech, "ContainerEncoder", Recorded)
    return built


def open_encoders(built: list[ContainerEncoder], wait_s: float = 5.0) -> int:
    deadline = time.monotonic() + wait_s
    while any(not e.closed for e in built) and time.monotonic() < deadline:
        time.sleep(0.02)
    return sum(not e.closed for e in built)


def speak(base: str, **body) -> httpx.Response:
    body = {"model": "tts-1", "voice": "alpha", "input": "Hello.", "response_format": "mp3", **body}
    return httpx.post(f"{base}/v1/audio/speech/openai", json=body, timeout=30)


def test_a_finished_response_closes_its_encoder(encoders):
    engine = FakeEngine(chunks=2)
    with serve_app(create_app(Settings(), engines={engine.model_id: engine})) as base:
        assert speak(base).status_code == 200
        assert speak(base, stream_format="sse").status_code == 200
    assert len(encoders) == 2 and open_encoders(encoders) == 0


def test_a_request_refused_after_its_encoder_was_built_closes_it(encoders, monkeypatch):
    """The encoder is built before prepare(): a refusal there (an unknown voice) and a failure
    building the time-stretch filter both free it."""
    engine = FakeEngine(model_id="canopylabs/orpheus-3b-0.1-ft", chunks=2)
    engine.native_speed = False  # as Orpheus: the route time-stretches

    class BrokenStretch:
        def __init__(self, *args) -> None:
            raise RuntimeError("atempo is missing from this FFmpeg")

    with serve_app(create_app(Settings(), engines={engine.model_id: engine})) as base:
        refused = speak(base, model=engine.model_id, voice="nobody")
        monkeypatch.setattr(openai_speech, "TimeStretch", BrokenStretch)
        broken = speak(base, model=engine.model_id, speed=1.5)
    assert refused.status_code in (400, 404) and broken.status_code == 500
    assert len(encoders) == 2 and open_encoders(encoders) == 0


def test_a_codec_that_fails_on_its_first_frame_closes_its_encoder(encoders, monkeypatch):
    engine = FakeEngine(chunks=2)
    failing_write = ContainerEncoder.write

    def write(self, pcm):
        failing_write(self, pcm)
        raise RuntimeError("avcodec_open2 returned 22")

    monkeypatch.setattr(ContainerEncoder, "write", write)
    with serve_app(create_app(Settings(), engines={engine.model_id: engine})) as base:
        assert speak(base).status_code == 500
    assert len(encoders) == 1 and open_encoders(encoders) == 0


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_a_client_that_leaves_mid_stream_leaves_no_open_encoder(encoders, stream_format):
    engine = FakeEngine(chunks=40, chunk_samples=2400, delay_s=0.05)
    with serve_app(create_app(Settings(), engines={engine.model_id: engine})) as base:
        body = {"model": "tts-1", "voice": "alpha", "input": "Long.", "response_format": "mp3"}
        with httpx.stream("POST", f"{base}/v1/audio/speech/openai", json={**body, "stream_format": stream_format}) as r:
            assert r.status_code == 200
            chunks = r.iter_bytes()  # held: dropping the iterator would close the connection at once
            next(chunks)
            assert len(encoders) == 1 and not encoders[0].closed  # it was live while the stream ran
        assert open_encoders(encoders) == 0
        assert engine.produced < 40


def test_discard_is_idempotent_and_safe_after_close():
    encoder = ContainerEncoder("mp3", 24000)
    encoder.write(b"\0\0" * 2400)
    assert encoder.close() and encoder.closed
    encoder.discard()
    encoder = ContainerEncoder("opus", 11025)  # libopus refuses this rate when the codec opens
    with pytest.raises(Exception, match="avcodec_open2"):
        encoder.write(b"\0\0" * 2400)
    encoder.discard()
    assert encoder.closed
