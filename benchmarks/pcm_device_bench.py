"""Throughput of on-device resample + encode (engines.pcm_device) vs the host path (soxr + numpy).

For each batch size, ``--segments`` of 5 s of 24 kHz audio already on ``--device`` are resampled to
each ``--rates`` and encoded; the device path does it in one batched call with one device-to-host
copy, the reference path copies each segment to the host and runs soxr HQ + server.audio.pcm on it
(what the server does today). Printed: milliseconds per batch and audio seconds per wall second.

    python -m benchmarks.pcm_device_bench                     # CPU
    python -m benchmarks.pcm_device_bench --device cuda --batches 1,8,32
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr
import torch

from engines.pcm_device import Resampler, encode_batch
from server.audio.pcm import encode_pcm

SOURCE_RATE = 24000


def _segments(count: int, seconds: float, device: str) -> list[torch.Tensor]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE
    out = []
    for _ in range(count):
        x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 3500, 5)) + rng.normal(0, 0.01, t.size)
        out.append(torch.from_numpy(x.astype(np.float32)).to(device))
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], device: str, repeats: int) -> float:
    fn()  # warm-up: kernels, cuDNN algorithm choice, soxr plans
    _sync(device)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        _sync(device)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", default="1,2,4,8,16,32", help="comma-separated segment counts")
    parser.add_argument("--rates", default="8000,16000,22050,44100,48000", help="comma-separated output rates")
    parser.add_argument("--encoding", default="pcm_s16le")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each segment")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    rates = [int(r) for r in args.rates.split(",")]
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor()
    print(f"device {args.device} ({name}), torch {torch.__version__}, {args.encoding}, {args.seconds:g} s segments")
    header = ("rate", 6), ("batch", 5), ("device ms", 10), ("host ms", 9), ("device x rt", 12), ("host x rt", 10)
    print(" ".join(f"{title:>{width}}" for title, width in header), f"{'speed-up':>8}")
    report = {"benchmark": "pcm_device", "device": args.device, "hardware": name, "torch": torch.__version__}
    report.update(encoding=args.encoding, segment_seconds=args.seconds, rows=[])
    for rate in rates:
        resampler = Resampler(SOURCE_RATE, rate, args.device)
        for batch in batches:
            xs = _segments(batch, args.seconds, args.device)

            def on_device(xs=xs, resampler=resampler) -> list[bytes]:
                return encode_batch(xs, args.encoding, resampler)

            def on_host(xs=xs, rate=rate) -> list[bytes]:
                out = []
                for x in xs:
                    y = soxr.resample(x.cpu().numpy(), SOURCE_RATE, rate, quality="HQ")
                    out.append(encode_pcm(y, args.encoding))
                return out

            device_s = _time(on_device, args.device, args.repeats)
            host_s = _time(on_host, args.device, args.repeats)
            audio = batch * args.seconds
            print(
                f"{rate:>6} {batch:>5} {device_s * 1e3:>10.2f} {host_s * 1e3:>9.2f} "
                f"{audio / device_s:>12.0f} {audio / host_s:>10.0f} {host_s / device_s:>8.2f}"
            )
            row = {"rate": rate, "batch": batch, "device_ms": device_s * 1e3, "host_ms": host_s * 1e3}
            report["rows"].append(row)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
