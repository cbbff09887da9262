"""Kokoro-82M forward: a padded batch (``BatchedKokoro``) vs the same items one at a time.

For each batch size B, B utterances of ``--phonemes`` symbols (different strings, one voice) go
through ``front`` and ``decode`` once as one batch and once as B calls of one item. Prints wall
time per stage and audio seconds per wall second. Figures only: nothing is asserted.

Run it as a module from the repository root. Without ``--weights`` it builds the test suite's
random full-size Kokoro (``tests.support.kokoro_weights``, ~4 frames per phoneme) in a temp dir:

    python -m benchmarks.kokoro_forward_bench                                  # CPU, random weights
    python -m benchmarks.kokoro_forward_bench --device cuda --batch-sizes 1,8,32,64 --phonemes 150
    python -m benchmarks.kokoro_forward_bench --weights ~/.cache/tts-realweights/kokoro-82m
"""

from __future__ import annotations

import argparse
import platform
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from engines.kokoro.batched import BatchedKokoro, ForwardItem
from engines.kokoro.loader import load_kmodel

SAMPLE_RATE = 24000


def timed(device: torch.device, fn: Callable[[], object]) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def make_items(model, pack: torch.Tensor, count: int, symbols: int, speed: float) -> list[ForwardItem]:
    vocab = sorted(model.vocab)
    rng = random.Random(symbols)
    items = []
    for i in range(count):
        phonemes = "".join(rng.choices(vocab, k=symbols))
        input_ids = torch.LongTensor([0, *(model.vocab[p] for p in phonemes), 0]).to(model.device)
        generator = torch.Generator(device=model.device).manual_seed(i)
        items.append(ForwardItem(input_ids, pack[symbols - 1].to(model.device), speed, generator))
    return items


def bench(batched: BatchedKokoro, items: list[ForwardItem], repeats: int) -> dict[str, float]:
    device = batched.device
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    generators = [item.generator for item in items]
    for _ in range(repeats):
        front_s, prosody = timed(device, lambda: batched.front(items))
        decode_s, _ = timed(device, lambda p=prosody: batched.decode(p, generators))
        keep("front_batched", front_s)
        keep("decode_batched", decode_s)

        serial_front_s, serial = timed(device, lambda: [batched.front([item])[0] for item in items])
        serial_decode_s, _ = timed(device, lambda s=serial: [batched.decode([p], [g]) for p, g in zip(s, generators)])
        keep("front_serial", serial_front_s)
        keep("decode_serial", serial_decode_s)
    best["audio_s"] = sum(p.frames for p in prosody) * batched.samples_per_frame / SAMPLE_RATE
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", default="1,2,4,8")
    parser.add_argument("--phonemes", type=int, default=60, help="phoneme symbols per utterance (max 510)")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--weights", type=Path, help="a Kokoro dir in the HF layout; default: random weights")
    parser.add_argument("--voice", help="voice file stem in WEIGHTS/voices (default: the first one)")
    parser.add_argument("--repeats", type=int, default=1, help="report the best of this many runs")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="kokoro-bench-") as tmp:
        weights = args.weights
        if weights is None:
            from tests.support.kokoro_weights import build_random_kokoro  # needs a source checkout

            weights = build_random_kokoro(Path(tmp))
        model = load_kmodel(weights, args.device)
        voice_files = sorted((weights / "voices").glob("*.pt"))
        voice = weights / "voices" / f"{args.voice}.pt" if args.voice else voice_files[0]
        pack = torch.load(voice, weights_only=True)
        batched = BatchedKokoro(model)

        hardware = (
            torch.cuda.get_device_name(model.device)
            if model.device.type == "cuda"
            else platform.processor() or platform.machine()
        )
        print(
            f"device {args.device} ({hardware}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"weights {args.weights or 'random'}, voice {voice.stem}, {args.phonemes} phonemes per utterance, "
            f"speed {args.speed}\n"
        )
        bench(batched, make_items(model, pack, 1, args.phonemes, args.speed), 1)  # warm-up
        print(
            "| B | audio s | front batched s | front serial s | decode batched s | decode serial s |"
            " audio s/wall s batched | serial |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in (int(b) for b in args.batch_sizes.split(",")):
            r = bench(batched, make_items(model, pack, size, args.phonemes, args.speed), args.repeats)
            batched_s = r["front_batched"] + r["decode_batched"]
            serial_s = r["front_serial"] + r["decode_serial"]
            print(
                f"| {size} | {r['audio_s']:.1f} | {r['front_batched']:.3f} | {r['front_serial']:.3f} "
                f"| {r['decode_batched']:.3f} | {r['decode_serial']:.3f} "
                f"| {r['audio_s'] / batched_s:.2f} | {r['audio_s'] / serial_s:.2f} |"
            )


if __name__ == "__main__":
    main()
