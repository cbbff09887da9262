"""Kokoro throughput and first audio by batching policy and concurrency (figures, not tests).

Runs the engine in-process exactly as the server does (sessions -> G2P threads -> BatchWorker ->
KokoroBatcher), with closed-loop streams: each of ``c`` concurrent streams sends its requests one
after another. Every policy runs in the same process, on the same texts, seeds and weights, so
batched and serial figures are directly comparable.

    # CPU, real weights (../shared/realweights), intelligibility of batched vs solo output:
    python -m benchmarks.kokoro_bench --weights ~/.cache/tts-realweights/kokoro-82m --voice jf_alpha \\
        --concurrency 1,4,8 --policies serial,front,batched --wer ~/.cache/tts-realweights
    # GPU, random full-size weights with realistic durations (4 frames per phoneme):
    python -m benchmarks.kokoro_bench --device cuda --concurrency 1,4,8,16,32 --policies serial,batched
    # kokoro_compile against eager, same run:
    python -m benchmarks.kokoro_bench --concurrency 1,4 --policies front,front+compile
    # the CPU defaults one by one (compile, bf16 decoder), real weights, the bench tool's medium texts:
    python -m benchmarks.kokoro_bench --weights ~/.cache/tts-realweights/kokoro-82m --voice jf_alpha --texts medium \
        --concurrency 1,2 --requests 3 --policies front,front+compile,front+bf16,front+compile+bf16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from benchmarks.bench.texts import BUILTIN
from engines.base import EncodedPcm, PcmChunk, SessionParams
from engines.kokoro.engine import KokoroEngine
from server.settings import Settings

MODEL = "hexgrad/Kokoro-82M"
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call me back tomorrow morning before ten, if you can.",
    "Our server turns written text into natural speech for everyone.",
    "It was a bright cold day in April, and the clocks were striking thirteen.",
    "A journey of a thousand miles begins with a single step forward.",
    "She sells sea shells by the sea shore on sunny summer days.",
    "Every morning the baker opens his shop and sells fresh bread.",
    "Reading a good book on a rainy afternoon is a simple pleasure.",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def one_request(engine: KokoroEngine, text: str, voice: str, seed: int) -> tuple[float, float, np.ndarray]:
    started = time.perf_counter()
    first = None
    parts = []
    session = await engine.open_session(SessionParams(model=MODEL, voice=voice, seed=seed))
    async with session:
        await session.feed(text)
        await session.commit()
        async for event in session.events():
            if isinstance(event, PcmChunk | EncodedPcm):
                first = first or time.perf_counter() - started
                parts.append(event.samples if isinstance(event, PcmChunk) else np.frombuffer(event.data, "<i2") / 32767)
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return first or float("nan"), time.perf_counter() - started, audio


async def run_level(
    engine: KokoroEngine, concurrency: int, requests: int, voice: str, texts: list[str] = SENTENCES
) -> dict:
    ttfa: list[float] = []
    audio_s = 0.0
    outputs: dict[int, np.ndarray] = {}

    async def stream(index: int) -> None:
        nonlocal audio_s
        for r in range(requests):
            key = index * requests + r
            first, _, audio = await one_request(engine, texts[key % len(texts)], voice, seed=key)
            ttfa.append(first)
            audio_s += audio.size / 24000
            outputs[key] = audio

    before = engine.stats()
    started = time.perf_counter()
    await asyncio.gather(*(stream(i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    after = engine.stats()
    fronts = {int(k): v - before["front_batch_histogram"].get(k, 0) for k, v in after["front_batch_histogram"].items()}
    mean_front = sum(k * v for k, v in fronts.items()) / max(1, sum(fronts.values()))
    return {
        "concurrency": concurrency,
        "requests": concurrency * requests,
        "audio_s": round(audio_s, 2),
        "wall_s": round(wall, 2),
        "audio_s_per_wall_s": round(audio_s / wall, 3),
        "ttfa_p50_s": round(percentile(ttfa, 50), 3),
        "ttfa_p90_s": round(percentile(ttfa, 90), 3),
        "mean_front_batch": round(mean_front, 2),
        "token_efficiency": after.get("token_efficiency"),
        "outputs": outputs,
    }


def word_error_rate(realweights: Path, audio: np.ndarray, text: str) -> float:
    """Whisper (from ../shared/realweights) transcribes; its wer.py scores."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "realweights"
    python = realweights / "venv" / "bin" / "python"
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        sf.write(wav.name, audio, 24000)
        asr = subprocess.run(
            [python, shared / "asr.py", wav.name, "--model", realweights / "whisper-base-ct2", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
    transcript = json.loads(asr.stdout)["text"]
    score = subprocess.run(
        [python, shared / "wer.py", "--json", text, transcript], capture_output=True, text=True, check=True
    )
    return json.loads(score.stdout)["wer"]


async def main(args: argparse.Namespace) -> None:
    weights = args.weights
    if weights is None:
        from benchmarks.models.kokoro import build_random_kokoro

        weights = build_random_kokoro(Path(tempfile.mkdtemp(prefix="kokoro-random-")))
    levels = [int(c) for c in args.concurrency.split(",")]
    results: dict[str, list[dict]] = {}

    from benchmarks.bench import meta

    def report_of() -> dict:
        return {
            "command": "python -m benchmarks.kokoro_bench " + shlex.join(sys.argv[1:]),
            "git": meta.git_revision(),  # the commit, and whether the tree was clean
            "load_average": meta.hardware()["load_average"],  # at writing: a shared machine says so here
            "hardware": hardware(args.device),
            "weights": "real (../shared/realweights)" if args.weights else "random full-size, 4 frames/phoneme",
            "device": args.device,
            "voice": args.voice,
            "requests_per_stream": args.requests,
            "results": {
                p: [{k: v for k, v in r.items() if k != "outputs"} for r in rows] for p, rows in results.items()
            },
        }

    texts = [args.text] if args.text else BUILTIN[args.texts] if args.texts else SENTENCES
    for policy in args.policies.split(","):
        settings = Settings(
            kokoro_source=str(weights),
            device=args.device,
            kokoro_batch_policy=policy.split("+")[0],
            # Suffixes: +compile (TTS_KOKORO_COMPILE=on), +bf16 (TTS_KOKORO_DTYPE=bfloat16); else eager fp32.
            kokoro_compile="on" if "+compile" in policy else "off",
            kokoro_dtype="bfloat16" if "+bf16" in policy else "float32",
            max_batch_size=max(levels),
            max_queue_size=max(64, 2 * max(levels)),
            max_wait_ms=args.max_wait_ms,
            **({"segment_chars": args.segment_chars} if args.segment_chars else {}),
        )
        engine = KokoroEngine(MODEL, settings.kokoro)
        await engine.load()
        await engine.warmup()
        results[policy] = []
        for level in levels:
            row = await run_level(engine, level, args.requests, args.voice, texts)
            print(policy, {k: v for k, v in row.items() if k != "outputs"}, flush=True)
            results[policy].append(row)
            if args.out:  # after every level: a run cut off still leaves what finished
                Path(args.out).write_text(json.dumps(report_of(), indent=2))
        await engine.close()
    report = report_of()
    if args.wer:
        report["wer"] = wer_report(Path(args.wer).expanduser(), results, texts)
        print("WER", report["wer"])
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


def wer_report(realweights: Path, results: dict[str, list[dict]], texts: list[str]) -> dict:
    """Mean WER of each policy's output at its highest concurrency vs at concurrency 1 (solo)."""
    out = {}
    for policy, rows in results.items():
        for row in (rows[0], rows[-1]):
            scores = [
                word_error_rate(realweights, audio, texts[key % len(texts)])
                for key, audio in sorted(row["outputs"].items())[:8]
            ]
            out[f"{policy}@{row['concurrency']}"] = round(statistics.mean(scores), 4)
    return out


def hardware(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(0)
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    return f"{model}, {torch.get_num_threads()} torch threads"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--weights", type=Path, help="Kokoro directory in the HF layout (default: random weights)")
    parser.add_argument("--voice", default="af_heart")
    parser.add_argument("--concurrency", default="1,4,8,16,32")
    parser.add_argument(
        "--policies",
        default="serial,front,batched",
        help="serial, front, batched; suffixes +compile (kokoro_compile) and +bf16 (kokoro_dtype); else eager fp32",
    )
    parser.add_argument("--requests", type=int, default=2, help="requests per stream, one after another")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on CPU")
    parser.add_argument("--wer", help="realweights directory (venv + whisper) to score intelligibility")
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--segment-chars", type=int, help="TTS_SEGMENT_CHARS (later segments' length)")
    parser.add_argument("--texts", choices=sorted(BUILTIN), help="the bench tool's built-in set instead")
    parser.add_argument("--text", help="speak only this text (short smoke runs); default: the benchmark's sentences")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    asyncio.run(main(arguments))
