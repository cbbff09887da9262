"""How many frames of the earlier text the decoder needs before a chunk spoken with context (issue 19).

A chunk after the first is fed with the text before it as context (``engines/kokoro/context.py``); the
decoder then runs some of the earlier text's frames first and cuts their audio at the join, so the
chunk's onset starts warmed up as inside one utterance. Each such frame costs decoder time (25 ms of
audio a frame) and buys nothing heard. For every later chunk of the built-in texts this compares the
chunk's first second of audio, warmed up in several ways, with the same chunk decoded after *all* the
earlier text (the most context the decoder can have): mean absolute difference of log STFT magnitudes.
Kokoro's instance norms and F0 LSTM read the whole decoded span, so no warm-up reaches zero; the
noise floor is the reference against itself with other vocoder noise (another seed).

    python -m benchmarks.kokoro_warm_frames --weights ~/.cache/tts-realweights/kokoro-82m --out DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

FRAMES = (4, 8, 12, 16, 24, 32)
SAMPLES_PER_FRAME = 600


def log_spectrum(audio: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(1024)
    return torch.log(torch.stft(audio, 1024, 240, window=window, return_complex=True).abs()[:400] + 1e-3)


def decode_after(batched, context, style_row, tokens: int, frames: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """The chunk's audio after warming up on the last ``tokens`` earlier tokens, cut to ``frames`` frames."""
    from engines.kokoro.batched import ForwardItem

    lead = context.keep[0] + context.warm  # the chunk's leading token
    item = ForwardItem(torch.tensor(context.input_ids), style_row, 1.0, None, (lead - tokens, context.keep[1]))
    item.warm, item.warm_frames = tokens, frames
    (prosody,) = batched.front([item])
    warm = int(prosody.durations[:tokens].sum())
    audio = batched.decode([prosody], [torch.Generator().manual_seed(seed)])[0]
    return audio[warm * SAMPLES_PER_FRAME :], warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="Kokoro-82M in the HF layout (real weights)")
    parser.add_argument("--voice", default="jf_alpha")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write warm-frames.json here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from benchmarks.bench import meta
    from benchmarks.bench.texts import LONG, MEDIUM
    from engines.kokoro.batched import BatchedKokoro
    from engines.kokoro.context import WARM_TOKENS, with_context
    from engines.kokoro.g2p import Phonemizer
    from engines.kokoro.loader import load_kmodel
    from engines.kokoro.settings import KokoroSettings
    from engines.text import segment_text

    model = load_kmodel(args.weights, "cpu")
    batched = BatchedKokoro(model)
    phonemizer = Phonemizer("hexgrad/Kokoro-82M")
    pack = torch.load(args.weights / "voices" / f"{args.voice}.pt", weights_only=True)
    defaults = KokoroSettings()
    rows: dict[str, list[float]] = {}
    frames_decoded: dict[str, list[int]] = {}
    started = time.perf_counter()
    for text in [*MEDIUM, LONG[0]]:
        segments = segment_text(
            text,
            first_chars=defaults.first_segment_chars,
            max_chars=defaults.segment_chars,
            min_chars=defaults.segment_min_chars,
        )
        chunks = [chunk.phonemes for segment in segments for chunk in phonemizer.chunks(segment, "a")]
        for k in range(1, len(chunks)):
            after = chunks[k + 1] if k + 1 < len(chunks) else None
            context = with_context(chunks[k], chunks[:k], after, model.vocab, model.context_length)
            everything = context.keep[0] + context.warm - 1  # every earlier token, uncut
            row = pack[context.phonemes - 1]
            reference, _ = decode_after(batched, context, row, everything, 10**6)
            span = min(reference.shape[0], 24000)  # the first second after the join
            cases = {
                "noise floor (other seed)": decode_after(batched, context, row, everything, 10**6, seed=1),
                "none": decode_after(batched, context, row, 0, 0),
                f"{WARM_TOKENS} whole tokens": decode_after(batched, context, row, min(WARM_TOKENS, everything), 10**6),
            }
            for frames in FRAMES:
                cases[f"{frames} frames"] = decode_after(batched, context, row, everything, frames)
            base = log_spectrum(reference[:span])
            for name, (audio, warm) in cases.items():
                rows.setdefault(name, []).append(float((log_spectrum(audio[:span]) - base).abs().mean()))
                frames_decoded.setdefault(name, []).append(warm)
    report = {
        "command": "python -m benchmarks.kokoro_warm_frames " + " ".join(argv or sys.argv[1:]),
        "git": meta.git_revision(),
        "hardware": meta.hardware(),
        "voice": args.voice,
        "joins": len(rows["none"]),
        "seconds": round(time.perf_counter() - started, 1),
        "results": {
            name: {
                "log_spectrum_distance_mean": round(statistics.mean(values), 3),
                "log_spectrum_distance_max": round(max(values), 3),
                "warm_frames_decoded_mean": round(statistics.mean(frames_decoded[name]), 1),
            }
            for name, values in rows.items()
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "warm-frames.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
