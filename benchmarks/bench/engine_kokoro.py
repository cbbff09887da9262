"""Engine mode, Kokoro kernels: the batched forward (``BatchedKokoro``) timed by batch size, no server.

For each batch size B, B phoneme sequences (the workload's texts, phonemized as the engine does)
run through ``front`` (ALBERT, text encoders, durations, F0/energy) as one batch, then through the
decoder + vocoder as one batch and, for comparison, one item at a time (the CPU policy). Reported
per batch: milliseconds per call, padded vs real tokens, audio seconds produced per wall second.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench.texts import TextSet


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def phoneme_ids(model, texts: TextSet, lang_code: str) -> list[tuple[str, torch.Tensor]]:
    """(phonemes, input ids) of each text's first chunk, phonemized with the engine's G2P."""
    from engines.kokoro.g2p import Phonemizer

    phonemizer = Phonemizer("hexgrad/Kokoro-82M")
    out = []
    for text in texts.texts:
        chunks = phonemizer.phonemize(text, lang_code)
        for phonemes in chunks[:1]:
            ids = [0, *(model.vocab[c] for c in phonemes if c in model.vocab), 0]
            out.append((phonemes, torch.tensor(ids, dtype=torch.long)))
    return out


def load(source: str, device: str, voice: str | None):
    """The KModel and a voice pack, from a local directory or the Hub cache (as the server finds them)."""
    from engines.kokoro import loader
    from server.settings import Settings

    directory = loader.weights_dir(Settings(kokoro_source=source).kokoro)
    model = loader.load_kmodel(Path(directory), device)
    voices = sorted((Path(directory) / "voices").glob("*.pt"))
    path = next((p for p in voices if p.stem == voice), None) if voice else (voices[0] if voices else None)
    if path is None:
        raise SystemExit(f"no voice {voice or ''} in {directory}/voices ({', '.join(p.stem for p in voices)})")
    pack = torch.load(path, map_location="cpu", weights_only=True).to(device)
    return model, pack, path.stem


def time_batches(
    model, pack: torch.Tensor, inputs: list[tuple[str, torch.Tensor]], batches: list[int], repeats: int
) -> list[dict[str, Any]]:
    from engines.kokoro.batched import BatchedKokoro, ForwardItem

    forward = BatchedKokoro(model)
    device = forward.device
    rate = 24000

    def items(batch: int) -> list[Any]:
        chosen = [inputs[i % len(inputs)] for i in range(batch)]
        return [
            ForwardItem(ids.to(device), pack[max(len(ph), 1) - 1], 1.0, torch.Generator(device=device).manual_seed(i))
            for i, (ph, ids) in enumerate(chosen)
        ]

    def timed(fn):
        _sync(device)
        started = time.perf_counter()
        result = fn()
        _sync(device)
        return result, time.perf_counter() - started

    forward.decode(forward.front(items(1)), [torch.Generator(device=device).manual_seed(0)])  # warm-up
    rows = []
    for batch in batches:
        front_s, batched_s, serial_s = [], [], []
        for _ in range(repeats):
            work = items(batch)
            prosody, seconds = timed(lambda work=work: forward.front(work))
            front_s.append(seconds)
            _, seconds = timed(lambda p=prosody, w=work: forward.decode(p, [x.generator for x in w]))
            batched_s.append(seconds)
            _, seconds = timed(
                lambda p=prosody, w=work: [forward.decode([q], [x.generator]) for q, x in zip(p, w)]  # noqa: B023
            )
            serial_s.append(seconds)
        lengths = [int(x.input_ids.shape[-1]) for x in work]
        audio = sum(p.frames for p in prosody) * forward.samples_per_frame / rate
        front, dec_b, dec_s = (statistics.median(x) for x in (front_s, batched_s, serial_s))
        rows.append(
            {
                "batch": batch,
                "tokens": sum(lengths),
                "padded_tokens": max(lengths) * batch,
                "audio_s": audio,
                "front_ms": 1000 * front,
                "decode_batched_ms": 1000 * dec_b,
                "decode_serial_ms": 1000 * dec_s,
                "audio_per_wall_batched": audio / (front + dec_b),
                "audio_per_wall_serial": audio / (front + dec_s),
            }
        )
    return rows


HEADER = (
    "batch",
    "tokens (padded)",
    "audio s",
    "front ms",
    "decode ms, batched",
    "decode ms, one by one",
    "audio s/wall s, batched",
    "audio s/wall s, one by one",
)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            str(r["batch"]),
            f"{r['tokens']} ({r['padded_tokens']})",
            f"{r['audio_s']:.2f}",
            f"{r['front_ms']:.0f}",
            f"{r['decode_batched_ms']:.0f}",
            f"{r['decode_serial_ms']:.0f}",
            f"{r['audio_per_wall_batched']:.2f}",
            f"{r['audio_per_wall_serial']:.2f}",
        ]
        for r in rows
    ]
