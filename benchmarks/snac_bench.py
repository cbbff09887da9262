"""SNAC 24 kHz decode cost by windows per call: what the codec stage's batch cap is chosen from.

The codec stage (engines/orpheus/codec_stage.py) decodes the SNAC windows that fall due across
streams in one call. Whether that pays depends on the device: this decodes ``--batches`` windows
per call (each window ``--frames`` frames, as the stage plans them: 3 context + 4 new + 2
look-ahead = 9 by default) through the engine's own :class:`SnacCodec`, ``--repeats`` times each
after one warm-up call, and reports milliseconds per call, per window and per frame (medians).

SNAC's architecture with random weights (the test suite's builder): its cost does not depend on
the weights. Writes the raw figures and the run's metadata (hardware, load average before and
after, git revision and whether the tree was clean, the command) as JSON with ``--json``, and the
table as Markdown with ``--markdown``:

    python -m benchmarks.snac_bench --batches 1,2,4,8 --repeats 3 \\
        --json benchmarks/results/snac-cpu/results.json --markdown benchmarks/results/snac-cpu/report.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench.meta import describe_hardware, git_revision, hardware, software
from engines.orpheus import loader
from engines.orpheus.codec import SnacCodec, Window


def measure(codec: SnacCodec, batch: int, frames: int, repeats: int, rng: np.random.Generator) -> dict[str, Any]:
    def windows() -> list[Window]:
        return [
            Window(rng.integers(0, 4096, size=(frames, 7)), start=0, noise_seed=int(rng.integers(1 << 62)))
            for _ in range(batch)
        ]

    codec.decode(windows())  # warm-up: first-call allocations and kernel selection
    calls = []
    for _ in range(repeats):
        batch_windows = windows()
        started = time.perf_counter()
        codec.decode(batch_windows)
        calls.append((time.perf_counter() - started) * 1000)
    per_call = statistics.median(calls)
    return {
        "windows_per_call": batch,
        "frames_per_window": frames,
        "ms_per_call": [round(c, 2) for c in calls],
        "ms_per_call_median": round(per_call, 2),
        "ms_per_window": round(per_call / batch, 2),
        "ms_per_frame": round(per_call / (batch * frames), 2),
    }


def markdown(result: dict[str, Any]) -> str:
    hw = result["hardware"]
    lines = [
        f"# SNAC 24 kHz decode by windows per call ({result['device']})",
        "",
        f"- Started {result['started']}, finished {result['finished']}.",
        f"- Hardware: {describe_hardware(hw)}; {result['torch_threads']} torch thread(s); load average (1, 5, 15 min) "
        f"{hw['load_average']} before the run, {result['load_average_after']} after (a shared machine: the "
        "figures are as loaded as that says).",
        f"- Software: {', '.join(f'{k} {v}' for k, v in result['software'].items())}.",
        f"- Revision: `{result['git'].get('describe')}`.",
        f"- Command: `{result['command']}`",
        "- Raw figures: `results.json` beside this file (every call's time).",
        "",
        "| windows per call | ms per call (median) | ms per window | ms per frame |",
        "|---:|---:|---:|---:|",
    ]
    for row in result["levels"]:
        lines.append(
            f"| {row['windows_per_call']} | {row['ms_per_call_median']:.1f} | {row['ms_per_window']:.1f} "
            f"| {row['ms_per_frame']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", default="1,2,4,8", help="windows per call, comma-separated")
    parser.add_argument("--frames", type=int, default=9, help="frames per window (3 context + 4 new + 2 look-ahead)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared 2-core machine)")
    parser.add_argument("--json", type=Path, help="write the raw figures and the run's metadata here")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result: dict[str, Any] = {
        "tool": "benchmarks.snac_bench",
        "command": "python -m benchmarks.snac_bench " + shlex.join(sys.argv[1:]),
        "started": started,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "hardware": hardware(),
        "software": software(),
        "git": git_revision(),
    }
    from benchmarks.models.orpheus import build_snac  # the tests' builder too: SNAC's real shape

    with tempfile.TemporaryDirectory() as tmp:
        build_snac(Path(tmp))
        codec = SnacCodec(loader.load_snac(Path(tmp)), args.device)
    rng = np.random.default_rng(0)
    result["levels"] = []
    for batch in (int(b) for b in args.batches.split(",")):
        row = measure(codec, batch, args.frames, args.repeats, rng)
        result["levels"].append(row)
        print(f"{batch} windows per call: {row['ms_per_window']:.1f} ms a window, {row['ms_per_frame']:.1f} a frame")
    result["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result["load_average_after"] = hardware()["load_average"]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
