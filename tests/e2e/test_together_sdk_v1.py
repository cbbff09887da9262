"""The v1 SDK (`together<2`, still widely used) in its own environment, against the server process."""

import json
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

SCRIPT = Path(__file__).with_name("sdk_v1_client.py")


@pytest.mark.parametrize("suffix", ["/v1", ""], ids=["base-with-v1", "base-without-v1"])
def test_v1_sdk_end_to_end(kokoro_server, together_v1_python, tmp_path, suffix):
    result = subprocess.run(
        [together_v1_python, str(SCRIPT), kokoro_server + suffix, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    plain, rate = sf.read(tmp_path / "plain.wav")
    assert rate == 24000 and plain.size > 2400
    streamed, rate = sf.read(tmp_path / "streamed.wav")  # the SDK wraps the raw stream in a WAV header
    assert rate == 24000 and streamed.size > 2400
    assert report["raw_bytes"] > 0 and report["raw_bytes"] % 4 == 0  # v1 sends pcm_f32le itself: honoured
    assert report["raw16_bytes"] * 2 == report["raw_bytes"]  # the same audio in 16-bit
    assert report["version"].startswith("1.") and "af_heart" in report["voices"]
    assert report["models"] == ["hexgrad/Kokoro-82M"]
    assert "Unknown voice" in report["bad_voice"]
