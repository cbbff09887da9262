"""Orpheus scheduler throughput: tokens/s and real-time streams at several batch sizes.

Real time for Orpheus is 82.03 tokens/s (7 tokens per SNAC frame, 24000 / 2048 frames per second),
so ``real-time streams = tokens/s / 82.03`` is how many listeners the server could keep fed.

Default: the tiny random-weight model of the tests (same vocabulary and token layout as the 3B
checkpoint) on CPU, which measures the scheduler's own overhead (batching, KV bookkeeping,
sampling over 4,097 columns, SNAC windows). ``--device cuda --real-arch`` builds the real 3B
architecture (Llama-3.2-3B shape, 156,940 vocab) with random weights in bf16 instead.
``--codec skip`` replaces SNAC with a stub to separate LM + scheduler cost from codec cost.

Run it as a module from the repository root (so ``engines`` and ``tests`` import as packages; no
``sys.path`` changes here). The tiny weights and tokenizer come from the test suite's builder,
``tests.engines.orpheus.tiny_weights``, which is why the benchmark needs a source checkout:

    python -m benchmarks.orpheus_bench                       # tiny, CPU, SNAC on
    python -m benchmarks.orpheus_bench --codec skip          # tiny, CPU, LM + scheduler only
    python -m benchmarks.orpheus_bench --device cuda --real-arch --batches 1,8,32,64

End of speech is masked out, so every request generates exactly ``--tokens`` tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from engines.orpheus.codec import SnacCodec, Window
from engines.orpheus.requests import OrpheusRequest
from engines.orpheus.sampling import SamplingParams
from engines.orpheus.scheduler import OrpheusScheduler
from engines.orpheus.snac_stream import WindowConfig
from engines.orpheus.tokens import SAMPLES_PER_FRAME, VOCAB_SIZE
from engines.worker import BatchWorker
from tests.engines.orpheus import tiny_weights  # the test suite's builder (see above)

TOKENS_PER_AUDIO_SECOND = 7 * 24000 / SAMPLES_PER_FRAME  # 82.03

# canopylabs/orpheus-3b-0.1-ft config.json (Llama-3.2-3B shape)
REAL_ARCH = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "factor": 32.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "tie_word_embeddings": True,
    "rms_norm_eps": 1e-5,
}


class SkipCodec:
    """Stands in for SNAC: silence of the right length, no compute."""

    def decode(self, windows: Sequence[Window]) -> list[np.ndarray]:
        return [np.zeros(len(w.frames) * SAMPLES_PER_FRAME, np.float32) for w in windows]


def build(args: argparse.Namespace, workdir: Path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    device = torch.device(args.device)
    tiny_weights.build_tokenizer(workdir / "tok")
    tokenizer = AutoTokenizer.from_pretrained(str(workdir / "tok"))
    torch.manual_seed(0)
    if args.real_arch:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        with device:
            model = LlamaForCausalLM(LlamaConfig(**REAL_ARCH))
        torch.set_default_dtype(previous)
    else:
        tiny_weights.build_lm(workdir / "lm")
        model = LlamaForCausalLM.from_pretrained(str(workdir / "lm")).to(device)
    model.eval()
    if args.codec == "skip":
        codec = SkipCodec()
    else:
        from snac import SNAC

        codec = SnacCodec(SNAC(**tiny_weights.SNAC_24KHZ), device)
    return model, tokenizer, codec


def no_end_of_speech(scheduler: OrpheusScheduler) -> None:
    original = scheduler.head.scores

    def scores(hidden: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        out = original(hidden, slots)
        out[:, -1] = float("-inf")
        return out

    scheduler.head.scores = scores  # type: ignore[method-assign]


async def run_batch(model, tokenizer, codec, batch: int, tokens: int) -> dict[str, float]:
    scheduler = OrpheusScheduler(model, tokenizer, codec, max_rows=batch, parallel_segments=1)
    no_end_of_speech(scheduler)
    worker = BatchWorker(
        "bench", scheduler.step, max_batch_size=batch, max_wait_ms=50, max_queue_size=batch, on_leave=scheduler.release
    )
    worker.start()
    params = SamplingParams(temperature=0.6, top_p=0.8, repetition_penalty=1.3, max_tokens=tokens)
    first_audio: list[float] = []

    async def one(seed: int) -> int:
        state = OrpheusRequest.create(
            "tara", ["Hello there, this is a benchmark sentence."], params, seed, WindowConfig(), fade_samples=120
        )
        started = time.perf_counter()
        samples = 0
        async for chunk in worker.submit(state).results():
            if not samples:
                first_audio.append(time.perf_counter() - started)
            samples += chunk.size
        return samples

    started = time.perf_counter()
    results = await asyncio.gather(*(one(seed) for seed in range(batch)))
    elapsed = time.perf_counter() - started
    await worker.stop()
    assert all(r == tokens // 7 * SAMPLES_PER_FRAME for r in results), results
    stats = scheduler.stats()
    rate = batch * tokens / elapsed
    return {
        "batch": batch,
        "tokens_per_s": rate,
        "realtime_streams": rate / TOKENS_PER_AUDIO_SECOND,
        "first_audio_s": statistics.median(first_audio),
        "max_lm_batch": stats["max_lm_batch_size_seen"],
        "step_ms": 1000 * elapsed / max(1, stats["decode_steps"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--real-arch", action="store_true", help="the 3B architecture with random weights")
    parser.add_argument("--codec", choices=["snac", "skip"], default="snac")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=140, help="tokens per request (7 per frame)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1: on a shared 2-core machine, 2 threads spin against each other)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, codec = build(args, Path(tmp))
    asyncio.run(run_batch(model, tokenizer, codec, 1, 14))  # warm-up
    arch = "3B architecture" if args.real_arch else "tiny (2 layers, hidden 64)"
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "CPU"
    print(
        f"Orpheus scheduler, {arch}, random weights, device {args.device} ({where}), "
        f"{torch.get_num_threads()} torch threads, codec {args.codec}, {args.tokens} tokens per request\n"
    )
    print("| batch | tokens/s | real-time streams | median first audio (s) | max LM batch | ms per step |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        r = asyncio.run(run_batch(model, tokenizer, codec, batch, args.tokens))
        print(
            f"| {batch} | {r['tokens_per_s']:.0f} | {r['realtime_streams']:.2f} | {r['first_audio_s']:.2f} "
            f"| {r['max_lm_batch']} | {r['step_ms']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
