"""``tts-server bench engine``: time an engine in-process by batch size (no HTTP), for kernel work.

Two views:

* ``--what kernels`` (Kokoro): the batched forward itself, front and decoder, by batch size
  (see engine_kokoro.py);
* ``--what sessions`` (any local engine, e.g. Orpheus): B engine sessions at once, as the server
  would run B concurrent requests, with the engine's own counters (``engine.stats()``) before and
  after: time to first audio and total per session, audio seconds per wall second, batch sizes
  formed, tokens/s.

``--orpheus-tiny`` builds the tiny random-weight Orpheus the tests use too (benchmarks/models/orpheus.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.bench import meta
from benchmarks.bench.report import markdown_table
from benchmarks.bench.server_view import stats_delta
from benchmarks.bench.texts import load_texts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tts-server bench engine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="hexgrad/Kokoro-82M", help="a model name or alias (kokoro, orpheus)")
    p.add_argument("--what", choices=("kernels", "sessions"), help="default: kernels for Kokoro, else sessions")
    p.add_argument("--device", default="cpu")
    p.add_argument("--kokoro-source", default="hexgrad/Kokoro-82M", help="HF repo id or local directory")
    p.add_argument("--orpheus-source", help="local directory or repo id of the Orpheus LM")
    p.add_argument("--snac-source", help="local directory or repo id of SNAC 24 kHz")
    p.add_argument("--orpheus-tiny", action="store_true", help="build and use the tests' tiny random Orpheus")
    p.add_argument("--voice", help="default: the first voice the engine lists")
    p.add_argument("--texts", default="short")
    p.add_argument("--batches", default="1,2,4,8", help="batch sizes (concurrent sessions)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls (kernels) or rounds (sessions) per batch")
    p.add_argument("--extra", type=json.loads, default={}, help="session sampling, e.g. '{\"max_tokens\": 140}'")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", type=Path, help="write engine.json and engine.md here")
    return p


async def time_sessions(engine, texts, voice: str, batches: list[int], rounds: int, sampling: dict) -> list[dict]:
    from engines.base import EncodedChunk, EncodedPcm, PcmChunk, SynthesisRequest

    widths = {"pcm_f32le": 4, "pcm_s16le": 2, "pcm_mulaw": 1, "pcm_alaw": 1}

    async def one(index: int) -> dict[str, float]:
        _, text = texts.pick(index)
        request = SynthesisRequest(model=engine.model_id, text=text, voice=voice, seed=index, sampling=sampling)
        started, first, audio = time.perf_counter(), None, 0.0
        async for chunk in engine.synthesize(request):
            if first is None:
                first = time.perf_counter() - started
            if isinstance(chunk, PcmChunk):
                audio += len(chunk.samples) / chunk.sample_rate
            elif isinstance(chunk, EncodedPcm):
                audio += len(chunk.data) / widths[chunk.encoding] / chunk.sample_rate
            elif isinstance(chunk, EncodedChunk):
                pass  # proxies only; not an in-process engine
        return {"ttfa_s": first or 0.0, "total_s": time.perf_counter() - started, "audio_s": audio}

    rows = []
    for batch in batches:
        before = {engine.model_id: engine.stats()}
        started, results = time.perf_counter(), []
        for round_ in range(rounds):
            results += await asyncio.gather(*(one(round_ * batch + i) for i in range(batch)))
        wall = time.perf_counter() - started
        server = stats_delta(before, {engine.model_id: engine.stats()}, wall)[engine.model_id]
        audio = sum(r["audio_s"] for r in results)
        rows.append(
            {
                "batch": batch,
                "sessions": len(results),
                "ttfa_p50_s": statistics.median(r["ttfa_s"] for r in results),
                "total_p50_s": statistics.median(r["total_s"] for r in results),
                "audio_s": audio,
                "audio_per_wall": audio / wall,
                "engine": server,
            }
        )
    return rows


def session_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["batch", "sessions", "first audio p50 s", "total p50 s", "audio s/wall s", "mean batch", "tokens/s"]
    out = []
    for r in rows:
        engine = r["engine"]
        mean = engine.get("mean_lm_batch") or engine.get("mean_front_batch") or engine.get("mean_step_batch")
        tokens = engine.get("tokens_per_s")
        out.append(
            [
                str(r["batch"]),
                str(r["sessions"]),
                f"{r['ttfa_p50_s']:.3f}",
                f"{r['total_p50_s']:.3f}",
                f"{r['audio_per_wall']:.2f}",
                f"{mean:.2f}" if mean else "-",
                f"{tokens:.0f}" if tokens else "-",
            ]
        )
    return header, out


async def run_sessions(args: argparse.Namespace, batches: list[int], workdir: Path) -> tuple[dict, list[dict]]:
    from engines import registry
    from server.settings import Settings

    model_id, _ = registry.engine_class(args.model)
    values: dict[str, Any] = {
        "models": [model_id],
        "device": args.device,
        "kokoro_source": args.kokoro_source,
        "max_batch_size": max(batches),
        "max_queue_size": max(64, 2 * max(batches)),
    }
    if args.orpheus_tiny:
        from benchmarks.models.orpheus import build_all  # shipped in the wheel: no source checkout needed

        lm, snac = build_all(workdir)
        values.update(orpheus_source=str(lm), orpheus_snac_source=str(snac), offline=True)
    for key, setting in (("orpheus_source", "orpheus_source"), ("snac_source", "orpheus_snac_source")):
        if getattr(args, key):
            values[setting] = getattr(args, key)
    engine = registry.create_engine(model_id, Settings(**values).section(model_id))
    await engine.load()
    try:
        await engine.warmup()
        voice = args.voice or engine.voices()[0].id
        texts = load_texts(args.texts)
        rows = await time_sessions(engine, texts, voice, batches, args.repeats, args.extra)
    finally:
        await engine.close()
    return {"model": model_id, "voice": voice, "what": "sessions", "orpheus_tiny": args.orpheus_tiny}, rows


def run_kernels(args: argparse.Namespace, batches: list[int]) -> tuple[dict, list[dict]]:
    from benchmarks.bench import engine_kokoro

    model, pack, voice = engine_kokoro.load(args.kokoro_source, args.device, args.voice)
    lang = "b" if voice.startswith("b") else "a"  # English G2P; the voice gives the accent only
    inputs = engine_kokoro.phoneme_ids(model, load_texts(args.texts), lang)
    rows = engine_kokoro.time_batches(model, pack, inputs, batches, args.repeats)
    return {"model": "hexgrad/Kokoro-82M", "voice": voice, "what": "kernels"}, rows


def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # torch's notes on weight_norm and LSTM dropout
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    kokoro = args.model.lower() in ("hexgrad/kokoro-82m", "kokoro")
    what = args.what or ("kernels" if kokoro else "sessions")
    if what == "kernels" and not kokoro:
        raise SystemExit("tts-server bench engine: --what kernels is for Kokoro; use --what sessions")
    with tempfile.TemporaryDirectory() as tmp:
        if what == "kernels":
            info, rows = run_kernels(args, batches)
        else:
            info, rows = asyncio.run(run_sessions(args, batches, Path(tmp)))
    if what == "kernels":
        from benchmarks.bench.engine_kokoro import HEADER, table_rows

        header, body = list(HEADER), table_rows(rows)
    else:
        header, body = session_table(rows)
    hardware = meta.hardware()
    title = f"{info['model']} engine ({what}), voice {info['voice']}, texts {args.texts}, device {args.device}"
    table = markdown_table(header, body)
    command = "tts-server bench engine " + shlex.join(list(sys.argv[1:] if argv is None else argv))
    print(f"{title}\n{meta.describe_hardware(hardware)}, torch threads {torch.get_num_threads()}\n\n{table}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        result = {
            **info,
            "command": command,
            "texts": args.texts,
            "device": args.device,
            "threads": torch.get_num_threads(),
            "hardware": hardware,
            "software": meta.software(),
            "git": meta.git_revision(),
            "rows": rows,
        }
        (args.out / "engine.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        hw = f"{meta.describe_hardware(hardware)}, load average {hardware['load_average']}"
        text = f"# {title}\n\n- Command: `{command}`\n- Hardware: {hw}\n\n{table}\n"
        (args.out / "engine.md").write_text(text, encoding="utf-8")
    return 0
