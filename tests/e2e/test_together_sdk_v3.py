"""The current together SDK (v3, what `together>=2` installs), unmodified, against the server process."""

import asyncio
import base64
import io

import numpy as np
import pytest
import soundfile as sf
import together

MODEL = "hexgrad/Kokoro-82M"


@pytest.fixture(params=["/v1", ""], ids=["base-with-v1", "base-without-v1"])
def client(kokoro_server, request):
    return together.Together(base_url=kokoro_server + request.param, api_key="sk-local", max_retries=0)


def test_create_and_write_to_file(client, tmp_path):
    path = tmp_path / "hello.wav"
    client.audio.speech.create(model=MODEL, input="Hello there.", voice="af_heart").write_to_file(path)
    audio, rate = sf.read(path)
    assert rate == 24000 and audio.size > 2400


def test_with_streaming_response_stream_to_file(client, tmp_path):
    # The form Together's own v2 example uses.
    path = tmp_path / "audio.wav"
    with client.audio.speech.with_streaming_response.create(model=MODEL, input="Hi.", voice="af_heart") as stream:
        stream.stream_to_file(path)
    assert sf.info(path).samplerate == 24000


def test_streaming_raw(client):
    stream = client.audio.speech.create(
        model=MODEL,
        input="Hello there. Second sentence.",
        voice="af_heart",
        stream=True,
        response_format="raw",
        response_encoding="pcm_s16le",
    )
    chunks = [base64.b64decode(chunk.b64) for chunk in stream]
    assert len(chunks) == 2 and all(len(c) % 2 == 0 and c for c in chunks)


def test_mp3_and_raw_encodings(client):
    mp3 = client.audio.speech.create(model=MODEL, input="Hi.", voice="af_heart", response_format="mp3")
    assert sf.info(io.BytesIO(mp3.read())).format == "MP3"
    raw = client.audio.speech.create(
        model=MODEL,
        input="Hi.",
        voice="af_heart",
        response_format="raw",
        response_encoding="pcm_mulaw",
        sample_rate=8000,
    )
    assert len(raw.read()) > 800


def test_voices_list(client):
    data = client.audio.voices.list().data
    assert data[0].model == MODEL and "af_heart" in {v.name for v in data[0].voices}


def test_errors_surface_as_sdk_exceptions(client):
    with pytest.raises(together.BadRequestError, match="Unknown voice"):
        client.audio.speech.create(model=MODEL, input="Hi.", voice="zz_nobody")
    with pytest.raises(together.NotFoundError):
        client.audio.speech.create(model="acme/none", input="Hi.", voice="af_heart")
    with pytest.raises(together.BadRequestError):
        client.audio.speech.create(model=MODEL, input="Hi.", voice="af_heart", stream=True, response_format="wav")


def test_async_client(kokoro_server):
    async def main():
        client = together.AsyncTogether(base_url=kokoro_server + "/v1", api_key="sk-local", max_retries=0)
        response = await client.audio.speech.create(model=MODEL, input="Async hello.", voice="bm_george")
        return await response.read()

    audio, rate = sf.read(io.BytesIO(asyncio.run(main())))
    assert rate == 24000 and np.abs(audio).max() > 0
