"""BatchedKokoro: each item of a padded batch gets what a solo run gets, and a batch of one what KModel gets.

Tolerance (fp32, CPU): max abs sample difference <= 1e-4 outside the first and last 48 samples (2 ms),
durations identical. Observed when written: batch vs solo ~1e-6; a batch of one vs
``KModel.forward_with_tokens`` after ``torch.manual_seed(s)``, with ``torch.Generator().manual_seed(s)``,
bit-identical (0.0), voiced or not.

The model is the session's random full-size Kokoro with its duration head rescaled so that durations
vary per token (about 1-10 frames instead of a flat 4). Untrained, its F0 stays below the 10 Hz voicing
threshold; ``voiced()`` rescales the F0 head to about -100..400 Hz (mostly voiced) where a test needs
the sine source to sound.

Why voiced audio is compared in two halves (front, then decode) rather than end to end: a batch's
front differs from a solo front by float rounding in the LSTMs (~3e-6 relative, ~1 mHz of F0), and the
sine source amplifies that: harmonic phases accumulate F0 over the whole utterance, and the harmonic
STFT's ``angle`` jumps by 2 pi for bins near the negative real axis. On voiced audio a batch then
differs from a solo run by ~0.2 in samples (same spectrum, other phases; random weights amplify it).
So: the front is checked to rounding, the decoder with identical prosody to 1e-4, and end to end
to 1e-4 where F0 is unvoiced.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch

from engines.kokoro.batched import BatchedKokoro, ForwardItem, Prosody
from engines.kokoro.loader import load_kmodel

TOLERANCE = 1e-4
EDGE = 48  # samples left out at each end of the comparison (2 ms)
SAMPLES_PER_FRAME = 600


@dataclass(frozen=True)
class Spec:
    symbols: int
    voice: str
    speed: float
    seed: int  # picks the phonemes; the noise seed also mixes in the rest, so batch-mates differ

    @property
    def noise_seed(self) -> int:
        return zlib.crc32(repr(self).encode())


@pytest.fixture(scope="module")
def model(kokoro_dir):
    model = load_kmodel(kokoro_dir, "cpu")
    with torch.no_grad():
        # Every duration bin gets the same logit shift, a random direction of the LSTM output.
        direction = torch.randn(512, generator=torch.Generator().manual_seed(4)) * 0.1
        model.predictor.duration_proj.linear_layer.weight.copy_(torch.outer(torch.ones(50), direction))
    return model


@contextlib.contextmanager
def voiced(model) -> Iterator[None]:
    """F0 of about -100..400 Hz, mostly above the voicing threshold, while the block runs."""
    projection = model.predictor.F0_proj
    weight, bias = projection.weight.detach().clone(), projection.bias.detach().clone()
    with torch.no_grad():
        projection.weight.mul_(400.0)
        projection.bias.fill_(110.0)
    try:
        yield
    finally:
        with torch.no_grad():
            projection.weight.copy_(weight)
            projection.bias.copy_(bias)


@pytest.fixture(scope="module")
def batched(model) -> BatchedKokoro:
    return BatchedKokoro(model)


@pytest.fixture(scope="module")
def voices(kokoro_dir) -> dict[str, torch.Tensor]:
    return {path.stem: torch.load(path, weights_only=True) for path in (kokoro_dir / "voices").glob("*.pt")}


def phonemes_for(model, spec: Spec) -> str:
    symbols = sorted(model.vocab)
    return "".join(random.Random(spec.symbols * 1000 + spec.seed).choices(symbols, k=spec.symbols))


def input_ids_for(model, phonemes: str) -> torch.LongTensor:
    # As KModel.forward builds them: vocab ids wrapped in 0s.
    return torch.LongTensor([0, *(model.vocab[p] for p in phonemes), 0])


def item_for(model, voices, spec: Spec) -> ForwardItem:
    phonemes = phonemes_for(model, spec)
    return ForwardItem(
        input_ids=input_ids_for(model, phonemes),
        ref_s=voices[spec.voice][len(phonemes) - 1],
        speed=spec.speed,
        generator=torch.Generator().manual_seed(spec.noise_seed),
    )


def solo(batched: BatchedKokoro, voices, spec: Spec) -> tuple[torch.Tensor, torch.LongTensor]:
    ((audio, durations),) = batched([item_for(batched.model, voices, spec)])
    return audio, durations


def max_inner_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert actual.shape == expected.shape
    return (actual - expected)[EDGE:-EDGE].abs().max().item()


@pytest.mark.parametrize(
    ("spec", "is_voiced"),
    [(Spec(12, "af_heart", 1.0, 1), True), (Spec(9, "bm_george", 1.7, 3), False), (Spec(7, "ef_dora", 0.8, 1), True)],
    ids=lambda v: (
        f"{v.symbols}sym-{v.voice}-x{v.speed}-seed{v.seed}" if isinstance(v, Spec) else ("voiced" if v else "")
    ),
)
def test_batch_of_one_matches_kmodel(model, batched, voices, spec, is_voiced):
    phonemes = phonemes_for(model, spec)
    input_ids = input_ids_for(model, phonemes)
    ref_s = voices[spec.voice][len(phonemes) - 1]
    generator = torch.Generator().manual_seed(spec.noise_seed)
    with voiced(model) if is_voiced else contextlib.nullcontext():
        torch.manual_seed(spec.noise_seed)
        expected_audio, expected_durations = model.forward_with_tokens(input_ids[None], ref_s, spec.speed)
        global_state_after = torch.get_rng_state()
        ((audio, durations),) = batched([ForwardItem(input_ids, ref_s, spec.speed, generator)])

    assert torch.equal(durations, expected_durations)
    assert audio.shape == (SAMPLES_PER_FRAME * int(durations.sum()),)
    assert max_inner_diff(audio, expected_audio) <= TOLERANCE
    # Same draws, same order: the item's generator ends where the global RNG ended.
    assert torch.equal(generator.get_state(), global_state_after)


# Frames per token vary a lot with voice and text on these weights (about 1-10): the specs below were
# picked to keep each batch's longest item, and so the test time, short.
BATCHES = {
    2: [Spec(40, "af_heart", 1.7, 3), Spec(5, "bm_george", 1.0, 0)],
    3: [Spec(9, "af_bella", 0.8, 4), Spec(25, "af_heart", 1.7, 1), Spec(5, "jf_alpha", 1.0, 1)],
    5: [Spec(16, "bm_george", 1.7, 3), Spec(5, "af_bella", 1.0, 1), Spec(7, "ef_dora", 0.8, 1)]
    + [Spec(9, "jf_alpha", 1.7, 3), Spec(12, "af_heart", 1.7, 1)],
    8: [Spec(7, "af_heart", 1.0, 1), Spec(5, "bm_george", 1.7, 0), Spec(5, "af_bella", 0.8, 1)]
    + [Spec(7, "ef_dora", 1.0, 1), Spec(12, "jf_alpha", 1.7, 1), Spec(5, "af_heart", 0.8, 1)]
    + [Spec(7, "bm_george", 1.0, 1), Spec(9, "af_bella", 1.7, 4)],
}


@pytest.mark.parametrize("size", sorted(BATCHES), ids=lambda b: f"B{b}")
def test_batch_matches_solo_runs(batched, voices, size):
    """End to end, unvoiced (see the module docstring for voiced audio)."""
    specs = BATCHES[size]
    rng_state = torch.get_rng_state()
    results = batched([item_for(batched.model, voices, spec) for spec in specs])
    assert torch.equal(torch.get_rng_state(), rng_state)

    assert len(results) == size
    for spec, (audio, durations) in zip(specs, results):
        expected_audio, expected_durations = solo(batched, voices, spec)
        assert torch.equal(durations, expected_durations), spec
        assert audio.shape == (SAMPLES_PER_FRAME * int(durations.sum()),)
        assert max_inner_diff(audio, expected_audio) <= TOLERANCE, spec


def test_front_handles_long_and_short_items_together(model, batched, voices):
    """The front alone (cheap) over 5..200 symbols: padding reaches neither ALBERT, the LSTMs nor the norms."""
    specs = [
        Spec(5, "af_heart", 1.0, 20),
        Spec(200, "bm_george", 1.7, 21),
        Spec(37, "ef_dora", 0.8, 22),
        Spec(120, "jf_alpha", 1.0, 23),
        Spec(64, "af_bella", 1.7, 24),
    ]
    with voiced(model):
        prosody = batched.front([item_for(model, voices, spec) for spec in specs])
        solo_prosody = [batched.front([item_for(model, voices, spec)])[0] for spec in specs]
    for spec, got, expected in zip(specs, prosody, solo_prosody):
        assert torch.equal(got.durations, expected.durations), spec
        assert got.frames == expected.frames == int(got.durations.sum())
        assert got.asr.shape == expected.asr.shape == (512, got.frames)
        assert got.f0.shape == got.n.shape == (2 * got.frames,)
        torch.testing.assert_close(got.asr, expected.asr, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got.f0, expected.f0, rtol=1e-4, atol=1e-2)  # Hz
        torch.testing.assert_close(got.n, expected.n, rtol=1e-4, atol=1e-5)
        assert torch.equal(got.style, expected.style)


def test_voiced_batched_decode_matches_one_item_at_a_time(model, batched, voices):
    """Same prosody in, same audio out, voiced. Also the engine's CPU mode: decoding one item at a time."""
    specs = [Spec(5, "af_heart", 1.0, 1), Spec(12, "ef_dora", 1.7, 1)]
    specs += [Spec(7, "bm_george", 0.8, 1), Spec(9, "jf_alpha", 1.7, 3)]
    with voiced(model):
        prosody: list[Prosody] = batched.front([item_for(model, voices, spec) for spec in specs])
    assert all((p.f0 > 10).float().mean() > 0.5 for p in prosody)  # the sine source sounds
    together = batched.decode(prosody, [torch.Generator().manual_seed(spec.noise_seed) for spec in specs])
    for spec, item, audio in zip(specs, prosody, together):
        (alone,) = batched.decode([item], [torch.Generator().manual_seed(spec.noise_seed)])
        assert alone.shape == (SAMPLES_PER_FRAME * item.frames,)
        assert max_inner_diff(audio, alone) <= TOLERANCE, spec
    assert batched.decode([], []) == []


def test_generator_seed_decides_the_noise_and_global_rng_is_untouched(batched, voices):
    spec = Spec(5, "af_bella", 1.0, 1)
    rng_state = torch.get_rng_state()
    first, _ = solo(batched, voices, spec)
    again, _ = solo(batched, voices, spec)
    other_seed = item_for(batched.model, voices, spec)
    other_seed.generator.manual_seed(spec.noise_seed + 1)
    ((other, _),) = batched([other_seed])
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_compiled_decode_matches_eager_voiced_batched_and_alone(model, batched, voices):
    """``kokoro_compile``: Inductor-compiled resblocks give the eager audio, padded in a batch or alone."""
    compiled = BatchedKokoro(model, compile=True)
    specs = [Spec(9, "af_bella", 0.8, 4), Spec(25, "af_heart", 1.7, 1), Spec(5, "jf_alpha", 1.0, 1)]
    with voiced(model):
        prosody: list[Prosody] = batched.front([item_for(model, voices, spec) for spec in specs])

    def generators():
        return [torch.Generator().manual_seed(spec.noise_seed) for spec in specs]

    eager = batched.decode(prosody, generators())
    for audio in (
        compiled.decode(prosody, generators()),
        [compiled.decode([p], [g])[0] for p, g in zip(prosody, generators())],
    ):
        for spec, got, expected in zip(specs, audio, eager):
            assert max_inner_diff(got, expected) <= TOLERANCE, spec
    has_compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert compiled.compiled == bool(has_compiler), compiled.resblock.fallback_reason  # else it fell back cleanly
