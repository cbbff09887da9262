"""Each model where its section puts it, with its own limits, in one server (random-weight Kokoro-82M and
the tiny Orpheus; server/settings_layout.py)."""

from __future__ import annotations

import httpx
import pytest
import torch

from benchmarks.models.orpheus import build_all
from server.app import create_app
from server.settings import Settings
from tests.support.servers import serve_app

KOKORO, ORPHEUS = "hexgrad/Kokoro-82M", "canopylabs/orpheus-3b-0.1-ft"


@pytest.fixture(scope="module")
def orpheus_dirs(tmp_path_factory):
    return build_all(tmp_path_factory.mktemp("orpheus-tiny"))


def two_models(kokoro_dir, orpheus_dirs, **placement) -> Settings:
    lm, snac = orpheus_dirs
    return Settings(
        models=[KOKORO, ORPHEUS],
        kokoro_source=str(kokoro_dir),
        orpheus_source=str(lm),
        orpheus_snac_source=str(snac),
        offline=True,
        warmup=False,
        orpheus_max_tokens=35,
        orpheus_backend="transformers",
        **placement,
    )


def speak(base: str, model: str, voice: str) -> httpx.Response:
    body = {"model": model, "input": "Hello there.", "voice": voice, "response_format": "raw", "seed": 3}
    return httpx.post(f"{base}/v1/audio/speech", json=body, timeout=120)


def test_kokoro_on_cpu_with_other_limits_than_orpheus_in_one_server(kokoro_dir, orpheus_dirs):
    settings = two_models(
        kokoro_dir,
        orpheus_dirs,
        device="cpu",
        kokoro_max_batch_size=2,
        kokoro_max_queue_size=3,
        orpheus_max_batch_size=4,
        orpheus_max_queue_size=5,
        orpheus_codec_device="cpu",
    )
    app = create_app(settings)
    with serve_app(app, timeout_s=300) as base:
        for model, voice in ((KOKORO, "af_heart"), (ORPHEUS, "tara")):
            response = speak(base, model, voice)
            assert response.status_code == 200, response.text
            assert len(response.content) > 2400  # 16-bit audio, more than 50 ms of it
        stats = httpx.get(f"{base}/stats").json()
        metrics = httpx.get(f"{base}/metrics").text
        engines = app.state.engine_pool.engines  # the limits in force, not only the ones shown
        kokoro_worker, orpheus_worker = engines[KOKORO]._worker, engines[ORPHEUS].worker
        assert (kokoro_worker.max_batch_size, kokoro_worker.max_queue_size) == (2, 3)
        assert (orpheus_worker.max_batch_size, orpheus_worker.max_queue_size) == (4, 5)
        assert engines[ORPHEUS]._codec.codec.device == torch.device("cpu")
    kokoro, orpheus = stats[KOKORO]["settings"], stats[ORPHEUS]["settings"]
    assert (kokoro["device"], kokoro["max_batch_size"], kokoro["max_queue_size"]) == ("cpu", 2, 3)
    assert (orpheus["device"], orpheus["max_batch_size"], orpheus["max_queue_size"]) == ("cpu", 4, 5)
    assert orpheus["codec_device"] == "cpu" and "codec_device" not in kokoro
    assert f'tts_queue_capacity{{model="{KOKORO}"}} 3.0' in metrics
    assert f'tts_queue_capacity{{model="{ORPHEUS}"}} 5.0' in metrics


@pytest.mark.gpu
def test_kokoro_on_cuda_0_and_orpheus_codec_on_a_named_device(kokoro_dir, orpheus_dirs):
    """Kokoro on cuda:0; Orpheus's LM on cuda:0 and its SNAC codec on the last GPU (the CPU if only one)."""
    codec_device = f"cuda:{torch.cuda.device_count() - 1}" if torch.cuda.device_count() > 1 else "cpu"
    settings = two_models(
        kokoro_dir, orpheus_dirs, kokoro_device="cuda:0", orpheus_device="cuda:0", orpheus_codec_device=codec_device
    )
    app = create_app(settings)
    with serve_app(app, timeout_s=300) as base:
        for model, voice in ((KOKORO, "af_heart"), (ORPHEUS, "tara")):
            response = speak(base, model, voice)
            assert response.status_code == 200, response.text
            assert len(response.content) > 2400
        stats = httpx.get(f"{base}/stats").json()
        engines = app.state.engine_pool.engines
        assert engines[KOKORO]._device == torch.device("cuda:0")
        assert engines[ORPHEUS].components.device == "cuda:0"
        assert engines[ORPHEUS]._codec.codec.device == torch.device(codec_device)
    assert stats[ORPHEUS]["settings"]["codec_device"] == codec_device
