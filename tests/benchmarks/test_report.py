"""Report writing: JSON, CSVs, PNGs and the Markdown that embeds them, from a synthetic two-target run."""

from __future__ import annotations

import csv
import json

from benchmarks.bench.report import terminal_table
from benchmarks.bench.run import write_outputs
from benchmarks.bench.stats import summarize
from tests.benchmarks.test_stats import record


def synthetic_run() -> dict:
    levels, records = [], []
    for target in ("local", "hosted"):
        for level in (1, 2, 4):
            rows = [record(i, ttfa=0.1 * level + 0.01 * i, ttlb=0.5 * level) for i in range(6)]
            rows.append(record(6, status=429, error="http_429", audio=0.0))
            for r in rows:
                r.target, r.level = target, level
            summary = summarize(rows, wall_s=3.0).public()
            summary["server_view"] = {
                "models": {"hexgrad/Kokoro-82M": {"mean_step_batch": level * 0.9, "max_queued": level - 1}},
                "metrics_headline": {"hexgrad/Kokoro-82M": {"mean_queue_wait_s": 0.01 * level}},
            }
            levels.append(summary)
            records += [r.public() for r in rows]
    targets = [
        {"name": name, "url": f"http://{name}", "api": "together", "model": "hexgrad/Kokoro-82M", "voice": "af_heart",
         "format": "raw", "encoding": "pcm_s16le", "sample_rate": 24000, "stream": "sse", "server": {"kind": "stats"}}
        for name in ("local", "hosted")
    ]  # fmt: skip
    return {
        "title": "Synthetic",
        "command": "tts-server bench --concurrency 1,2,4",
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:01:00+00:00",
        "elapsed_s": 60.0,
        "hardware": {"cpu": "Test CPU", "cores": 2, "memory_gib": 4.0, "gpus": [], "load_average": [0.1, 0.1, 0.1]},
        "software": {"python": "3.11"},
        "git": {"commit": "abc", "describe": "abc-dirty"},
        "workload": {
            "texts": "short",
            "n_texts": 4,
            "mean_words": 10.0,
            "mode": "closed",
            "levels": [1, 2, 4],
            "requests": 7,
            "duration": None,
            "warmup": 2,
            "timeout_s": 60.0,
            "first_audio_bound_s": 1.0,
            "seed": 0,
        },  # fmt: skip
        "targets": targets,
        "levels": levels,
        "max_sustained": {"local": 4, "hosted": None},
        "records": records,
    }


def test_every_output_file(tmp_path):
    run = synthetic_run()
    files = write_outputs(run, tmp_path / "out")
    names = sorted(f.name for f in files)
    expected = ["latency.png", "report.md", "requests.csv", "results.json", "summary.csv", "throughput.png"]
    assert names == sorted([*expected, "ttfa_cdf.png"])
    for f in files:
        assert f.stat().st_size > 0
        if f.suffix == ".png":
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out" / "results.json").read_text())["records"] == run["records"]
    rows = list(csv.DictReader((tmp_path / "out" / "requests.csv").open()))
    assert len(rows) == 42 and rows[0]["target"] == "local" and rows[-1]["error_type"] == "http_429"
    summary = list(csv.reader((tmp_path / "out" / "summary.csv").open()))
    assert len(summary) == 7 and summary[0][0] == "target"
    md = (tmp_path / "out" / "report.md").read_text()
    for needle in ("# Synthetic", "Test CPU, 2 cores", "![ttfa_cdf](ttfa_cdf.png)", "![latency](latency.png)",
                   "## Server view", "| local | 4 | hexgrad/Kokoro-82M | 3.60 |", "local: 4, hosted: none",
                   "http_429"):  # fmt: skip
        assert needle in md, needle


def test_terminal_table_lines_up():
    table = terminal_table(synthetic_run()["levels"]).splitlines()
    assert len(table) == 2 + 6 and len({len(line.rstrip()) for line in table[:2]}) == 1
    assert table[2].split()[:4] == ["local", "1", "7", "14.3"]


def test_report_again_from_the_json(tmp_path, capsys):
    from benchmarks.bench.cli import main

    write_outputs(synthetic_run(), tmp_path)
    for png in tmp_path.glob("*.png"):
        png.unlink()
    (tmp_path / "report.md").unlink()
    assert main(["report", str(tmp_path / "results.json")]) == 0
    assert len(list(tmp_path.glob("*.png"))) == 3 and (tmp_path / "report.md").exists()
    assert "local: highest level" in capsys.readouterr().out
