"""A whole run: every target through warm-up and every level, the server's view around each level, outputs."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench import meta
from benchmarks.bench.client import Record, finish_record
from benchmarks.bench.load import Driver, LevelPlan
from benchmarks.bench.report import terminal_table, write_json, write_markdown, write_records_csv, write_summary_csv
from benchmarks.bench.server_view import ServerView
from benchmarks.bench.stats import max_sustained, summarize
from benchmarks.bench.targets import Target
from benchmarks.bench.texts import TextSet


@dataclass
class RunConfig:
    targets: list[Target]
    texts: TextSet
    mode: str = "closed"  # closed | open
    levels: list[float] = field(default_factory=lambda: [1.0])
    requests: int | None = 16
    duration: float | None = None
    warmup: int = 2
    timeout_s: float = 120.0
    first_audio_bound_s: float = 1.0
    seed: int = 0
    max_in_flight: int = 256
    progress: bool = True
    scrape_interval_s: float = 1.0
    title: str = "TTS benchmark"
    command: str = ""
    launches: dict[str, list[str]] = field(default_factory=dict)  # base URL -> `tts-server serve` flags

    def plan(self, level: float) -> LevelPlan:
        return LevelPlan(
            self.mode,
            level,
            self.requests,
            self.duration,
            timeout_s=self.timeout_s,
            first_audio_bound_s=self.first_audio_bound_s,
            seed=self.seed,
            max_in_flight=self.max_in_flight,
        )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


async def run_target(config: RunConfig, target: Target) -> tuple[dict[str, Any], list[Record], list[dict[str, Any]]]:
    """Warm-up and every level of one target; returns its description, its records and its level summaries."""
    width = int(max(config.levels)) if config.mode == "closed" else config.max_in_flight
    limits = httpx.Limits(max_connections=width + 4, max_keepalive_connections=width + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_s, connect=30), limits=limits) as client:
        view = ServerView(client, target, config.scrape_interval_s)
        described = {**target.public(), "server": await view.probe()}
        if target.base in config.launches:
            described["launched_with"] = config.launches[target.base]
        driver = Driver(target, config.texts, client, config.progress)
        records = await driver.warmup(config.warmup, config.plan(1.0))
        for record in records:
            finish_record(record, target, config.first_audio_bound_s)
        summaries = []
        for level in config.levels:
            plan = config.plan(level)
            before = await view.scrape()
            async with view.sampling():
                result = await driver.level(plan, f"{target.name} @ {level:g}")
            after = await view.scrape()
            summary = summarize(result.records, result.wall_s).public()
            summary["server_view"] = view.diff(before, after)
            summaries.append(summary)
            records.extend(result.records)
    return described, records, summaries


async def run_benchmark(config: RunConfig) -> dict[str, Any]:
    started_at, started = _now(), time.perf_counter()
    hardware = meta.hardware()
    targets, records, levels = [], [], []
    for target in config.targets:
        described, target_records, summaries = await run_target(config, target)
        targets.append(described)
        records.extend(target_records)
        levels.extend(summaries)
    by_target: dict[str, list] = {}
    for summary in levels:
        by_target.setdefault(summary["target"], []).append(summary)
    hardware["load_average_after"] = meta.hardware()["load_average"]
    return {
        "tool": "tts-server bench",
        "schema": 1,
        "title": config.title,
        "command": config.command,
        "started": started_at,
        "finished": _now(),
        "elapsed_s": time.perf_counter() - started,
        "hardware": hardware,
        "software": meta.software(),
        "git": meta.git_revision(),
        "workload": {
            "texts": config.texts.name,
            "n_texts": len(config.texts.texts),
            "mean_words": config.texts.mean_words,
            "mode": config.mode,
            "levels": config.levels,
            "requests": config.requests,
            "duration": config.duration,
            "warmup": config.warmup,
            "timeout_s": config.timeout_s,
            "first_audio_bound_s": config.first_audio_bound_s,
            "seed": config.seed,
        },
        "targets": targets,
        "levels": levels,
        "max_sustained": {
            name: max_sustained((r["level"], r["realtime_share"]) for r in rows) for name, rows in by_target.items()
        },
        "records": [r.public() for r in records],
    }


def write_outputs(run: dict[str, Any], out_dir: Path, plots: bool = True) -> list[Path]:
    """results.json, requests.csv, summary.csv, the PNG plots and report.md in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "results.json", out_dir / "requests.csv", out_dir / "summary.csv"]
    write_json(files[0], run)
    write_records_csv(files[1], run["records"])
    write_summary_csv(files[2], run["levels"])
    figures: list[Path] = []
    if plots:
        from benchmarks.bench.plots import write_plots

        figures = write_plots(out_dir, run)
    write_markdown(out_dir / "report.md", run, figures)
    return [*files, *figures, out_dir / "report.md"]


def print_summary(run: dict[str, Any]) -> None:
    print(f"\n{run['title']} ({meta.describe_hardware(run['hardware'])})")
    print(terminal_table(run["levels"]))
    for name, level in run["max_sustained"].items():
        print(f"{name}: highest level with >= 95% real-time requests: {level if level is not None else 'none'}")
