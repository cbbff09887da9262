import shutil

import pytest
import torch

from engines.hub import WeightsUnavailable
from engines.kokoro import loader
from server.settings import Settings


def test_every_tensor_is_loaded(kokoro_dir):
    model = loader.load_kmodel(kokoro_dir, "cpu")
    saved = torch.load(kokoro_dir / "kokoro-v1_0.pth", weights_only=True)
    for part, state in saved.items():
        mine = getattr(model, part).state_dict()
        assert mine.keys() == state.keys()
        assert all(torch.equal(mine[k], v) for k, v in state.items()), part
    assert sum(p.numel() for p in model.parameters()) > 80_000_000  # the full-size architecture


def test_partial_checkpoint_is_refused_not_silently_random(kokoro_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(kokoro_dir, broken)
    state = torch.load(broken / "kokoro-v1_0.pth", weights_only=True)
    state["decoder"].pop(next(iter(state["decoder"])))
    torch.save(state, broken / "kokoro-v1_0.pth")
    with pytest.raises(WeightsUnavailable, match="decoder"):
        loader.load_kmodel(broken, "cpu")
    del state["decoder"]
    torch.save(state, broken / "kokoro-v1_0.pth")
    with pytest.raises(WeightsUnavailable, match="lacks parts"):
        loader.load_kmodel(broken, "cpu")


def test_local_directory_missing_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(WeightsUnavailable, match="kokoro-v1_0.pth"):
        loader.weights_dir(Settings(kokoro_source=str(tmp_path)).kokoro)


def test_offline_hub_source_says_what_to_do(tmp_path):
    settings = Settings(kokoro_source="hexgrad/Kokoro-82M", offline=True, cache_dir=tmp_path)
    with pytest.raises(WeightsUnavailable) as err:
        loader.weights_dir(settings.kokoro)
    message = err.value.message
    assert "tts-server download" in message and "--kokoro-source" in message and "TTS_KOKORO_SOURCE" in message
    assert settings.kokoro.revision in message
