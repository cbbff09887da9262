"""Against the real Cartesia API. Runs only when CARTESIA_API_KEY is set (it spends a few credits)."""

from __future__ import annotations

import os

import pytest

from engines.base import OutputSpec, SynthesisRequest
from engines.cartesia.engine import CartesiaEngine
from server.settings import Settings

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("CARTESIA_API_KEY"), reason="CARTESIA_API_KEY is not set"),
]


@pytest.fixture
async def live_engine():
    engine = CartesiaEngine("cartesia/sonic", Settings().cartesia)  # key, base URL and version from the environment
    await engine.load()
    yield engine
    await engine.close()


def make_request(**output: object) -> SynthesisRequest:
    return SynthesisRequest(
        model="cartesia/sonic", text="Hello.", voice="friendly sidekick", output=OutputSpec(**output)
    )


async def test_live_stream_returns_pcm(live_engine: CartesiaEngine) -> None:
    request = make_request(format="raw", encoding="pcm_s16le", sample_rate=16000, stream=True)
    await live_engine.validate(request)
    chunks = [c.data async for c in live_engine.synthesize(request)]
    audio = b"".join(chunks)
    assert chunks and len(audio) % 2 == 0
    assert len(audio) > 16000 * 2 * 0.2  # "Hello." is well over 0.2 s


async def test_live_wav(live_engine: CartesiaEngine) -> None:
    request = make_request(format="wav", encoding="pcm_s16le", sample_rate=24000)
    await live_engine.validate(request)
    audio = b"".join([c.data async for c in live_engine.synthesize(request)])
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
