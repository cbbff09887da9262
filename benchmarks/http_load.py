"""Latency and throughput of a running tts-server (or any Together-compatible endpoint).

Sends streaming requests (SSE, raw pcm_s16le) at each concurrency level and prints, per level:
time to first audio (p50/p90), total latency, audio produced, real-time factor per request
(synthesis time / audio duration, lower is better) and aggregate audio-seconds per wall-second.

    python -m benchmarks.http_load --url http://127.0.0.1:8000 --model hexgrad/Kokoro-82M \
        --voice af_heart --concurrency 1,4,8 --requests 16

``--serve "--kokoro-source DIR --device cuda"`` starts ``tts-server serve`` with those flags first.
Only loopback or your own hosts are valid targets.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import platform
import statistics
import time
from dataclasses import dataclass

import httpx

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Text to speech servers live or die by their time to first audio.",
    "A short sentence. Then another one, a little longer than the first, to give the model some work.",
    "Benchmarks should be run on an idle machine, several times, and reported with the hardware named.",
]


@dataclass
class Result:
    ttfa_s: float
    total_s: float
    audio_s: float


async def one_request(client: httpx.AsyncClient, url: str, body: dict, rate: int) -> Result:
    started = time.perf_counter()
    first = None
    samples = 0
    async with client.stream("POST", f"{url}/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {(await response.aread()).decode()[:300]}")
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"]["message"])
            if first is None:
                first = time.perf_counter() - started
            samples += len(base64.b64decode(chunk["b64"])) // 2
    return Result(first or float("nan"), time.perf_counter() - started, samples / rate)


async def run_level(url: str, args: argparse.Namespace, concurrency: int) -> list[Result]:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def task(i: int) -> Result:
            body = {
                "model": args.model,
                "input": TEXTS[i % len(TEXTS)],
                "voice": args.voice,
                "stream": True,
                "response_format": "raw",
                "response_encoding": "pcm_s16le",
                "sample_rate": args.rate,
            }
            async with sem:
                return await one_request(client, url, body, args.rate)

        return await asyncio.gather(*(task(i) for i in range(args.requests)))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def main_async(args: argparse.Namespace, url: str) -> None:
    await run_level(url, argparse.Namespace(**{**vars(args), "requests": 2}), 1)  # warm the path
    print(f"# {args.model} voice={args.voice} requests/level={args.requests} host={platform.node()}")
    print("| concurrency | TTFA p50 s | TTFA p90 s | latency p50 s | audio s/req | RTF p50 | audio s per wall s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for level in args.concurrency:
        started = time.perf_counter()
        results = await run_level(url, args, level)
        wall = time.perf_counter() - started
        ttfa = [r.ttfa_s for r in results]
        rtf = [r.total_s / r.audio_s for r in results if r.audio_s]
        print(
            f"| {level} | {pct(ttfa, 0.5):.3f} | {pct(ttfa, 0.9):.3f} | {pct([r.total_s for r in results], 0.5):.2f} "
            f"| {statistics.mean(r.audio_s for r in results):.2f} | {pct(rtf, 0.5):.3f} "
            f"| {sum(r.audio_s for r in results) / wall:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="hexgrad/Kokoro-82M")
    parser.add_argument("--voice", default="af_heart")
    parser.add_argument("--rate", type=int, default=24000)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--serve", help="start `tts-server serve` with these flags and benchmark it")
    args = parser.parse_args()
    if args.serve:
        import shlex

        from server.launcher import launch_server

        with launch_server(*shlex.split(args.serve), timeout_s=900) as url:
            asyncio.run(main_async(args, url))
    else:
        asyncio.run(main_async(args, args.url))


if __name__ == "__main__":
    main()
