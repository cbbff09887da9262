"""Restricted, vectorised, per-row-seeded sampling and the sampling settings."""

from __future__ import annotations

import pytest
import torch

from engines.orpheus.sampling import (
    EOS_COLUMN,
    AudioHead,
    SamplingParams,
    columns_to_tokens,
    derive_seed,
    sample_columns,
)
from engines.orpheus.tokens import AUDIO_BASE, CODEBOOK_SIZE, END_OF_SPEECH, VOCAB_SIZE
from server.errors import InvalidRequest, http_status
from server.settings import Settings


def _sample(scores, *, seen=None, temperature=1.0, top_p=1.0, penalty=1.0, uniforms=None):
    batch = scores.shape[0]

    def full(value: float) -> torch.Tensor:
        return torch.full((batch,), float(value))

    seen = torch.zeros(batch, CODEBOOK_SIZE, dtype=torch.bool) if seen is None else seen
    uniforms = torch.rand(batch, generator=torch.Generator().manual_seed(0)) if uniforms is None else uniforms
    return sample_columns(scores, seen, full(temperature), full(top_p), full(penalty), uniforms)


def test_head_restricts_to_the_slot_and_allows_end_only_at_frame_boundaries():
    torch.manual_seed(0)
    embedding = torch.randn(VOCAB_SIZE, 16)
    head = AudioHead(embedding)
    hidden = torch.randn(7, 16)
    slots = torch.arange(7)
    scores = head.scores(hidden, slots)
    assert scores.shape == (7, CODEBOOK_SIZE + 1)
    full = hidden @ embedding.T
    for k in range(7):
        start = AUDIO_BASE + k * CODEBOOK_SIZE
        assert torch.allclose(scores[k, :CODEBOOK_SIZE], full[k, start : start + CODEBOOK_SIZE], atol=1e-5)
    assert torch.isclose(scores[0, EOS_COLUMN], full[0, END_OF_SPEECH], atol=1e-5)
    assert torch.isinf(scores[1:, EOS_COLUMN]).all()


def test_every_sampled_token_is_audio_of_its_slot_or_end_of_speech():
    generator = torch.Generator().manual_seed(1)
    slots = torch.arange(7).repeat(40)
    scores = torch.randn(len(slots), CODEBOOK_SIZE + 1, generator=generator)
    scores[slots != 0, EOS_COLUMN] = float("-inf")
    scores[slots == 0, EOS_COLUMN] = 8.0  # likely, where allowed
    tokens = columns_to_tokens(_sample(scores, temperature=0.6, top_p=0.8), slots)
    for slot, token in zip(slots.tolist(), tokens.tolist()):
        if token == END_OF_SPEECH:
            assert slot == 0
        else:
            assert AUDIO_BASE + slot * CODEBOOK_SIZE <= token < AUDIO_BASE + (slot + 1) * CODEBOOK_SIZE
    assert (tokens == END_OF_SPEECH).any()


def test_small_top_p_is_greedy_and_penalty_demotes_repeats():
    scores = torch.zeros(1, CODEBOOK_SIZE + 1)
    scores[0, 10], scores[0, 11] = 5.0, 4.9
    assert _sample(scores, top_p=1e-6).item() == 10
    seen = torch.zeros(1, CODEBOOK_SIZE, dtype=torch.bool)
    seen[0, 10] = True
    assert _sample(scores, top_p=1e-6, seen=seen, penalty=1.3).item() == 11


def test_a_row_depends_only_on_its_own_scores_and_uniform():
    generator = torch.Generator().manual_seed(2)
    scores = torch.randn(5, CODEBOOK_SIZE + 1, generator=generator)
    uniforms = torch.rand(5, generator=generator)
    together = _sample(scores, temperature=0.7, top_p=0.9, uniforms=uniforms)
    for row in range(5):
        alone = _sample(scores[row : row + 1], temperature=0.7, top_p=0.9, uniforms=uniforms[row : row + 1])
        assert alone.item() == together[row].item()


def test_defaults_are_the_authors_and_requests_override_them():
    settings = Settings().orpheus
    params = SamplingParams.resolve(settings, {})
    assert (params.temperature, params.top_p, params.repetition_penalty, params.max_tokens) == (0.6, 0.8, 1.3, 1197)
    override = SamplingParams.resolve(
        settings, {"temperature": 0.9, "top_p": 0.95, "repetition_penalty": 1.1, "max_tokens": 100}
    )
    assert (override.temperature, override.top_p, override.repetition_penalty, override.max_tokens) == (
        0.9,
        0.95,
        1.1,
        98,
    )


@pytest.mark.parametrize("overrides", [{"repetition_penalty": 1.05}, {"max_tokens": 9000}])
def test_unusable_overrides_are_a_400(overrides):
    with pytest.raises(InvalidRequest) as info:
        SamplingParams.resolve(Settings().orpheus, overrides)
    assert http_status(info.value) == 400
    assert info.value.param == next(iter(overrides))


def test_derived_seeds_are_distinct_and_stable():
    seeds = {derive_seed(42, i) for i in range(1000)}
    assert len(seeds) == 1000
    assert derive_seed(42, 3) == derive_seed(42, 3) and derive_seed(42, 3) != derive_seed(43, 3)
    assert all(0 <= s < 2**63 for s in seeds)
