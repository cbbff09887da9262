"""The v2 line of the SDK (2.42.0, which takes base_url as given) in its own environment, both base URLs."""

import json
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

SCRIPT = Path(__file__).with_name("sdk_v2_client.py")


@pytest.mark.parametrize("suffix", ["/v1", ""], ids=["base-with-v1", "base-without-v1"])
def test_v2_sdk_end_to_end(kokoro_server, together_v2_python, tmp_path, suffix):
    result = subprocess.run(
        [together_v2_python, str(SCRIPT), kokoro_server + suffix, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"].startswith("2.")
    audio, rate = sf.read(tmp_path / "plain.wav")
    assert rate == 24000 and audio.size > 2400
    # No response_encoding sent: 16-bit PCM, as hosted Together answers Kokoro.
    assert report["raw_bytes"] > 0 and report["raw_bytes"] % 2 == 0
    assert report["streamed_bytes"] > report["raw_bytes"]  # two sentences vs "Hi."
    assert report["models"] == ["hexgrad/Kokoro-82M"] and "af_heart" in report["voices"]
    assert "Unknown voice" in report["bad_voice"]
