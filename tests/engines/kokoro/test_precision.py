"""The decoder's precision (engines/kokoro/precision.py): bf16 under autocast, the front in fp32."""

from __future__ import annotations

import pytest
import torch

from engines.kokoro import precision
from engines.kokoro.batched import BatchedKokoro, ForwardItem
from engines.kokoro.batched_vocoder import run_all
from engines.kokoro.context import token_ids
from engines.kokoro.loader import load_kmodel


@pytest.mark.parametrize(
    ("setting", "amx", "device", "expected"),
    [
        ("auto", True, "cpu", torch.bfloat16),
        ("auto", False, "cpu", torch.float32),  # bf16 would be emulated
        ("auto", True, "cuda", torch.float32),  # not yet measured on a GPU
        ("float32", True, "cpu", torch.float32),
        ("bfloat16", False, "cpu", torch.bfloat16),
    ],
)
def test_auto_is_bf16_only_on_a_cpu_with_amx(monkeypatch, setting, amx, device, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: amx)
    assert precision.decoder_dtype(setting, torch.device(device)) is expected


@pytest.fixture(scope="module")
def model(kokoro_dir):
    return load_kmodel(kokoro_dir, "cpu")


def test_bf16_decoding_keeps_the_front_and_the_length_and_stays_close(model, kokoro_dir):
    voice = torch.load(kokoro_dir / "voices" / "af_heart.pt", weights_only=True)
    ids = [0, *token_ids("hɛlˈO wˈɜɹld, ðɪs ɪz ɐ tˈɛst.", model.vocab), 0]
    item = ForwardItem(torch.tensor(ids), voice[len(ids) - 3], 1.0, None)
    fp32, bf16 = BatchedKokoro(model), BatchedKokoro(model, decoder_dtype=torch.bfloat16)
    (prosody,) = fp32.front([item])
    (same,) = bf16.front([item])
    assert same.durations.tolist() == prosody.durations.tolist()
    torch.testing.assert_close(same.f0, prosody.f0)  # the front ignores the decoder's precision

    (reference,) = fp32.decode([prosody], [torch.Generator().manual_seed(1)])
    stages = bf16.decode_stages([prosody], [torch.Generator().manual_seed(1)])
    while True:  # autocast is on only inside a stage: work between two stages runs as it would
        try:
            with torch.inference_mode():
                next(stages)
        except StopIteration as done:
            (audio,) = done.value
            break
        assert not torch.is_autocast_enabled("cpu")
    assert audio.dtype == torch.float32 and audio.shape == reference.shape
    correlation = torch.corrcoef(torch.stack([audio, reference]))[0, 1].item()
    assert correlation > 0.9, correlation  # bf16 rounding, not another signal (intelligibility: tests/e2e)
    assert run_all(bf16.decode_stages([prosody], [torch.Generator().manual_seed(1)]))[0].shape == reference.shape
