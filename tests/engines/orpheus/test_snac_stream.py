"""Streaming SNAC windows against a full-sequence decode of the same codes."""

from __future__ import annotations

import numpy as np
import pytest

from engines.orpheus.codec import SnacCodec, Window
from engines.orpheus.requests import Segment
from engines.orpheus.snac_stream import StreamWindows, WindowConfig
from engines.orpheus.tokens import SAMPLES_PER_FRAME
from tests.engines.orpheus.helpers import audio_token_id

NOISE_SEED = 1234


def random_frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, size=(n, 7))


def full_decode(codec, frames: np.ndarray, noise_seed: int = NOISE_SEED) -> np.ndarray:
    return codec.decode([Window(frames, 0, noise_seed)])[0]


def stream_decode(codec, frames: np.ndarray, config: WindowConfig) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Push frames one at a time as a generating sequence would; decode every window that is ready."""
    stream = StreamWindows(config, NOISE_SEED)
    chunks, spans = [], []

    def drain(final: bool) -> None:
        while (planned := stream.next_window(final=final)) is not None:
            audio = codec.decode([planned.window])[0]
            stream.mark_emitted(planned)
            chunks.append(planned.emitted_samples(audio))
            spans.append((planned.emit_from, planned.emit_to))

    for frame in frames:
        stream.push(frame)
        drain(final=False)
    drain(final=True)
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), spans


def test_full_context_windows_equal_the_full_decode(snac_codec):
    frames = random_frames(9)
    full = full_decode(snac_codec, frames)
    streamed, spans = stream_decode(snac_codec, frames, WindowConfig(context=3, lookahead=3, first_chunk=1, chunk=3))
    assert full.shape == streamed.shape == (9 * SAMPLES_PER_FRAME,)
    assert np.abs(streamed - full).max() < 1e-5
    assert spans[0] == (0, 1)  # first audio after the first frame's window: frame 0 is not dropped


@pytest.mark.parametrize("n_frames", [1, 2, 3, 6, 11])
def test_default_windows_emit_every_frame_once(snac_codec, n_frames):
    frames = random_frames(n_frames, seed=n_frames)
    full = full_decode(snac_codec, frames)
    streamed, spans = stream_decode(snac_codec, frames, WindowConfig())
    assert streamed.shape == (n_frames * SAMPLES_PER_FRAME,)  # no lost head, no lost tail, no duplicate
    covered = [f for start, end in spans for f in range(start, end)]
    assert covered == list(range(n_frames))
    # lookahead 2 instead of 3 leaves a tiny difference at the chunk edges (about -67 dB here)
    peak = np.abs(full).max()
    assert np.abs(streamed - full).max() <= 1e-3 * peak


def test_first_window_is_small(snac_codec):
    stream = StreamWindows(WindowConfig(context=3, lookahead=2, first_chunk=1, chunk=4), NOISE_SEED)
    for frame in random_frames(2):
        stream.push(frame)
        assert stream.next_window() is None
    stream.push(random_frames(1, seed=9)[0])
    planned = stream.next_window()
    assert (planned.window.start, len(planned.window.frames), planned.emit_from, planned.emit_to) == (0, 3, 0, 1)


def test_windows_must_be_emitted_in_order():
    stream = StreamWindows(WindowConfig(lookahead=0, first_chunk=1, chunk=1), NOISE_SEED)
    for frame in random_frames(3):
        stream.push(frame)
    first = stream.next_window()
    stream.mark_emitted(first)
    with pytest.raises(RuntimeError):
        stream.mark_emitted(first)


def test_codec_noise_is_positional_and_seeded(snac_codec):
    frames = random_frames(4)
    a = full_decode(snac_codec, frames, noise_seed=1)
    assert np.array_equal(a, full_decode(snac_codec, frames, noise_seed=1))
    assert not np.allclose(a, full_decode(snac_codec, frames, noise_seed=2))


def test_windows_of_many_streams_share_a_batched_call(snac_codec):
    windows = [Window(random_frames(5, seed=s), start=s, noise_seed=s) for s in range(3)]
    windows.append(Window(random_frames(2, seed=7), start=0, noise_seed=7))
    batched = snac_codec.decode(windows)
    for window, audio in zip(windows, batched):
        alone = snac_codec.decode([window])[0]
        assert audio.shape == (len(window.frames) * SAMPLES_PER_FRAME,)
        assert np.abs(audio - alone).max() < 1e-5


def test_tokens_to_audio_matches_full_decode_and_invalid_code_loses_one_frame(snac_codec):
    frames = random_frames(6, seed=3)
    tokens = [audio_token_id(k, int(code)) for frame in frames for k, code in enumerate(frame)]
    tokens[2 * 7 + 4] = audio_token_id(4, 0) + 4096  # frame 2, slot 4: out of range
    segment = Segment(0, "x", seed=0, windows=StreamWindows(WindowConfig(context=3, lookahead=3), NOISE_SEED))
    chunks = []
    for token in tokens:
        segment.accept(token, max_tokens=len(tokens))
        if (planned := segment.windows.next_window(final=segment.done)) is not None:
            chunks.append(planned.emitted_samples(snac_codec.decode([planned.window])[0]))
            segment.windows.mark_emitted(planned)
    if (planned := segment.windows.next_window(final=True)) is not None:
        chunks.append(planned.emitted_samples(snac_codec.decode([planned.window])[0]))
        segment.windows.mark_emitted(planned)
    assert segment.done and segment.finished and segment.invalid_frames == 1
    kept = np.delete(frames, 2, axis=0)
    streamed = np.concatenate(chunks)
    assert streamed.shape == (5 * SAMPLES_PER_FRAME,)
    assert np.abs(streamed - full_decode(snac_codec, kept)).max() < 1e-5


def test_compiled_codec_decodes_what_eager_does(orpheus_parts, snac_codec):
    """``orpheus_codec_compile``: SNAC through Inductor, batched and alone, every window length."""
    import shutil

    compiled = SnacCodec(orpheus_parts.snac, "cpu", compile=True)  # a second codec over the same model
    compiled.compile_now()
    windows = [Window(random_frames(5, seed=s), start=s, noise_seed=s) for s in range(3)]
    windows += [Window(random_frames(2, seed=7), start=0, noise_seed=7), Window(random_frames(9, seed=8), 4, 8)]
    for got, expected in zip(compiled.decode(windows), snac_codec.decode(windows)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5)
    has_compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert compiled.compiled.active == bool(has_compiler), compiled.compiled.fallback_reason
