"""The ``openai`` SDK against Kokoro (full-size, random weights): voices by OpenAI's names, native speed."""

from __future__ import annotations

import io

import av
import openai
import pytest

from server.app import create_app
from server.settings import Settings
from tests.support.servers import serve_app


@pytest.fixture(scope="module")
def client(kokoro_dir):
    settings = Settings(kokoro_source=str(kokoro_dir), device="cpu", warmup=False, openai_voices="alloy=af_bella")
    with serve_app(create_app(settings)) as base:
        yield openai.OpenAI(base_url=base + "/v1", api_key="sk-local", max_retries=0)


def seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def test_speed_is_kokoros_own(client):
    text = "Speed changes the length."
    normal = client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="flac")
    fast = client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="flac", speed=2.0)
    assert 0.4 < seconds(fast.content) / seconds(normal.content) < 0.6


def test_sse_with_a_kokoro_voice_name(client):
    response = client.audio.speech.create(
        model="hexgrad/Kokoro-82M", voice="af_heart", input="Hi there.", stream_format="sse", response_format="opus"
    )
    lines = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert '"speech.audio.delta"' in lines[0] and '"speech.audio.done"' in lines[-1]
