"""Full-size Kokoro-82M with random weights, written in the Hugging Face repo's layout.

The architecture is the real one (built by ``kokoro.KModel`` from the real config); only the
numbers are random. The duration head is set so each phoneme lasts ~4 frames, as trained models
do: untrained it predicts ~25 frames a phoneme and every test would synthesize minutes of audio.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import torch

CONFIG = Path(__file__).resolve().parent / "kokoro-82m-config.json"
PARTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
VOICES = ("af_heart", "af_bella", "bm_george", "ef_dora", "jf_alpha")


def build_random_kokoro(directory: Path, *, seed: int = 0, voices: tuple[str, ...] = VOICES) -> Path:
    from kokoro import KModel

    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG, directory / "config.json")
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    model = KModel(repo_id="hexgrad/Kokoro-82M", config=json.loads(CONFIG.read_text()), model=empty)
    with torch.no_grad():
        proj = model.predictor.duration_proj.linear_layer
        proj.weight.zero_()
        proj.bias.fill_(math.log(0.08 / 0.92))  # sigmoid = 0.08, x 50 bins = 4 frames per phoneme
    torch.save({part: getattr(model, part).state_dict() for part in PARTS}, directory / "kokoro-v1_0.pth")
    (directory / "voices").mkdir(exist_ok=True)
    for name in voices:
        torch.save(torch.randn(510, 1, 256) * 0.2, directory / "voices" / f"{name}.pt")
    return directory
