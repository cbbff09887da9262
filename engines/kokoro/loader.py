"""Find and load Kokoro-82M weights, refusing a partial checkpoint instead of running on noise."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from engines.hub import WeightsUnavailable, resolve_model_dir
from engines.kokoro.settings import KokoroSettings

CONFIG = "config.json"
CHECKPOINT = "kokoro-v1_0.pth"
PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")


def weights_dir(settings: KokoroSettings) -> Path:
    return resolve_model_dir(
        settings.source,
        revision=settings.revision,
        allow_patterns=[CONFIG, CHECKPOINT, "voices/*.pt"],
        required=[CONFIG, CHECKPOINT, "voices"],
        cache_dir=settings.cache_dir,
        offline=settings.offline,
        setting="kokoro_source",
    )


def load_kmodel(directory: Path, device: str, repo_id: str = "hexgrad/Kokoro-82M"):  # -> kokoro.KModel
    """Build ``KModel`` from ``directory`` and load every part strictly.

    ``KModel.__init__`` quietly retries a failed load with ``strict=False``, which would serve
    random weights. So the model is built from an empty checkpoint and each part is loaded here.
    """
    from kokoro import KModel

    config = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    model = KModel(repo_id=repo_id, config=config, model=empty)
    state = torch.load(directory / CHECKPOINT, map_location="cpu", weights_only=True, mmap=True)
    missing = [p for p in PARTS if p not in state]
    if missing:
        raise WeightsUnavailable(f"{directory / CHECKPOINT} lacks parts {missing}; is it a Kokoro v1.0 checkpoint?")
    for part in PARTS:
        try:
            getattr(model, part).load_state_dict(state[part], strict=True)
        except RuntimeError as exc:
            raise WeightsUnavailable(f"{directory / CHECKPOINT}: part '{part}' does not fit the config: {exc}") from exc
    return model.to(device).eval()
